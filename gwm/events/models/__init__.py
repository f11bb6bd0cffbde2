"""The events app's tables: the change log, and the webhook subscriptions fed from it."""

from gwm.events.models.changes import Change, ChangeAction, ChangeCounter
from gwm.events.models.webhooks import (
    Delivery,
    DeliveryStatus,
    Payload,
    Webhook,
    WebhookKind,
    WebhookState,
)

__all__ = [
    "Change",
    "ChangeAction",
    "ChangeCounter",
    "Delivery",
    "DeliveryStatus",
    "Payload",
    "Webhook",
    "WebhookKind",
    "WebhookState",
]
