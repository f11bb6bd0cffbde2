"""Jobs Ganeti ran for others (``gnt-instance stop`` on the master, the watcher).

The fast tier sees them in Ganeti's job list; each becomes a history row,
marked foreign, so gwm's job history is the cluster's whole history.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from gwm.clusters.models import Cluster
from gwm.events.models import ChangeAction
from gwm.events.notify import job_channel, publish_on_commit
from gwm.events.services import ChangeRecord
from gwm.ganeti.vocabulary import foreign_action, foreign_source, foreign_target, ganeti_time
from gwm.operations.models import FINAL_STATUSES, FROM_GANETI, Job, JobStatus
from gwm.operations.services.changes import job_change


def jobs_record_foreign(cluster: Cluster, foreign_jobs: list[dict[str, Any]]) -> list[ChangeRecord]:
    """Write the history rows of ``foreign_jobs``; returns their change rows.

    Called inside the sync round's transaction, which records the changes. The
    first round of a cluster sees its whole queue (thousands of jobs), so rows
    are read in one query and new ones inserted in batches: one query per job
    held the write lock for seconds.
    """
    records: list[ChangeRecord] = []
    known = {
        job.ganeti_job_id: job
        for job in Job.objects.filter(
            cluster=cluster, ganeti_job_id__in=[int(cells["id"]) for cells in foreign_jobs]
        )
    }
    new: list[Job] = []
    for cells in foreign_jobs:
        ganeti_id = int(cells["id"])
        status = FROM_GANETI.get(cells.get("status") or "", JobStatus.QUEUED)
        job = known.get(ganeti_id)
        if job is None:
            new.append(_history_row(cluster, ganeti_id, status, cells))
        elif job.foreign and job.status != status:
            job.status = status
            job.ganeti_status = cells.get("status") or ""
            job.ganeti_ended_at = ganeti_time(cells.get("end_ts"))
            if status in FINAL_STATUSES:
                job.finished_at = timezone.now()
            job.save()
            records.append(job_change(job))
            publish_on_commit(job_channel(job.pk))
    if new:
        # A conflict is a gwm job that stored the same Ganeti job id meanwhile: it stays gwm's.
        Job.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        for job in Job.objects.filter(
            cluster=cluster, foreign=True, ganeti_job_id__in=[job.ganeti_job_id for job in new]
        ).order_by("ganeti_job_id"):
            records.append(job_change(job, ChangeAction.CREATED))
            publish_on_commit(job_channel(job.pk))
    return records


def _history_row(cluster: Cluster, ganeti_id: int, status: str, cells: dict[str, Any]) -> Job:
    ops = cells.get("ops") or []
    first = ops[0] if ops else {}
    kind, name = foreign_target(first)
    return Job(
        cluster=cluster,
        ganeti_job_id=ganeti_id,
        cluster_name=cluster.name,
        foreign=True,
        source=foreign_source(first),
        action=foreign_action(first),
        resource_type=kind,
        resource_name=name,
        status=status,
        ganeti_status=cells.get("status") or "",
        summary=cells.get("summary") or [],
        ganeti_received_at=ganeti_time(cells.get("received_ts")),
        ganeti_ended_at=ganeti_time(cells.get("end_ts")),
        finished_at=timezone.now() if status in FINAL_STATUSES else None,
    )
