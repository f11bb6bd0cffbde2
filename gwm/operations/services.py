"""Operations: accept a write, hold its resource, and move its job to the end.

``operation_submit`` is the request side: one transaction writes the job, the
resource's new status and the change rows, then rings the doorbell after
commit. The ``job_*`` functions are the worker side; each is one transaction
that also wakes the job's waiters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from gwm.clusters import ganeti_fields as gf
from gwm.clusters import sync
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.errors import AppError, Conflict, NotFound, ValidationFailed
from gwm.events.models import ChangeAction
from gwm.events.notify import publish_on_commit
from gwm.events.services import ChangeRecord, changes_record
from gwm.operations.catalog import Action
from gwm.operations.models import FINAL_STATUSES, Job, JobStatus

IDEMPOTENCY_WINDOW = timedelta(hours=24)
HELD = {"PROVISIONING", "BUSY", "DELETING", "UNKNOWN"}
RETRY_AFTER_SECONDS = "5"


def job_channel(job_id: int) -> str:
    return f"job:{job_id}"


def _job_change(job: Job, action: str, fields: list[str]) -> ChangeRecord:
    return ChangeRecord(
        "job",
        str(job.pk),
        action,
        fields,
        {"status": job.status, "action": job.action, "resource": job.resource_name},
    )


def _record(job: Job, records: list[ChangeRecord]) -> None:
    changes_record(cluster_id=job.cluster_id, cluster_name=job.cluster_name, records=records)
    publish_on_commit(job_channel(job.pk))


def _request_hash(cluster: Cluster, action: Action, name: str, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"cluster": cluster.name, "action": action.key, "resource": name, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResourceBusy(Conflict):
    code = "resource_busy"
    title = "Resource is busy"


def _busy(kind: str, obj: Instance | Node, cluster: Cluster, status: str) -> ResourceBusy:
    path = f"/api/v1/clusters/{cluster.name}/{kind}s/{obj.name}"
    extra: dict[str, Any] = {"resource_status": status, "resource": path}
    detail = f"{obj.name} is {status}"
    if obj.held_by_job is not None:
        holder = Job.objects.filter(pk=obj.held_by_job).values_list("action", flat=True).first()
        extra["job"] = f"/api/v1/jobs/{obj.held_by_job}"
        detail += f": job {obj.held_by_job} ({holder}) holds it"
    elif status == "UNKNOWN":
        detail += ": gwm has not heard from its cluster recently; try again when it has"
    return ResourceBusy(detail, headers={"Retry-After": RETRY_AFTER_SECONDS}, **extra)


def _stale(cluster: Cluster) -> bool:
    return cluster.synced_at is None or cluster.synced_at < timezone.now() - timedelta(
        seconds=cluster.stale_after
    )


def _check_cluster(cluster: Cluster) -> None:
    """Refuse every operation on a cluster gwm does not know well enough now (409)."""
    if cluster.status == ClusterStatus.PROVISIONING:
        raise Conflict(
            f"cluster {cluster.name} is PROVISIONING: its first sync has not finished",
            code="resource_busy",
            resource_status="PROVISIONING",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if _stale(cluster):
        # Its objects read UNKNOWN: checks against them (names taken, nodes that
        # exist, what is busy) would be checks against an old picture.
        raise Conflict(
            f"cluster {cluster.name} is UNKNOWN: gwm has not heard from it within "
            f"{cluster.stale_after:g} s; try again when it has",
            code="resource_busy",
            resource_status="UNKNOWN",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )


NODE_PARAMS = ("pnode", "snode", "target_node", "remote_node")


def _check_references(cluster: Cluster, params: dict[str, Any]) -> None:
    """Nodes and groups named in the parameters must exist (422, nothing written)."""
    named = [params[key] for key in NODE_PARAMS if params.get(key)]
    named += list(params.get("nodes") or [])
    if named:
        known = set(
            Node.objects.filter(cluster=cluster, name__in=named).values_list("name", flat=True)
        )
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValidationFailed(
                f"cluster {cluster.name} has no node named {', '.join(unknown)}",
                code="unknown_node",
            )
    group = params.get("group")
    if group and not NodeGroup.objects.filter(cluster=cluster, name=group).exists():
        raise ValidationFailed(
            f"cluster {cluster.name} has no node group named {group}", code="unknown_group"
        )


def _lock_target(
    cluster: Cluster, action: Action, name: str, params: dict[str, Any]
) -> Instance | Node | None:
    """Check the target may take this action now; lock and return the row to hold."""
    _check_references(cluster, params)
    resource = action.resource
    if resource == "instance":
        row = Instance.objects.select_for_update().filter(cluster=cluster, name=name).first()
        if action.name == "create":
            if row is not None:
                raise Conflict(
                    f"instance {name} already exists in {cluster.name}", code="name_taken"
                )
            return None
        if row is None:
            raise NotFound(f"cluster {cluster.name!r} has no instance named {name!r}")
        status = "UNKNOWN" if _stale(cluster) else row.status
        if status in HELD:
            raise _busy("instance", row, cluster, status)
        if (
            action.name == "rename"
            and Instance.objects.filter(cluster=cluster, name=params["new_name"]).exists()
        ):
            raise Conflict(
                f"instance {params['new_name']} already exists in {cluster.name}", code="name_taken"
            )
        return row
    if resource == "node":
        node = Node.objects.select_for_update().filter(cluster=cluster, name=name).first()
        if node is None:
            raise NotFound(f"cluster {cluster.name!r} has no node named {name!r}")
        status = "UNKNOWN" if _stale(cluster) else node.status
        if status in HELD:
            raise _busy("node", node, cluster, status)
        return node
    model = {"group": NodeGroup, "network": Network}.get(resource)
    if model is not None:
        exists = model._default_manager.filter(cluster=cluster, name=name).exists()
        if action.name == "create" and exists:
            raise Conflict(f"{resource} {name} already exists in {cluster.name}", code="name_taken")
        if action.name != "create" and not exists:
            raise NotFound(f"cluster {cluster.name!r} has no {resource} named {name!r}")
    return None


def operation_submit(
    *,
    user: User | None,
    cluster: Cluster,
    action: Action,
    resource_name: str,
    params: dict[str, Any],
    idempotency_key: str = "",
) -> tuple[Job, bool]:
    """Accept an operation. Returns the job and whether it is new (False: idempotent replay)."""
    request_hash = _request_hash(cluster, action, resource_name, params)
    if idempotency_key:
        replay = _idempotent_replay(user, idempotency_key, request_hash)
        if replay is not None:
            return replay, False
    _check_cluster(cluster)
    try:
        with transaction.atomic():
            row = _lock_target(cluster, action, resource_name, params)
            job = Job.objects.create(
                cluster=cluster,
                cluster_name=cluster.name,
                action=action.key,
                resource_type=action.resource,
                resource_name=resource_name,
                params=params,
                user=user,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                next_attempt_at=timezone.now(),
            )
            records = [_job_change(job, ChangeAction.CREATED, ["status"])]
            if action.hold is not None:
                if row is None:  # a new instance, listed at once as PROVISIONING
                    row = Instance.objects.create(
                        cluster=cluster,
                        name=resource_name,
                        status=action.hold,
                        held_by_job=job.pk,
                        synced_at=timezone.now(),
                        disk_template=params.get("disk_template", ""),
                        os=params.get("os") or "",
                        primary_node=params.get("pnode") or "",
                        tags=params.get("tags") or [],
                        beparams=params.get("beparams") or {},
                    )
                    records.append(
                        ChangeRecord(
                            "instance",
                            resource_name,
                            ChangeAction.CREATED,
                            ["status"],
                            {"status": action.hold, "job": job.pk},
                        )
                    )
                else:
                    row.status = action.hold
                    row.held_by_job = job.pk
                    row.save(update_fields=["status", "held_by_job"])
                    records.append(
                        ChangeRecord(
                            action.resource,
                            resource_name,
                            ChangeAction.UPDATED,
                            ["status"],
                            {"status": action.hold, "job": job.pk},
                        )
                    )
            _record(job, records)
            _ring_submit(job.pk)
    except IntegrityError:
        # Two requests with one idempotency key raced; the other one won.
        replay = None
        if idempotency_key:
            replay = _idempotent_replay(user, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay, False
    return job, True


def _idempotent_replay(user: User | None, key: str, request_hash: str) -> Job | None:
    job = (
        Job.objects.filter(
            user=user, idempotency_key=key, created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW
        )
        .order_by("-id")
        .first()
    )
    if job is None:
        return None
    if job.request_hash != request_hash:
        raise ValidationFailed(
            "this Idempotency-Key was already used with another request",
            code="idempotency_key_reused",
            job=f"/api/v1/jobs/{job.pk}",
        )
    return job


def _ring_submit(job_id: int) -> None:
    from gwm.operations import tasks

    transaction.on_commit(lambda: tasks.submit_job.delay(job_id))


def _ring_track(job_id: int) -> None:
    from gwm.operations import tasks

    transaction.on_commit(lambda: tasks.track_job.delay(job_id))


# -- worker side -------------------------------------------------------------------


def job_attempt_started(job_id: int, *, submit_floor: int) -> Job:
    """Recorded before calling Ganeti: a later attempt then knows to look for this one."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.attempts += 1
        if job.submit_floor is None:
            job.submit_floor = submit_floor
        job.save(update_fields=["attempts", "submit_floor", "updated_at"])
    return job


