"""What the feed and the stream both take: the cursor and the filters, checked the same way."""

from __future__ import annotations

from typing import Any

from ninja.params import functions as param

from gwm.errors import BadRequest
from gwm.events.feed import Filters
from gwm.events.types import RESOURCES, types_valid

TYPES = param.Query(
    None,
    description="event types (`instance.status_changed`) or `<resource>.*`; a comma-separated "
    "list or a repeated parameter means any",
)
CLUSTERS = param.Query(None, description="cluster names; a list or repeated parameter means any")
RESOURCE = param.Query(
    None, description="`<kind>` (`instance`) or `<kind>:<name>` (`instance:web1`, `job:12`)"
)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def filters_of(types: list[str] | None, cluster: list[str] | None, resource: str | None) -> Filters:
    wanted = _split(types)
    unknown = types_valid(wanted)
    if unknown:
        raise BadRequest(f"unknown event type {unknown[0]!r}", parameter="types")
    kind, _, name = (resource or "").partition(":")
    if kind and kind not in RESOURCES:
        raise BadRequest(
            f"resource kind {kind!r} is not one of {', '.join(RESOURCES)}", parameter="resource"
        )
    return Filters(types=tuple(wanted), clusters=tuple(_split(cluster)), kind=kind, name=name)


def cursor_of(value: Any, parameter: str) -> int:
    """A seq cursor: a whole number ≥ 0 (``Last-Event-ID`` arrives as text)."""
    try:
        since = int(str(value).strip())
    except ValueError:
        raise BadRequest(
            f"{parameter} is a change seq (a whole number)", parameter=parameter
        ) from None
    if since < 0:
        raise BadRequest(f"{parameter} is 0 or more", parameter=parameter)
    return since
