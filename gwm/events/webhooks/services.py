"""Webhooks as their owners manage them: create, change, rotate, replay; and disabling.

Any authenticated user may own webhooks; a read-only token may look, not change
(403). Owners see their own webhooks, global admins everyone's; anyone else's
is 404, as if it did not exist. A webhook receives the events its owner may see
(checked when each event is queued and again right before it is sent), so a
webhook never shows more than its owner could read in the feed.

Every write here is one transaction; the HTTP layer (gwm.audit_writes) writes
its audit row in the same one. Writes that queue deliveries ring the delivery
task after commit. The reads are gwm.events.webhooks.selectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.accounts.grants import Grants, token_of
from gwm.accounts.permissions import readable_clusters
from gwm.errors import Conflict, Forbidden, ValidationFailed
from gwm.events.feed import check_cursor
from gwm.events.models import Change, Delivery, DeliveryStatus, Webhook, WebhookKind, WebhookState
from gwm.events.services import WEBHOOKS_TASK, ChangeRecord, changes_record, last_seq, seq_bounds
from gwm.events.types import RESOURCES, types_valid
from gwm.events.webhooks import fanout
from gwm.events.webhooks.backoff import retry_scale
from gwm.events.webhooks.signing import new_secret
from gwm.events.webhooks.targets import TargetRefused, allowed_networks_from_settings, check_target
from gwm.kit.enqueue import ring_after_commit
from gwm.kit.http import rfc3339

#: Kinds whose resource key is ``<kind>:<cluster>/<name>``; the others are ``<kind>:<name>``.
IN_A_CLUSTER = ("instance", "node", "group", "network")
#: An endpoint whose every delivery failed this long is disabled (scaled like the retries).
DISABLE_AFTER = timedelta(hours=24)
#: At most this many secrets sign at once (the newest and those still overlapping).
MAX_SECRETS = 5
NOT_VISIBLE = "not visible to the owner any more"
#: What a PATCH of /webhooks/{id} may change of a hook (its URL and types: its /hook PUT).
HOOK_FIELDS = frozenset({"description", "payload", "active"})

# -- who may ---------------------------------------------------------------------------


def require_writer(user: User) -> None:
    if Grants.of(user).read_only:
        raise Forbidden("the token is read-only: it may not change webhooks", verb="update")


# -- checking what an owner asks for ---------------------------------------------------


def _refused(field: str, detail: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(detail, field=field, **extra)


def check_url(url: str) -> None:
    """422 ``target_refused`` for a URL gwm will not send to (targets.py says which)."""
    try:
        check_target(url, allowed_networks_from_settings())
    except TargetRefused as exc:
        raise ValidationFailed(
            f"gwm does not send webhooks to {url}: {exc.reason}",
            code="target_refused",
            field="url",
            reason=exc.reason,
        ) from None


def _resource_ok(entry: str) -> bool:
    kind, colon, rest = entry.partition(":")
    if kind not in RESOURCES:
        return False
    if not colon:
        return True  # every resource of the kind
    if kind in IN_A_CLUSTER:
        cluster, slash, name = rest.partition("/")
        return bool(cluster and slash and name)
    if kind in ("job", "webhook"):
        return rest.isdigit()
    return bool(rest)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))


def _checked(actor: User, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as they will be stored, or a 422 naming the first bad one."""
    if "url" in fields:
        check_url(fields["url"])
    for name in ("types", "clusters", "resources", "tags"):
        if name in fields:
            fields[name] = _unique(fields[name])
    unknown = types_valid(fields.get("types", []))
    if unknown:
        raise _refused("types", f"unknown event type {unknown[0]!r}")
    bad = [entry for entry in fields.get("resources", []) if not _resource_ok(entry)]
    if bad:
        raise _refused(
            "resources",
            f"{bad[0]!r} is not a resource: give <kind>, <kind>:<cluster>/<name> "
            "(instance, node, group, network), cluster:<name>, job:<id> or webhook:<id>",
        )
    if fields.get("clusters"):
        known = set(
            readable_clusters(actor)
            .filter(name__in=fields["clusters"])
            .values_list("name", flat=True)
        )
        missing = [name for name in fields["clusters"] if name not in known]
        if missing:
            raise _refused("clusters", f"no cluster named {missing[0]!r}")
    return fields


def _within_token(actor: User, clusters: Sequence[str]) -> None:
    """A token limited to clusters makes webhooks limited to them: a webhook outlives the
    token and receives what its owner may see, so it may not reach further than the token."""
    token = token_of(actor)
    if token is None or not token.clusters:
        return
    if not clusters or not set(clusters) <= set(token.clusters):
        raise Forbidden(
            "this token is limited to clusters "
            f"{', '.join(token.clusters)}: name them (or some of them) in clusters",
            verb="update",
        )


# -- writes ----------------------------------------------------------------------------


@transaction.atomic
def webhook_create(*, actor: User, url: str, **fields: Any) -> Webhook:
    """A new webhook with a fresh secret; it hears of changes from now on (replay for
    earlier ones)."""
    require_writer(actor)
    checked = _checked(actor, {"url": url, **fields})
    _within_token(actor, checked.get("clusters", []))
    return Webhook.objects.create(
        owner=actor,
        kind=WebhookKind.WEBHOOK,
        secrets=[{"secret": new_secret(), "expires_at": None}],
        cursor=last_seq(),
        **checked,
    )