def job_submitted(job_id: int, ganeti_job_id: int, *, adopted: bool = False) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.ganeti_job_id is not None or job.finished:
            return
        job.ganeti_job_id = ganeti_job_id
        job.status = JobStatus.QUEUED
        job.submitted_at = timezone.now()
        job.last_error = (
            ""
            if not adopted
            else (
                f"adopted Ganeti job {ganeti_job_id}, found by its reason trail after an "
                "interrupted submission"
            )
        )
        job.next_attempt_at = None
        job.save()
        _record(job, [_job_change(job, ChangeAction.UPDATED, ["status", "ganeti_job_id"])])
        _ring_track(job.pk)


def job_attempt_failed(job_id: int, *, error: str, retry_at: datetime) -> None:
    """Ganeti could not be reached: the job stays PENDING and is retried."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.finished or job.ganeti_job_id is not None:
            return
        job.last_error = error
        job.next_attempt_at = retry_at
        job.save(update_fields=["last_error", "next_attempt_at", "updated_at"])
        _record(job, [_job_change(job, ChangeAction.UPDATED, ["last_error"])])


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    seconds = value[0] + value[1] / 1e6 if isinstance(value, list | tuple) else float(value)
    return datetime.fromtimestamp(seconds, tz=UTC)


def job_progress(job_id: int, *, ganeti: dict[str, Any]) -> Job:
    """Ganeti reported progress (status, new log lines); nothing final yet."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        changed = _apply_ganeti(job, ganeti, final=False)
        if changed:
            job.save()
            _record(job, [_job_change(job, ChangeAction.UPDATED, changed)])
        return job


