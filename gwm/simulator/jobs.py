"""The job queue: ids, lifecycle, locks, cancel, archive and wait-for-change.

A job moves queued -> waiting (acquiring locks) -> running -> success/error
(or canceled), one opcode after the other, as in Ganeti's jqueue. Each
transition notifies waiters, which is how ``/2/jobs/ID/wait`` returns early.

The queue knows opcodes only through the ``Opcodes`` interface below: the
simulator hands it the registry (``gwm.simulator.opcodes``), which holds what
each opcode locks and does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gwm.simulator.config import SimConfig
from gwm.simulator.faults import Faults
from gwm.simulator.state import ClusterState

QUEUED = "queued"
WAITING = "waiting"
CANCELING = "canceling"
RUNNING = "running"
CANCELED = "canceled"
SUCCESS = "success"
ERROR = "error"
FINALIZED = frozenset({CANCELED, SUCCESS, ERROR})
# calcJobStatus order: a status "later" than running is final
_ORDER = {QUEUED: 0, WAITING: 1, CANCELING: 2, RUNNING: 3, CANCELED: 4, SUCCESS: 5, ERROR: 6}


def timestamp(t: float | None = None) -> list[int]:
    """Ganeti's ``[seconds, microseconds]``."""
    t = time.time() if t is None else t
    sec = int(t)
    return [sec, round((t - sec) * 1_000_000) % 1_000_000]


def epoch_ns(t: float | None = None) -> int:
    return int((time.time() if t is None else t) * 1_000_000_000)