@transaction.atomic
def webhook_update(webhook: Webhook, *, actor: User, **fields: Any) -> Webhook:
    """Change what was given. Turned active again, a webhook starts afresh: healthy, from
    the newest change on (what it missed meanwhile: replay)."""
    require_writer(actor)
    managed = sorted(set(fields) - HOOK_FIELDS) if webhook.kind == WebhookKind.HOOK else []
    if managed:
        raise Conflict(
            f"a hook's {managed[0]} is set by a PUT on its resource's /hook",
            code="hook_field",
        )
    checked = _checked(actor, fields)
    _within_token(actor, checked.get("clusters", webhook.clusters))
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    reviving = checked.get("active") is True and not webhook.active
    for name, value in checked.items():
        setattr(webhook, name, value)
    if reviving:
        webhook.state, webhook.disabled_reason, webhook.disabled_at = WebhookState.HEALTHY, "", None
        webhook.failing_since = None
        webhook.cursor = last_seq()
    webhook.save()
    return webhook


@transaction.atomic
def webhook_delete(webhook: Webhook, *, actor: User) -> None:
    """The webhook and its delivery log; what was on its way is not sent."""
    require_writer(actor)
    Webhook.objects.filter(pk=webhook.pk).delete()


@transaction.atomic
def webhook_rotate_secret(
    webhook: Webhook, *, actor: User, overlap_hours: float | None = None
) -> Webhook:
    """A new secret signs from now on; the old ones sign too for ``overlap_hours``
    (default GWM_WEBHOOK_SECRET_OVERLAP_HOURS; 0: they stop at once, for a leaked one)."""
    require_writer(actor)
    webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
    now = timezone.now()
    hours = settings.GWM_WEBHOOK_SECRET_OVERLAP_HOURS if overlap_hours is None else overlap_hours
    ends = now + timedelta(hours=hours)
    kept = []
    for entry in webhook.secrets:
        expires = datetime.fromisoformat(entry["expires_at"]) if entry.get("expires_at") else None
        if expires is None or expires > now:
            kept.append(
                {"secret": entry["secret"], "expires_at": rfc3339(min(expires or ends, ends))}
            )
    webhook.secrets = [{"secret": new_secret(), "expires_at": None}, *kept][:MAX_SECRETS]
    webhook.save(update_fields=["secrets", "updated_at"])
    return webhook


@transaction.atomic
def delivery_redeliver(delivery: Delivery, *, actor: User) -> Delivery:
    """Send a delivery's message again (same id and body), as a new entry of the log."""
    require_writer(actor)
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict(
            f"delivery #{delivery.pk} is still on its way (attempt {delivery.attempts + 1} "
            "comes on its own)",
            code="delivery_pending",
        )
    again = Delivery.objects.create(
        webhook_id=delivery.webhook_id,
        seq=delivery.seq,
        type=delivery.type,
        ordering_key=delivery.ordering_key,
        next_attempt_at=timezone.now(),
        request_body=delivery.request_body,
        replay=True,
    )
    ring_after_commit(WEBHOOKS_TASK)
    return again


@transaction.atomic
def webhook_replay(webhook: Webhook, *, actor: User, since: int) -> fanout.Replayed:
    """Send again the events after ``since`` the webhook matches (410 below the floor)."""
    require_writer(actor)
    check_cursor(since, seq_bounds()[0])
    replayed = fanout.replay(webhook, since)
    if replayed.queued:
        ring_after_commit(WEBHOOKS_TASK)
    return replayed


@transaction.atomic
def webhook_disable(webhook_id: int, reason: str) -> bool:
    """Stop an endpoint: it is inactive, its pending deliveries fail, and a
    ``webhook.disabled`` event tells its owner (feed, stream, their other webhooks).
    False when it was not active any more."""
    webhook = Webhook.objects.select_for_update().filter(pk=webhook_id, active=True).first()
    if webhook is None:
        return False
    reason = reason[:500]
    before = {"state": webhook.state, "active": True}
    webhook.active, webhook.state = False, WebhookState.DISABLED
    webhook.disabled_reason, webhook.disabled_at = reason, timezone.now()
    webhook.save(update_fields=["active", "state", "disabled_reason", "disabled_at", "updated_at"])
    Delivery.objects.filter(webhook=webhook, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, error=f"webhook disabled: {reason}"[:500], claimed_until=None
    )
    data = {"active": False, "state": WebhookState.DISABLED.value, "disabled_reason": reason}
    record = ChangeRecord(
        "webhook", str(webhook.pk), "updated", sorted(data), data, before, user_id=webhook.owner_id
    )
    rows = changes_record(cluster_id=None, cluster_name="", records=[record])
    # Its type: an update of a webhook's state to disabled is "webhook.disabled" (until
    # gwm.events.types.event_type says so itself, this names it before anyone reads it).
    Change.objects.filter(seq__in=[row.seq for row in rows]).update(type="webhook.disabled")
    return True


def disable_after() -> timedelta:
    return DISABLE_AFTER * retry_scale()


def health_record(*, succeeded: set[int], failed: set[int], now: datetime) -> None:
    """An endpoint's health after a round of attempts: one success makes it healthy, only
    failures make it retrying; failing for longer than a day disables it."""
    live = Webhook.objects.exclude(state=WebhookState.DISABLED)
    if succeeded:
        live.filter(pk__in=succeeded).update(
            state=WebhookState.HEALTHY, failing_since=None, last_success_at=now
        )
    if failed:
        Webhook.objects.filter(pk__in=failed).update(last_failure_at=now)
    failing = failed - succeeded
    if not failing:
        return
    live.filter(pk__in=failing).update(state=WebhookState.RETRYING)
    Webhook.objects.filter(pk__in=failing, failing_since__isnull=True).update(failing_since=now)
    too_long = Webhook.objects.filter(
        pk__in=failing, active=True, failing_since__lt=now - disable_after()
    ).values_list("pk", "failing_since")
    for pk, since in list(too_long):
        webhook_disable(pk, f"every delivery failed since {rfc3339(since)} (more than a day)")
