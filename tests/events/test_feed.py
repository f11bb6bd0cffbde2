"""The change feed (GET /api/v1/changes) over a simulated cluster: what a consumer reads.

Every event rendered here is checked against its JSON Schema (tests/conftest.py turns
GWM_VALIDATE_EVENTS on), so these tests also prove the schemas hold for real changes.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create, token_revoke
from gwm.events.models import Change, ChangeCounter
from gwm.events.retention import changes_purge
from gwm.events.services import ChangeRecord, changes_record
from tests.clusters.helpers import full_sync, gnt, register, runtime_sweep

pytestmark = pytest.mark.django_db


def _feed(api: Client, query: str = "") -> dict[str, Any]:
    answer = api.get(f"/api/v1/changes{query}")
    assert answer.status_code == 200, answer.content
    return answer.json()


def _all(api: Client, query: str = "", since: int = 0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = _feed(api, f"?since={since}&limit=1000{query}")
        events += page["items"]
        if not page["more"]:
            return events
        since = page["next_since"]


def _client_for(user: Any, **token: Any) -> Client:
    _, secret = token_create(actor=None, user=user, name="feed", **token)
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _viewer_of(django_user_model: Any, name: str, cluster: Any = None, **scope: Any) -> Any:
    user = django_user_model.objects.create_user(name, f"{name}@localhost", "pw-long-enough-1")
    RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"),
        user=user,
        scope=scope.pop("scope", "cluster"),
        cluster=cluster,
        **scope,
    )
    return user


def test_an_import_reads_as_created_events_in_seq_order(simulator, api) -> None:
    running = simulator(nodes=2, instances=5)
    assert _feed(api)["items"] == []
    cluster = register(running, name="c1")
    full_sync(cluster)

    events = _all(api)
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert events[0]["type"] == "cluster.created"
    assert events[0]["resource"] == {
        "kind": "cluster",
        "cluster": "c1",
        "name": "c1",
        "url": "/api/v1/clusters/c1",
    }
    created = {e["resource"]["name"] for e in events if e["type"] == "instance.created"}
    assert created == set(running.sim.state.instances)
    first = next(e for e in events if e["type"] == "instance.created")
    assert first["id"] == f"evt_{first['seq']}"
    assert first["previous_seq"] is None
    assert first["changes"]["os"]["before"] is None
    assert first["cause"] == {"job": None, "job_url": None, "user": None}


def test_a_change_outside_gwm_is_a_status_event_with_before_and_after(simulator, api) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running, name="c1")
    full_sync(cluster)
    name = sorted(n for n, i in running.sim.state.instances.items() if i.running_on)[0]
    mark = _feed(api)["next_since"]

    gnt(running, "gnt-instance", "shutdown", name)
    runtime_sweep(cluster)

    events = [e for e in _all(api, since=mark) if e["resource"]["name"] == name]
    assert [e["type"] for e in events] == ["instance.status_changed"]
    event = events[0]
    assert event["changes"]["status"] == {"before": "RUNNING", "after": "STOPPED"}
    # Its previous change is the instance's own last event, found by the same filter.
    history = _all(api, f"&resource=instance:{name}&cluster=c1")
    assert history[-1]["seq"] == event["seq"]
    assert event["previous_seq"] == history[-2]["seq"]
    assert event["cause"]["user"] is None  # found by the sync, not asked for in gwm


def test_filters_by_type_cluster_and_resource(simulator, api) -> None:
    one, two = simulator(nodes=1, instances=2, seed=1), simulator(nodes=1, instances=3, seed=2)
    full_sync(register(one, name="one"))
    full_sync(register(two, name="two"))

    only_two = _all(api, "&cluster=two")
    assert only_two and {e["resource"]["cluster"] for e in only_two} == {"two"}
    nodes = _all(api, "&types=node.*")
    assert nodes and {e["resource"]["kind"] for e in nodes} == {"node"}
    typed = _all(api, "&types=cluster.created,instance.created")
    assert {e["type"] for e in typed} == {"cluster.created", "instance.created"}
    repeated = _all(api, "&types=cluster.created&types=instance.created")
    assert [e["seq"] for e in repeated] == [e["seq"] for e in typed]
    instances = _all(api, "&resource=instance")
    assert {e["resource"]["kind"] for e in instances} == {"instance"}
    assert len({(e["resource"]["cluster"], e["resource"]["name"]) for e in instances}) == 5


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?types=instance.exploded", "types"),
        ("?types=bogus.*", "types"),
        ("?resource=vm:web1", "resource"),
        ("?since=-1", "since"),
        ("?since=abc", "since"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?wait=121", "wait"),
        ("?wait=-1", "wait"),
        ("?colour=red", "colour"),
    ],
)
def test_bad_parameters_are_400_problems_naming_them(api, query, parameter) -> None:
    answer = api.get(f"/api/v1/changes{query}")
    assert answer.status_code == 400, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")
    assert answer.json()["parameter"] == parameter


def test_no_token_is_401(client) -> None:
    answer = client.get("/api/v1/changes")
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Bearer"


def test_a_viewer_of_one_cluster_never_reads_anothers_events(
    simulator, api, django_user_model
) -> None:
    one, two = simulator(nodes=1, instances=2, seed=1), simulator(nodes=1, instances=2, seed=2)
    first, second = register(one, name="one"), register(two, name="two")
    full_sync(first)
    full_sync(second)
    viewer = _client_for(_viewer_of(django_user_model, "ann", first))

    everything = _all(api)
    seen = _all(viewer)
    assert {e["resource"]["cluster"] for e in everything} == {"one", "two"}
    assert seen and {e["resource"]["cluster"] for e in seen} == {"one"}
    assert [e["seq"] for e in seen] == [
        e["seq"] for e in everything if e["resource"]["cluster"] == "one"
    ]
    # Asking for the other cluster by name is no way round it: an empty, advancing page.
    page = _feed(viewer, "?cluster=two")
    assert page["items"] == [] and page["next_since"] == page["last_seq"] > 0


def test_an_instance_binding_sees_that_instance_and_nothing_else(
    simulator, api, django_user_model
) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running, name="c1")
    full_sync(cluster)
    name = sorted(running.sim.state.instances)[0]
    user = _viewer_of(django_user_model, "bob", cluster, scope="instance", instance=name)
    seen = _all(_client_for(user))
    assert seen and {(e["resource"]["kind"], e["resource"]["name"]) for e in seen} == {
        ("instance", name)
    }


def test_an_idle_cursor_advances_with_bookmarks(simulator, api, django_user_model) -> None:
    running = simulator(nodes=1, instances=2)
    cluster = register(running, name="c1")
    full_sync(cluster)
    outsider = _client_for(_viewer_of(django_user_model, "cy", None, scope="global"))
    RoleBinding.objects.filter(user__username="cy").delete()  # now sees nothing at all

    page = _feed(outsider)
    assert page["items"] == []
    assert page["next_since"] == page["last_seq"] == ChangeCounter.objects.get().last_seq
    assert page["more"] is False


def test_limit_pages_without_gap_or_duplicate(simulator, api) -> None:
    running = simulator(nodes=2, instances=6)
    full_sync(register(running, name="c1"))
    whole = [e["seq"] for e in _all(api)]
    paged: list[int] = []
    since = 0
    while True:
        page = _feed(api, f"?since={since}&limit=3")
        paged += [e["seq"] for e in page["items"]]
        assert len(page["items"]) <= 3
        since = page["next_since"]
        if not page["more"]:
            break
    assert paged == whole


def test_a_cursor_below_the_retention_floor_is_410_with_the_floor(simulator, api) -> None:
    running = simulator(nodes=1, instances=2)
    full_sync(register(running, name="c1"))
    assert _feed(api, "?since=0")["items"]
    Change.objects.update(created_at=timezone.now() - timedelta(days=30))
    last = ChangeCounter.objects.get().last_seq
    assert changes_purge(older_than=timezone.now() - timedelta(days=7)) == last

    answer = api.get("/api/v1/changes?since=0")
    assert answer.status_code == 410, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert (problem["code"], problem["floor"]) == ("cursor_gone", last)
    assert problem["relist"] == "/api/v1/clusters"
    # From the floor on, the feed serves again (nothing left before it).
    assert _feed(api, f"?since={last}")["items"] == []


def _write_cluster_change(cluster: Any, status: str) -> None:
    with transaction.atomic():
        changes_record(
            cluster_id=cluster.pk,
            cluster_name=cluster.name,
            records=[
                ChangeRecord("cluster", cluster.name, "updated", ["status"], {"status": status})
            ],
        )


@pytest.mark.django_db(transaction=True)
def test_wait_answers_when_a_change_commits(simulator, api) -> None:
    running = simulator(nodes=1, instances=1)
    cluster = register(running, name="c1")
    mark = _feed(api)["next_since"]

    def later() -> None:
        time.sleep(0.5)
        try:
            _write_cluster_change(cluster, "ERROR")
        finally:
            connections.close_all()

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    page = _feed(api, f"?since={mark}&wait=20")
    waited = time.monotonic() - started
    writer.join()
    assert [e["type"] for e in page["items"]] == ["cluster.status_changed"]
    assert page["items"][0]["changes"]["status"]["after"] == "ERROR"
    assert 0.4 < waited < 10


@pytest.mark.django_db(transaction=True)
def test_wait_with_nothing_new_ends_with_a_bookmark(api) -> None:
    mark = _feed(api)["next_since"]
    started = time.monotonic()
    page = _feed(api, f"?since={mark}&wait=0.5")
    assert page["items"] == [] and page["next_since"] == mark
    assert time.monotonic() - started >= 0.45


def test_a_revoked_token_reads_nothing(api, admin_user) -> None:
    token, secret = token_create(actor=None, user=admin_user, name="gone")
    reader = Client(headers={"Authorization": f"Bearer {secret}"})
    assert reader.get("/api/v1/changes").status_code == 200
    token_revoke(token, actor=None)
    assert reader.get("/api/v1/changes").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_an_action_through_gwm_reads_as_job_and_instance_events_with_their_cause(
    simulator, api
) -> None:
    from gwm.embedded import start_embedded_workers

    running = simulator(nodes=2, instances=4, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="c1", fast_interval=3600, runtime_interval=3600)
    full_sync(cluster)
    name = sorted(n for n, i in running.sim.state.instances.items() if i.running_on)[0]
    mark = _feed(api)["next_since"]
    workers = start_embedded_workers()
    try:
        answer = api.post(
            f"/api/v1/clusters/c1/instances/{name}/actions",
            {"action": "shutdown"},
            content_type="application/json",
        )
        assert answer.status_code == 202, answer.content
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while True:
            events = _all(api, since=mark)
            if any(e["type"] in {"job.succeeded", "job.failed"} for e in events):
                break
            assert time.monotonic() < deadline, events
            _feed(api, f"?since={events[-1]['seq'] if events else mark}&wait=5")
    finally:
        workers.stop()
        connections.close_all()

    jobs = [e for e in events if e["resource"]["kind"] == "job"]
    assert jobs[0]["type"] == "job.created"
    assert jobs[-1]["type"] == "job.succeeded"
    assert jobs[-1]["resource"]["url"] == f"/api/v1/jobs/{job_id}"
    assert jobs[-1]["changes"]["status"] == {
        "before": jobs[-2]["changes"]["status"]["after"],
        "after": "SUCCESS",
    }
    mine = [e for e in events if e["resource"]["name"] == name]
    statuses = [e["changes"]["status"]["after"] for e in mine if "status" in e["changes"]]
    assert statuses[0] == "BUSY" and statuses[-1] == "STOPPED"
    # The status moves are the job's (a sync round may also note, with no cause, the
    # new serial number Ganeti gave the instance).
    for event in [e for e in mine if "status" in e["changes"]] + jobs:
        assert event["cause"] == {
            "job": job_id,
            "job_url": f"/api/v1/jobs/{job_id}",
            "user": "root",
        }, event
    for earlier, later in itertools.pairwise(mine):
        assert later["previous_seq"] == earlier["seq"]
