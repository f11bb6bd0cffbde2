"""Event types: what a change row is called in the feed, the stream and webhooks.

``<resource>.<what happened>``: created, updated, deleted, and two refinements
of "updated" a consumer most often waits for: ``status_changed`` (the status
moved, whatever else changed with it) for clusters, instances and nodes, and
the end of a job (``job.succeeded``, ``job.failed``, ``job.canceled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The version of every event's shape (gwm.events.schemas says what may change within one).
SCHEMA_VERSION = 1
#: Resources whose status has its own event type.
WITH_STATUS = ("cluster", "instance", "node")
JOB_ENDS = {"SUCCESS": "job.succeeded", "ERROR": "job.failed", "CANCELED": "job.canceled"}

EVENT_TYPES: tuple[str, ...] = (
    *(
        f"{kind}.{what}"
        for kind in WITH_STATUS
        for what in ("created", "updated", "status_changed", "deleted")
    ),
    *(
        f"{kind}.{what}"
        for kind in ("group", "network")
        for what in ("created", "updated", "deleted")
    ),
    "job.created",
    "job.updated",
    "job.succeeded",
    "job.failed",
    "job.canceled",
    "job.deleted",
    "webhook.disabled",
)
RESOURCES = ("cluster", "instance", "node", "group", "network", "job", "webhook")


def event_type(resource: str, action: str, fields: Sequence[str], data: dict[str, Any]) -> str:
    if action == "updated":
        if resource == "job" and "status" in fields and data.get("status") in JOB_ENDS:
            return JOB_ENDS[data["status"]]
        if resource in WITH_STATUS and "status" in fields:
            return f"{resource}.status_changed"
    return f"{resource}.{action}"


def type_matches(wanted: Sequence[str], type_: str) -> bool:
    """``wanted`` names types exactly or as ``<resource>.*``; empty wants everything."""
    if not wanted:
        return True
    resource = type_.split(".", 1)[0]
    return type_ in wanted or f"{resource}.*" in wanted


def types_valid(wanted: Sequence[str]) -> list[str]:
    """The entries of ``wanted`` that name no type (for a 400 that says which)."""
    return [
        item
        for item in wanted
        if item not in EVENT_TYPES and not (item.endswith(".*") and item[:-2] in RESOURCES)
    ]
