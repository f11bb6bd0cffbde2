"""A submitted job is handed to its tracker at once: the submitter's lease ends with it.

The submitting worker used to give its lease up only after the commit that
rang the tracker, so the tracker rung by that commit could find the job still
claimed, return, and leave the job to the sweeper (up to one sweep, 5 s, late).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Q

from gwm.kit import enqueue
from gwm.operations.actions import ACTIONS
from gwm.operations.models import Job, JobStatus
from gwm.operations.services import lifecycle, submit
from gwm.operations.worker import submit as submitting
from gwm.operations.worker.lease import JOB_LEASE
from gwm.operations.worker.track import TRACKED
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_tracker_rung_by_the_submission_can_claim_the_job(simulator, monkeypatch) -> None:
    running = simulator(instances=2)
    cluster = register(running)
    full_sync(cluster)
    cluster.refresh_from_db()
    name = sorted(running.sim.state.instances)[0]
    job, _ = submit.operation_submit(
        actor=None,
        cluster=cluster,
        action=ACTIONS["instance.reboot"],
        resource_name=name,
        params={"type": "hard"},
    )
    claims: list[str | None] = []

    def ring(task: str, *args: Any, **kwargs: Any) -> None:
        # What the tracker does first when its doorbell rings: claim the job.
        if task == lifecycle.TRACK_TASK:
            claims.append(JOB_LEASE.claim(args[0], Q(status__in=TRACKED)))

    monkeypatch.setattr(enqueue, "ring", ring)
    submitting.submit_job(job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.ganeti_job_id is not None
    assert len(claims) == 1, "the submission rang the tracker once"
    assert claims[0] is not None, "the tracker found the job still held by its submitter"
    assert Job.objects.get(pk=job.pk).lease_owner == claims[0]
