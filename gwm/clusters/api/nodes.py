"""/clusters/{cluster}/nodes, /clusters/{cluster}/nodes/{node} and its /actions."""

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
from gwm.clusters.schemas import NodeOut, NodePage, NodeQuery
from gwm.clusters.selectors.cache import object_get, object_list
from gwm.clusters.selectors.fields import NODES
from gwm.kit.http import json_with_etag
from gwm.operations.actions import NodeActionBody
from gwm.schemas import Problem

router = Router()


@router.get(
    "/clusters/{cluster}/nodes",
    response={200: NodePage, **READ, 404: Problem},
    summary="List a cluster's nodes",
    operation_id="gwm_clusters_api_list_nodes",
)
def list_nodes(request: AuthedRequest, cluster: str, query: Query[NodeQuery]) -> HttpResponse:
    page = object_list(NODES, cluster, query.params(), user=request.auth)
    return json_with_etag(request, page, NodePage)


@router.get(
    "/clusters/{cluster}/nodes/{node}",
    response={200: NodeOut, **READ_ONE},
    summary="Get a node",
    operation_id="gwm_clusters_api_get_node",
)
def get_node(request: AuthedRequest, cluster: str, node: str) -> HttpResponse:
    return json_with_etag(request, object_get(NODES, cluster, node, user=request.auth), NodeOut)


@router.post(
    "/clusters/{cluster}/nodes/{node}/actions",
    response=WRITE,
    summary="Drain, undrain, offline, online, set-role, evacuate, migrate, powercycle",
    description=WRITE_DOC,
    tags=OPERATIONS,
    operation_id="gwm_operations_api_node_action",
)
def node_action(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    node: str,
    body: NodeActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        f"node.{body.action}",
        node,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
