"""Send a job to Ganeti exactly once, or adopt the one an interrupted attempt sent.

Before each attempt the job records it (``job_attempt_started``); a later
attempt then first looks for an earlier one in Ganeti's queue, by the reason
trail ``gwm:op:<id>`` (or, where Ganeti drops the reason, by its opcodes), so a
worker that died between Ganeti's answer and gwm's record never causes a
second submission.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure, job_refusal, transient
from gwm.ganeti.vocabulary import operation_reason, reasons
from gwm.kit.failpoints import failpoint
from gwm.operations.actions import ACTIONS, Action, SendRequest
from gwm.operations.models import Job, JobStatus
from gwm.operations.services import lifecycle
from gwm.operations.worker.lease import JOB_LEASE
from gwm.operations.worker.refresh import read_refresh
from gwm.rapi import RapiClient
from gwm.rapi.errors import RapiError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


def submit_job(job_id: int) -> None:
    owner = JOB_LEASE.claim(job_id, Q(status=JobStatus.PENDING))
    if owner is None:
        return
    try:
        _submit(job_id, owner)
    finally:
        JOB_LEASE.release(job_id, owner)


def _submit(job_id: int, owner: str) -> None:
    job = Job.objects.select_related("cluster").get(pk=job_id)
    if job.ganeti_job_id is not None or job.finished:
        return
    if job.cluster is None:
        lifecycle.job_end_orphan(job_id)
        return
    action = ACTIONS.get(job.action)
    if action is None:
        _finish_unsendable(job, f"gwm has no action {job.action!r} any more")
        return
    try:
        client = client_for(job.cluster)
    except RoundFailure as failure:
        lifecycle.job_finish(
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
                lifecycle.job_submitted(job_id, found, adopted=True)
                return
        if not JOB_LEASE.renew(job_id, owner):
            # This worker was slow enough for its lease to run out, and another may have
            # taken the job over: sending it now could submit it twice.
            log.warning("job %s: lease lost before submitting; leaving it to its new owner", job_id)
            return
        job = lifecycle.job_attempt_started(job_id, submit_floor=job.cluster.last_job_id)
        request = SendRequest(
            name=job.resource_name,
            params=job.params,
            reason=operation_reason(job.pk),
            dry_run=False,
        )
        try:
            ganeti_job_id = action.send(client, request)
        except RapiError as exc:
            if transient(exc):
                _retry_later(job, str(exc))
                return
            # Ganeti refused the request itself (bad parameters, permissions).
            lifecycle.job_finish(
                job.pk, status=JobStatus.ERROR, error=job_refusal(exc), refresh=read_refresh(job)
            )
            return
        except Exception as exc:
            # gwm could not even build the request (a parameter the client rejects,
            # a bug): retrying would fail the same way forever while holding the
            # resource, so the job ends here and says why.
            log.exception("job %s: the request to Ganeti could not be built", job_id)
            _finish_unsendable(job, f"gwm could not build the request to Ganeti: {exc}")
            return
        failpoint("operations.after_submit")
        lifecycle.job_submitted(job_id, ganeti_job_id)


def _backoff(attempts: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 2.0 ** max(0, attempts - 1)) * (0.5 + random.random() / 2)


def _retry_later(job: Job, error: str) -> None:
    retry_at = timezone.now() + timedelta(seconds=_backoff(max(job.attempts, 1)))
    log.warning("job %s: %s; retrying at %s", job.pk, error, retry_at.isoformat())
    lifecycle.job_attempt_failed(job.pk, error=error, retry_at=retry_at)


def _finish_unsendable(job: Job, message: str) -> None:
    error = {"code": "request_invalid", "message": message, "ganeti": None}
    lifecycle.job_finish(job.pk, status=JobStatus.ERROR, error=error)


def _find_submitted(client: RapiClient, job: Job, action: Action) -> int | None:
    """The Ganeti job an interrupted attempt created, by its reason trail (or opcode)."""
    floor = job.submit_floor or 0
    marker = operation_reason(job.pk)
    result = client.query("job", ["id", "ops"], qfilter=[">", "id", floor])
    for row in result.data:
        ganeti_id, ops = row[0][1], row[1][1] or []
        if marker in reasons(ops):
            return int(ganeti_id)
        if not action.carries_reason and _same_opcodes(ops, action, job.resource_name):
            return int(ganeti_id)
    return None


def _same_opcodes(ops: list[dict[str, Any]], action: Action, name: str) -> bool:
    ids = tuple(op.get("OP_ID") for op in ops[: len(action.opcodes)])
    return ids == action.opcodes and any(
        name in (op.get("instance_name"), op.get("node_name")) for op in ops
    )
