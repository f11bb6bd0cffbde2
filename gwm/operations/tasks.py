"""Celery's task shells of operations: each calls one worker function (gwm.operations.worker).

Services ring these by name after commit (gwm.kit.enqueue); beat rings the
sweeper and the purge (settings.CELERY_BEAT_SCHEDULE).
"""

from __future__ import annotations

from celery import shared_task

from gwm.operations.worker import submit, track
from gwm.operations.worker import sweep as sweeping


@shared_task(name="operations.submit_job", ignore_result=True)
def submit_job(job_id: int) -> None:
    submit.submit_job(job_id)


@shared_task(name="operations.track_job", ignore_result=True)
def track_job(job_id: int) -> None:
    track.track_job(job_id)


@shared_task(name="operations.cancel_job", ignore_result=True)
def cancel_job(job_id: int) -> None:
    track.cancel_job(job_id)


@shared_task(name="operations.sweep", ignore_result=True)
def sweep() -> int:
    return sweeping.sweep()


@shared_task(name="operations.purge_old_jobs", ignore_result=True)
def purge_old_jobs() -> int:
    return sweeping.purge_old_jobs()
