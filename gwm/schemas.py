"""Schemas shared by every router."""

from __future__ import annotations

from ninja import Schema
from pydantic import ConfigDict


class Problem(Schema):
    """An RFC 9457 problem body; extension members carry context."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


class ApiRoot(Schema):
    gwm_version: str
    api_version: str
    features: list[str]
