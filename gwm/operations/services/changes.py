"""A job's change rows, and the wake-up of its waiters, written with every job write."""

from __future__ import annotations

from typing import Any

from gwm.events.models import ChangeAction
from gwm.events.notify import job_channel, publish_on_commit
from gwm.events.services import Cause, ChangeRecord, changes_record
from gwm.operations.models import Job


def job_change(
    job: Job, action: str = ChangeAction.UPDATED, fields: list[str] | None = None
) -> ChangeRecord:
    return ChangeRecord(
        "job",
        str(job.pk),
        action,
        fields if fields is not None else ["status"],
        {"status": job.status, "action": job.action, "resource": job.resource_name},
        job_id=job.pk,
        **_user_of(job),
    )


def job_cause(job: Job) -> Cause:
    """What the job's own writes (holds, releases, its re-read) were caused by."""
    return Cause(job_id=job.pk, **_user_of(job))


def _user_of(job: Job) -> dict[str, Any]:
    if job.user is None:
        return {"user_id": None, "user_name": ""}
    return {"user_id": job.user_id, "user_name": job.user.username}


def job_record(job: Job, records: list[ChangeRecord]) -> None:
    """Record ``records`` under the job's cluster and wake the job's waiters on commit."""
    changes_record(
        cluster_id=job.cluster_id,
        cluster_name=job.cluster_name,
        records=records,
        cause=job_cause(job),
    )
    publish_on_commit(job_channel(job.pk))
