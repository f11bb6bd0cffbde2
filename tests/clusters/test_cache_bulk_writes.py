"""How a round's read is written: each row only its own changed columns, one UPDATE for
the rows whose only news is that they were swept, nothing for a round with no news."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gwm.clusters.models import Cluster, ClusterStatus, Instance, InstanceStatus
from gwm.clusters.services import cache, upsert
from gwm.events.models import Change
from gwm.ganeti import fields as gf
from gwm.ganeti.reads import RoundRead

pytestmark = pytest.mark.django_db

NAMES = ["a", "b", "c", "d"]
#: What gwm calls an instance Ganeti reports ADMIN_down while its admin state is up.
STOPPED = gf.instance_status("ADMIN_down", "up")


def _config(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "os": "debian",
        "memory": 1024,
        "vcpus": 1,
        "admin_state": "up",
        "primary_node": "n1",
        "tags": ["web"],
    }


def _runtime(status: str = "running", ram: int = 1024) -> dict[str, Any]:
    return {"ganeti_status": status, "oper_state": True, "oper_ram": ram, "_runtime": True}


@pytest.fixture
def cluster() -> Cluster:
    """A cluster with four instances and a node, as its first slow round and sweep left it."""
    cluster = Cluster.objects.create(name="bulk", rapi_url="https://bulk.example:5080")
    long_ago = timezone.now() - timedelta(hours=1)
    slow = RoundRead(
        info={"name": "bulk.example"},
        instances={name: _config(name) for name in NAMES},
        instance_names=set(NAMES),
        nodes={"n1": {"name": "n1", "offline": False, "drained": False}},
        node_names={"n1"},
    )
    cache.round_write(cluster.pk, slow, now=long_ago, tier="slow")
    sweep = RoundRead(instances={name: _runtime() for name in NAMES}, runtime_swept=True)
    cache.round_write(cluster.pk, sweep, now=long_ago, tier="runtime")
    return cluster


def _row(name: str) -> dict[str, Any]:
    return Instance.objects.filter(name=name).values().get()


def _updates(queries: CaptureQueriesContext) -> list[str]:
    """The UPDATE statements sent (Django logs one sent with executemany as "N times: …")."""
    sent = [re.sub(r"^\d+ times: ", "", q["sql"]) for q in queries.captured_queries]
    return [sql for sql in sent if sql.startswith("UPDATE")]


def _set_columns(sql: str) -> set[str]:
    """The columns an ``UPDATE t SET "a" = %s, "b" = %s WHERE …`` writes."""
    assignments = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return {part.split("=")[0].strip().strip('"') for part in assignments.split(",")}


def test_each_changed_row_gets_only_its_own_changed_columns(cluster: Cluster) -> None:
    before = {name: _row(name) for name in NAMES}
    now = timezone.now()
    sweep = RoundRead(
        instances={
            "a": _runtime(status="ADMIN_down"),  # a status change: ganeti_status and status
            "b": _runtime(ram=2048),  # only oper_ram
            "c": _runtime(),
            "d": _runtime(),
        },
        runtime_swept=True,
    )
    with CaptureQueriesContext(connection) as queries:
        changes = cache.round_write(cluster.pk, sweep, now=now, tier="runtime")

    assert changes == 2
    instance_updates = [sql for sql in _updates(queries) if "clusters_instance" in sql]
    written = sorted(sorted(_set_columns(sql)) for sql in instance_updates)
    assert written == [
        ["ganeti_status", "runtime_synced_at", "status", "synced_at"],
        ["oper_ram", "runtime_synced_at", "synced_at"],
        ["runtime_synced_at"],  # c and d: swept, nothing else
    ]
    after = {name: _row(name) for name in NAMES}
    assert before["a"]["status"] == InstanceStatus.RUNNING
    assert (after["a"]["ganeti_status"], after["a"]["status"]) == ("ADMIN_down", STOPPED)
    assert (before["b"]["oper_ram"], after["b"]["oper_ram"]) == (1024, 2048)
    for name in NAMES:
        assert before[name]["runtime_synced_at"] < now
        assert after[name]["runtime_synced_at"] == now
        # Every column not written is as it was.
        untouched = set(after[name]) - {"ganeti_status", "status", "oper_ram", "synced_at"}
        untouched.discard("runtime_synced_at")
        assert {c: after[name][c] for c in untouched} == {c: before[name][c] for c in untouched}
    assert after["a"]["synced_at"] == after["b"]["synced_at"] == now
    assert after["c"]["synced_at"] == before["c"]["synced_at"] < now


def test_a_changed_column_is_not_written_to_rows_where_it_did_not_change(
    cluster: Cluster,
) -> None:
    """Rows are grouped by their own changes: b's new oper_ram is not sent for c, so a
    value written behind the round's back in c's other columns stays."""
    Instance.objects.filter(name="c").update(os="written-meanwhile", memory=4096)
    sweep = RoundRead(
        instances={"b": _runtime(ram=2048), "c": _runtime(status="ADMIN_down")},
        runtime_swept=False,
    )
    cache.round_write(cluster.pk, sweep, now=timezone.now(), tier="runtime")
    c = _row("c")
    assert (c["os"], c["memory"], c["oper_ram"]) == ("written-meanwhile", 4096, 1024)
    assert c["status"] == STOPPED


def test_swept_rows_of_a_partial_read_get_their_stamp_in_chunks(cluster: Cluster) -> None:
    now = timezone.now()
    read = RoundRead(instances={"a": _runtime(), "b": _runtime()})
    with CaptureQueriesContext(connection) as queries:
        cache.round_write(cluster.pk, read, now=now, tier="runtime")
    stamps = dict(Instance.objects.values_list("name", "runtime_synced_at"))
    assert stamps["a"] == stamps["b"] == now
    assert stamps["c"] < now and stamps["d"] < now
    instance_updates = [sql for sql in _updates(queries) if "clusters_instance" in sql]
    assert len(instance_updates) == 1 and " IN (" in instance_updates[0]


def test_a_full_sweep_with_no_news_stamps_the_cluster_in_one_update(cluster: Cluster) -> None:
    last_seq = Change.objects.order_by("-seq").values_list("seq", flat=True).first()
    now = timezone.now()
    sweep = RoundRead(instances={name: _runtime() for name in NAMES}, runtime_swept=True)
    with CaptureQueriesContext(connection) as queries:
        assert cache.round_write(cluster.pk, sweep, now=now, tier="runtime") == 0
    instance_updates = [sql for sql in _updates(queries) if "clusters_instance" in sql]
    assert len(instance_updates) == 1
    assert _set_columns(instance_updates[0]) == {"runtime_synced_at"}
    assert set(Instance.objects.values_list("runtime_synced_at", flat=True)) == {now}
    assert Change.objects.order_by("-seq").values_list("seq", flat=True).first() == last_seq


def test_a_round_with_no_news_writes_only_the_clusters_bookkeeping(cluster: Cluster) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(last_job_id=7)
    instances_before = list(Instance.objects.order_by("name").values())
    last_seq = Change.objects.order_by("-seq").values_list("seq", flat=True).first()
    now = timezone.now()
    read = RoundRead(
        nodes={"n1": {"name": "n1", "offline": False, "drained": False}},
        node_names={"n1"},
        last_job_id=9,
        open_job_ids=[9],
    )
    with CaptureQueriesContext(connection) as queries:
        assert cache.round_write(cluster.pk, read, now=now, tier="fast") == 0

    # The nodes compared, and one UPDATE of the cluster's row: no lock, no object pass.
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 2, sql
    assert sql[0].startswith("SELECT") and "clusters_node" in sql[0]
    assert sql[1].startswith("UPDATE") and "clusters_cluster" in sql[1]
    row = Cluster.objects.values("last_job_id", "open_job_ids", "fast_synced_at").get()
    assert row == {"last_job_id": 9, "open_job_ids": [9], "fast_synced_at": now}
    assert list(Instance.objects.order_by("name").values()) == instances_before
    assert Change.objects.order_by("-seq").values_list("seq", flat=True).first() == last_seq


@pytest.mark.parametrize(
    "news",
    [
        {"nodes": {"n1": {"name": "n1", "offline": True, "drained": False}}},
        {"node_names": {"n1", "n2"}},
        {"instance_names": {"a", "b", "c"}},
        {"foreign_jobs": [{"id": 3, "status": "success", "summary": ["OP_TEST"]}]},
    ],
    ids=["node-changed", "node-appeared", "instance-gone", "foreign-job"],
)
def test_a_round_with_news_takes_the_full_write(
    cluster: Cluster, news: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    full: list[int] = []
    apply = upsert.upsert_objects

    def counting(*args: Any, **kwargs: Any) -> Any:
        full.append(1)
        return apply(*args, **kwargs)

    monkeypatch.setattr(cache, "upsert_objects", counting)
    read = RoundRead(
        nodes={"n1": {"name": "n1", "offline": False, "drained": False}}, node_names={"n1"}
    )
    for key, value in news.items():
        setattr(read, key, value)
    cache.round_write(cluster.pk, read, now=timezone.now(), tier="fast", also=lambda _c, _r: [])
    assert full  # the object passes ran


def test_a_round_with_no_news_on_an_unavailable_cluster_records_it_available(
    cluster: Cluster,
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.UNREACHABLE, error="down")
    read = RoundRead(
        nodes={"n1": {"name": "n1", "offline": False, "drained": False}}, node_names={"n1"}
    )
    assert cache.round_write(cluster.pk, read, now=timezone.now(), tier="fast") == 1
    assert Cluster.objects.values_list("status", "error").get() == ("AVAILABLE", "")


def test_a_read_is_not_modified_by_writing_it(cluster: Cluster) -> None:
    """The no-news check and the full write may both look at the same rows."""
    rows = {"a": _runtime(status="ADMIN_down")}
    read = RoundRead(instances={"a": dict(rows["a"])}, runtime_swept=False)
    cache.round_write(cluster.pk, read, now=timezone.now(), tier="runtime")
    assert read.instances == rows
