"""Ganeti's job log reaching gwm's jobs, and the long-polls that wait for it.

Against the simulator over HTTPS with gwm's embedded workers (the ``live``
fixture). The simulator's migrate logs two lines, works, logs a third, works
and logs a fourth; its duration is stretched so the lines arrive seconds apart.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.events.notify import broadcaster, job_channel
from tests.conftest import sim_admin
from tests.operations.distributed import until

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"SUCCESS", "ERROR", "CANCELED"}


def _job(live: Any, job_id: int) -> dict[str, Any]:
    response = live.api.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _sim_log(live: Any, ganeti_job_id: int) -> list[tuple[int, str]]:
    """(serial, message) of every log line the simulated Ganeti job wrote so far."""
    job = live.running.sim.queue.jobs[ganeti_job_id]
    return [(entry[0], entry[3]) for op in job.ops for entry in op.log]


def _gwm_log(job: dict[str, Any]) -> list[tuple[int, str]]:
    return [(line["serial"], line["message"]) for line in job["log"]]


def _running_drbd(live: Any) -> tuple[str, str]:
    """A running drbd instance (migratable) and the node it migrates to."""
    state = live.running.sim.state
    for name, instance in sorted(state.instances.items()):
        if instance.disk_template == "drbd" and instance.running_on and instance.snodes:
            return name, state.node_by_uuid(instance.snodes[0]).name
    raise AssertionError("the generated cluster has no running drbd instance")


def test_ganeti_log_lines_reach_the_job_and_wait_after_log_returns_the_new_ones(live) -> None:
    name, target = _running_drbd(live)
    # 160 s of Ganeti time at time_scale 0.05: 8 s, the later lines 2.4 s and 4.8 s apart.
    sim_admin(live.running, "PUT", "config", {"op_seconds": {"OP_INSTANCE_MIGRATE": 160}})
    response = live.action(name, "migrate")
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response.json()["log"] == []  # nothing from Ganeti yet

    # Follow the job through wait?after_log until Ganeti's first two lines are in.
    current = _job(live, job_id)
    deadline = time.monotonic() + 20
    while not (current["status"] == "RUNNING" and len(current["log"]) >= 2):
        assert time.monotonic() < deadline, current
        last = max((line["serial"] for line in current["log"]), default=0)
        answer = live.api.get(f"/api/v1/jobs/{job_id}/wait?timeout=5&after_log={last}")
        assert answer.status_code == 200, answer.content
        current = answer.json()["job"]
    gid = current["ganeti"]["job_id"]
    first_lines = _gwm_log(current)
    assert first_lines[:2] == [
        (1, f"Migrating instance {name}"),
        (2, "* checking disk consistency between source and target"),
    ]
    assert all(line["type"] == "message" and line["time"] for line in current["log"])
    seen = max(serial for serial, _ in first_lines)
    assert seen < 4 and not current["finished_at"], current  # a line is still to come

    # The wait returns because a line after `seen` arrived, not because the status moved.
    started = time.monotonic()
    answer = live.api.get(f"/api/v1/jobs/{job_id}/wait?timeout=30&after_log={seen}&status=RUNNING")
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.content
    woke = answer.json()
    assert woke["changed"] is True, woke
    assert elapsed < 15, f"wait took {elapsed:.1f}s: it did not return on the new line"
    assert woke["job"]["status"] == "RUNNING", woke["job"]
    new_lines = [(s, m) for s, m in _gwm_log(woke["job"]) if s > seen]
    assert new_lines, woke["job"]["log"]
    ganeti_lines = dict(_sim_log(live, gid))
    assert new_lines[0] == (seen + 1, ganeti_lines[seen + 1])
    assert dict(new_lines).items() <= ganeti_lines.items()
    assert ganeti_lines[3] == f"* migrating instance to {target}"

    # At the end, GET /jobs/{id} carries every line Ganeti wrote, in order.
    done = live.wait_done(woke["job"], timeout=30)
    assert done["status"] == "SUCCESS", done
    final = _job(live, job_id)
    assert _gwm_log(final) == _sim_log(live, gid)
    assert _gwm_log(final)[-1] == (4, "* done")
    assert [line["serial"] for line in final["log"]] == [1, 2, 3, 4]

    # A finished job answers at once: with its lines after 0, and unchanged after the last.
    started = time.monotonic()
    all_lines = live.api.get(f"/api/v1/jobs/{job_id}/wait?timeout=30&after_log=0").json()
    none_new = live.api.get(f"/api/v1/jobs/{job_id}/wait?timeout=30&after_log=4").json()
    assert time.monotonic() - started < 5
    assert all_lines["changed"] is True and len(all_lines["job"]["log"]) == 4
    assert none_new["changed"] is False and none_new["job"]["status"] == "SUCCESS"


# -- GET /jobs/wait?ids=a,b ---------------------------------------------------------------


def _wait_in_thread(live: Any, url: str, into: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        client = Client(**live.api.defaults)
        try:
            started = time.monotonic()
            response = client.get(url)
            into["elapsed"] = time.monotonic() - started
            into["status"] = response.status_code
            into["body"] = response.json()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="jobs-wait")
    thread.start()
    return thread


def _queued_pair(live: Any) -> list[dict[str, Any]]:
    """Two reboots Ganeti holds in its queue, each seen by gwm as QUEUED."""
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    names = live.running_names()[:2]
    jobs = []
    for name in names:
        response = live.action(name, "reboot")
        assert response.status_code == 202, response.content
        jobs.append(response.json())
    for job in jobs:
        until(
            lambda job=job: _job(live, job["id"])["status"] == "QUEUED",
            timeout=15,
            what=f"job {job['id']} to reach Ganeti's queue",
        )
    return [_job(live, job["id"]) for job in jobs]


@pytest.mark.parametrize("which", [0, 1], ids=["first-changes", "second-changes"])
def test_jobs_wait_returns_when_either_job_changes(live, which: int) -> None:
    jobs = _queued_pair(live)
    ids = [job["id"] for job in jobs]
    moving, still = jobs[which], jobs[1 - which]
    result: dict[str, Any] = {}
    thread = _wait_in_thread(live, f"/api/v1/jobs/wait?ids={ids[0]},{ids[1]}&timeout=60", result)
    try:
        # Both channels have a waiter before anything changes.
        until(
            lambda: all(broadcaster.waiting(job_channel(i)) for i in ids),
            timeout=10,
            what="the wait to subscribe",
        )
        assert thread.is_alive(), result  # nothing changed yet: it is still waiting
        cancel = live.api.post(f"/api/v1/jobs/{moving['id']}/cancel")
        assert cancel.status_code == 202, cancel.content
        thread.join(timeout=30)
        assert not thread.is_alive(), "the wait did not return when one job changed"
    finally:
        sim_admin(live.running, "PUT", "queue", {"hold": False})
        thread.join(timeout=70)
    assert result["status"] == 200, result
    body = result["body"]
    assert result["elapsed"] < 30
    assert body["changed"] is True
    assert [job["id"] for job in body["jobs"]] == ids  # in the order asked
    by_id = {job["id"]: job for job in body["jobs"]}
    assert by_id[moving["id"]]["status"] in {"CANCELING", "CANCELED"}
    assert by_id[still["id"]]["status"] == "QUEUED"
    for job in jobs:
        live.wait_done(job, timeout=30)


def test_jobs_wait_times_out_unchanged_and_names_unknown_ids(live) -> None:
    jobs = _queued_pair(live)
    ids = [job["id"] for job in jobs]
    try:
        started = time.monotonic()
        quiet = live.api.get(f"/api/v1/jobs/wait?ids={ids[0]},{ids[1]}&timeout=1")
        elapsed = time.monotonic() - started
        assert quiet.status_code == 200, quiet.content
        assert quiet.json()["changed"] is False
        assert [job["status"] for job in quiet.json()["jobs"]] == ["QUEUED", "QUEUED"]
        assert 0.9 <= elapsed < 10

        missing = max(ids) + 1000
        unknown = live.api.get(f"/api/v1/jobs/wait?ids={ids[0]},{missing}&timeout=1")
        assert unknown.status_code == 404, unknown.content
        assert unknown["Content-Type"] == "application/problem+json"
        problem = unknown.json()
        assert problem["code"] == "not_found" and problem["status"] == 404
        assert str(missing) in problem["detail"]
        assert str(ids[0]) not in problem["detail"]

        bad = live.api.get("/api/v1/jobs/wait?ids=1,two")
        assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    finally:
        sim_admin(live.running, "PUT", "queue", {"hold": False})
    for job in jobs:
        assert live.wait_done(job, timeout=30)["status"] == "SUCCESS"
