"""The event's schema: one pydantic model that documents (JSON Schema per type, at
/api/v1/events/schemas and in docs/events.md) and validates (the test suite checks every
event it sees against it).

Versioning: ``schema_version`` is 1. Within a version only additions happen (a new
optional member, a new event type); a member removed or changing meaning is version 2,
announced in /api/v1/ features and served side by side for a release.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, create_model

from gwm.events.types import EVENT_TYPES, RESOURCES, SCHEMA_VERSION

ResourceKind = Literal["cluster", "instance", "node", "group", "network", "job", "webhook"]
assert set(RESOURCES) == set(ResourceKind.__args__)  # type: ignore[attr-defined]


class EventResource(Schema):
    kind: ResourceKind
    cluster: str | None = Field(description="the cluster's gwm name; null for a webhook")
    name: str = Field(description="Ganeti's name, the job's or the webhook's id")
    url: str | None = Field(description="where to read it now (gone after a delete)")


class FieldChange(Schema):
    before: Any = Field(None, description="the old value; null when created or unknown")
    after: Any = Field(None, description="the new value")


class EventCause(Schema):
    job: int | None = Field(description="the gwm job that made the change, if any")
    job_url: str | None
    user: str | None = Field(description="who asked for it; null for changes found by a sync")


class Event(Schema):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^evt_[0-9]+$", description="`evt_<seq>`; the webhook-id header")
    seq: int = Field(ge=1, description="the change's place in the one log: the feed cursor")
    previous_seq: int | None = Field(
        description="seq of the same resource's previous change; a consumer that has not seen "
        "it missed something (read /changes?resource=<kind>:<name>)"
    )
    type: str
    schema_version: Literal[1]
    time: str = Field(description="when gwm recorded it (RFC 3339, UTC)")
    resource: EventResource
    changes: dict[str, FieldChange] = Field(
        description="the fields that changed, each with its old and new value; {} for a delete"
    )
    cause: EventCause


class ThinEvent(Schema):
    """The event without ``changes`` and ``cause`` (a webhook's ``thin`` payload)."""

    id: str
    seq: int
    previous_seq: int | None
    type: str
    schema_version: Literal[1]
    time: str
    resource: EventResource


class ChangePage(Schema):
    items: list[Event]
    next_since: int = Field(description="the `since` of the next call")
    last_seq: int = Field(description="the newest seq committed when this was read")
    floor: int = Field(description="the retention floor: a `since` below it answers 410")
    more: bool = Field(description="true when more events are there already")


def _typed(type_: str) -> type[Event]:
    fixed: Any = Literal[type_]
    return create_model(f"Event_{type_.replace('.', '_')}", __base__=Event, type=(fixed, ...))


TYPED: dict[str, type[Event]] = {type_: _typed(type_) for type_ in EVENT_TYPES}


@cache
def event_schemas() -> dict[str, Any]:
    """Every event type's JSON Schema, keyed by type."""
    return {
        "schema_version": SCHEMA_VERSION,
        "types": {type_: model.model_json_schema() for type_, model in TYPED.items()},
    }


def event_validate(event: dict[str, Any]) -> None:
    """Raise (pydantic's ValidationError, or KeyError for an unknown type) unless
    ``event`` follows its type's schema."""
    TYPED[event["type"]].model_validate(event)
