"""Retention: purge_old_jobs deletes finished jobs past GWM_JOB_RETENTION_DAYS, and says so.

Jobs are real operations run against the simulator by the embedded workers; their
ages are then moved back in the database. Old finished jobs go (404 from the API)
and each deletion is a row in the change log; recent finished jobs and unfinished
jobs of any age stay.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gwm.events.models import Change
from gwm.operations.models import Job
from gwm.operations.tasks import purge_old_jobs
from tests.conftest import sim_admin
from tests.operations.distributed import until

pytestmark = pytest.mark.django_db(transaction=True)


def _run(live: Any, name: str, action: str) -> dict[str, Any]:
    response = live.action(name, action)
    assert response.status_code == 202, response.content
    return dict(response.json())


def test_purge_deletes_old_finished_jobs_with_a_change_each_and_keeps_the_rest(
    live, settings
) -> None:
    settings.GWM_JOB_RETENTION_DAYS = 30
    names = live.running_names()
    old = [live.wait_done(_run(live, names[i], "reboot")) for i in range(3)]
    recent = live.wait_done(_run(live, names[3], "reboot"))
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    unfinished = _run(live, names[4], "reboot")
    until(
        lambda: Job.objects.get(pk=unfinished["id"]).status == "QUEUED",
        timeout=15,
        what="the held job to reach Ganeti",
    )
    assert all(job["status"] == "SUCCESS" for job in [*old, recent])

    now = timezone.now()
    long_ago = now - timedelta(days=31)
    Job.objects.filter(pk__in=[job["id"] for job in old]).update(
        created_at=long_ago, finished_at=long_ago
    )
    Job.objects.filter(pk=recent["id"]).update(
        created_at=now - timedelta(days=40), finished_at=now - timedelta(days=29)
    )
    Job.objects.filter(pk=unfinished["id"]).update(created_at=now - timedelta(days=100))
    for job in [*old, recent, unfinished]:
        assert live.api.get(f"/api/v1/jobs/{job['id']}").status_code == 200
    seq_before = Change.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    deleted = purge_old_jobs()

    assert deleted == len(old)
    for job in old:
        gone = live.api.get(f"/api/v1/jobs/{job['id']}")
        assert gone.status_code == 404, gone.content
        assert gone.json()["code"] == "not_found"
    assert live.api.get(f"/api/v1/jobs/{recent['id']}").json()["status"] == "SUCCESS"
    assert live.api.get(f"/api/v1/jobs/{unfinished['id']}").json()["status"] == "QUEUED"
    listed = {job["id"] for job in live.api.get("/api/v1/jobs?limit=1000").json()["items"]}
    assert listed.isdisjoint({job["id"] for job in old})
    assert {recent["id"], unfinished["id"]} <= listed

    # Each deletion is recorded, once, after what was there before; nothing else is.
    new_changes = Change.objects.filter(seq__gt=seq_before)
    job_rows = new_changes.filter(resource="job")
    assert sorted(job_rows.values_list("name", "action")) == sorted(
        (str(job["id"]), "deleted") for job in old
    ), list(new_changes.values("resource", "name", "action"))
    assert all(row.cluster_name == "sim" for row in job_rows)
    assert purge_old_jobs() == 0  # nothing left to purge; nothing recorded twice
    assert Change.objects.filter(seq__gt=seq_before, resource="job").count() == len(old)
    sim_admin(live.running, "PUT", "queue", {"hold": False})
    assert live.wait_done(unfinished)["status"] == "SUCCESS"
