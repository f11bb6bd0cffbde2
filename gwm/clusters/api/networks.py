"""/clusters/{cluster}/networks, /clusters/{cluster}/networks/{network} and its /actions."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from ninja import Query, Router, Status

from gwm.accounts.auth import AuthedRequest
from gwm.clusters.api.common import (
    ACTION_BODY,
    OPERATIONS,
    READ,
    READ_ONE,
    WRITE,
    WRITE_DOC,
    CallbackUrl,
    IdempotencyKey,
    submit,
)
from gwm.clusters.schemas import NetworkOut, NetworkPage, NetworkQuery
from gwm.clusters.selectors.cache import object_get, object_list
from gwm.clusters.selectors.fields import NETWORKS
from gwm.kit.http import json_with_etag
from gwm.operations.actions import NetworkActionBody, NetworkCreate, NetworkModify
from gwm.schemas import Problem

router = Router()


@router.get(
    "/clusters/{cluster}/networks",
    response={200: NetworkPage, **READ, 404: Problem},
    summary="List a cluster's networks",
    operation_id="gwm_clusters_api_list_networks",
)
def list_networks(request: AuthedRequest, cluster: str, query: Query[NetworkQuery]) -> HttpResponse:
    page = object_list(NETWORKS, cluster, query.params(), user=request.auth)
    return json_with_etag(request, page, NetworkPage)


@router.post(
    "/clusters/{cluster}/networks",
    response=WRITE,
    summary="Create a network",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_create_network",
)
def create_network(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    body: NetworkCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "network.create",
        body.name,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.get(
    "/clusters/{cluster}/networks/{network}",
    response={200: NetworkOut, **READ_ONE},
    summary="Get a network",
    operation_id="gwm_clusters_api_get_network",
)
def get_network(request: AuthedRequest, cluster: str, network: str) -> HttpResponse:
    return json_with_etag(
        request, object_get(NETWORKS, cluster, network, user=request.auth), NetworkOut
    )


@router.patch(
    "/clusters/{cluster}/networks/{network}",
    response=WRITE,
    summary="Modify a network",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_modify_network",
)
def modify_network(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    body: NetworkModify,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "network.modify",
        network,
        body,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.delete(
    "/clusters/{cluster}/networks/{network}",
    response=WRITE,
    summary="Delete a network",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_delete_network",
)
def delete_network(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "network.delete",
        network,
        {},
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.post(
    "/clusters/{cluster}/networks/{network}/actions",
    response=WRITE,
    summary="Rename, connect, disconnect, tags",
    description=WRITE_DOC,
    tags=OPERATIONS,
    operation_id="gwm_operations_api_network_action",
)
def group_action(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    body: NetworkActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        f"network.{body.action}",
        network,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