def _apply_ganeti(job: Job, ganeti: dict[str, Any], *, final: bool) -> list[str]:
    from gwm.operations.models import FROM_GANETI

    changed: list[str] = []
    status = ganeti.get("status")
    if status:
        mapped = FROM_GANETI.get(status, job.status)
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
    for key, column in (
        ("received_ts", "ganeti_received_at"),
        ("start_ts", "ganeti_started_at"),
        ("end_ts", "ganeti_ended_at"),
    ):
        if ganeti.get(key):
            setattr(job, column, _ts(ganeti[key]))
    return changed


@dataclass
class Refresh:
    """What was re-read from Ganeti after a job, to write with its end."""

    read: sync.RoundRead
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
            # Taken by sync rounds too (sync.apply_round): a round that read Ganeti
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
        records = [_job_change(job, ChangeAction.UPDATED, ["status"])]
        records += _release_holds(job)
        if refresh is not None and job.cluster_id is not None:
            records += sync.apply_refresh(
                job.cluster_id,
                refresh.read,
                gone_instances=refresh.instances_gone,
                now=timezone.now(),
            )
        _record(job, records)


def _release_holds(job: Job) -> list[ChangeRecord]:
    """Give held resources back their Ganeti-derived status (the refresh may update it)."""
    records: list[ChangeRecord] = []
    for instance in Instance.objects.select_for_update().filter(held_by_job=job.pk):
        instance.held_by_job = None
        status = gf.instance_status(instance.ganeti_status, instance.admin_state)
        if (
            instance.serial_no is None
            and job.action == "instance.create"
            and job.status != JobStatus.SUCCESS
        ):
            # The create failed before Ganeti ever had it: nothing to keep.
            instance.delete()
            records.append(ChangeRecord("instance", instance.name, ChangeAction.DELETED))
            continue
        instance.status = status
        instance.save(update_fields=["held_by_job", "status"])
        records.append(
            ChangeRecord(
                "instance", instance.name, ChangeAction.UPDATED, ["status"], {"status": status}
            )
        )
    for node in Node.objects.select_for_update().filter(held_by_job=job.pk):
        node.held_by_job = None
        node.status = gf.node_status(
            offline=node.offline, drained=node.drained, reachable=node.reachable is not False
        )
        node.save(update_fields=["held_by_job", "status"])
        records.append(
            ChangeRecord(
                "node", node.name, ChangeAction.UPDATED, ["status"], {"status": node.status}
            )
        )
    return records


