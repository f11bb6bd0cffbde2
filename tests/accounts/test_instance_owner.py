"""Instance ownership: whoever creates an instance is bound the creator role on it, and
so may run it; bindings left on a name by an earlier instance end with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from gwm.accounts.models import AuditEntry, Role, RoleBinding
from gwm.accounts.services import ownership
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster
from gwm.embedded import start_embedded_workers
from gwm.operations.models import Job
from tests.clusters.helpers import full_sync, register

NAME = "new1.example.test"
CREATE = "/api/v1/clusters/sim/instances"


def _client(user: User) -> Client:
    _, token = token_create(actor=None, user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {token}"})


def _body(name: str = NAME) -> dict[str, Any]:
    return {
        "name": name,
        "disk_template": "plain",
        "disks": [{"size": 1024}],
        "nics": [],
        "os": "debootstrap+default",
        "pnode": "node002.example.test",
        "name_check": False,
        "ip_check": False,
    }


@pytest.fixture
def cluster(simulator: Any) -> Iterator[Cluster]:
    running = simulator(nodes=3, instances=4, time_scale=0.02)
    registered = register(running, name="sim")
    full_sync(registered)
    registered.refresh_from_db()
    yield registered
    connections.close_all()


@pytest.fixture
def alice(cluster: Cluster) -> User:
    """May view the cluster and create instances on it; nothing more."""
    user = User.objects.create_user("alice", "alice@localhost", "pw-alice-123")
    maker = Role.objects.create(name="vm-maker", verbs=["view", "create_vm"])
    RoleBinding.objects.create(role=maker, user=user, scope="cluster", cluster=cluster)
    return user


def _owners(name: str = NAME) -> list[tuple[str, str]]:
    rows = RoleBinding.objects.filter(scope="instance", instance=name)
    return [(b.role.name, b.user.username if b.user else "") for b in rows]


def _wait(client: Client, job_id: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(f"/api/v1/jobs/{job_id}/wait?timeout=5")
        assert answer.status_code == 200, answer.content
        job = dict(answer.json()["job"])
        if job["status"] in {"SUCCESS", "ERROR", "CANCELED"}:
            return job
        assert time.monotonic() < deadline, job


@pytest.mark.django_db(transaction=True)
def test_the_creator_owns_its_instance_and_may_reboot_it(cluster: Cluster, alice: User) -> None:
    victor = User.objects.create_user("victor", "victor@localhost", "pw-victor-12")
    viewer = Role.objects.get(name="viewer")
    RoleBinding.objects.create(role=viewer, user=victor, scope="cluster", cluster=cluster)
    as_alice, as_victor = _client(alice), _client(victor)
    other = cluster.instances.exclude(name=NAME).order_by("name").first()
    assert other is not None
    reboot = {"action": "reboot"}
    # Without owning it, create_vm is not power: alice may not reboot another instance.
    refused = as_alice.post(
        f"{CREATE}/{other.name}/actions", reboot, content_type="application/json"
    )
    assert refused.status_code == 403, refused.content
    assert _owners() == []

    created = as_alice.post(CREATE, _body(), content_type="application/json")
    assert created.status_code == 202, created.content
    assert _owners() == [("instance-owner", "alice")]
    binding = RoleBinding.objects.get(instance=NAME)
    assert binding.created_by == alice
    audit = AuditEntry.objects.get(action="role_binding.create", resource_name=str(binding.pk))
    assert (audit.username, audit.job_id, audit.cluster) == ("alice", created.json()["id"], "sim")

    workers = start_embedded_workers()
    try:
        assert _wait(as_alice, created.json()["id"])["status"] == "SUCCESS"
        path = f"{CREATE}/{NAME}/actions"
        denied = as_victor.post(path, reboot, content_type="application/json")
        assert denied.status_code == 403, denied.content
        assert denied.json()["verb"] == "power"
        assert "power" in denied.json()["detail"]
        accepted = as_alice.post(path, reboot, content_type="application/json")
        assert accepted.status_code == 202, accepted.content
        assert _wait(as_alice, accepted.json()["id"])["status"] == "SUCCESS"
    finally:
        workers.stop()
        connections.close_all()
    verbs = as_alice.get(f"/api/v1/me/permissions?cluster=sim&instance={NAME}").json()["verbs"]
    assert {"power", "remove", "modify"} <= set(verbs)


@pytest.mark.django_db
def test_a_create_removes_an_earlier_owner_of_the_name(cluster: Cluster, alice: User) -> None:
    # Bob owned an instance of that name once (it failed, or went outside gwm).
    bob = User.objects.create_user("bob", "bob@localhost", "pw-bob-12345")
    owner = Role.objects.get(name="instance-owner")
    RoleBinding.objects.create(
        role=owner, user=bob, scope="instance", cluster=cluster, instance=NAME
    )
    assert _owners() == [("instance-owner", "bob")]

    created = _client(alice).post(CREATE, _body(), content_type="application/json")

    assert created.status_code == 202, created.content
    assert _owners() == [("instance-owner", "alice")]
    removed = AuditEntry.objects.get(action="role_binding.delete")
    assert (removed.params["user"], removed.job_id) == ("bob", created.json()["id"])


@pytest.mark.django_db
def test_an_existing_owner_binding_is_not_doubled(cluster: Cluster, alice: User) -> None:
    owner = Role.objects.get(name="instance-owner")
    RoleBinding.objects.create(
        role=owner, user=alice, scope="instance", cluster=cluster, instance=NAME
    )
    created = _client(alice).post(CREATE, _body(), content_type="application/json")
    assert created.status_code == 202, created.content
    assert _owners() == [("instance-owner", "alice")]
    assert not AuditEntry.objects.filter(action__startswith="role_binding").exists()


@pytest.mark.django_db
def test_no_binding_when_the_creator_role_is_off(
    cluster: Cluster, alice: User, settings: Any
) -> None:
    settings.GWM_CREATOR_ROLE = ""
    created = _client(alice).post(CREATE, _body(), content_type="application/json")
    assert created.status_code == 202, created.content
    assert _owners() == []


@pytest.mark.django_db
def test_the_end_of_an_instance_ends_its_bindings(cluster: Cluster, alice: User) -> None:
    """The functions lifecycle calls when a create fails, a delete or a rename succeeds."""
    created = _client(alice).post(CREATE, _body(), content_type="application/json")
    assert created.status_code == 202, created.content
    job = Job.objects.get(pk=created.json()["id"])
    assert ownership.owner_forget_failed_create(job) == 1
    assert _owners() == []

    owner = Role.objects.get(name="instance-owner")
    viewer = Role.objects.get(name="viewer")
    for role in (owner, viewer):
        RoleBinding.objects.create(
            role=role, user=alice, scope="instance", cluster=cluster, instance="old.example.test"
        )
    assert (
        ownership.bindings_rename_instance(cluster.pk, "old.example.test", NAME, job_id=None) == 2
    )
    assert sorted(_owners()) == [("instance-owner", "alice"), ("viewer", "alice")]
    # Bindings the create did not make (an admin's, created_by someone else) stay.
    assert ownership.owner_forget_failed_create(job) == 0
    assert ownership.bindings_forget_instances(cluster.pk, [NAME], job_id=None) == 2
    assert _owners() == [] and _owners("old.example.test") == []
