"""Workers of operations: submit to Ganeti, follow the job, cancel, sweep.

Every task takes a job id, re-reads the row and returns if there is nothing to
do, so running one twice is harmless. Each claims the job with a lease
(compare-and-set) so two copies never work on one job at once; a worker that
dies leaves a lease that expires, and the sweeper rings the job again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from gwm.clusters import sync
from gwm.clusters.ganeti import RapiReader, SyncFailure, client_for
from gwm.clusters.models import Cluster, Instance, Node
from gwm.kit.failpoints import failpoint
from gwm.operations import services
from gwm.operations.catalog import ACTIONS, Action
from gwm.operations.models import FINAL_STATUSES, FROM_GANETI, Job, JobStatus
from gwm.rapi import RapiClient
from gwm.rapi.errors import (
    RapiConnectionError,
    RapiError,
    RapiForbidden,
    RapiHTTPError,
    RapiJobNotFound,
    RapiServerError,
)

log = logging.getLogger(__name__)

#: One tracking task follows a job at most this long, then hands over to a fresh task.
TRACK_SLICE_SECONDS = 45
#: A job the sweeper rang stays reserved for the task it rang this long at most.
DISPATCH_LEASE_SECONDS = 30
MAX_BACKOFF_SECONDS = 60.0
DISPATCHED = "dispatched"


def _lease_seconds() -> float:
    """How long a claim holds (``GWM_JOB_LEASE_SECONDS``); a dead worker's expires then."""
    return float(settings.GWM_JOB_LEASE_SECONDS)


def _track_slice_seconds() -> float:
    """A tracking slice ends well within its lease, or the sweeper would ring a second tracker."""
    return min(TRACK_SLICE_SECONDS, _lease_seconds() / 2)


def _owner() -> str:
    return f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _free() -> Q:
    now = timezone.now()
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=DISPATCHED)


def _claim(job_id: int, *statuses: str) -> str | None:
    owner = _owner()
    claimed = (
        Job.objects.filter(pk=job_id, status__in=statuses)
        .filter(_free())
        .update(lease_owner=owner, lease_until=timezone.now() + timedelta(seconds=_lease_seconds()))
    )
    return owner if claimed else None


def _renew(job_id: int, owner: str) -> bool:
    """Extend this worker's lease; False if it ran out and someone else holds the job now."""
    return bool(
        Job.objects.filter(pk=job_id, lease_owner=owner).update(
            lease_until=timezone.now() + timedelta(seconds=_lease_seconds())
        )
    )


def _release(job_id: int, owner: str) -> None:
    Job.objects.filter(pk=job_id, lease_owner=owner).update(lease_owner="", lease_until=None)


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempts - 1)) * (0.5 + random.random() / 2)


def _transient(exc: RapiError) -> bool:
    """No answer, or the master daemon away: try again later."""
    return isinstance(exc, RapiConnectionError | RapiServerError)


# -- submit ---------------------------------------------------------------------------


@shared_task(name="operations.submit_job", ignore_result=True)
def submit_job(job_id: int) -> None:
    owner = _claim(job_id, JobStatus.PENDING)
    if owner is None:
        return
    try:
        _submit(job_id, owner)
    finally:
        _release(job_id, owner)


def _submit(job_id: int, owner: str) -> None:
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.ganeti_job_id is not None or job.finished:
        return
    if job.cluster is None:
        services.job_end_orphan(job_id)
        return
    action = ACTIONS.get(job.action)
    if action is None:
        _finish_unsendable(job, f"gwm has no action {job.action!r} any more")
        return
    try:
        client = client_for(job.cluster)
    except SyncFailure as failure:
        services.job_finish(
            job_id,
            status=JobStatus.ERROR,
            error={"code": "credentials_unreadable", "message": str(failure)},
        )
        return
    with client:
        if job.attempts > 0:
            # An earlier attempt may have reached Ganeti before its worker died.
            try:
                found = _find_submitted(client, job, action)
            except RapiError as exc:
                _retry_later(job, f"looking for an earlier submission failed: {exc}")
                return
            if found is not None:
                services.job_submitted(job_id, found, adopted=True)
                return
        if not _renew(job_id, owner):
            # This worker was slow enough for its lease to run out, and another may have
            # taken the job over: sending it now could submit it twice.
            log.warning("job %s: lease lost before submitting; leaving it to its new owner", job_id)
            return
        job = services.job_attempt_started(job_id, submit_floor=job.cluster.last_job_id)
        try:
            ganeti_job_id = action.call(
                client, job.resource_name, job.params, f"{sync.GWM_REASON_MARK}op:{job.pk}", False
            )
        except RapiError as exc:
            if _transient(exc):
                _retry_later(job, str(exc))
                return
            # Ganeti refused the request itself (bad parameters, permissions).
            _finish_refused(job, exc)
            return
        except Exception as exc:
            # gwm could not even build the request (a parameter the client rejects,
            # a bug): retrying would fail the same way forever while holding the
            # resource, so the job ends here and says why.
            log.exception("job %s: the request to Ganeti could not be built", job_id)
            _finish_unsendable(job, f"gwm could not build the request to Ganeti: {exc}")
            return
        failpoint("operations.after_submit")
        services.job_submitted(job_id, ganeti_job_id)


