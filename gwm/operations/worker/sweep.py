"""Re-ring overdue work and purge old history: a lost message or a dead worker only delays."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from gwm.kit.enqueue import ring
from gwm.kit.lease import free
from gwm.operations.models import Job, JobStatus
from gwm.operations.services import lifecycle
from gwm.operations.services.submit import SUBMIT_TASK
from gwm.operations.worker.lease import JOB_LEASE
from gwm.operations.worker.track import TRACKED

SWEEP_BATCH = 500


def sweep() -> int:
    """Ring every job that waits for a worker and has none; returns how many were rung."""
    now = timezone.now()
    rung = 0
    pending = Job.objects.filter(status=JobStatus.PENDING, next_attempt_at__lte=now).filter(
        free(now)
    )
    for job_id in pending.values_list("pk", flat=True)[:SWEEP_BATCH]:
        if JOB_LEASE.dispatch(job_id):
            ring(SUBMIT_TASK, job_id)
            rung += 1
    untracked = Job.objects.filter(status__in=TRACKED, ganeti_job_id__isnull=False).filter(
        free(now)
    )
    for job_id in untracked.values_list("pk", flat=True)[:SWEEP_BATCH]:
        if JOB_LEASE.dispatch(job_id):
            ring(lifecycle.TRACK_TASK, job_id)
            rung += 1
    return rung


def purge_old_jobs() -> int:
    cutoff = timezone.now() - timedelta(days=settings.GWM_JOB_RETENTION_DAYS)
    return lifecycle.jobs_purge(finished_before=cutoff)
