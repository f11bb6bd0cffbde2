"""A change row as the event every consumer sees: the feed, the stream and webhooks.

One shape everywhere (docs/events.md; its JSON Schemas are gwm.events.schemas),
so a consumer can switch doors without rewriting its parser.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings

from gwm.events.models import Change, ChangeAction
from gwm.events.types import SCHEMA_VERSION
from gwm.kit.urls import API_ROOT, job_url, resource_url

THIN_KEYS = ("id", "seq", "previous_seq", "type", "schema_version", "time", "resource")


def event_id(seq: int) -> str:
    """The event's id: the webhook-id header too, the same on every retry and replay."""
    return f"evt_{seq}"


def resource_key(kind: str, cluster: str, name: str) -> str:
    """One resource's name across the tracker: webhook filters, hooks, delivery order.

    ``instance:prod/web1``, ``node:prod/n1``, ``cluster:prod``, ``job:12``, ``webhook:3``.
    """
    if kind in ("job", "webhook"):
        return f"{kind}:{name}"
    if kind == "cluster":
        return f"cluster:{name or cluster}"
    return f"{kind}:{cluster}/{name}"


def key_of(change: Change) -> str:
    return resource_key(change.resource, change.cluster_name, change.name)


def _url(change: Change) -> str | None:
    if change.resource == "job":
        return job_url(int(change.name)) if change.name.isdigit() else None
    if change.resource == "webhook":
        return f"{API_ROOT}/webhooks/{change.name}"
    return resource_url(change.resource, change.cluster_name, change.name)


def _changes(change: Change) -> dict[str, Any]:
    if change.action == ChangeAction.DELETED:
        return {}
    return {
        name: {
            "before": change.before.get(name) if change.action == ChangeAction.UPDATED else None,
            "after": change.data.get(name),
        }
        for name in change.fields
    }


def _time(change: Change) -> str:
    return change.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event_of(change: Change) -> dict[str, Any]:
    event = _event(change)
    if settings.GWM_VALIDATE_EVENTS:
        from gwm.events.schemas import event_validate

        event_validate(event)
    return event


def _event(change: Change) -> dict[str, Any]:
    return {
        "id": event_id(change.seq),
        "seq": change.seq,
        "previous_seq": change.previous_seq,
        "type": change.type or f"{change.resource}.{change.action}",
        "schema_version": SCHEMA_VERSION,
        "time": _time(change),
        "resource": {
            "kind": change.resource,
            "cluster": change.cluster_name or None,
            "name": change.name,
            "url": _url(change),
        },
        "changes": _changes(change),
        "cause": {
            "job": change.job_id,
            "job_url": job_url(change.job_id) if change.job_id else None,
            "user": change.user_name or None,
        },
    }


def thin(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its changes and cause: a consumer fetches what it needs."""
    return {key: event[key] for key in THIN_KEYS}
