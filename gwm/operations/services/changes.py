"""A job's change rows, and the wake-up of its waiters, written with every job write."""

from __future__ import annotations

from gwm.events.models import ChangeAction
from gwm.events.notify import job_channel, publish_on_commit
from gwm.events.services import ChangeRecord, changes_record
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
    )


def job_record(job: Job, records: list[ChangeRecord]) -> None:
    """Record ``records`` under the job's cluster and wake the job's waiters on commit."""
    changes_record(cluster_id=job.cluster_id, cluster_name=job.cluster_name, records=records)
    publish_on_commit(job_channel(job.pk))
