"""Reading webhooks: who sees which, their health, secrets and delivery log, as the API
renders them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet
from django.utils import timezone

from gwm.accounts.grants import Grants
from gwm.errors import BadRequest, NotFound
from gwm.events.models import Delivery, DeliveryStatus, Webhook, WebhookKind
from gwm.kit.http import rfc3339
from gwm.kit.pagination import paginate
from gwm.kit.urls import API_ROOT

LATENCY_SAMPLE = 100

# -- who sees which --------------------------------------------------------------------


def is_admin(user: User) -> bool:
    return Grants.of(user).grant_for("admin", None) is not None


def webhooks_visible(user: User, kind: str | None = None) -> QuerySet[Webhook]:
    """The webhooks (and hooks: they are webhooks of one resource) ``user`` may see."""
    rows = Webhook.objects.select_related("owner")
    if kind is not None:
        rows = rows.filter(kind=kind)
    return rows if is_admin(user) else rows.filter(owner=user)


def webhook_get(user: User, webhook_id: int) -> Webhook:
    webhook = webhooks_visible(user).filter(pk=webhook_id).first()
    if webhook is None:
        raise NotFound(f"no webhook #{webhook_id}")
    return webhook


# -- secrets ---------------------------------------------------------------------------


def valid_secrets(webhook: Webhook, now: datetime) -> list[str]:
    """The secrets that sign now: the newest, and older ones until they expire."""
    return [
        entry["secret"]
        for entry in webhook.secrets
        if not entry.get("expires_at") or datetime.fromisoformat(entry["expires_at"]) > now
    ]


def current_secrets(webhook: Webhook) -> list[dict[str, Any]]:
    """The secrets that sign now, newest first, with when each stops."""
    now = timezone.now()
    valid = set(valid_secrets(webhook, now))
    return [
        {"secret": entry["secret"], "expires_at": entry.get("expires_at")}
        for entry in webhook.secrets
        if entry["secret"] in valid
    ]


# -- health and the delivery log ------------------------------------------------------


def _p95(durations: Sequence[float]) -> float | None:
    if not durations:
        return None
    ordered = sorted(durations)
    return round(ordered[math.ceil(0.95 * len(ordered)) - 1], 3)


def health_many(webhooks: Sequence[Webhook]) -> dict[int, dict[str, Any]]:
    """Each webhook's health: state and why, backlog, last success and failure, p95 latency
    (ms) of its last 100 delivered events. Two queries and one per webhook."""
    ids = [webhook.pk for webhook in webhooks]
    backlog = dict(
        Delivery.objects.filter(webhook_id__in=ids, status=DeliveryStatus.PENDING)
        .values("webhook_id")
        .annotate(count=Count("pk"))
        .values_list("webhook_id", "count")
    )
    health = {}
    for webhook in webhooks:
        durations = Delivery.objects.filter(
            webhook=webhook, status=DeliveryStatus.DELIVERED, duration_ms__isnull=False
        ).order_by("-seq")
        health[webhook.pk] = {
            "state": webhook.state,
            "reason": webhook.disabled_reason or None,
            "backlog": backlog.get(webhook.pk, 0),
            "last_success_at": rfc3339(webhook.last_success_at),
            "last_failure_at": rfc3339(webhook.last_failure_at),
            "failing_since": rfc3339(webhook.failing_since),
            "disabled_at": rfc3339(webhook.disabled_at),
            "p95_latency_ms": _p95(
                [
                    ms
                    for ms in durations.values_list("duration_ms", flat=True)[:LATENCY_SAMPLE]
                    if ms is not None
                ]
            ),
        }
    return health


def health(webhook: Webhook) -> dict[str, Any]:
    return health_many([webhook])[webhook.pk]


def webhook_render(webhook: Webhook, health: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": webhook.pk,
        "kind": webhook.kind,
        "api_url": f"{API_ROOT}/webhooks/{webhook.pk}",
        "url": webhook.url,
        "description": webhook.description,
        "owner": webhook.owner.get_username(),
        "types": webhook.types,
        "clusters": webhook.clusters,
        "resources": webhook.resources,
        "tags": webhook.tags,
        "payload": webhook.payload,
        "active": webhook.active,
        "cursor": webhook.cursor,
        "health": health,
        "created_at": rfc3339(webhook.created_at),
        "updated_at": rfc3339(webhook.updated_at),
    }


def webhooks_page(
    user: User, *, kind: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    if kind is not None and kind not in WebhookKind.values:
        raise BadRequest(f"kind is one of {', '.join(WebhookKind.values)}", parameter="kind")
    page = paginate(
        webhooks_visible(user, kind),
        columns=["id"],
        order_column="id",
        descending=False,
        cursor=cursor,
        limit=limit,
    )
    webhooks = list(webhooks_visible(user).filter(pk__in=[row["id"] for row in page.rows]))
    healths = health_many(webhooks)
    return {
        "items": [webhook_render(webhook, healths[webhook.pk]) for webhook in webhooks],
        "next": page.next_cursor,
    }


DELIVERY_COLUMNS = [
    "id", "webhook_id", "seq", "type", "ordering_key", "status", "attempts", "replay",
    "next_attempt_at", "request_headers", "request_body", "response_status",
    "response_excerpt", "error", "duration_ms", "attempted_at", "delivered_at", "created_at",
]  # fmt: skip


def delivery_render(row: dict[str, Any]) -> dict[str, Any]:
    pending = row["status"] == DeliveryStatus.PENDING
    return {
        "id": row["id"],
        "api_url": f"{API_ROOT}/webhooks/{row['webhook_id']}/deliveries/{row['id']}",
        "event_id": f"evt_{row['seq']}",
        "seq": row["seq"],
        "type": row["type"],
        "ordering_key": row["ordering_key"],
        "status": row["status"],
        "attempts": row["attempts"],
        "replay": row["replay"],
        "next_attempt_at": rfc3339(row["next_attempt_at"]) if pending else None,
        "request": {"headers": row["request_headers"], "body": row["request_body"]},
        "response": {"status": row["response_status"], "excerpt": row["response_excerpt"]},
        "error": row["error"] or None,
        "duration_ms": row["duration_ms"],
        "attempted_at": rfc3339(row["attempted_at"]),
        "delivered_at": rfc3339(row["delivered_at"]),
        "created_at": rfc3339(row["created_at"]),
    }


def deliveries_page(
    webhook: Webhook, *, status: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    """The delivery log, newest first."""
    rows = Delivery.objects.filter(webhook=webhook)
    if status is not None:
        if status not in DeliveryStatus.values:
            raise BadRequest(
                f"status is one of {', '.join(DeliveryStatus.values)}", parameter="status"
            )
        rows = rows.filter(status=status)
    page = paginate(
        rows,
        columns=DELIVERY_COLUMNS,
        order_column="id",
        descending=True,
        cursor=cursor,
        limit=limit,
    )
    return {"items": [delivery_render(row) for row in page.rows], "next": page.next_cursor}


def delivery_get(webhook: Webhook, delivery_id: int) -> Delivery:
    delivery = Delivery.objects.filter(webhook=webhook, pk=delivery_id).first()
    if delivery is None:
        raise NotFound(f"webhook #{webhook.pk} has no delivery #{delivery_id}")
    return delivery


def delivery_detail(delivery: Delivery) -> dict[str, Any]:
    return delivery_render(Delivery.objects.filter(pk=delivery.pk).values(*DELIVERY_COLUMNS)[0])
