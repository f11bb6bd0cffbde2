"""GET /api/v1/events/schemas: the JSON Schema of every event type (docs/events.md)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from gwm.accounts.auth import caller_auth
from gwm.errors import NotFound
from gwm.events.schemas import event_schemas
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["changes"])


@router.get(
    "/events/schemas",
    response={200: dict[str, Any], 401: Problem},
    summary="The JSON Schema of every event type",
    operation_id="gwm_events_api_event_schemas",
)
def list_event_schemas(request: HttpRequest) -> dict[str, Any]:
    return event_schemas()


@router.get(
    "/events/schemas/{event_type}",
    response={200: dict[str, Any], 401: Problem, 404: Problem},
    summary="One event type's JSON Schema",
    operation_id="gwm_events_api_event_schema",
)
def get_event_schema(request: HttpRequest, event_type: str) -> dict[str, Any]:
    schemas = event_schemas()["types"]
    if event_type not in schemas:
        raise NotFound(f"no event type {event_type!r}")
    return dict(schemas[event_type])
