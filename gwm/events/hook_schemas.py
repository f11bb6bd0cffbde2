"""The bodies of PUT/GET .../hook: where to call, which events, and where its log and secret are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import ConfigDict, Field

from gwm.events.models import Webhook
from gwm.kit.urls import API_ROOT

URL_MAX = 2000  # Webhook.url's column


class HookIn(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=URL_MAX, description="where gwm POSTs the events (http or https)")
    types: list[str] | None = Field(
        None,
        max_length=50,
        description="event types of this resource's kind, or `<kind>.*` (the default)",
    )


class HookOut(Schema):
    id: int = Field(description="the hook's webhook id")
    url: str
    types: list[str]
    resource: str = Field(description='its resource key: "instance:prod/web1", "job:12"')
    once: bool = Field(description="removed after the job's final event was delivered (jobs)")
    active: bool
    state: str = Field(description="healthy, retrying or disabled, as for webhooks")
    webhook_url: str = Field(description="the hook as a webhook: /api/v1/webhooks/{id}")
    deliveries_url: str = Field(description="its delivery log: /api/v1/webhooks/{id}/deliveries")
    secret_url: str = Field(
        description="where its signing secret is read: /api/v1/webhooks/{id}/secret"
    )
    created_at: datetime
    updated_at: datetime


def webhook_url(webhook_id: int) -> str:
    return f"{API_ROOT}/webhooks/{webhook_id}"


def hook_out(hook: Webhook) -> dict[str, Any]:
    here = webhook_url(hook.pk)
    return {
        "id": hook.pk,
        "url": hook.url,
        "types": hook.types,
        "resource": hook.resources[0] if hook.resources else "",
        "once": hook.once,
        "active": hook.active,
        "state": hook.state,
        "webhook_url": here,
        "deliveries_url": f"{here}/deliveries",
        "secret_url": f"{here}/secret",
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }
