"""The shapes of webhooks, their health, secrets and delivery log in /api/v1/webhooks."""

from __future__ import annotations

from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from gwm.kit.pagination import INT_MAX

FILTER_ITEMS = 100

TYPES_DOC = "event types (`instance.status_changed`) or `<resource>.*`; empty: every type"
CLUSTERS_DOC = "cluster names; empty: every cluster the owner sees"
RESOURCES_DOC = (
    "resources: `<kind>` (`node`), `<kind>:<cluster>/<name>` (`instance:prod/web1`), "
    "`cluster:<name>`, `job:<id>`; empty: every resource"
)
TAGS_DOC = "events of instances carrying one of these tags now; empty: no tag filter"
PAYLOAD_DOC = (
    "`full`: the whole event; `thin`: id, type and resource only (read the rest from the "
    "API). A full event over the size limit goes out thin with `truncated: true`."
)


class WebhookIn(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="where to POST (http or https, a public host)")
    description: str = Field("", max_length=200)
    types: list[str] = Field(default_factory=list, max_length=FILTER_ITEMS, description=TYPES_DOC)
    clusters: list[str] = Field(
        default_factory=list, max_length=FILTER_ITEMS, description=CLUSTERS_DOC
    )
    resources: list[str] = Field(
        default_factory=list, max_length=FILTER_ITEMS, description=RESOURCES_DOC
    )
    tags: list[str] = Field(default_factory=list, max_length=FILTER_ITEMS, description=TAGS_DOC)
    payload: Literal["full", "thin"] = Field("full", description=PAYLOAD_DOC)
    active: bool = True


class WebhookPatch(Schema):
    """Only what is given changes."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2000)
    description: str | None = Field(None, max_length=200)
    types: list[str] | None = Field(None, max_length=FILTER_ITEMS, description=TYPES_DOC)
    clusters: list[str] | None = Field(None, max_length=FILTER_ITEMS, description=CLUSTERS_DOC)
    resources: list[str] | None = Field(None, max_length=FILTER_ITEMS, description=RESOURCES_DOC)
    tags: list[str] | None = Field(None, max_length=FILTER_ITEMS, description=TAGS_DOC)
    payload: Literal["full", "thin"] | None = None
    active: bool | None = Field(
        None,
        description="false pauses it (deliveries wait); true again starts from the newest "
        "change (replay sends what it missed) and clears a disabled state",
    )


class WebhookHealth(Schema):
    state: Literal["healthy", "retrying", "disabled"]
    reason: str | None = Field(description="why it was disabled")
    backlog: int = Field(description="deliveries waiting to be sent")
    last_success_at: str | None
    last_failure_at: str | None
    failing_since: str | None = Field(description="since when every attempt failed")
    disabled_at: str | None
    p95_latency_ms: float | None = Field(description="of its last 100 delivered events")


class WebhookOut(Schema):
    id: int
    kind: Literal["webhook", "hook"]
    api_url: str = Field(description="this webhook in the API")
    url: str = Field(description="where its deliveries go")
    description: str
    owner: str
    types: list[str]
    clusters: list[str]
    resources: list[str]
    tags: list[str]
    payload: Literal["full", "thin"]
    active: bool
    cursor: int = Field(description="the last change seq the fan-out has looked at for it")
    health: WebhookHealth
    created_at: str
    updated_at: str


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret (also at …/secret)")


class WebhookPage(Schema):
    items: list[WebhookOut]
    next: str | None


class SecretEntry(Schema):
    secret: str
    expires_at: str | None = Field(description="null: the current secret")


class SecretOut(Schema):
    secrets: list[SecretEntry] = Field(
        description="newest first: every delivery is signed with each of them"
    )


class RotateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float | None = Field(
        None,
        ge=0,
        le=24 * 7,
        description="how long the old secrets keep signing (default: the server's setting; "
        "0 stops them at once)",
    )


class DeliveryRequest(Schema):
    headers: dict[str, str] = Field(description="of the last attempt")
    body: str = Field(description="exactly what was signed and sent")


class DeliveryResponse(Schema):
    status: int | None
    excerpt: str = Field(description="the first characters of the answer")


class DeliveryOut(Schema):
    id: int
    api_url: str
    event_id: str = Field(description="the webhook-id header: evt_<seq>, the same on every retry")
    seq: int
    type: str
    ordering_key: str = Field(description="the resource: its events go out in seq order")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    replay: bool = Field(description="sent again on request (a redelivery or a replay)")
    next_attempt_at: str | None
    request: DeliveryRequest
    response: DeliveryResponse
    error: str | None
    duration_ms: float | None
    attempted_at: str | None
    delivered_at: str | None
    created_at: str


class DeliveryPage(Schema):
    items: list[DeliveryOut]
    next: str | None


class ReplayIn(Schema):
    model_config = ConfigDict(extra="forbid")

    since: int = Field(ge=0, le=INT_MAX, description="a change seq: events after it are sent")


class ReplayOut(Schema):
    queued: int = Field(description="deliveries queued")
    next_since: int = Field(description="where this replay stopped")
    more: bool = Field(description="true: call again from next_since for the rest")
