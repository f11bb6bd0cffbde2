"""/instances across clusters, and /clusters/{cluster}/instances[/{instance}[/actions|/console]].

Reads answer from the cache; writes are jobs (gwm.clusters.api.common.submit);
the console is asked of Ganeti now.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from ninja import Query, Router, Status

from gwm.accounts.auth import AuthedRequest
from gwm.accounts.permissions import require_on
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
from gwm.clusters.schemas import InstanceExportQuery, InstanceOut, InstancePage, InstanceQuery
from gwm.clusters.selectors.cache import cluster_get, instance_export, instance_list, object_get
from gwm.clusters.selectors.fields import INSTANCES
from gwm.kit.http import json_default, json_with_etag
from gwm.operations.actions import InstanceActionBody, InstanceCreate, InstanceModify
from gwm.operations.schemas import ConsoleOut
from gwm.operations.services.live import instance_console as console_of
from gwm.schemas import Problem

router = Router()


@router.get(
    "/instances",
    response={200: InstancePage, **READ},
    tags=["instances"],
    summary="List instances across every cluster",
    description=(
        "Filters: `cluster` (comma-separated names), `status` (comma-separated), `node` "
        "(primary node), `tag`, `search` (name contains). `fields=name,status` returns only "
        "those fields; `ordering=name|-name|status|primary_node|memory|vcpus|os|mtime`."
    ),
    operation_id="gwm_clusters_api_list_instances",
)
def list_instances(request: AuthedRequest, query: Query[InstanceQuery]) -> HttpResponse:
    page = instance_list(query.filters(), query.params(), user=request.auth)
    return json_with_etag(request, page, InstancePage)


NDJSON = "application/x-ndjson"
PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes as the API writes them (json_default)


@router.get(
    "/instances/export",
    response={400: Problem, 401: Problem},
    tags=["instances"],
    summary="Every instance at once, as JSON lines",
    description=(
        "The instances of the list's filters, fields and ordering, all of them in one answer "
        "(`application/x-ndjson`: one JSON object per line, no pages), for a client that "
        "wants everything at once, e.g. `fields=name,status` of 100,000 instances."
    ),
    operation_id="gwm_clusters_api_export_instances",
    openapi_extra={
        "responses": {
            200: {
                "description": "One instance (InstanceOut, or the chosen fields) per line",
                "content": {NDJSON: {"schema": {"type": "string"}}},
            }
        }
    },
)
def export_instances(request: AuthedRequest, query: Query[InstanceExportQuery]) -> HttpResponse:
    chunks = instance_export(query.filters(), query.fields, query.ordering, user=request.auth)
    lines = [
        orjson.dumps(item, default=json_default, option=PASSTHROUGH)
        for chunk in chunks
        for item in chunk
    ]
    return HttpResponse(b"\n".join(lines) + b"\n" if lines else b"", content_type=NDJSON)


@router.get(
    "/clusters/{cluster}/instances",
    response={200: InstancePage, **READ, 404: Problem},
    summary="List a cluster's instances",
    operation_id="gwm_clusters_api_list_cluster_instances",
)
def list_cluster_instances(
    request: AuthedRequest, cluster: str, query: Query[InstanceQuery]
) -> HttpResponse:
    page = instance_list(query.filters(), query.params(), user=request.auth, cluster_name=cluster)
    return json_with_etag(request, page, InstancePage)


@router.post(
    "/clusters/{cluster}/instances",
    response=WRITE,
    summary="Create an instance",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_create_instance",
)
def create_instance(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    body: InstanceCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "instance.create",
        body.name,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.get(
    "/clusters/{cluster}/instances/{instance}",
    response={200: InstanceOut, **READ_ONE},
    summary="Get an instance",
    operation_id="gwm_clusters_api_get_instance",
)
def get_instance(request: AuthedRequest, cluster: str, instance: str) -> HttpResponse:
    found = object_get(INSTANCES, cluster, instance, user=request.auth)
    return json_with_etag(request, found, InstanceOut)


@router.patch(
    "/clusters/{cluster}/instances/{instance}",
    response=WRITE,
    summary="Modify an instance (OpInstanceSetParams)",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_modify_instance",
)
def modify_instance(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    body: InstanceModify,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "instance.modify",
        instance,
        body,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.delete(
    "/clusters/{cluster}/instances/{instance}",
    response=WRITE,
    summary="Delete an instance",
    description=WRITE_DOC,
    operation_id="gwm_operations_api_delete_instance",
)
def delete_instance(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    shutdown_timeout: int | None = None,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        "instance.delete",
        instance,
        {"shutdown_timeout": shutdown_timeout},
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.post(
    "/clusters/{cluster}/instances/{instance}/actions",
    response=WRITE,
    summary="Start, shutdown, reboot, reinstall, migrate, failover, rename, ...",
    description=WRITE_DOC,
    tags=OPERATIONS,
    operation_id="gwm_operations_api_instance_action",
)
def instance_action(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    body: InstanceActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
    callback_url: str | None = CallbackUrl,
) -> Status[dict[str, Any]]:
    return submit(
        request,
        response,
        cluster,
        f"instance.{body.action}",
        instance,
        body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
    )


@router.get(
    "/clusters/{cluster}/instances/{instance}/console",
    response={
        200: ConsoleOut,
        401: Problem,
        404: Problem,
        409: Problem,
        502: Problem,
        503: Problem,
        504: Problem,
    },
    summary="Console details (asked of Ganeti now)",
    tags=OPERATIONS,
    operation_id="gwm_operations_api_instance_console",
)
def instance_console(request: AuthedRequest, cluster: str, instance: str) -> dict[str, Any]:
    target = cluster_get(cluster, user=request.auth)
    require_on(request.auth, "console", target, "instance", instance)
    return console_of(actor=request.auth, cluster=target, name=instance)
