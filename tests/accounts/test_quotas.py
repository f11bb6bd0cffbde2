"""Quotas through the API: a user with ``create_vm`` on a cluster, limited by a quota an
admin set; what is over it is a 409 that writes nothing, even under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from django.test import Client

from gwm.accounts.models import AuditEntry, Quota, Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster, Instance
from gwm.events.models import Change
from gwm.operations.models import Job
from tests.clusters.helpers import full_sync, register

NODE = "node002.example.test"
CREATE = "/api/v1/clusters/sim/instances"


@dataclass
class Setup:
    cluster: Cluster
    alice: User
    as_alice: Client
    admin: Client

    def set_quota(self, **limits: Any) -> Any:
        body = {"cluster": "sim", **limits}
        if "group" not in body:
            body.setdefault("user", "alice")
        return self.admin.put("/api/v1/quotas", body, content_type="application/json")

    def create(self, name: str, client: Client | None = None, **beparams: Any) -> Any:
        body = {
            "name": name,
            "disk_template": "plain",
            "disks": [{"size": 1024}],
            "nics": [],
            "os": "debootstrap+default",
            "pnode": NODE,
            "name_check": False,
            "ip_check": False,
            "beparams": beparams,
        }
        return (client or self.as_alice).post(CREATE, body, content_type="application/json")


def token_client(user: User) -> Client:
    _, token = token_create(actor=None, user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def setup(simulator: Any, api: Client) -> Iterator[Setup]:
    running = simulator(nodes=3, instances=4, time_scale=0.02)
    cluster = register(running, name="sim")
    full_sync(cluster)
    cluster.refresh_from_db()
    alice = User.objects.create_user("alice", "alice@localhost", "pw-alice-123")
    maker = Role.objects.create(name="vm-maker", verbs=["view", "create_vm"])
    RoleBinding.objects.create(role=maker, user=alice, scope="cluster", cluster=cluster)
    yield Setup(cluster, alice, token_client(alice), api)
    connections.close_all()


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return dict(response.json())


@pytest.mark.django_db
def test_a_create_over_the_instance_limit_is_409_and_writes_nothing(setup: Setup) -> None:
    answer = setup.set_quota(instances=1)
    assert answer.status_code == 201, answer.content
    assert answer.json()["used"] == {"instances": 0, "vcpus": 0, "memory_mb": 0, "disk_mb": 0}
    assert AuditEntry.objects.filter(action="quota.create", username="root").count() == 1

    first = setup.create("new1.example.test")
    assert first.status_code == 202, first.content

    jobs, changes = Job.objects.count(), Change.objects.count()
    refused = _problem(setup.create("new2.example.test"), 409)
    assert refused["code"] == "quota_exceeded"
    assert refused["quota"] == {
        "subject": "user:alice",
        "cluster": "sim",
        "resource": "instances",
        "used": 1,
        "requested": 1,
        "allowed": 1,
    }
    # Nothing was kept of the refused one: no job, no placeholder, no owner, no change.
    assert (Job.objects.count(), Change.objects.count()) == (jobs, changes)
    assert not Instance.objects.filter(name="new2.example.test").exists()
    assert not RoleBinding.objects.filter(instance="new2.example.test").exists()
    # The listing shows the first one as PROVISIONING, counted.
    assert Instance.objects.get(name="new1.example.test").status == "PROVISIONING"


@pytest.mark.django_db
def test_sizes_left_to_ganeti_count_with_the_cluster_defaults(setup: Setup) -> None:
    defaults = setup.cluster.info["beparams"]["default"]
    assert defaults["vcpus"] == 1  # the simulator's default, which the body leaves unset
    assert setup.set_quota(vcpus=3, memory_mb=10_000).status_code == 201

    assert setup.create("new1.example.test", vcpus=2, maxmem=512).status_code == 202
    assert setup.create("new2.example.test").status_code == 202  # 1 vcpu by default
    refused = _problem(setup.create("new3.example.test"), 409)
    assert refused["quota"]["resource"] == "vcpus"
    assert (refused["quota"]["used"], refused["quota"]["requested"]) == (3, 1)

    mine = setup.as_alice.get("/api/v1/me/quota?cluster=sim")
    assert mine.status_code == 200, mine.content
    [item] = mine.json()["items"]
    memory = 512 + defaults["maxmem"]
    assert item["usage"] == {"instances": 2, "vcpus": 3, "memory_mb": memory, "disk_mb": 2048}
    [quota] = item["quotas"]
    assert (quota["subject"], quota["vcpus"], quota["instances"]) == ("user:alice", 3, None)
    assert quota["used"] == item["usage"]


@pytest.mark.django_db
def test_a_group_quota_counts_every_member_and_binds_each(setup: Setup) -> None:
    bob = User.objects.create_user("bob", "bob@localhost", "pw-bob-12345")
    team = Group.objects.create(name="team")
    team.user_set.set([setup.alice, bob])
    RoleBinding.objects.create(
        role=Role.objects.get(name="vm-maker"), group=team, scope="cluster", cluster=setup.cluster
    )
    assert setup.set_quota(group="team", instances=2).status_code == 201
    as_bob = token_client(bob)

    assert setup.create("new1.example.test").status_code == 202
    assert setup.create("new2.example.test", client=as_bob).status_code == 202
    refused = _problem(setup.create("new3.example.test", client=as_bob), 409)
    assert refused["quota"]["subject"] == "group:team"
    assert refused["quota"]["used"] == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_where_one_fits_admit_exactly_one(setup: Setup) -> None:
    assert setup.set_quota(instances=1).status_code == 201
    clients = [token_client(setup.alice), token_client(setup.alice)]
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def create(index: int) -> None:
        try:
            start.wait()
            name = f"race{index}.example.test"
            statuses[name] = setup.create(name, client=clients[index]).status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses.values()) == [202, 409], statuses
    [admitted] = [name for name, status in statuses.items() if status == 202]
    assert list(
        Instance.objects.filter(name__startswith="race").values_list("name", flat=True)
    ) == [admitted]
    assert Job.objects.filter(action="instance.create").count() == 1


@pytest.mark.django_db
def test_a_modify_raising_vcpus_beyond_the_quota_is_409(setup: Setup) -> None:
    # Alice owns a running instance of the cluster (bound as its creator would be).
    row = Instance.objects.filter(cluster=setup.cluster, status="RUNNING").first()
    assert row is not None and row.vcpus is not None
    owner = Role.objects.get(name="instance-owner")
    RoleBinding.objects.create(
        role=owner, user=setup.alice, scope="instance", cluster=setup.cluster, instance=row.name
    )
    assert setup.set_quota(vcpus=row.vcpus + 1).status_code == 201
    path = f"{CREATE}/{row.name}"

    refused = _problem(
        setup.as_alice.patch(
            path, {"beparams": {"vcpus": row.vcpus + 2}}, content_type="application/json"
        ),
        409,
    )
    assert refused["code"] == "quota_exceeded"
    assert refused["quota"] == {
        "subject": "user:alice",
        "cluster": "sim",
        "resource": "vcpus",
        "used": row.vcpus,
        "requested": 2,
        "allowed": row.vcpus + 1,
    }
    assert not Job.objects.filter(action="instance.modify").exists()
    assert Instance.objects.get(pk=row.pk).status == "RUNNING"  # not held

    # One more fits; so does lowering it (a change that adds nothing always fits).
    fits = setup.as_alice.patch(
        path, {"beparams": {"vcpus": row.vcpus + 1}}, content_type="application/json"
    )
    assert fits.status_code == 202, fits.content


@pytest.mark.django_db
def test_quotas_are_managed_by_the_clusters_admins_and_audited(setup: Setup) -> None:
    # Alice may create on the cluster, but not set her own quota, nor list others'.
    forbidden = _problem(
        setup.as_alice.put(
            "/api/v1/quotas",
            {"user": "alice", "cluster": "sim", "instances": 100},
            content_type="application/json",
        ),
        403,
    )
    assert forbidden["verb"] == "admin"
    assert _problem(setup.as_alice.get("/api/v1/quotas?cluster=sim"), 403)["verb"] == "admin"
    assert not Quota.objects.exists()

    created = setup.set_quota(instances=2, disk_mb=4096)
    assert created.status_code == 201, created.content
    replaced = setup.set_quota(instances=3)
    assert replaced.status_code == 200, replaced.content
    assert (replaced.json()["instances"], replaced.json()["disk_mb"]) == (3, None)
    assert replaced.json()["id"] == created.json()["id"]
    listed = setup.admin.get("/api/v1/quotas?cluster=sim").json()["items"]
    assert [(q["subject"], q["instances"]) for q in listed] == [("user:alice", 3)]
    assert setup.as_alice.get("/api/v1/quotas").json()["items"] == []  # admin nowhere

    quota_id = created.json()["id"]
    assert setup.as_alice.delete(f"/api/v1/quotas/{quota_id}").status_code == 403
    assert setup.admin.delete(f"/api/v1/quotas/{quota_id}").status_code == 204
    assert setup.admin.delete(f"/api/v1/quotas/{quota_id}").status_code == 404
    assert not Quota.objects.exists()
    actions = list(
        AuditEntry.objects.filter(resource_type="quota", outcome="success")
        .order_by("id")
        .values_list("action", "status")
    )
    assert actions == [("quota.create", 200), ("quota.update", 200), ("quota.delete", 200)]
    # Without a quota, alice is unlimited again.
    assert setup.create("new1.example.test").status_code == 202