def _retry_later(job: Job, error: str) -> None:
    retry_at = timezone.now() + timedelta(seconds=_backoff(max(job.attempts, 1)))
    log.warning("job %s: %s; retrying at %s", job.pk, error, retry_at.isoformat())
    services.job_attempt_failed(job.pk, error=error, retry_at=retry_at)


def _finish_refused(job: Job, exc: RapiError) -> None:
    code = "rejected"
    if isinstance(exc, RapiHTTPError):
        code = {
            400: "wrong_input",
            401: "rapi_auth_failed",
            403: "rapi_forbidden",
            404: "unknown_entity",
        }.get(exc.status, "rejected")
    error = {"code": code, "message": str(exc), "ganeti": getattr(exc, "body", None)}
    services.job_finish(job.pk, status=JobStatus.ERROR, error=error, refresh=_read_refresh(job))


def _finish_unsendable(job: Job, message: str) -> None:
    error = {"code": "request_invalid", "message": message, "ganeti": None}
    services.job_finish(job.pk, status=JobStatus.ERROR, error=error)


def _find_submitted(client: RapiClient, job: Job, action: Action) -> int | None:
    """The Ganeti job an interrupted attempt created, by its reason trail (or opcode)."""
    floor = job.submit_floor or 0
    marker = f"{sync.GWM_REASON_MARK}op:{job.pk}"
    fields = ["id", "ops"]
    result = client.query("job", fields, qfilter=[">", "id", floor])
    for row in result.data:
        ganeti_id, ops = row[0][1], row[1][1] or []
        reasons = [str(entry[1]) for op in ops for entry in (op.get("reason") or [])]
        if marker in reasons:
            return int(ganeti_id)
        if not action.carries_reason and _same_opcodes(ops, action, job.resource_name):
            return int(ganeti_id)
    return None


def _same_opcodes(ops: list[dict[str, Any]], action: Action, name: str) -> bool:
    ids = tuple(op.get("OP_ID") for op in ops[: len(action.opcodes)])
    return ids == action.opcodes and any(
        name in (op.get("instance_name"), op.get("node_name")) for op in ops
    )


# -- track -----------------------------------------------------------------------------


@shared_task(name="operations.track_job", ignore_result=True)
def track_job(job_id: int) -> None:
    owner = _claim(
        job_id, JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING, JobStatus.CANCELING
    )
    if owner is None:
        return
    done = False
    try:
        done = _track(job_id)
    finally:
        _release(job_id, owner)
    if not done:
        track_job.delay(job_id)


