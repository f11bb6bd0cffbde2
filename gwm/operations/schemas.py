"""The shapes of jobs and of the answers that need Ganeti now (dry runs, consoles).

The request bodies of the operations are in gwm.operations.actions.
"""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field


class JobResource(Schema):
    type: str
    name: str | None
    url: str | None


class JobLogLine(Schema):
    serial: int | None
    time: str | None
    type: str | None
    message: Any


class JobOut(Schema):
    id: int
    url: str
    cluster: str
    action: str = Field(description='what was asked, e.g. "instance.start"; foreign: "ganeti.*"')
    resource: JobResource
    status: str = Field(
        description="PENDING, QUEUED, WAITING, RUNNING, CANCELING, SUCCESS, ERROR or CANCELED"
    )
    foreign: bool = Field(description="Ganeti ran it for someone else than gwm")
    source: str | None
    requested_by: str | None
    params: dict[str, Any]
    attempts: int
    last_error: str | None = Field(description="why the last submission attempt failed")
    next_attempt_at: str | None = Field(
        None, description="not yet in Ganeti: when the next submission attempt is due"
    )
    error: dict[str, Any] | None = Field(description="{code, message, ganeti} when it failed")
    log: list[JobLogLine]
    ganeti: dict[str, Any]
    created_at: str
    submitted_at: str | None
    finished_at: str | None
    updated_at: str


class JobPage(Schema):
    items: list[JobOut]
    next: str | None


class JobWait(Schema):
    changed: bool = Field(description="false: the timeout passed with nothing new")
    job: JobOut


class JobsWait(Schema):
    changed: bool
    jobs: list[JobOut]


class DryRunOut(Schema):
    action: str
    ok: bool = Field(description="Ganeti's pre-checks passed")
    ganeti_job_id: int | None
    error: dict[str, Any] | None
    log: list[Any]


class ConsoleOut(Schema):
    instance: str | None = None
    kind: str | None = Field(None, description="ssh, vnc, spice or msg")
    host: str | None = None
    port: int | None = None
    user: str | None = None
    command: list[str] | None = None
    display: int | None = None
    message: str | None = None
