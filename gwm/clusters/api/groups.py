"""/clusters/{cluster}/groups, /clusters/{cluster}/groups/{group} and its /actions."""

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
from gwm.clusters.schemas import GroupOut, GroupPage, GroupQuery
from gwm.clusters.selectors.cache import object_get, object_list
from gwm.clusters.selectors.fields import GROUPS
from gwm.kit.http import json_with_etag
from gwm.operations.actions import GroupActionBody, GroupCreate, GroupModify
from gwm.schemas import Problem

router = Router()


@router.get(
    "/clusters/{cluster}/groups",
    response={200: GroupPage, **READ, 404: Problem},
    summary="List a cluster's node groups",
    operation_id="gwm_clusters_api_list_groups",
)
def list_groups(request: AuthedRequest, cluster: str, query: Query[GroupQuery]) -> HttpResponse:
    page = object_list(GROUPS, cluster, query.params(), user=request.auth)
    return json_with_etag(request, page, GroupPage)


@router.post(
    "/clusters/{cluster}/groups",
    response=WRITE,
    summary="Create a node group",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_create_group",
)
def create_group(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    body: GroupCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "group.create",
        body.name,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.get(
    "/clusters/{cluster}/groups/{group}",
    response={200: GroupOut, **READ_ONE},
    summary="Get a node group",
    operation_id="gwm_clusters_api_get_group",
)
def get_group(request: AuthedRequest, cluster: str, group: str) -> HttpResponse:
    return json_with_etag(request, object_get(GROUPS, cluster, group, user=request.auth), GroupOut)


@router.patch(
    "/clusters/{cluster}/groups/{group}",
    response=WRITE,
    summary="Modify a node group",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_modify_group",
)
def modify_group(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    body: GroupModify,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "group.modify",
        group,
        body,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.delete(
    "/clusters/{cluster}/groups/{group}",
    response=WRITE,
    summary="Delete a node group",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_delete_group",
)
def delete_group(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "group.delete",
        group,
        {},
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.post(
    "/clusters/{cluster}/groups/{group}/actions",
    response=WRITE,
    summary="Rename, assign nodes, tags",
    description=WRITE_DOC,
    tags=OPERATIONS,
    operation_id="gwm_operations_api_group_action",
)
def group_action(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    body: GroupActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        f"group.{body.action}",
        group,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
