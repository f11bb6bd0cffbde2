"""/clusters, /clusters/{cluster}, its /sync and its /actions: the registry and cluster jobs."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest
from gwm.accounts.permissions import require
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
from gwm.clusters.schemas import ClusterCreate, ClusterOut, ClusterPage, ClusterUpdate, SyncQueued
from gwm.clusters.selectors.cache import cluster_detail, cluster_get, cluster_list, cluster_read
from gwm.clusters.services import registry
from gwm.kit.http import json_with_etag
from gwm.kit.pagination import MAX_LIMIT
from gwm.operations.actions import ClusterActionBody
from gwm.schemas import Problem

router = Router()


@router.get(
    "/clusters",
    response={200: ClusterPage, **READ},
    summary="List clusters",
    operation_id="gwm_clusters_api_list_clusters",
)
def list_clusters(
    request: AuthedRequest,
    cursor: str | None = None,
    limit: int | None = param.Query(
        None, ge=1, le=MAX_LIMIT, description="page size (default 100)"
    ),
) -> HttpResponse:
    page = cluster_list(user=request.auth, cursor=cursor, limit=limit)
    return json_with_etag(request, page, ClusterPage)


@router.post(
    "/clusters",
    response={201: ClusterOut, 401: Problem, 403: Problem, 409: Problem, 422: Problem},
    summary="Register a cluster",
    description=(
        "Checks that RAPI answers with these settings before saving (422 with code "
        "`rapi_unreachable`, `rapi_auth_failed`, `rapi_tls_failed` or `not_ganeti` when it "
        "does not). The cluster is PROVISIONING until its first sync."
    ),
    operation_id="gwm_clusters_api_create_cluster",
)
def create_cluster(request: AuthedRequest, body: ClusterCreate) -> Status[dict[str, Any]]:
    require(request.auth, "admin", what="every cluster (registering one)")
    data = body.model_dump()
    connection = registry.Connection(**{k: data.pop(k) for k in registry.CONNECTION_FIELDS})
    name, description = data.pop("name"), data.pop("description")
    cluster = registry.cluster_create(
        actor=request.auth,
        name=name,
        connection=connection,
        description=description,
        intervals=data,
    )
    return Status(201, cluster_detail(cluster, request.auth))


@router.get(
    "/clusters/{cluster}",
    response={200: ClusterOut, **READ_ONE},
    summary="Get a cluster",
    operation_id="gwm_clusters_api_get_cluster",
)
def get_cluster(request: AuthedRequest, cluster: str) -> HttpResponse:
    return json_with_etag(request, cluster_read(cluster, user=request.auth), ClusterOut)


@router.patch(
    "/clusters/{cluster}",
    response={200: ClusterOut, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
    summary="Change a cluster's settings",
    description="Only the fields given change; a field given as `null` is left as it is. "
    "New connection settings are checked against RAPI first (422 when it does not answer).",
    operation_id="gwm_clusters_api_update_cluster",
)
def update_cluster(request: AuthedRequest, cluster: str, body: ClusterUpdate) -> dict[str, Any]:
    target = cluster_get(cluster, user=request.auth)
    require(request.auth, "admin", target)
    # null is "leave it": every column is NOT NULL, and clearing is "" where it means anything.
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return cluster_detail(
        registry.cluster_update(target, actor=request.auth, changes=changes), request.auth
    )


@router.delete(
    "/clusters/{cluster}",
    response={204: None, 401: Problem, 403: Problem, 404: Problem},
    summary="Unregister a cluster (Ganeti is not touched)",
    operation_id="gwm_clusters_api_delete_cluster",
)
def delete_cluster(request: AuthedRequest, cluster: str) -> Status[None]:
    target = cluster_get(cluster, user=request.auth)
    require(request.auth, "admin", target)
    registry.cluster_delete(target, actor=request.auth)
    return Status(204, None)


@router.post(
    "/clusters/{cluster}/sync",
    response={202: SyncQueued, 401: Problem, 403: Problem, 404: Problem},
    summary="Refresh everything from Ganeti now",
    operation_id="gwm_clusters_api_sync_cluster",
)
def sync_cluster(request: AuthedRequest, cluster: str) -> Status[dict[str, Any]]:
    target = cluster_get(cluster, user=request.auth)
    require(request.auth, "admin", target)
    registry.cluster_request_sync(target, actor=request.auth)
    return Status(202, {"cluster": target.name, "queued": True})


@router.post(
    "/clusters/{cluster}/actions",
    response=WRITE,
    summary="Cluster actions: redistribute-config, tags",
    description=WRITE_DOC + " Ganeti's RAPI has no cluster verify, so neither has gwm.",
    tags=OPERATIONS,
    operation_id="gwm_operations_api_cluster_action",
)
def cluster_action(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    body: ClusterActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        f"cluster.{body.action}",
        "",
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )
