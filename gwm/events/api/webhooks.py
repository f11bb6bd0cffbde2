"""/api/v1/webhooks: subscriptions to the change log, pushed as signed HTTP POSTs.

Owners manage their own webhooks (global admins everyone's); the rules are in
gwm.events.webhooks.services and .selectors, the sending in gwm.events.webhooks.deliver.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.errors import Forbidden, ValidationFailed
from gwm.events.webhooks import selectors, services
from gwm.events.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    ReplayIn,
    ReplayOut,
    RotateIn,
    SecretOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
)
from gwm.kit.pagination import INT_MAX, check_limit
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["webhooks"])

WebhookId = param.Path(..., ge=1, le=INT_MAX, description="gwm's webhook id")
DeliveryId = param.Path(..., ge=1, le=INT_MAX, description="the delivery's id")
READ = {401: Problem, 404: Problem}
WRITE = {401: Problem, 403: Problem, 404: Problem, 422: Problem}


def _out(webhook: Any) -> dict[str, Any]:
    return selectors.webhook_render(webhook, selectors.health(webhook))


@router.post(
    "/webhooks",
    response={201: WebhookCreated, 401: Problem, 403: Problem, 422: Problem},
    summary="Subscribe a URL to events",
    description=(
        "Events you may see that pass the filters are POSTed to `url`, signed as the Standard "
        "Webhooks specification says (`webhook-id` is the event's id, the same on every "
        "retry). The answer carries the signing secret. Loopback, private, link-local and "
        "metadata addresses are refused (`422 target_refused`) unless the server allows them."
    ),
    operation_id="gwm_events_api_create_webhook",
)
def create_webhook(request: AuthedRequest, body: WebhookIn) -> Status[dict[str, Any]]:
    webhook = services.webhook_create(actor=request.auth, **body.model_dump())
    return Status(201, {**_out(webhook), "secret": webhook.secrets[0]["secret"]})


@router.get(
    "/webhooks",
    response={200: WebhookPage, 401: Problem},
    summary="Your webhooks and hooks (global admins: everyone's), with their health",
    operation_id="gwm_events_api_list_webhooks",
)
def list_webhooks(
    request: AuthedRequest,
    kind: str | None = param.Query(None, description="`webhook` or `hook` (default: both)"),
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    limit = check_limit(limit)
    return selectors.webhooks_page(request.auth, kind=kind, cursor=cursor, limit=limit)


@router.get(
    "/webhooks/{webhook_id}",
    response={200: WebhookOut, **READ},
    summary="One webhook and its health",
    operation_id="gwm_events_api_get_webhook",
)
def get_webhook(request: AuthedRequest, webhook_id: int = WebhookId) -> dict[str, Any]:
    return _out(selectors.webhook_get(request.auth, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    response={200: WebhookOut, **WRITE, 409: Problem},
    summary="Change a webhook's URL, filters, payload or activity",
    description="A hook's URL and filters are its resource's `/hook` (409 `hook_field`).",
    operation_id="gwm_events_api_update_webhook",
)
def update_webhook(
    request: AuthedRequest, body: WebhookPatch, webhook_id: int = WebhookId
) -> dict[str, Any]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(name for name, value in changes.items() if value is None)
    if nulls:
        raise ValidationFailed(f"{nulls[0]} may not be null (leave it out to keep it)")
    return _out(services.webhook_update(webhook, actor=request.auth, **changes))


@router.delete(
    "/webhooks/{webhook_id}",
    response={204: None, 401: Problem, 403: Problem, 404: Problem},
    summary="Delete a webhook and its delivery log",
    operation_id="gwm_events_api_delete_webhook",
)
def delete_webhook(request: AuthedRequest, webhook_id: int = WebhookId) -> Status[None]:
    services.webhook_delete(selectors.webhook_get(request.auth, webhook_id), actor=request.auth)
    return Status(204, None)


@router.get(
    "/webhooks/{webhook_id}/secret",
    response={200: SecretOut, 401: Problem, 403: Problem, 404: Problem},
    summary="The secrets that sign the webhook's deliveries",
    description="Not to read-only tokens: a secret lets its holder forge deliveries.",
    operation_id="gwm_events_api_get_webhook_secret",
)
def get_webhook_secret(request: AuthedRequest, webhook_id: int = WebhookId) -> dict[str, Any]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    try:
        services.require_writer(request.auth)
    except Forbidden:
        raise Forbidden("a read-only token is not given webhook secrets", verb="update") from None
    return {"secrets": selectors.current_secrets(webhook)}


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response={200: SecretOut, **WRITE},
    summary="A new signing secret; the old ones keep signing for a while",
    description=(
        "Deliveries carry one signature per valid secret, so a receiver verifies with the old "
        "secret or the new one while it switches over."
    ),
    operation_id="gwm_events_api_rotate_webhook_secret",
)
def rotate_webhook_secret(
    request: AuthedRequest, body: RotateIn | None = None, webhook_id: int = WebhookId
) -> dict[str, Any]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    overlap = body.overlap_hours if body is not None else None
    webhook = services.webhook_rotate_secret(webhook, actor=request.auth, overlap_hours=overlap)
    return {"secrets": selectors.current_secrets(webhook)}


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response={200: DeliveryPage, **READ},
    summary="The webhook's delivery log, newest first",
    operation_id="gwm_events_api_list_webhook_deliveries",
)
def list_deliveries(
    request: AuthedRequest,
    webhook_id: int = WebhookId,
    status: str | None = param.Query(None, description="pending, delivered or failed"),
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    return selectors.deliveries_page(
        webhook, status=status, cursor=cursor, limit=check_limit(limit)
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}",
    response={200: DeliveryOut, **READ},
    summary="One delivery: request, answer, timing, attempts",
    operation_id="gwm_events_api_get_webhook_delivery",
)
def get_delivery(
    request: AuthedRequest, webhook_id: int = WebhookId, delivery_id: int = DeliveryId
) -> dict[str, Any]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    return selectors.delivery_detail(selectors.delivery_get(webhook, delivery_id))


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut, 401: Problem, 403: Problem, 404: Problem, 409: Problem},
    summary="Send a delivery again (same id and body), as a new entry of the log",
    operation_id="gwm_events_api_redeliver_webhook_delivery",
)
def redeliver(
    request: AuthedRequest, webhook_id: int = WebhookId, delivery_id: int = DeliveryId
) -> Status[dict[str, Any]]:
    delivery = selectors.delivery_get(selectors.webhook_get(request.auth, webhook_id), delivery_id)
    again = services.delivery_redeliver(delivery, actor=request.auth)
    return Status(202, selectors.delivery_detail(again))


@router.post(
    "/webhooks/{webhook_id}/replay",
    response={202: ReplayOut, **WRITE, 410: Problem},
    summary="Send again the events after a change seq that the webhook matches",
    description=(
        "History is read from the change log, as the owner may see it now, up to where the "
        "webhook has got; each event keeps its id. A `since` below the retention floor is "
        "`410 Gone` with the `floor`."
    ),
    operation_id="gwm_events_api_replay_webhook",
)
def replay_webhook(
    request: AuthedRequest, body: ReplayIn, webhook_id: int = WebhookId
) -> Status[dict[str, Any]]:
    webhook = selectors.webhook_get(request.auth, webhook_id)
    replayed = services.webhook_replay(webhook, actor=request.auth, since=body.since)
    return Status(202, asdict(replayed))
