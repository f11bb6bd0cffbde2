"""Webhook subscriptions and their deliveries, fed from the change log.

A :class:`Webhook` is either a subscription (``kind=webhook``: event types and
filters) or a per-resource hook (``kind=hook``: one instance, node or job;
the tracker's ``track_hook``). Both are signed, retried and logged the same
way. ``cursor`` is the last change seq the fan-out has looked at for it.

A :class:`Delivery` is one event on its way to one webhook. ``ordering_key``
names the resource ("instance:prod/web1"): deliveries with the same key go out
in ``seq`` order, one at a time; different keys never wait for each other.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WebhookKind(models.TextChoices):
    WEBHOOK = "webhook"
    HOOK = "hook"


class WebhookState(models.TextChoices):
    HEALTHY = "healthy"
    RETRYING = "retrying"
    DISABLED = "disabled"


class Payload(models.TextChoices):
    FULL = "full"
    THIN = "thin"


class Webhook(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=WebhookKind.choices, default=WebhookKind.WEBHOOK)
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    # Filters (empty: everything the owner may see). Types may end in ".*".
    types = models.JSONField(default=list, blank=True)
    clusters = models.JSONField(default=list, blank=True)
    resources = models.JSONField(default=list, blank=True)  # "instance:prod/web1", "node:prod/n1"
    tags = models.JSONField(default=list, blank=True)
    payload = models.CharField(max_length=8, choices=Payload.choices, default=Payload.FULL)
    active = models.BooleanField(default=True)
    # Signing secrets, newest first: [{"secret": "whsec_...", "expires_at": iso or null}].
    secrets = models.JSONField(default=list)
    cursor = models.BigIntegerField(default=0)
    # A hook on a job ends with the job: it is removed once the job's end was delivered.
    once = models.BooleanField(default=False)
    state = models.CharField(
        max_length=10, choices=WebhookState.choices, default=WebhookState.HEALTHY
    )
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["active", "cursor"], name="webhook_active_cursor")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its turn or its next attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up (retries exhausted, endpoint disabled or gone)


class Delivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    seq = models.BigIntegerField()
    # The event's type, for the delivery log (and a job hook's end) without parsing the body.
    type = models.CharField(max_length=48, blank=True, default="")
    ordering_key = models.CharField(max_length=320)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker that claimed it holds it until then (a worker killed mid-send loses nothing).
    claimed_until = models.DateTimeField(null=True, blank=True)
    replay = models.BooleanField(default=False)
    # The last attempt, for the delivery log.
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True, default="")
    response_status = models.IntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=1000, blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")
    duration_ms = models.FloatField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["webhook", "ordering_key", "status", "seq"], name="delivery_key"),
            models.Index(fields=["webhook", "seq"], name="delivery_webhook_seq"),
        ]
        constraints = [
            # The fan-out may run twice over the same changes (a worker killed before it
            # moved the cursor): an event reaches a webhook once, replays aside.
            models.UniqueConstraint(
                fields=["webhook", "seq"],
                condition=models.Q(replay=False),
                name="delivery_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} of change #{self.seq} to webhook #{self.webhook_id}"
