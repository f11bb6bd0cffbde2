"""The audit log through the API: every write leaves one row (who, token, address, what,
where, secrets removed, outcome, status, job), a refused one too; the row of a write that
succeeds shares its transaction; GET /audit filters and pages it for admins only.

Each test checks the log before the request as well as after, so a row that was there
anyway (or a decorator that records nothing) fails it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import ApiToken, AuditEntry, LoginFailure, Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster
from gwm.operations.models import Job
from gwm.simulator.app import READ, WRITE
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, register, registration_body

pytestmark = pytest.mark.django_db

JSON = "application/json"
SECRET = "Zebra-Quartz-7731-secret"  # a password no other field of a row could hold


@dataclass
class World:
    running: Running
    cluster: Cluster
    instance: str


@pytest.fixture
def world(simulator: Any) -> World:
    running = simulator(nodes=2, instances=4, time_scale=0.02)
    cluster = register(running, name="sim")
    full_sync(cluster)
    return World(running, cluster, sorted(running.sim.state.instances)[0])


def _reboot(client: Client, world: World, body: dict[str, Any] | None = None) -> Any:
    return client.post(
        f"/api/v1/clusters/sim/instances/{world.instance}/actions",
        body if body is not None else {"action": "reboot"},
        content_type=JSON,
    )


def _rows() -> str:
    """Every audit row, serialized as a reader of the table would see it."""
    return json.dumps(list(AuditEntry.objects.values()), default=str)


# -- writes leave rows -----------------------------------------------------------------


def test_an_instance_reboot_leaves_one_row_with_its_job(
    world: World, api: Client, admin_user: User
) -> None:
    assert not AuditEntry.objects.filter(action="instance.reboot").exists()
    response = _reboot(api, world)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])

    row = AuditEntry.objects.get(action="instance.reboot")
    assert row.outcome == "success" and row.status == 202
    assert row.job_id == job.pk
    assert (row.cluster, row.resource_type, row.resource_name) == (
        "sim",
        "instance",
        world.instance,
    )
    assert row.user == admin_user and row.username == "root"
    assert row.token is not None and row.token.user == admin_user and row.token.name == "tests"
    assert row.address == "127.0.0.1"
    assert row.method == "POST"
    assert row.path == f"/api/v1/clusters/sim/instances/{world.instance}/actions"
    assert row.params == {"action": "reboot"}

    # Cancelling it is a write on the job, audited with the job's cluster.
    cancel = api.post(f"/api/v1/jobs/{job.pk}/cancel")
    assert cancel.status_code == 202, cancel.content
    row = AuditEntry.objects.get(action="job.cancel")
    assert (row.cluster, row.resource_type, row.resource_name) == ("sim", "job", str(job.pk))
    assert row.job_id == job.pk and row.outcome == "success"


def test_a_reboot_by_a_viewer_is_a_denied_row_and_no_job(world: World, reader_api: Client) -> None:
    jobs = Job.objects.count()
    response = _reboot(reader_api, world)
    assert response.status_code == 403, response.content
    assert Job.objects.count() == jobs

    row = AuditEntry.objects.get(action="instance.reboot")
    assert row.outcome == "denied" and row.status == 403
    assert row.username == "viewer" and row.token is not None
    assert row.job_id is None
    assert "may not" in row.detail  # the problem's detail, as the client read it


def test_a_bad_body_is_a_refused_row(world: World, api: Client) -> None:
    jobs = Job.objects.count()
    response = _reboot(api, world, {"action": "reboot", "no_such_field": 1})
    assert response.status_code == 422, response.content
    assert Job.objects.count() == jobs
    row = AuditEntry.objects.get(action="instance.reboot")
    assert (row.outcome, row.status) == ("refused", 422)
    assert row.params == {"action": "reboot", "no_such_field": 1}


def test_an_unauthenticated_write_is_a_denied_row_without_a_user(world: World) -> None:
    response = _reboot(Client(), world)
    assert response.status_code == 401
    row = AuditEntry.objects.get()
    assert (row.action, row.outcome, row.user, row.token) == (
        "instance.reboot",
        "denied",
        None,
        None,
    )


def test_a_dry_run_is_recorded_with_its_query_and_no_job(world: World, api: Client) -> None:
    response = api.post(
        f"/api/v1/clusters/sim/instances/{world.instance}/actions?dry_run=true",
        {"action": "reboot"},
        content_type=JSON,
    )
    assert response.status_code == 200, response.content
    row = AuditEntry.objects.get(action="instance.reboot")
    assert row.outcome == "success" and row.status == 200
    assert row.params == {"action": "reboot", "_query": {"dry_run": "true"}}
    assert row.job_id is None


def test_a_cluster_registration_keeps_no_password(simulator: Any, api: Client) -> None:
    running = simulator(nodes=1, instances=1)
    running.sim.users["auditor"] = (SECRET, frozenset({READ, WRITE}))
    body = registration_body(running, name="c2", username="auditor", password=SECRET)
    response = api.post("/api/v1/clusters", body, content_type=JSON)
    assert response.status_code == 201, response.content

    row = AuditEntry.objects.get(action="cluster.create")
    assert (row.cluster, row.resource_type, row.resource_name) == ("c2", "cluster", "c2")
    assert row.outcome == "success" and row.status == 201
    assert row.params["password"] == "[redacted]"
    assert row.params["username"] == "auditor"  # the rest of the body is kept
    assert SECRET not in _rows()

    # Changing the password: the same.
    patch = api.patch("/api/v1/clusters/c2", {"password": SECRET}, content_type=JSON)
    assert patch.status_code == 200, patch.content
    row = AuditEntry.objects.get(action="cluster.update")
    assert row.params == {"password": "[redacted]"}
    assert SECRET not in _rows()


def test_logins_are_recorded_once_each_without_their_password(
    django_user_model: Any,
) -> None:
    django_user_model.objects.create_user("alice", "alice@localhost", SECRET)
    client = Client()
    good = client.post(
        "/api/v1/auth/tokens", {"username": "alice", "password": SECRET}, content_type=JSON
    )
    assert good.status_code == 201, good.content
    bad = client.post(
        "/api/v1/auth/tokens",
        {"username": "alice", "password": SECRET + "-wrong"},
        content_type=JSON,
    )
    assert bad.status_code == 401, bad.content

    rows = list(AuditEntry.objects.exclude(action="token.create").order_by("id"))
    assert [(r.action, r.outcome, r.status) for r in rows] == [
        ("auth.login", "success", 201),
        ("auth.login", "denied", 401),
    ]
    assert rows[0].username == rows[1].username == "alice"
    # The refusal's throttle count was kept: the login runs outside the audit's block.
    assert LoginFailure.objects.filter(username="alice").count() == 1
    assert SECRET not in _rows()
    assert good.json()["token"] not in _rows()


def test_self_audited_writes_have_one_row_and_their_refusals_one_too(
    api: Client, reader_api: Client
) -> None:
    made = api.post("/api/v1/users", {"username": "bob", "password": SECRET}, content_type=JSON)
    assert made.status_code in (200, 201), made.content
    assert AuditEntry.objects.filter(action="user.create").count() == 1  # the service's

    refused = reader_api.post(
        "/api/v1/users", {"username": "carol", "password": SECRET}, content_type=JSON
    )
    assert refused.status_code == 403, refused.content
    row = AuditEntry.objects.get(action="user.create", outcome="denied")
    assert row.username == "viewer" and row.resource_name == "carol"
    assert row.params["password"] == "[redacted]"
    assert not User.objects.filter(username="carol").exists()
    assert SECRET not in _rows()


def test_a_refused_write_keeps_nothing_the_request_wrote(world: World, reader_api: Client) -> None:
    """Authentication stamps the token's last use (a write outside any service's block);
    a refused write rolls back whole, so even that is undone; a read keeps it."""
    token = ApiToken.objects.get(user__username="viewer")
    assert token.last_used_at is None
    assert _reboot(reader_api, world).status_code == 403
    token.refresh_from_db()
    assert token.last_used_at is None
    assert AuditEntry.objects.filter(action="instance.reboot", outcome="denied").count() == 1

    assert reader_api.get("/api/v1/clusters/sim").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


# -- the row shares the write's transaction --------------------------------------------


@pytest.fixture
def success_rows_fail() -> Iterator[None]:
    """The audit table refuses success rows (a real database trigger, SQLite's or
    PostgreSQL's): the one write of a success row fails after everything else of the
    request was written."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(
                "CREATE FUNCTION no_success_rows() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION 'audit refused'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER no_success_rows BEFORE INSERT ON accounts_auditentry "
                "FOR EACH ROW WHEN (NEW.outcome = 'success') EXECUTE FUNCTION no_success_rows()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER no_success_rows BEFORE INSERT ON accounts_auditentry "
                "WHEN NEW.outcome = 'success' BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
    yield
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("DROP TRIGGER IF EXISTS no_success_rows ON accounts_auditentry")
            cursor.execute("DROP FUNCTION IF EXISTS no_success_rows()")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS no_success_rows")


def test_a_write_whose_row_fails_is_undone_and_leaves_a_failure_row(
    world: World, api: Client, success_rows_fail: None
) -> None:
    instance_status = world.cluster.instances.get(name=world.instance).status
    jobs = Job.objects.count()
    response = _reboot(api, world)
    assert response.status_code == 500, response.content
    assert response["Content-Type"] == "application/problem+json"
    # The job, its hold and its change rows were written, then rolled back with the row.
    assert Job.objects.count() == jobs
    assert world.cluster.instances.get(name=world.instance).status == instance_status
    row = AuditEntry.objects.get(action="instance.reboot")
    assert (row.outcome, row.status) == ("error", 500)
    assert row.job_id is None


def test_a_registration_whose_row_fails_leaves_no_cluster(
    simulator: Any, api: Client, success_rows_fail: None
) -> None:
    running = simulator(nodes=1, instances=1)
    response = api.post(
        "/api/v1/clusters", registration_body(running, name="c3"), content_type=JSON
    )
    assert response.status_code == 500, response.content
    assert not Cluster.objects.filter(name="c3").exists()
    row = AuditEntry.objects.get(action="cluster.create")
    assert (row.cluster, row.outcome) == ("c3", "error")
    assert row.params["password"] == "[redacted]"


# -- GET /audit ------------------------------------------------------------------------


def _audit(client: Client, query: str = "") -> Any:
    response = client.get(f"/api/v1/audit{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_log_filters_by_user_cluster_action_outcome_and_time(
    world: World, api: Client, reader_api: Client
) -> None:
    # The fixtures' tokens were made by the service (token.create rows); no write yet.
    assert {i["action"] for i in _audit(api)["items"]} == {"token.create"}
    _reboot(api, world)
    _reboot(reader_api, world)
    api.post("/api/v1/clusters/sim/sync")

    everything = _audit(api, "?action=instance.reboot,cluster.sync")["items"]
    assert [i["action"] for i in everything] == [
        "cluster.sync",
        "instance.reboot",
        "instance.reboot",
    ]
    assert everything[0]["id"] > everything[1]["id"] > everything[2]["id"]  # newest first
    first = everything[-1]
    assert first["user"] == "root" and first["token_id"] is not None
    assert first["resource_type"] == "instance" and first["job_id"] is not None
    assert first["at"].endswith("Z")

    assert [i["user"] for i in _audit(api, "?user=viewer")["items"]] == ["viewer"]
    assert len(_audit(api, "?action=instance.reboot")["items"]) == 2
    assert len(_audit(api, "?action=instance.reboot,cluster.sync")["items"]) == 3
    assert [i["status"] for i in _audit(api, "?outcome=denied")["items"]] == [403]
    assert len(_audit(api, "?cluster=sim")["items"]) == 3
    assert _audit(api, "?cluster=elsewhere")["items"] == []
    assert len(_audit(api, f"?resource=instance:{world.instance}")["items"]) == 2
    assert len(_audit(api, "?resource=cluster")["items"]) == 1

    # Time: move the oldest row a day back.
    AuditEntry.objects.filter(pk=first["id"]).update(at=timezone.now() - timedelta(days=1))
    cut = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [i["id"] for i in _audit(api, f"?until={cut}")["items"]] == [first["id"]]
    assert first["id"] not in [i["id"] for i in _audit(api, f"?since={cut}")["items"]]
    assert len(_audit(api, f"?since={cut}&action=instance.reboot")["items"]) == 1

    bad = api.get("/api/v1/audit?since=yesterday")
    assert bad.status_code == 400 and bad.json()["parameter"] == "since"
    bad = api.get("/api/v1/audit?outcome=maybe")
    assert bad.status_code == 400 and bad.json()["parameter"] == "outcome"


def test_the_log_pages_newest_first_with_next_urls(world: World, api: Client) -> None:
    for _ in range(5):
        assert api.post("/api/v1/clusters/sim/sync").status_code == 202
    syncs = AuditEntry.objects.filter(action="cluster.sync")
    ids = list(syncs.order_by("-id").values_list("id", flat=True))
    assert len(ids) == 5

    seen: list[int] = []
    url: str | None = "/api/v1/audit?limit=2&action=cluster.sync"
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        url = page["next"]
        if url:
            assert url.startswith("/api/v1/audit?") and "action=cluster.sync" in url
        pages += 1
    assert seen == ids and pages == 3


def test_a_cluster_admin_reads_only_the_rows_of_their_cluster(
    world: World, api: Client, django_user_model: Any
) -> None:
    other = register(world.running, name="other")
    api.post("/api/v1/clusters/sim/sync")
    api.post("/api/v1/clusters/other/sync")
    Client().post("/api/v1/auth/tokens", {"username": "x", "password": "y"}, content_type=JSON)
    assert AuditEntry.objects.exclude(action="token.create").count() == 3

    boss = django_user_model.objects.create_user("boss", "boss@localhost", "pw-boss-123")
    RoleBinding.objects.create(
        role=Role.objects.get(name="admin"), user=boss, scope="cluster", cluster=world.cluster
    )
    _, token = token_create(actor=None, user=boss, name="tests")
    boss_api = Client(headers={"Authorization": f"Bearer {token}"})
    items = _audit(boss_api)["items"]
    assert [(i["action"], i["cluster"]) for i in items] == [("cluster.sync", "sim")]
    assert _audit(boss_api, "?cluster=other")["items"] == []
    assert other.pk  # registered, yet invisible to the admin of sim


def test_a_viewer_may_not_read_the_log(reader_api: Client) -> None:
    response = reader_api.get("/api/v1/audit")
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert Client().get("/api/v1/audit").status_code == 401