def job_cancel(job: Job) -> Job:
    """Cancel: a job not yet in Ganeti ends here; one in Ganeti is asked to stop."""
    from gwm.operations import tasks

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
            records = [_job_change(job, ChangeAction.UPDATED, ["status"]), *_release_holds(job)]
            _record(job, records)
            return job
        job.status = JobStatus.CANCELING
        job.save(update_fields=["status", "updated_at"])
        _record(job, [_job_change(job, ChangeAction.UPDATED, ["status"])])
        job_id = job.pk
        transaction.on_commit(lambda: tasks.cancel_job.delay(job_id))
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
    changes_record(
        cluster_id=None,
        cluster_name=job.cluster_name,
        records=[_job_change(job, ChangeAction.UPDATED, ["status"])],
    )
    publish_on_commit(job_channel(job.pk))


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


def jobs_record_foreign(cluster: Cluster, foreign_jobs: list[dict[str, Any]]) -> list[ChangeRecord]:
    """Jobs Ganeti ran for others (seen by the fast tier) become history rows, marked foreign.

    Called inside the sync round's transaction. The first round of a cluster sees its
    whole queue (thousands of jobs), so rows are read in one query and new ones
    inserted in batches: one query per job held the write lock for seconds.
    """
    from gwm.operations.models import FROM_GANETI

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
            ops = cells.get("ops") or []
            first = ops[0] if ops else {}
            source, resource_type, resource_name = _foreign_origin(first)
            new.append(
                Job(
                    cluster=cluster,
                    ganeti_job_id=ganeti_id,
                    cluster_name=cluster.name,
                    foreign=True,
                    source=source,
                    action=_foreign_action(first),
                    resource_type=resource_type,
                    resource_name=resource_name,
                    status=status,
                    ganeti_status=cells.get("status") or "",
                    summary=cells.get("summary") or [],
                    ganeti_received_at=_ts(cells.get("received_ts")),
                    ganeti_ended_at=_ts(cells.get("end_ts")),
                    finished_at=timezone.now() if status in FINAL_STATUSES else None,
                )
            )
        elif job.foreign and job.status != status:
            job.status = status
            job.ganeti_status = cells.get("status") or ""
            job.ganeti_ended_at = _ts(cells.get("end_ts"))
            if status in FINAL_STATUSES:
                job.finished_at = timezone.now()
            job.save()
            records.append(_job_change(job, ChangeAction.UPDATED, ["status"]))
            publish_on_commit(job_channel(job.pk))
    if new:
        # A conflict is a gwm job that stored the same Ganeti job id meanwhile: it stays gwm's.
        Job.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
        for job in Job.objects.filter(
            cluster=cluster, foreign=True, ganeti_job_id__in=[job.ganeti_job_id for job in new]
        ).order_by("ganeti_job_id"):
            records.append(_job_change(job, ChangeAction.CREATED, ["status"]))
            publish_on_commit(job_channel(job.pk))
    return records


def _foreign_origin(op: dict[str, Any]) -> tuple[str, str, str]:
    source = ""
    for entry in op.get("reason") or []:
        if str(entry[0]).startswith(("gnt:client:", "gnt:watcher", "gnt:user")):
            source = " ".join(str(part) for part in entry[:2] if part).strip()
            break
    for key, kind in (
        ("instance_name", "instance"),
        ("node_name", "node"),
        ("group_name", "group"),
        ("network_name", "network"),
    ):
        if op.get(key):
            return source, kind, str(op[key])
    return source, "cluster", ""


def _foreign_action(op: dict[str, Any]) -> str:
    op_id = str(op.get("OP_ID", "OP_UNKNOWN"))
    return "ganeti." + op_id.removeprefix("OP_").lower().replace("_", "-")


