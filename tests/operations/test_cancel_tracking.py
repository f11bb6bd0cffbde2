"""Cancelling a job Ganeti already has: CANCELING, then how Ganeti says it ended.

Ganeti cannot cancel an opcode that runs (``DELETE /2/jobs/ID`` answers
"Job no longer waiting, can't cancel"), so such a job ends SUCCESS; a job still
waiting for its locks is cancelled and ends CANCELED. Either way gwm shows
CANCELING from the request until the end, never RUNNING again in between, and
gives the instance back its real status.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gwm.events.models import Change
from gwm.operations.models import FROM_GANETI
from tests.conftest import sim_admin
from tests.operations.distributed import until

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"SUCCESS", "ERROR", "CANCELED"}


def _job(live: Any, job_id: int) -> dict[str, Any]:
    response = live.api.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _follow_until(live: Any, job_id: int, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Follow the job through /wait until ``predicate(job)`` holds."""
    deadline = time.monotonic() + timeout
    current = _job(live, job_id)
    while not predicate(current):
        assert time.monotonic() < deadline, current
        assert current["status"] not in FINAL, current
        last = max((line["serial"] for line in current["log"]), default=0)
        answer = live.api.get(
            f"/api/v1/jobs/{job_id}/wait?timeout=5&after_log={last}&status={current['status']}"
        )
        assert answer.status_code == 200, answer.content
        current = answer.json()["job"]
    return current


def _status_history(job_id: int) -> list[str]:
    """Every status the change feed announced for the job, in order."""
    rows = Change.objects.filter(resource="job", name=str(job_id)).order_by("seq")
    history: list[str] = []
    for status in rows.values_list("data__status", flat=True):
        if not history or history[-1] != status:
            history.append(status)
    return history


def _running_drbd(live: Any) -> tuple[str, str]:
    state = live.running.sim.state
    for name, instance in sorted(state.instances.items()):
        if instance.disk_template == "drbd" and instance.running_on and instance.snodes:
            return name, state.node_by_uuid(instance.snodes[0]).name
    raise AssertionError("the generated cluster has no running drbd instance")


def test_cancel_of_a_running_job_shows_canceling_then_ganetis_end(live) -> None:
    name, target = _running_drbd(live)
    # 100 s of Ganeti time: 5 s here, logging as it goes (progress arrives while CANCELING).
    sim_admin(live.running, "PUT", "config", {"op_seconds": {"OP_INSTANCE_MIGRATE": 100}})
    job = live.action(name, "migrate").json()
    running = _follow_until(live, job["id"], lambda j: j["ganeti"]["status"] == "running")
    assert running["status"] == "RUNNING"
    gid = running["ganeti"]["job_id"]
    assert live.running.sim.queue.jobs[gid].status == "running"

    canceled = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 202, canceled.content
    assert canceled.json()["status"] == "CANCELING"
    assert _job(live, job["id"])["status"] == "CANCELING"
    assert live.instance(name)["status"] == "BUSY"  # still held: Ganeti runs it on

    done = live.wait_done(canceled.json(), timeout=40)

    ganeti_job = live.running.sim.queue.jobs[gid]
    assert ganeti_job.status == "success"  # Ganeti could not cancel a running opcode
    assert done["status"] == FROM_GANETI[ganeti_job.status] == "SUCCESS", done
    assert done["ganeti"]["status"] == "success"
    assert done["finished_at"]
    history = _status_history(job["id"])
    after = history[history.index("CANCELING") :]
    assert after == ["CANCELING", "SUCCESS"], f"after the cancel gwm announced {after}"
    instance = live.instance(name)
    assert instance["status"] == "RUNNING"
    assert instance["primary_node"] == target
    again = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_finished"


def test_cancel_of_a_job_waiting_for_its_locks_ends_canceled(live) -> None:
    name = live.running_names()[0]
    # Someone on the master reboots the instance slowly; gwm's job has to wait for it.
    sim_admin(live.running, "PUT", "config", {"op_seconds": {"OP_INSTANCE_REBOOT": 200}})
    foreign = sim_admin(
        live.running, "POST", "exec", {"client": "gnt-instance", "command": "reboot", "name": name}
    )["job_id"]
    until(
        lambda: live.running.sim.queue.jobs[foreign].status == "running",
        timeout=10,
        what="the foreign reboot to run",
    )
    sim_admin(live.running, "PUT", "config", {"op_seconds": {"OP_INSTANCE_REBOOT": 0.5}})
    job = live.action(name, "add-tags", tags=["waits"]).json()
    waiting = _follow_until(live, job["id"], lambda j: j["ganeti"]["status"] == "waiting")
    assert waiting["status"] == "WAITING"
    gid = waiting["ganeti"]["job_id"]

    canceled = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 202, canceled.content
    assert canceled.json()["status"] == "CANCELING"

    done = live.wait_done(canceled.json(), timeout=30)

    assert live.running.sim.queue.jobs[gid].status == "canceled"
    assert done["status"] == "CANCELED", done
    assert done["ganeti"]["status"] == "canceled"
    history = _status_history(job["id"])
    assert history[history.index("CANCELING") :] == ["CANCELING", "CANCELED"], history
    assert "waits" not in live.running.sim.state.instances[name].tags
    assert live.instance(name)["status"] == "RUNNING"  # released, not BUSY