def _track(job_id: int) -> bool:
    """Follow the Ganeti job for one slice; True when it ended (and was finished here)."""
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.finished or job.ganeti_job_id is None:
        return True
    if job.cluster is None:
        services.job_end_orphan(job_id)
        return True
    gid = job.ganeti_job_id
    deadline = time.monotonic() + _track_slice_seconds()
    previous: list[Any] | None = None
    serial = max((entry[0] for entry in job.log), default=None)
    use_wait = True
    try:
        client = client_for(job.cluster)
    except SyncFailure:
        time.sleep(1)
        return False
    with client:
        while time.monotonic() < deadline:
            try:
                if use_wait:
                    result = client.wait_for_job_change(
                        gid,
                        fields=["status"],
                        previous_job_info=previous,
                        previous_log_serial=serial,
                    )
                    status = result.job_info[0] if result.job_info else None
                    entries = [list(entry) for entry in result.log_entries]
                    if result.changed:
                        previous = list(result.job_info)
                        serial = max([serial or 0, *(entry[0] for entry in entries)])
                        services.job_progress(job_id, ganeti={"status": status, "log": entries})
                else:
                    snapshot = client.get_job(gid)
                    status = snapshot.status
                    services.job_progress(job_id, ganeti=_snapshot(snapshot))
                    if status not in FINAL_STATUS_NAMES:
                        time.sleep(1.0)
            except RapiForbidden:
                # /2/jobs/ID/wait needs a write user; a read-only one can only poll.
                use_wait = False
                continue
            except RapiJobNotFound:
                if use_wait:
                    # /2/jobs/ID/wait knows only the live queue; /2/jobs/ID also reads
                    # Ganeti's archive, where a job ended while no worker followed it.
                    use_wait = False
                    continue
                services.job_finish(
                    job_id,
                    status=JobStatus.ERROR,
                    error={"code": "job_lost", "message": f"Ganeti no longer knows job {gid}"},
                    refresh=_read_refresh(job),
                )
                return True
            except RapiError as exc:
                if not _transient(exc):
                    raise
                log.warning("job %s: following Ganeti job %s: %s", job_id, gid, exc)
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                continue
            if status in FINAL_STATUS_NAMES:
                return _finish_from_ganeti(job, client, deadline)
    return False


FINAL_STATUS_NAMES = {"success", "error", "canceled"}


def _snapshot(ganeti_job: Any) -> dict[str, Any]:
    return {
        "status": ganeti_job.status,
        "log": [list(entry) for ops_log in (ganeti_job.oplog or []) for entry in ops_log],
        "summary": ganeti_job.summary,
        "opstatus": ganeti_job.opstatus,
        "opresult": ganeti_job.opresult,
        "received_ts": ganeti_job.received_ts,
        "start_ts": ganeti_job.start_ts,
        "end_ts": ganeti_job.end_ts,
    }


def _finish_from_ganeti(job: Job, client: RapiClient, deadline: float) -> bool:
    """End the job as Ganeti ended it; False while the jobs it submitted still run."""
    final = client.get_job(job.ganeti_job_id or 0)
    status = FROM_GANETI.get(str(final.status), JobStatus.ERROR)
    if status not in FINAL_STATUSES:  # raced a job that is not quite final yet
        status = JobStatus.ERROR
    error = services.problem_from_ganeti(final.error) if status == JobStatus.ERROR else None
    children = child_jobs(final.opresult) if status == JobStatus.SUCCESS else []
    if children:
        outcome = _follow_children(client, children, deadline)
        if outcome is None:
            # The slice is over and the instances are still moving: keep what
            # Ganeti said (the child job ids) and let the next slice go on.
            services.job_progress(job.pk, ganeti=_snapshot(final))
            return False
        if outcome:
            status, error = JobStatus.ERROR, outcome
    services.job_finish(
        job.pk, status=status, ganeti=_snapshot(final), error=error, refresh=_read_refresh(job)
    )
    return True


def child_jobs(opresult: list[Any] | None) -> list[tuple[bool, Any]]:
    """The jobs an opcode submitted instead of doing the work itself.

    Node evacuate and node migrate answer ``{"jobs": [[true, id] | [false, why], ...]}``:
    one job per instance, and only when those end has the node really been emptied.
    """
    children: list[tuple[bool, Any]] = []
    for result in opresult or []:
        if isinstance(result, dict) and isinstance(result.get("jobs"), list):
            children += [
                (bool(entry[0]), entry[1])
                for entry in result["jobs"]
                if isinstance(entry, list | tuple) and len(entry) == 2
            ]
    return children


CHILD_POLL_SECONDS = 0.5