class OpError(Exception):
    """An opcode failed: ``encoded`` is its opresult ``[type, args]``."""

    def __init__(self, error_type: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.encoded: list[Any] = (
            [error_type, [message, code]] if code is not None else [error_type, [message]]
        )


class OpPrereqError(OpError):
    def __init__(self, message: str, code: str = "wrong_input") -> None:
        super().__init__("OpPrereqError", message, code)


class OpExecError(OpError):
    def __init__(self, message: str) -> None:
        super().__init__("OpExecError", message)


@dataclass
class OpState:
    input: dict[str, Any]
    summary: str
    status: str = QUEUED
    result: Any = None
    log: list[list[Any]] = field(default_factory=list)
    start_ts: list[int] | None = None
    exec_ts: list[int] | None = None
    end_ts: list[int] | None = None
    priority: int = 0


@dataclass
class Job:
    id: int
    ops: list[OpState]
    received_ts: list[int]
    received_at: float
    start_ts: list[int] | None = None
    end_ts: list[int] | None = None
    ended_at: float | None = None
    archived: bool = False
    log_serial: int = 0
    task: asyncio.Task[None] | None = None

    @property
    def priority(self) -> int:
        return 0

    @property
    def status(self) -> str:
        """Ganeti's calcJobStatus over the opcode statuses."""
        status = QUEUED
        all_success = True
        for op in self.ops:
            s = op.status
            if s in (ERROR, CANCELING, CANCELED):
                return s
            if s != SUCCESS:
                all_success = False
            if s not in (SUCCESS, QUEUED):
                status = s
        return SUCCESS if all_success and self.ops else status

    @property
    def finalized(self) -> bool:
        return self.status in FINALIZED

    def add_log(self, op: OpState, message: str, kind: str = "message") -> None:
        self.log_serial += 1
        op.log.append([self.log_serial, timestamp(), kind, message])


class Opcodes(Protocol):
    """What the queue needs of the opcode registry."""

    def summarize(self, op: dict[str, Any]) -> str:
        """Ganeti's opSummary, e.g. ``INSTANCE_STARTUP(name)``."""
        ...

    def locks(self, state: ClusterState, op: dict[str, Any]) -> set[str]:
        """The lock names the opcode takes before it runs."""
        ...

    def fill(self, state: ClusterState, op: dict[str, Any]) -> dict[str, Any]:
        """The opcode as it reads once it runs."""
        ...

    async def run(self, queue: JobQueue, job: Job, op: OpState) -> Any:
        """Check and apply the opcode; raises OpError when it fails."""
        ...


class LockManager:
    """Names locked by running opcodes; a conflicting job waits."""

    def __init__(self) -> None:
        self.owners: dict[str, int] = {}
        self._released = asyncio.Event()

    def _free(self, names: set[str], job_id: int) -> bool:
        return all(self.owners.get(n, job_id) == job_id for n in names)

    async def acquire(self, names: set[str], job_id: int) -> None:
        while not self._free(names, job_id):
            event = self._released
            await event.wait()
        for n in names:
            self.owners[n] = job_id

    def release(self, job_id: int) -> None:
        for n in [n for n, j in self.owners.items() if j == job_id]:
            del self.owners[n]
        # wake every waiter; each re-checks its own names
        self._released.set()
        self._released = asyncio.Event()


class JobQueue:
    def __init__(
        self, state: ClusterState, config: SimConfig, faults: Faults, opcodes: Opcodes
    ) -> None:
        self.state = state
        self.config = config
        self.faults = faults
        self.opcodes = opcodes
        self.jobs: dict[int, Job] = {}
        self.next_id = 1
        self.locks = LockManager()
        self.hold = False  # admin: keep new jobs queued (to test cancel)
        self._changed = asyncio.Event()
        self._hold_released = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()  # the loop holds tasks only weakly

    # ---- bookkeeping ---------------------------------------------------
    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def busy_jobs(self) -> int:
        """Jobs running right now (what slows the master down)."""
        return sum(1 for j in self.jobs.values() if j.status == RUNNING)

    def archive_old(self) -> None:
        """What the ganeti-watcher does: archive jobs that ended long ago."""
        limit = time.time() - self.config.archive_age
        for job in self.jobs.values():
            if not job.archived and job.ended_at is not None and job.ended_at < limit:
                job.archived = True

    def live_jobs(self) -> list[Job]:
        self.archive_old()
        return [self.jobs[k] for k in sorted(self.jobs) if not self.jobs[k].archived]

    def set_hold(self, hold: bool) -> None:
        self.hold = hold
        if not hold:
            self._hold_released.set()
            self._hold_released = asyncio.Event()

    # ---- submit --------------------------------------------------------
    def submit(self, ops: list[dict[str, Any]]) -> int:
        """Queue a job of opcodes (``OP_ID`` + params, reason trail so far)."""
        job_id = self.next_id
        self.next_id += 1
        now = time.time()
        received = timestamp(now)
        states = []
        for index, op in enumerate(ops):
            op = dict(op)
            op_id = op["OP_ID"]
            source = "gnt:opcode:" + op_id[3:].lower()
            # luxid appends its own entry with the received timestamp
            reason = [*op.get("reason", []), [source, f"job={job_id};index={index}", epoch_ns(now)]]
            op["reason"] = reason
            states.append(OpState(input=op, summary=self.opcodes.summarize(op)))
        job = Job(id=job_id, ops=states, received_ts=received, received_at=now)
        self.jobs[job_id] = job
        task = asyncio.get_running_loop().create_task(self._run(job))
        job.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.notify()
        return job_id

    # ---- lifecycle -----------------------------------------------------
    async def _run(self, job: Job) -> None:
        try:
            await asyncio.sleep(self.config.scaled(self.config.queued_seconds))
            while self.hold:
                await self._hold_released.wait()
            while self.busy_jobs() >= self.config.max_running_jobs:
                await self._changed.wait()
            for index, op in enumerate(job.ops):
                if not await self._run_op(job, op):
                    for rest in job.ops[index + 1 :]:
                        rest.status = ERROR
                        rest.result = ["OpExecError", ["Preceding opcode failed"]]
                        rest.end_ts = timestamp()
                    break
        except asyncio.CancelledError:
            # only queued or waiting jobs are cancelled this way (see cancel())
            end = timestamp()
            for op in job.ops:
                if op.status not in FINALIZED:
                    op.status = CANCELED
                    op.end_ts = end
        finally:
            self.locks.release(job.id)
            job.end_ts = timestamp()
            job.ended_at = time.time()
            self.notify()

    async def _run_op(self, job: Job, op: OpState) -> bool:
        op.status = WAITING
        op.start_ts = timestamp()
        if job.start_ts is None:
            job.start_ts = op.start_ts
        self.notify()
        try:
            await self.locks.acquire(self.opcodes.locks(self.state, op.input), job.id)
            op.input = self.opcodes.fill(self.state, op.input)
            op.status = RUNNING
            op.exec_ts = timestamp()
            self.notify()
            failure = self.faults.take_job_failure(op.input["OP_ID"])
            if failure is not None:
                await asyncio.sleep(self.config.op_duration(op.input["OP_ID"]) / 2)
                raise OpError(failure.error_type, failure.message, failure.code)
            result = await self.opcodes.run(self, job, op)
        except OpError as err:
            op.status = ERROR
            op.result = err.encoded
            op.end_ts = timestamp()
            self.notify()
            return False
        finally:
            self.locks.release(job.id)
        op.status = SUCCESS
        op.result = result
        op.end_ts = timestamp()
        self.notify()
        return True

    # ---- cancel --------------------------------------------------------
    def cancel(self, job_id: int) -> list[Any]:
        """``DELETE /2/jobs/ID``: luxid's CancelJob answer (as seen on 3.0.2)."""
        job = self.jobs.get(job_id)
        if job is None or job.finalized:
            return [False, f"Job {job_id} not found in queue"]
        status = job.status
        if _ORDER[status] > _ORDER[WAITING]:
            return [False, "Job no longer waiting, can't cancel (informed it anyway)"]
        if job.task is not None:
            job.task.cancel()
        # mark at once so the answer and the next read agree
        end = timestamp()
        for op in job.ops:
            if op.status not in FINALIZED:
                op.status = CANCELED
                op.end_ts = end
        self.notify()
        if status == QUEUED:
            return [True, f"Dequeued job {job_id}"]
        return [True, "Job successfully cancelled"]

    # ---- wait ----------------------------------------------------------
    async def wait_for_change(
        self,
        job_id: int,
        fields: list[str],
        prev_job_info: list[Any] | None,
        prev_log_serial: int | None,
        info_fn: Callable[[Job, list[str]], list[Any]],
    ) -> dict[str, Any] | None:
        """luxid's WaitForJobChange: return at once if finalized or changed,
        else block until something changes or ``wait_timeout`` passes, then
        answer the unchanged job_info with no log entries (Ganeti 3.0.2)."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        deadline = time.monotonic() + self.config.wait_timeout

        def compute() -> tuple[list[Any], list[list[Any]]]:
            info = info_fn(job, fields)
            logs = [
                entry
                for op in job.ops
                for entry in op.log
                if prev_log_serial is None or entry[0] > prev_log_serial
            ]
            return info, logs

        info, logs = compute()
        if not job.finalized:
            while info == prev_job_info and not logs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                info, logs = compute()
        return {"job_info": info, "log_entries": logs}
