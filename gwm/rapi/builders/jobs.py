"""``/2/jobs``: listing, reading, cancelling and waiting for Ganeti jobs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from gwm.rapi.builders._shared import path, read, read_bulk
from gwm.rapi.calls import (
    Flow,
    RapiCall,
    RapiRequest,
    ShapeError,
    Sleep,
    parse_job_ids,
)
from gwm.rapi.constants import JOB_STATUS_FINALIZED, JOB_WAIT_SERVER_TIMEOUT
from gwm.rapi.errors import RapiHTTPError, RapiJobNotFound, RapiJobWaitTimeout
from gwm.rapi.schemas import RapiCancelJobResult, RapiJob, RapiJobLogEntry, RapiJobWaitResult

#: A "no change" answer faster than this means the server does not block
#: (an old or simulated server): pause before asking again.
NO_CHANGE_MIN_SECONDS = 1.0
NO_CHANGE_PAUSE = 1.0


def _not_found(job_id: int, detail: str) -> RapiJobNotFound:
    return RapiJobNotFound(
        f"job {job_id} does not exist on the cluster ({detail}: never submitted, or "
        "archived and purged)",
        job_id=job_id,
    )


def _job_not_found_on_404(job_id: int) -> Callable[[RapiHTTPError], Any]:
    def handle(error: RapiHTTPError) -> Any:
        raise _not_found(job_id, "404 Not Found") from error

    return handle


def _wait_job_lost(job_id: int) -> Callable[[RapiHTTPError], Any]:
    # Ganeti 3 answers a wait on an unknown (or purged) job with
    # 500 "Can't load job file"; older ones with 404.
    def handle(error: RapiHTTPError) -> Any:
        if error.status == 404 or "load job file" in error.message.lower():
            raise _not_found(job_id, f"{error.status}: {error.message}") from error
        raise error

    return handle


def list_jobs() -> RapiCall[list[int]]:
    """``GET /2/jobs``: ids of the jobs not yet archived."""
    return read("/2/jobs", "list jobs", parse_job_ids)


def list_jobs_bulk() -> RapiCall[list[RapiJob]]:
    """``GET /2/jobs?bulk=1``: jobs with ops (and their reason trails) and statuses.

    ``oplog`` and ``opresult`` are only in :func:`get_job`.
    """
    return read_bulk("/2/jobs", "list jobs", RapiJob)


def get_job(job_id: int) -> RapiCall[RapiJob]:
    """``GET /2/jobs/<id>``; an unknown id raises :class:`RapiJobNotFound`.

    Ganeti 3 answers an unknown id with 200 and every field but ``id`` ``null``, older
    ones with 404: both mean the same.
    """

    def parse(value: Any) -> RapiJob:
        if not isinstance(value, dict):
            raise ShapeError(f"expected a job object, got {type(value).__name__}")
        # Ganeti 3 echoes the id and leaves every other field null.
        if value and all(v is None for k, v in value.items() if k != "id"):
            raise _not_found(job_id, "Ganeti answered a job with every field but its id null")
        return RapiJob.model_validate(value)

    return RapiCall(
        RapiRequest("GET", path("jobs", job_id), f"read job {job_id}"),
        parse,
        on_status={404: _job_not_found_on_404(job_id)},
    )


def cancel_job(job_id: int) -> RapiCall[RapiCancelJobResult]:
    """``DELETE /2/jobs/<id>``: cancel a job that has not started → (success, message)."""

    def parse(value: Any) -> RapiCancelJobResult:
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], bool)):
            raise ShapeError(f"expected [success, message], got {value!r:.60}")
        return RapiCancelJobResult(value[0], str(value[1]))

    return RapiCall(
        RapiRequest("DELETE", path("jobs", job_id), f"cancel job {job_id}"),
        parse,
        on_status={404: _job_not_found_on_404(job_id)},
    )


def wait_for_job_change(
    job_id: int,
    *,
    fields: Sequence[str] = ("status",),
    previous_job_info: Sequence[Any] | None = None,
    previous_log_serial: int | None = None,
) -> RapiCall[RapiJobWaitResult]:
    """``GET /2/jobs/<id>/wait`` (a GET with a JSON body; needs write access).

    Blocks on the server until the job's ``fields`` differ from
    ``previous_job_info`` or a log entry newer than ``previous_log_serial``
    appears, for at most about 10 s. Both forms of "nothing happened"
    (``null``, or the same ``job_info`` with no logs) come back as
    ``changed=False``.
    """
    fields = list(fields)
    previous = list(previous_job_info) if previous_job_info is not None else None

    def parse(value: Any) -> RapiJobWaitResult:
        if value is None:
            return RapiJobWaitResult(changed=False, fields=fields, job_info=previous or [])
        if not isinstance(value, dict) or not isinstance(value.get("job_info"), list):
            raise ShapeError(f"expected {{job_info, log_entries}}, got {value!r:.60}")
        info = value["job_info"]
        logs = value.get("log_entries") or []
        changed = not (previous is not None and info == previous and not logs)
        return RapiJobWaitResult(changed=changed, fields=fields, job_info=info, log_entries=logs)

    request = RapiRequest(
        "GET",
        path("jobs", job_id, "wait"),
        f"wait for job {job_id}",
        body={
            "fields": fields,
            "previous_job_info": previous,
            "previous_log_serial": previous_log_serial,
        },
        min_read_timeout=JOB_WAIT_SERVER_TIMEOUT + 10,
    )
    lost = _wait_job_lost(job_id)
    return RapiCall(request, parse, on_status={404: lost, 500: lost})


def wait_for_job(
    job_id: int,
    *,
    timeout: float | None = None,
    on_log: Callable[[RapiJobLogEntry], object] | None = None,
) -> Flow[RapiJob]:
    """Follow a job until it is success, error or canceled; return it with results.

    The loop of Ganeti's ``GenericPollJob``: each wait blocks on the server
    until something changes (at most ~10 s), new log entries go to
    ``on_log``, and at the end the full job is read (also when a wait answers
    no status at all). ``timeout`` (seconds) is checked between waits, so it
    may be exceeded by one wait; :class:`RapiJobWaitTimeout` when it runs out.
    """
    started = time.monotonic()
    previous: list[Any] | None = None
    serial: int | None = None
    while True:
        asked = time.monotonic()
        change: RapiJobWaitResult = yield wait_for_job_change(
            job_id, previous_job_info=previous, previous_log_serial=serial
        )
        for entry in change.log_entries:
            serial = entry.serial if serial is None else max(serial, entry.serial)
            if on_log is not None:
                on_log(entry)
        if change.changed:
            previous = change.job_info
        status = change.status
        if status is None or status in JOB_STATUS_FINALIZED:
            break
        now = time.monotonic()
        if timeout is not None and now - started >= timeout:
            raise RapiJobWaitTimeout(
                f"job {job_id} did not finish within {timeout:g} s (last status: {status})",
                job_id=job_id,
                timeout=timeout,
                last_status=str(status),
            )
        if not change.changed and now - asked < NO_CHANGE_MIN_SECONDS:
            pause = NO_CHANGE_PAUSE
            if timeout is not None:
                pause = max(0.0, min(pause, started + timeout - now))
            yield Sleep(pause)
    job: RapiJob = yield get_job(job_id)
    return job
