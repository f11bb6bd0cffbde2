"""Follow a Ganeti job to its end, then end gwm's job as Ganeti ended it.

A tracker follows one job for a slice (``/2/jobs/ID/wait``, or polling where
that is refused), recording progress as it comes, then hands over to a fresh
task; a tracker that dies leaves a lease that expires and the sweeper rings
another. Node evacuate and migrate submit child jobs: the job ends when those do.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db.models import Q

from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure, job_error_from_ganeti, transient
from gwm.ganeti.vocabulary import FINAL_JOB_STATUSES
from gwm.kit.enqueue import ring
from gwm.operations.models import FINAL_STATUSES, FROM_GANETI, Job, JobStatus
from gwm.operations.services import lifecycle
from gwm.operations.worker.lease import JOB_LEASE, track_slice_seconds
from gwm.operations.worker.refresh import read_refresh
from gwm.rapi import RapiClient
from gwm.rapi.errors import RapiError, RapiForbidden, RapiJobNotFound

log = logging.getLogger(__name__)

TRACKED = (JobStatus.QUEUED, JobStatus.WAITING, JobStatus.RUNNING, JobStatus.CANCELING)
CHILD_POLL_SECONDS = 0.5


def track_job(job_id: int) -> None:
    owner = JOB_LEASE.claim(job_id, Q(status__in=TRACKED))
    if owner is None:
        return
    done = False
    try:
        done = _track(job_id)
    finally:
        JOB_LEASE.release(job_id, owner)
    if not done:
        ring(lifecycle.TRACK_TASK, job_id)


def cancel_job(job_id: int) -> None:
    """Ask Ganeti to cancel, then follow the job to see how it ended."""
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.finished or job.ganeti_job_id is None or job.cluster is None:
        return
    try:
        with client_for(job.cluster) as client:
            answer = client.cancel_job(job.ganeti_job_id)
    except (RapiError, RoundFailure) as exc:
        log.warning("job %s: cancel failed: %s", job_id, exc)
        return
    log.info("job %s: Ganeti answered the cancel with %s", job_id, answer)
    ring(lifecycle.TRACK_TASK, job_id)


def _track(job_id: int) -> bool:
    """Follow the Ganeti job for one slice; True when it ended (and was finished here)."""
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.finished or job.ganeti_job_id is None:
        return True
    if job.cluster is None:
        lifecycle.job_end_orphan(job_id)
        return True
    gid = job.ganeti_job_id
    deadline = time.monotonic() + track_slice_seconds()
    previous: list[Any] | None = None
    serial = max((entry[0] for entry in job.log), default=None)
    use_wait = True
    try:
        client = client_for(job.cluster)
    except RoundFailure:
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
                        lifecycle.job_progress(job_id, ganeti={"status": status, "log": entries})
                else:
                    snapshot = client.get_job(gid)
                    status = snapshot.status
                    lifecycle.job_progress(job_id, ganeti=_snapshot(snapshot))
                    if status not in FINAL_JOB_STATUSES:
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
                lifecycle.job_finish(
                    job_id,
                    status=JobStatus.ERROR,
                    error={"code": "job_lost", "message": f"Ganeti no longer knows job {gid}"},
                    refresh=read_refresh(job),
                )
                return True
            except RapiError as exc:
                if not transient(exc):
                    raise
                log.warning("job %s: following Ganeti job %s: %s", job_id, gid, exc)
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                continue
            if status in FINAL_JOB_STATUSES:
                return _finish_from_ganeti(job, client, deadline)
    return False


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
    error = job_error_from_ganeti(final.error) if status == JobStatus.ERROR else None
    children = child_jobs(final.opresult) if status == JobStatus.SUCCESS else []
    if children:
        outcome = _follow_children(client, children, deadline)
        if outcome is None:
            # The slice is over and the instances are still moving: keep what
            # Ganeti said (the child job ids) and let the next slice go on.
            lifecycle.job_progress(job.pk, ganeti=_snapshot(final))
            return False
        if outcome:
            status, error = JobStatus.ERROR, outcome
    lifecycle.job_finish(
        job.pk, status=status, ganeti=_snapshot(final), error=error, refresh=read_refresh(job)
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
        while str(child.status) not in FINAL_JOB_STATUSES:
            if time.monotonic() >= deadline:
                return None
            time.sleep(CHILD_POLL_SECONDS)
            child = client.get_job(int(ref))
        if str(child.status) != "success":
            problem = job_error_from_ganeti(child.error)
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
