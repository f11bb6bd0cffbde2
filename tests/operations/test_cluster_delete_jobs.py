"""Unregistering a cluster while its jobs are in flight: every job ends, and says why.

One job has not reached Ganeti yet (submissions answer "queue drained", so it
stays PENDING and retries), one is in Ganeti's queue (held there). After
``DELETE /clusters/sim`` no worker can reach Ganeti for them any more, so they
must end: CANCELED (never sent) or ERROR (gwm no longer follows it), with a
message naming the cluster, and a cancel must not leave one CANCELING forever.
The job history stays readable.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from gwm.operations.tasks import sweep
from tests.conftest import sim_admin
from tests.operations.distributed import until

pytestmark = pytest.mark.django_db(transaction=True)

FINAL = {"SUCCESS", "ERROR", "CANCELED"}


def _job(live: Any, job_id: int) -> dict[str, Any]:
    response = live.api.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _jobs_in_flight(live: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = live.running_names()[:2]
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    queued = live.action(first, "reboot").json()
    until(
        lambda: _job(live, queued["id"])["status"] == "QUEUED",
        timeout=15,
        what="the first job to reach Ganeti's queue",
    )
    sim_admin(live.running, "PUT", "faults", {"queue_drained": True})
    pending = live.action(second, "reboot").json()
    until(
        lambda: (
            _job(live, pending["id"])["attempts"] >= 1
            and bool(_job(live, pending["id"])["last_error"])
        ),
        timeout=15,
        what="the second job's first (refused) attempt",
    )
    queued, pending = _job(live, queued["id"]), _job(live, pending["id"])
    assert queued["status"] == "QUEUED" and queued["ganeti"]["job_id"]
    assert pending["status"] == "PENDING" and pending["ganeti"]["job_id"] is None
    return queued, pending


def _until_final(live: Any, job_id: int, timeout: float = 20) -> dict[str, Any]:
    """The sweeper re-rings unfinished work (as beat does every 5 s); wait for the end."""
    deadline = time.monotonic() + timeout
    while True:
        sweep()
        answer = live.api.get(f"/api/v1/jobs/{job_id}/wait?timeout=1")
        assert answer.status_code == 200, answer.content
        job = answer.json()["job"]
        if job["status"] in FINAL:
            return dict(job)
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}: {job}"


def test_unregistering_a_cluster_ends_its_jobs_in_flight(live) -> None:
    queued, pending = _jobs_in_flight(live)

    response = live.api.delete("/api/v1/clusters/sim")
    assert response.status_code == 204, response.content
    assert live.api.get("/api/v1/clusters/sim").status_code == 404

    for job in (queued, pending):
        done = _until_final(live, job["id"])
        assert done["status"] in {"ERROR", "CANCELED"}, done
        assert done["cluster"] == "sim"  # history keeps the cluster's name
        assert done["finished_at"]
        assert done["error"] and done["error"]["message"], done
        message = done["error"]["message"].lower()
        assert "sim" in message and ("unregistered" in message or "deleted" in message), done
    listed = live.api.get("/api/v1/jobs?cluster=sim&status=PENDING,QUEUED,RUNNING,CANCELING")
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    sim_admin(live.running, "DELETE", "faults")
    sim_admin(live.running, "PUT", "queue", {"hold": False})


def test_cancelling_a_job_of_an_unregistered_cluster_does_not_hang_canceling(live) -> None:
    queued, pending = _jobs_in_flight(live)
    assert live.api.delete("/api/v1/clusters/sim").status_code == 204

    for job in (queued, pending):
        answer = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
        if answer.status_code == 409:
            assert answer.json()["code"] == "job_finished", answer.content  # ended already
        else:
            assert answer.status_code == 202, answer.content
        done = _until_final(live, job["id"])
        assert done["status"] in {"ERROR", "CANCELED"}, done
        assert done["error"] and "sim" in done["error"]["message"], done
    sim_admin(live.running, "DELETE", "faults")
    sim_admin(live.running, "PUT", "queue", {"hold": False})
