"""Faults switchable at run time through the admin API (``/__sim__/faults``).

- ``latency``: seconds added to every RAPI answer (not scaled by time_scale).
- ``error_rate`` + ``error_status``: that fraction of RAPI requests answers
  with that 5xx status.
- ``force_status`` + ``force_count``: the next N RAPI requests answer with
  that status (N = null: until cleared).
- ``master_unreachable``: calls that need the master daemon answer 502
  "Can't connect to master daemon", as rapi does when luxid is down.
- ``hang`` + ``hang_seconds``: requests do not answer until the hang is
  cleared (or the given seconds have passed since it was set).
- ``queue_drained``: job submissions answer 503 "Job queue is drained".
- job failures (``/__sim__/job-failures``): the next N jobs with the given
  opcode fail with the given error instead of running.

Node faults (offline, unreachable) and instance crashes change the cluster
state itself, see the admin API in ``admin.py``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobFailure:
    op_id: str  # e.g. "OP_INSTANCE_STARTUP", or "*" for any opcode
    error_type: str = "OpExecError"
    message: str = "Injected failure"
    code: str | None = None  # for OpPrereqError: Ganeti's code, e.g. "wrong_state"
    remaining: int | None = 1  # None: every matching job until cleared

    def to_dict(self) -> dict[str, Any]:
        return {
            "opcode": self.op_id,
            "error_type": self.error_type,
            "message": self.message,
            "code": self.code,
            "count": self.remaining,
        }


@dataclass
class Faults:
    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    force_status: int | None = None
    force_count: int | None = None
    master_unreachable: bool = False
    queue_drained: bool = False
    hang_until: float | None = None  # monotonic deadline; inf = until cleared
    job_failures: list[JobFailure] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _hang_cleared: asyncio.Event | None = None

    # ---- admin view ----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        hang: float | bool | None
        if self.hang_until is None:
            hang = False
        elif self.hang_until == float("inf"):
            hang = True
        else:
            hang = max(0.0, self.hang_until - time.monotonic())
        return {
            "latency": self.latency,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "force_status": self.force_status,
            "force_count": self.force_count,
            "master_unreachable": self.master_unreachable,
            "queue_drained": self.queue_drained,
            "hang": hang,
            "job_failures": [f.to_dict() for f in self.job_failures],
        }

    def update(self, body: dict[str, Any]) -> None:
        """Apply a partial update from the admin API; unknown keys are errors."""
        for key, value in body.items():
            if key == "latency":
                self.latency = max(0.0, float(value))
            elif key == "error_rate":
                self.error_rate = min(1.0, max(0.0, float(value)))
            elif key == "error_status":
                self.error_status = int(value)
            elif key == "force_status":
                self.force_status = None if value is None else int(value)
            elif key == "force_count":
                self.force_count = None if value is None else int(value)
            elif key == "master_unreachable":
                self.master_unreachable = bool(value)
            elif key == "queue_drained":
                self.queue_drained = bool(value)
            elif key == "hang":
                self.set_hang(value)
            elif key == "hang_seconds":
                self.set_hang(float(value))
            else:
                raise ValueError(f"unknown fault '{key}'")

    def clear(self) -> None:
        self.latency = 0.0
        self.error_rate = 0.0
        self.error_status = 500
        self.force_status = None
        self.force_count = None
        self.master_unreachable = False
        self.queue_drained = False
        self.job_failures.clear()
        self.set_hang(False)

    # ---- hang ----------------------------------------------------------
    def set_hang(self, value: Any) -> None:
        """``True``: until cleared; a number: for that many seconds; falsy: off."""
        if value is True:
            self.hang_until = float("inf")
        elif value in (False, None, 0):
            self.hang_until = None
            if self._hang_cleared is not None:
                self._hang_cleared.set()
                self._hang_cleared = None
        else:
            self.hang_until = time.monotonic() + float(value)

    async def wait_hang(self) -> None:
        while self.hang_until is not None:
            remaining = self.hang_until - time.monotonic()
            if remaining <= 0:
                self.hang_until = None
                return
            if self._hang_cleared is None:
                self._hang_cleared = asyncio.Event()
            event = self._hang_cleared
            try:
                timeout = None if remaining == float("inf") else remaining
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                pass

    # ---- per request ---------------------------------------------------
    def take_forced_status(self) -> int | None:
        """The status a request must answer with because of a fault, if any."""
        if self.force_status is not None:
            status = self.force_status
            if self.force_count is not None:
                self.force_count -= 1
                if self.force_count <= 0:
                    self.force_status = None
                    self.force_count = None
            return status
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            return self.error_status
        return None

    def take_job_failure(self, op_id: str) -> JobFailure | None:
        for failure in self.job_failures:
            if failure.op_id in (op_id, "*"):
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self.job_failures.remove(failure)
                return failure
        return None
