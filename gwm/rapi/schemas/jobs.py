"""Jobs: ``/2/jobs`` entries, their log, reason trails and failures; waits and cancels."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator, Field

from gwm.rapi.constants import (
    JOB_STATUS_FINALIZED,
    JOB_STATUS_WAITLOCK_LEGACY,
    REASON_SOURCE_USER,
    JobStatus,
)
from gwm.rapi.schemas.base import RapiModel

# A Ganeti timestamp as sent in jobs: [seconds, microseconds].
Timestamp = tuple[int, int]


def _timestamp_seconds(value: Timestamp | None) -> float | None:
    return None if value is None else value[0] + value[1] / 1_000_000


def _legacy_job_status(value: Any) -> Any:
    return JobStatus.WAITING if value == JOB_STATUS_WAITLOCK_LEGACY else value


# Known values become enum members; values a newer Ganeti may add stay strings
# instead of failing a whole listing.
JobStatusField = Annotated[
    JobStatus | str | None,
    Field(union_mode="left_to_right"),
    BeforeValidator(_legacy_job_status),
]


class RapiJobLogEntry(NamedTuple):
    """``[serial, [sec, usec], type, message]`` from a job's log."""

    serial: int
    timestamp: Timestamp
    log_type: str
    message: Any


class RapiReasonEntry(NamedTuple):
    """``[source, text, epoch_ns]`` from an opcode's reason trail."""

    source: str
    text: str
    timestamp_ns: int


class RapiJobFailure(NamedTuple):
    """Why a job failed: ``["OpPrereqError", ["msg", "wrong_state"]]`` → fields.

    Not an exception: the value of :attr:`RapiJob.error`.
    """

    error_class: str | None
    message: str
    code: str | None


def _job_failure(result: Any) -> RapiJobFailure:
    if isinstance(result, list | tuple) and len(result) == 2 and isinstance(result[0], str):
        error_class, args = result
        if isinstance(args, list | tuple):
            message = str(args[0]) if args else error_class
            code = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            return RapiJobFailure(error_class, message, code)
        return RapiJobFailure(error_class, str(args), None)
    return RapiJobFailure(None, str(result), None)


class RapiJob(RapiModel):
    """``GET /2/jobs/<id>`` (``oplog``/``opresult`` only there) and ``?bulk=1`` entries."""

    id: int | None = None
    ops: list[dict[str, Any]] | None = None
    status: JobStatusField = None
    summary: list[str] | None = None
    opstatus: list[JobStatusField] | None = None
    opresult: list[Any] | None = None
    oplog: list[list[RapiJobLogEntry]] | None = None
    received_ts: Timestamp | None = None
    start_ts: Timestamp | None = None
    end_ts: Timestamp | None = None

    @property
    def is_finalized(self) -> bool:
        return self.status in JOB_STATUS_FINALIZED

    @property
    def received_at(self) -> float | None:
        return _timestamp_seconds(self.received_ts)

    @property
    def started_at(self) -> float | None:
        return _timestamp_seconds(self.start_ts)

    @property
    def ended_at(self) -> float | None:
        return _timestamp_seconds(self.end_ts)

    @property
    def reason_trails(self) -> list[list[RapiReasonEntry]]:
        """Each opcode's reason trail; the first entry says who submitted it."""
        trails: list[list[RapiReasonEntry]] = []
        for op in self.ops or []:
            raw = op.get("reason") or []
            trails.append(
                [RapiReasonEntry(str(e[0]), str(e[1]), int(e[2])) for e in raw if len(e) == 3]
            )
        return trails

    @property
    def user_reasons(self) -> list[str]:
        """The ``reason=`` texts given at submission (``gnt:user`` entries), in order."""
        return [
            entry.text
            for trail in self.reason_trails
            for entry in trail
            if entry.source == REASON_SOURCE_USER
        ]

    @property
    def error(self) -> RapiJobFailure | None:
        """Why the job failed; None unless its status is ``error``.

        Class, message and Ganeti error code of the first failed opcode, or of
        the last result when no opcode is marked failed.
        """
        if self.status != JobStatus.ERROR:
            return None
        results = self.opresult or []
        for index, op_status in enumerate(self.opstatus or []):
            if op_status == JobStatus.ERROR and index < len(results):
                return _job_failure(results[index])
        failed = [r for r in results if r is not None]
        return _job_failure(failed[-1]) if failed else RapiJobFailure(None, "job failed", None)


class RapiJobWaitResult(RapiModel):
    """One answer of ``/2/jobs/<id>/wait``.

    ``changed`` is False both when Ganeti answered ``null`` (Python masterd)
    and when it sent back the unchanged ``job_info`` with no new log entries
    (Haskell luxid, after about 10 s).
    """

    changed: bool
    fields: list[str]
    job_info: list[Any]
    log_entries: list[RapiJobLogEntry] = []

    def get(self, name: str) -> Any:
        """The value of one requested field, e.g. ``get("status")``."""
        try:
            return self.job_info[self.fields.index(name)]
        except (ValueError, IndexError):
            return None

    @property
    def status(self) -> JobStatus | str | None:
        value = self.get("status")
        if value == JOB_STATUS_WAITLOCK_LEGACY:
            return JobStatus.WAITING
        try:
            return JobStatus(value)
        except ValueError:
            return value if isinstance(value, str) else None


class RapiCancelJobResult(NamedTuple):
    """``DELETE /2/jobs/<id>`` → ``[success, message]``."""

    success: bool
    message: str
