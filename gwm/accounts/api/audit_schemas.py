"""The shapes of /api/v1/audit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditOut(BaseModel):
    id: int
    at: str = Field(description="RFC 3339")
    user: str = Field(description="the user name as it was then ('' when nobody signed in)")
    token_id: int | None = Field(None, description="the API token the request came with")
    address: str | None
    action: str = Field(description='e.g. "instance.reboot", "cluster.update", "auth.login"')
    method: str
    path: str
    cluster: str
    resource_type: str
    resource_name: str
    params: dict[str, Any] = Field(description="the request's parameters, secrets removed")
    outcome: str = Field(description="success, denied (401/403/429), refused (4xx), error (5xx)")
    status: int | None
    detail: str = Field(description="why it was refused or failed")
    job_id: int | None = Field(None, description="the job the write became")


class AuditPage(BaseModel):
    items: list[AuditOut]
    next: str | None = Field(description="the URL of the next (older) page; null on the last")
