"""A job's life after it was accepted: attempts, submission, progress, its end, cancel.

Workers call these; each is one transaction on the job row (locked), with its
change rows, and wakes the job's waiters after commit. A job only moves
forward: a call that comes too late for the job's state does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.accounts.services import ownership
from gwm.clusters.models import Cluster
from gwm.clusters.services.cache import refresh_write
from gwm.clusters.services.holds import holds_release
from gwm.errors import Conflict
from gwm.events.models import ChangeAction
from gwm.events.services import ChangeRecord, changes_record
from gwm.ganeti.reads import RoundRead
from gwm.ganeti.vocabulary import ganeti_time
from gwm.kit.enqueue import ring_after_commit
from gwm.observability import metrics
from gwm.operations.models import FINAL_STATUSES, FROM_GANETI, Job, JobStatus
from gwm.operations.services.changes import job_change, job_record

log = logging.getLogger(__name__)

TRACK_TASK = "operations.track_job"
CANCEL_TASK = "operations.cancel_job"


def job_attempt_started(job_id: int, *, submit_floor: int) -> Job:
    """Recorded before calling Ganeti: a later attempt then knows to look for this one."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.attempts += 1
        if job.submit_floor is None:
            job.submit_floor = submit_floor
        job.save(update_fields=["attempts", "submit_floor", "updated_at"])
    log.info("job %s (%s): sending it to Ganeti, attempt %s", job.pk, job.action, job.attempts)
    return job


def job_submitted(job_id: int, ganeti_job_id: int, *, adopted: bool = False) -> None:
    """Ganeti has the job: record its id and hand the job to a tracker.

    The submitting worker's lease ends in this same transaction, so the
    tracker the doorbell wakes can claim the job at once.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.ganeti_job_id is not None or job.finished:
            return
        job.ganeti_job_id = ganeti_job_id
        job.status = JobStatus.QUEUED
        job.submitted_at = timezone.now()
        job.last_error = (
            f"adopted Ganeti job {ganeti_job_id}, found by its reason trail after an "
            "interrupted submission"
            if adopted
            else ""
        )
        job.next_attempt_at = None
        job.lease_owner, job.lease_until = "", None
        job.save()
        job_record(job, [job_change(job, fields=["status", "ganeti_job_id"])])
        ring_after_commit(TRACK_TASK, job.pk)
        metrics.job_submitted(job)
        log.info("job %s (%s) is Ganeti job %s", job.pk, job.action, ganeti_job_id)


def job_attempt_failed(job_id: int, *, error: str, retry_at: datetime) -> None:
    """Ganeti could not be reached: the job stays PENDING and is retried."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.finished or job.ganeti_job_id is not None:
            return
        job.last_error = error
        job.next_attempt_at = retry_at
        job.save(update_fields=["last_error", "next_attempt_at", "updated_at"])
        job_record(job, [job_change(job, fields=["last_error"])])


def job_progress(job_id: int, *, ganeti: dict[str, Any]) -> Job:
    """Ganeti reported progress (status, new log lines); nothing final yet."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        changed = _apply_ganeti(job, ganeti, final=False)
        if changed:
            job.save()
            job_record(job, [job_change(job, fields=changed)])
        return job


#: Ganeti's timestamps of a job → the job's columns.
GANETI_TIMES = (
    ("received_ts", "ganeti_received_at"),
    ("start_ts", "ganeti_started_at"),
    ("end_ts", "ganeti_ended_at"),
)


def _apply_ganeti(job: Job, ganeti: dict[str, Any], *, final: bool) -> list[str]:
    changed: list[str] = []
    status = ganeti.get("status")
    if status:
        mapped = FROM_GANETI.get(status, JobStatus(job.status))
        if not final and mapped in FINAL_STATUSES:
            mapped = JobStatus.RUNNING  # finishing is job_finish's work
        if not final and job.status == JobStatus.CANCELING:
            # Asked to cancel: it says so until Ganeti says how it ended, even
            # while an opcode Ganeti would not interrupt runs on.
            mapped = JobStatus.CANCELING
        if mapped != job.status and not job.finished:
            job.status = mapped
            changed.append("status")
        if job.ganeti_status != status:
            job.ganeti_status = status
    new_log = ganeti.get("log") or []
    if new_log:
        known = {entry[0] for entry in job.log}
        additions = [entry for entry in new_log if entry[0] not in known]
        if additions:
            job.log = sorted([*job.log, *additions], key=lambda entry: entry[0])
            changed.append("log")
    for key in ("summary", "opstatus", "opresult"):
        if ganeti.get(key) is not None and getattr(job, key) != ganeti[key]:
            setattr(job, key, ganeti[key])
            changed.append(key)
    for key, column in GANETI_TIMES:
        if ganeti.get(key):
            setattr(job, column, ganeti_time(ganeti[key]))
    return changed


@dataclass
class Refresh:
    """What was re-read from Ganeti after a job, to write with its end."""

    read: RoundRead
    instances_gone: list[str]


def job_finish(
    job_id: int,
    *,
    status: str,
    ganeti: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    refresh: Refresh | None = None,
) -> None:
    """The job ended: record it, release what it held, write what was re-read. One transaction."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.finished:
            return
        if job.cluster_id is not None:
            # Taken by sync rounds too (cache.round_write): a round that read Ganeti
            # before this job ended then sees these writes and does not undo them.
            # NO KEY, as there: FOR UPDATE would deadlock with requests inserting jobs.
            list(Cluster.objects.select_for_update(no_key=True).filter(pk=job.cluster_id))
        if ganeti:
            _apply_ganeti(job, ganeti, final=True)
        job.status = status
        job.error = error
        job.finished_at = timezone.now()
        job.next_attempt_at = None
        job.save()
        if job.action == "instance.rename" and status == JobStatus.SUCCESS and job.cluster_id:
            # Before the re-read drops the old name, and its bindings with it.
            ownership.bindings_rename_instance(
                job.cluster_id, job.resource_name, job.params["new_name"], job_id=job.pk
            )
        records = [job_change(job), *_release(job)]
        if refresh is not None and job.cluster_id is not None:
            records += refresh_write(
                job.cluster_id,
                refresh.read,
                gone_instances=refresh.instances_gone,
                now=timezone.now(),
            )
        job_record(job, records)
        metrics.job_ended(job)
        log.info("job %s (%s) ended: %s", job.pk, job.action, job.status)