def _follow_children(
    client: RapiClient, children: list[tuple[bool, Any]], deadline: float
) -> dict[str, Any] | None:
    """Wait for every child job: None when time ran out, {} when all succeeded, else the error."""
    failures: list[str] = []
    first_error: dict[str, Any] | None = None
    for submitted, ref in children:
        if not submitted:
            failures.append(f"Ganeti could not submit a job: {ref}")
            continue
        child = client.get_job(int(ref))
        while str(child.status) not in FINAL_STATUS_NAMES:
            if time.monotonic() >= deadline:
                return None
            time.sleep(CHILD_POLL_SECONDS)
            child = client.get_job(int(ref))
        if str(child.status) != "success":
            problem = services.problem_from_ganeti(child.error)
            first_error = first_error or problem
            summary = ", ".join(child.summary or []) or "a job"
            failures.append(
                f"Ganeti job {ref} ({summary}) ended {child.status}: {problem['message']}"
            )
    if not failures:
        return {}
    return {
        "code": (first_error or {}).get("code") or "child_job_failed",
        "message": "; ".join(failures),
        "ganeti": (first_error or {}).get("ganeti"),
    }


def _read_refresh(job: Job) -> services.Refresh | None:
    """Re-read at once what the job touched, so statuses return to what Ganeti says."""
    cluster = Cluster.objects.filter(pk=job.cluster_id).first() if job.cluster_id else None
    if cluster is None:
        return None
    instances: list[str] = []
    nodes = groups = info = False
    if job.resource_type == "instance":
        instances = [job.resource_name]
        if job.params.get("new_name"):
            instances.append(job.params["new_name"])
        # Nodes list their instances by name and place: re-read them when either moves.
        nodes = job.action in {
            "instance.create",
            "instance.delete",
            "instance.migrate",
            "instance.failover",
            "instance.rename",
            "instance.modify",
        }
    elif job.resource_type == "node":
        # Every instance the node holds, as primary or secondary: evacuating
        # secondaries moves instances whose primary is elsewhere.
        nodes = True
        node = Node.objects.filter(cluster=cluster, name=job.resource_name).first()
        held = set(node.primary_instances + node.secondary_instances) if node else set()
        held |= set(
            Instance.objects.filter(cluster=cluster)
            .filter(primary_node=job.resource_name)
            .values_list("name", flat=True)
        )
        instances = sorted(held)
    elif job.resource_type in {"group", "network"}:
        groups = nodes = True
    elif job.resource_type == "cluster":
        info = True
    try:
        reader = RapiReader(client_for(cluster))
        read, gone = sync.read_refresh(
            reader, instances=instances, nodes=nodes, groups=groups, info=info
        )
    except SyncFailure as failure:
        log.warning("job %s ended, but re-reading what it touched failed: %s", job.pk, failure)
        return None
    return services.Refresh(read=read, instances_gone=gone)


# -- cancel ------------------------------------------------------------------------------


@shared_task(name="operations.cancel_job", ignore_result=True)
def cancel_job(job_id: int) -> None:
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.finished or job.ganeti_job_id is None or job.cluster is None:
        return
    try:
        with client_for(job.cluster) as client:
            answer = client.cancel_job(job.ganeti_job_id)
    except (RapiError, SyncFailure) as exc:
        log.warning("job %s: cancel failed: %s", job_id, exc)
        return
    log.info("job %s: Ganeti answered the cancel with %s", job_id, answer)
    track_job.delay(job_id)


# -- sweeper ------------------------------------------------------------------------------

SWEEP_BATCH = 500


@shared_task(name="operations.sweep", ignore_result=True)
def sweep() -> int:
    """Re-ring overdue work: a lost message or a dead worker only delays a job."""
    now = timezone.now()
    rung = 0
    pending = Job.objects.filter(status=JobStatus.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    for job_id in pending.values_list("pk", flat=True)[:SWEEP_BATCH]:
        if _dispatch(job_id):
            submit_job.delay(job_id)
            rung += 1
    untracked = Job.objects.filter(
        status__in=[JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING, JobStatus.CANCELING],
        ganeti_job_id__isnull=False,
    ).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    for job_id in untracked.values_list("pk", flat=True)[:SWEEP_BATCH]:
        if _dispatch(job_id):
            track_job.delay(job_id)
            rung += 1
    return rung


def _dispatch(job_id: int) -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            lease_owner=DISPATCHED,
            lease_until=now + timedelta(seconds=min(DISPATCH_LEASE_SECONDS, _lease_seconds())),
        )
    )


@shared_task(name="operations.purge_old_jobs", ignore_result=True)
def purge_old_jobs() -> int:
    cutoff = timezone.now() - timedelta(days=settings.GWM_JOB_RETENTION_DAYS)
    return services.jobs_purge(finished_before=cutoff)