def problem_from_ganeti(error: Any) -> dict[str, Any]:
    """A failed job's error as docs/operations.md says: {code, message, ganeti}."""
    if error is None:
        return {"code": "ganeti_error", "message": "the job failed", "ganeti": None}
    return {
        "code": error.code or "ganeti_error",
        "message": error.message,
        "ganeti": [error.error_class, error.message, error.code],
    }


# -- answers that need Ganeti now (dry runs, console) --------------------------------

DRY_RUN_TIMEOUT = 30.0


def _rapi_unavailable(cluster: Cluster, exc: Exception) -> AppError:
    from gwm.errors import GatewayTimeout, ServiceUnavailable
    from gwm.rapi.errors import RapiTimeout

    if isinstance(exc, RapiTimeout):
        return GatewayTimeout(f"cluster {cluster.name} did not answer in time: {exc}")
    return ServiceUnavailable(
        f"cluster {cluster.name} cannot be reached now: {exc}",
        code="cluster_unreachable",
        headers={"Retry-After": "10"},
    )


def operation_dry_run(
    *, cluster: Cluster, action: Action, resource_name: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Ask Ganeti's pre-checks (``?dry-run=1``); nothing is kept, in Ganeti or in gwm."""
    from gwm.clusters.ganeti import SyncFailure, client_for
    from gwm.rapi.errors import (
        RapiBadRequest,
        RapiConnectionError,
        RapiError,
        RapiJobWaitTimeout,
        RapiServerError,
    )

    if not action.dry_run:
        raise ValidationFailed(
            f"Ganeti's RAPI has no dry run for {action.key}", code="dry_run_unsupported"
        )
    _check_cluster(cluster)
    with transaction.atomic():
        _lock_target(cluster, action, resource_name, params)
    try:
        with client_for(cluster) as client:
            ganeti_job_id = action.call(client, resource_name, params, "gwm:dry-run", True)
            final = client.wait_for_job(ganeti_job_id, timeout=DRY_RUN_TIMEOUT)
    except RapiBadRequest as exc:
        return {
            "action": action.key,
            "ok": False,
            "ganeti_job_id": None,
            "error": {"code": "wrong_input", "message": str(exc), "ganeti": exc.body},
            "log": [],
        }
    except RapiJobWaitTimeout as exc:
        from gwm.errors import GatewayTimeout

        raise GatewayTimeout(f"Ganeti's pre-checks did not finish in time: {exc}") from None
    except (RapiConnectionError, RapiServerError, SyncFailure) as exc:
        raise _rapi_unavailable(cluster, exc) from None
    except RapiError as exc:
        from gwm.errors import BadGateway

        raise BadGateway(str(exc)) from None
    ok = str(final.status) == "success"
    return {
        "action": action.key,
        "ok": ok,
        "ganeti_job_id": ganeti_job_id,
        "error": None if ok else problem_from_ganeti(final.error),
        "log": [list(entry) for ops_log in (final.oplog or []) for entry in ops_log],
    }


NO_CONSOLE = {"PROVISIONING", "DELETING"}


def instance_console(*, cluster: Cluster, name: str) -> dict[str, Any]:
    """Console details come from Ganeti at the moment they are asked for."""
    from gwm.clusters.ganeti import SyncFailure, client_for
    from gwm.errors import BadGateway
    from gwm.rapi.errors import (
        RapiConnectionError,
        RapiError,
        RapiNotFound,
        RapiServerError,
        RapiUnavailable,
    )

    instance = Instance.objects.filter(cluster=cluster, name=name).first()
    if instance is None:
        raise NotFound(f"cluster {cluster.name!r} has no instance named {name!r}")
    if instance.status in NO_CONSOLE:
        # Not in Ganeti yet (or any more): its RAPI would answer a bare 500.
        raise Conflict(
            f"no console for {name} while it is {instance.status}",
            code="console_unavailable",
            resource_status=instance.status,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    try:
        with client_for(cluster) as client:
            console = client.get_instance_console(name)
    except RapiUnavailable as exc:
        raise Conflict(
            f"no console for {name} now: {exc}",
            code="console_unavailable",
            resource_status=instance.status,
        ) from None
    except RapiNotFound:
        raise NotFound(f"Ganeti does not know instance {name!r}") from None
    except (RapiConnectionError, RapiServerError, SyncFailure) as exc:
        raise _rapi_unavailable(cluster, exc) from None
    except RapiError as exc:
        raise BadGateway(str(exc)) from None
    return console.model_dump(mode="json")