def _release(job: Job) -> list[ChangeRecord]:
    failed_create = job.action == "instance.create" and job.status != JobStatus.SUCCESS
    if failed_create:
        ownership.owner_forget_failed_create(job)
    return holds_release(job.pk, created_nothing=failed_create)


def job_cancel(job: Job, *, actor: User | None) -> Job:
    """Cancel: a job not yet in Ganeti ends here; one in Ganeti is asked to stop."""
    if job.foreign:
        raise Conflict("gwm does not cancel jobs it did not submit", code="foreign_job")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.finished:
            raise Conflict(f"job {job.pk} already ended ({job.status})", code="job_finished")
        if job.cluster_id is None:
            # Its cluster was unregistered: no worker can reach Ganeti for it any more.
            _end_orphan(job)
            return job
        if job.ganeti_job_id is None:
            job.status = JobStatus.CANCELED
            job.finished_at = timezone.now()
            job.error = {"code": "canceled", "message": "canceled before it reached Ganeti"}
            job.save()
            job_record(job, [job_change(job), *_release(job)])
            metrics.job_ended(job)
            return job
        job.status = JobStatus.CANCELING
        job.save(update_fields=["status", "updated_at"])
        job_record(job, [job_change(job)])
        ring_after_commit(CANCEL_TASK, job.pk)
    return job


def _end_orphan(job: Job) -> None:
    """End a job whose cluster is no longer registered (called inside a transaction).

    A job that never reached Ganeti is CANCELED; one that did is ERROR, since
    gwm can no longer tell how it ends (Ganeti may still run it).
    """
    if job.ganeti_job_id is None:
        job.status = JobStatus.CANCELED
        message = f"cluster {job.cluster_name} was unregistered before the job reached Ganeti"
    else:
        job.status = JobStatus.ERROR
        message = (
            f"cluster {job.cluster_name} was unregistered while Ganeti job "
            f"{job.ganeti_job_id} was in flight; gwm no longer follows it"
        )
    job.error = {"code": "cluster_unregistered", "message": message}
    job.finished_at = timezone.now()
    job.next_attempt_at = None
    job.lease_owner, job.lease_until = "", None
    job.save()
    job_record(job, [job_change(job)])
    metrics.job_ended(job)


def jobs_end_for_cluster(cluster: Cluster) -> int:
    """End every unfinished job of ``cluster``, which is being unregistered.

    Called inside the unregistering transaction, before the cluster row goes, so
    no job is left that no worker could ever finish.
    """
    jobs = list(
        Job.objects.select_for_update()
        .filter(cluster=cluster)
        .exclude(status__in=FINAL_STATUSES)
        .order_by("pk")
    )
    for job in jobs:
        job.cluster_id = None
        _end_orphan(job)
    return len(jobs)


def job_end_orphan(job_id: int) -> None:
    """A worker met an unfinished job whose cluster is gone (rows from before the fix)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if not job.finished and job.cluster_id is None:
            _end_orphan(job)


PURGE_BATCH = 1000


def jobs_purge(*, finished_before: datetime) -> int:
    """Delete finished jobs older than the cutoff, each with its change row."""
    deleted = 0
    while True:
        with transaction.atomic():
            batch = list(
                Job.objects.select_for_update()
                .filter(finished_at__lt=finished_before)
                .order_by("pk")
                .values_list("pk", "cluster_id", "cluster_name")[:PURGE_BATCH]
            )
            if not batch:
                return deleted
            by_cluster: dict[tuple[int | None, str], list[ChangeRecord]] = {}
            for job_id, cluster_id, cluster_name in batch:
                by_cluster.setdefault((cluster_id, cluster_name), []).append(
                    ChangeRecord("job", str(job_id), ChangeAction.DELETED, [], {"purged": True})
                )
            for (owner_id, owner_name), records in by_cluster.items():
                changes_record(cluster_id=owner_id, cluster_name=owner_name, records=records)
            Job.objects.filter(pk__in=[row[0] for row in batch]).delete()
            deleted += len(batch)
