"""A job wait while this process's PostgreSQL listener is down (docs/events.md, "Wake-ups").

The change comes the way another process's would: an UPDATE and a ``pg_notify`` on a
connection of its own, so this process's in-process wake-up never fires and only its
LISTEN thread could hear it. The LISTEN connection is cut with
``pg_terminate_backend``, as a database restart or a network cut would. The regular
recheck is stretched to a minute, so a waiter answering in seconds was woken by what
the test is about, not by its usual poll.

PostgreSQL only (mark ``postgres``, like test_jobs_notify_pg).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.test import Client

from gwm.events import notify, waiting
from gwm.events.notify import broadcaster, job_channel
from gwm.operations.models import Job
from tests.clusters.helpers import full_sync, register
from tests.operations.distributed import until
from tests.operations.test_jobs_notify_pg import require_postgresql

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _outside() -> psycopg.Connection[Any]:
    """A connection of its own, as another process would hold."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _cut_the_listener() -> int:
    with _outside() as conn:
        cut = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = %s",
            [f"LISTEN {notify.PG_CHANNEL}"],
        ).fetchone()
    return int(cut[0]) if cut else 0


def _cancel_from_outside(job_id: int) -> float:
    with _outside() as conn:
        conn.execute(
            f"UPDATE {Job._meta.db_table} SET status = 'CANCELED', finished_at = now(), "
            "updated_at = now() WHERE id = %s",
            [job_id],
        )
        conn.execute("SELECT pg_notify(%s, %s)", [notify.PG_CHANNEL, job_channel(job_id)])
    return time.monotonic()


@pytest.fixture
def pending_job(request: pytest.FixtureRequest, simulator: Any, api: Client) -> int:
    require_postgresql(request)
    running = simulator(nodes=2, instances=4, time_scale=0.05)
    cluster = register(running, name="sim", fast_interval=600.0, runtime_interval=600.0)
    full_sync(cluster)
    name = next(n for n, i in sorted(running.sim.state.instances.items()) if i.running_on)
    # Accepted here; no worker runs in this process, so only the outside moves it.
    answer = api.post(
        f"/api/v1/clusters/sim/instances/{name}/actions",
        {"action": "shutdown"},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "PENDING"
    return int(answer.json()["id"])


@contextmanager
def _waiting(api: Client, job_id: int) -> Iterator[dict[str, Any]]:
    """A `GET /jobs/{id}/wait?timeout=90` in a thread; its answer and when it came.
    Started after the test stretched the rechecks: a waiter reads them as it waits."""
    result: dict[str, Any] = {}

    def wait() -> None:
        try:
            answer = Client(**api.defaults).get(f"/api/v1/jobs/{job_id}/wait?timeout=90")
            result.update(code=answer.status_code, body=answer.json(), at=time.monotonic())
        finally:
            connections.close_all()

    until(lambda: not notify.listener_down(), timeout=30, what="the listener to connect")
    thread = threading.Thread(target=wait, name="waiter")
    thread.start()
    until(lambda: broadcaster.waiting(job_channel(job_id)), timeout=10, what="the wait")
    result["thread"] = thread
    try:
        yield result
    finally:
        thread.join(timeout=120)


def _answered(waiter: dict[str, Any], job_id: int, since: float) -> float:
    waiter["thread"].join(timeout=60)
    assert not waiter["thread"].is_alive(), "the wait did not answer within a minute"
    assert waiter["code"] == 200, waiter
    assert waiter["body"]["changed"] is True, waiter["body"]
    assert waiter["body"]["job"]["status"] == "CANCELED", waiter["body"]
    assert Job.objects.get(pk=job_id).status == "CANCELED"
    return float(waiter["at"]) - since


def test_while_the_listener_is_down_waiters_poll_every_second(
    monkeypatch: pytest.MonkeyPatch, api: Client, pending_job: int
) -> None:
    monkeypatch.setattr(waiting, "RECHECK_SECONDS", 60.0)
    monkeypatch.setattr(notify, "RECONNECT_SECONDS", 8.0)  # down while the change is made
    with _waiting(api, pending_job) as waiter:
        assert Job.objects.get(pk=pending_job).status == "PENDING"
        assert _cut_the_listener() == 1
        until(notify.listener_down, timeout=10, what="the listener to notice it was cut")
        changed_at = _cancel_from_outside(pending_job)  # its notification reaches no one
        assert notify.listener_down()
        elapsed = _answered(waiter, pending_job, changed_at)
    assert elapsed < 5.0, f"answered {elapsed:.1f} s after the change: it did not poll"


def test_a_listener_back_wakes_the_waiters_whose_wake_up_was_lost(
    monkeypatch: pytest.MonkeyPatch, api: Client, pending_job: int
) -> None:
    monkeypatch.setattr(waiting, "RECHECK_SECONDS", 60.0)
    monkeypatch.setattr(waiting, "DOWN_RECHECK_SECONDS", 60.0)  # no poll: only the wake
    monkeypatch.setattr(notify, "RECONNECT_SECONDS", 3.0)
    with _waiting(api, pending_job) as waiter:
        assert _cut_the_listener() == 1
        until(notify.listener_down, timeout=10, what="the listener to notice it was cut")
        changed_at = _cancel_from_outside(pending_job)  # lost: nobody listens
        elapsed = _answered(waiter, pending_job, changed_at)
    assert not notify.listener_down()
    assert elapsed < 10.0, f"answered {elapsed:.1f} s after the change, not when it came back"
