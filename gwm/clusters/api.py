"""/api/v1/clusters and the cached reads under it; /api/v1/instances across clusters.

Handlers parse, call one service or selector, and answer. Reads never call
Ganeti: they come from the cache and say how fresh they are.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from gwm.accounts.auth import require_staff, token_auth
from gwm.clusters import selectors, services
from gwm.clusters.models import Cluster, Network, Node, NodeGroup
from gwm.clusters.schemas import (
    ClusterCreate,
    ClusterOut,
    ClusterPage,
    ClusterUpdate,
    GroupOut,
    GroupPage,
    InstanceOut,
    InstancePage,
    NetworkOut,
    NetworkPage,
    NodeOut,
    NodePage,
    SyncQueued,
)
from gwm.kit.http import json_with_etag
from gwm.kit.pagination import MAX_LIMIT, check_limit, paginate
from gwm.schemas import Problem

router = Router(auth=token_auth, tags=["clusters"])

READ = {304: None, 400: Problem, 401: Problem}
READ_ONE = {304: None, 401: Problem, 404: Problem}


def _ordering(resource: selectors.Resource) -> Any:
    choices: list[Any] = [f"{sign}{name}" for name in resource.orderings for sign in ("", "-")]
    return Field(
        None,
        description="sort by this field, `-` first for descending (default: name)",
        json_schema_extra={"enum": choices},
    )


def _fields(resource: selectors.Resource) -> Any:
    return Field(
        None,
        description="comma-separated fields to return (default: all): "
        + ", ".join(resource.fields),
    )


class ListQuery(Schema):
    fields: str | None = None
    ordering: str | None = None
    cursor: str | None = Field(None, description="the `next` of the previous page")
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description="page size (default 100)")


class NodeQuery(ListQuery):
    fields: str | None = _fields(selectors.NODES)
    ordering: str | None = _ordering(selectors.NODES)


class GroupQuery(ListQuery):
    fields: str | None = _fields(selectors.GROUPS)
    ordering: str | None = _ordering(selectors.GROUPS)


class NetworkQuery(ListQuery):
    fields: str | None = _fields(selectors.NETWORKS)
    ordering: str | None = _ordering(selectors.NETWORKS)


def _or_list(what: str) -> Any:
    return Field(
        None,
        description=f"{what}; a comma-separated list or a repeated parameter means any of them",
    )


class InstanceQuery(ListQuery):
    fields: str | None = _fields(selectors.INSTANCES)
    ordering: str | None = _ordering(selectors.INSTANCES)
    cluster: list[str] | None = _or_list("cluster names")
    status: list[str] | None = _or_list("statuses")
    node: list[str] | None = _or_list("primary nodes")
    tag: list[str] | None = _or_list("tags")
    search: str | None = Field(None, description="the name contains this")


def _joined(values: list[str] | None) -> str | None:
    """Repeated values are one comma list: ``a&a`` is ``a,a``."""
    return ",".join(values) if values else None


def _params(query: ListQuery) -> selectors.ListParams:
    return selectors.ListParams(
        fields=query.fields, ordering=query.ordering, cursor=query.cursor, limit=query.limit
    )


def _filters(query: InstanceQuery) -> selectors.InstanceFilters:
    return selectors.InstanceFilters(
        cluster=_joined(query.cluster),
        status=_joined(query.status),
        node=_joined(query.node),
        tag=_joined(query.tag),
        search=query.search,
    )


# -- registry ----------------------------------------------------------------


@router.get("/clusters", response={200: ClusterPage, **READ}, summary="List clusters")
def list_clusters(
    request: HttpRequest,
    cursor: str | None = None,
    limit: int | None = Query(None, ge=1, le=MAX_LIMIT, description="page size (default 100)"),
) -> HttpResponse:
    page = paginate(
        Cluster.objects.all(),
        columns=["id"],
        order_column="name",
        descending=False,
        cursor=cursor,
        limit=check_limit(limit),
    )
    ids = [row["id"] for row in page.rows]
    clusters = Cluster.objects.in_bulk(ids)
    counts = selectors.cluster_counts(ids)
    items = [selectors.cluster_detail(clusters[pk], counts[pk]) for pk in ids]
    return json_with_etag(request, {"items": items, "next": page.next_cursor}, ClusterPage)


@router.post(
    "/clusters",
    response={201: ClusterOut, 401: Problem, 403: Problem, 409: Problem, 422: Problem},
    summary="Register a cluster",
    description=(
        "Checks that RAPI answers with these settings before saving (422 with code "
        "`rapi_unreachable`, `rapi_auth_failed`, `rapi_tls_failed` or `not_ganeti` when it "
        "does not). The cluster is PROVISIONING until its first sync."
    ),
)
def create_cluster(request: HttpRequest, body: ClusterCreate) -> Any:
    require_staff(request, "register clusters")
    data = body.model_dump()
    connection = services.Connection(**{k: data.pop(k) for k in services.CONNECTION_FIELDS})
    name, description = data.pop("name"), data.pop("description")
    cluster = services.cluster_create(
        name=name, connection=connection, description=description, intervals=data
    )
    return Status(201, selectors.cluster_detail(cluster))


@router.get("/clusters/{cluster}", response={200: ClusterOut, **READ_ONE}, summary="Get a cluster")
def get_cluster(request: HttpRequest, cluster: str) -> HttpResponse:
    return json_with_etag(
        request, selectors.cluster_detail(selectors.cluster_get(cluster)), ClusterOut
    )


@router.patch(
    "/clusters/{cluster}",
    response={200: ClusterOut, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
    summary="Change a cluster's settings",
    description="Only the fields given change; a field given as `null` is left as it is. "
    "New connection settings are checked against RAPI first (422 when it does not answer).",
)
def update_cluster(request: HttpRequest, cluster: str, body: ClusterUpdate) -> Any:
    require_staff(request, "change clusters")
    # null is "leave it": every column is NOT NULL, and clearing is "" where it means anything.
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    updated = services.cluster_update(selectors.cluster_get(cluster), changes=changes)
    return selectors.cluster_detail(updated)


@router.delete(
    "/clusters/{cluster}",
    response={204: None, 401: Problem, 403: Problem, 404: Problem},
    summary="Unregister a cluster (Ganeti is not touched)",
)
def delete_cluster(request: HttpRequest, cluster: str) -> Any:
    require_staff(request, "unregister clusters")
    services.cluster_delete(selectors.cluster_get(cluster))
    return Status(204, None)


@router.post(
    "/clusters/{cluster}/sync",
    response={202: SyncQueued, 401: Problem, 403: Problem, 404: Problem},
    summary="Refresh everything from Ganeti now",
)
def sync_cluster(request: HttpRequest, cluster: str) -> Any:
    require_staff(request, "force a sync")
    target = selectors.cluster_get(cluster)
    services.cluster_request_sync(target)
    return Status(202, {"cluster": target.name, "queued": True})


# -- cached objects -----------------------------------------------------------


@router.get(
    "/clusters/{cluster}/nodes",
    response={200: NodePage, **READ, 404: Problem},
    summary="List a cluster's nodes",
)
def list_nodes(request: HttpRequest, cluster: str, query: Query[NodeQuery]) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    page = selectors.list_objects(
        selectors.NODES, Node.objects.filter(cluster=target), _params(query)
    )
    return json_with_etag(request, page, NodePage)


@router.get(
    "/clusters/{cluster}/nodes/{node}", response={200: NodeOut, **READ_ONE}, summary="Get a node"
)
def get_node(request: HttpRequest, cluster: str, node: str) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    return json_with_etag(
        request, selectors.get_object(selectors.NODES, target, node, "node"), NodeOut
    )


@router.get(
    "/clusters/{cluster}/groups",
    response={200: GroupPage, **READ, 404: Problem},
    summary="List a cluster's node groups",
)
def list_groups(request: HttpRequest, cluster: str, query: Query[GroupQuery]) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    page = selectors.list_objects(
        selectors.GROUPS, NodeGroup.objects.filter(cluster=target), _params(query)
    )
    return json_with_etag(request, page, GroupPage)


@router.get(
    "/clusters/{cluster}/groups/{group}",
    response={200: GroupOut, **READ_ONE},
    summary="Get a node group",
)
def get_group(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    return json_with_etag(
        request, selectors.get_object(selectors.GROUPS, target, group, "group"), GroupOut
    )


@router.get(
    "/clusters/{cluster}/networks",
    response={200: NetworkPage, **READ, 404: Problem},
    summary="List a cluster's networks",
)
def list_networks(request: HttpRequest, cluster: str, query: Query[NetworkQuery]) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    page = selectors.list_objects(
        selectors.NETWORKS, Network.objects.filter(cluster=target), _params(query)
    )
    return json_with_etag(request, page, NetworkPage)


@router.get(
    "/clusters/{cluster}/networks/{network}",
    response={200: NetworkOut, **READ_ONE},
    summary="Get a network",
)
def get_network(request: HttpRequest, cluster: str, network: str) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    return json_with_etag(
        request, selectors.get_object(selectors.NETWORKS, target, network, "network"), NetworkOut
    )


@router.get(
    "/clusters/{cluster}/instances",
    response={200: InstancePage, **READ, 404: Problem},
    summary="List a cluster's instances",
)
def list_cluster_instances(
    request: HttpRequest, cluster: str, query: Query[InstanceQuery]
) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    refs = selectors.cluster_refs()
    queryset = selectors.instance_queryset(_filters(query), refs, cluster=target)
    page = selectors.list_objects(selectors.INSTANCES, queryset, _params(query), refs)
    return json_with_etag(request, page, InstancePage)


@router.get(
    "/clusters/{cluster}/instances/{instance}",
    response={200: InstanceOut, **READ_ONE},
    summary="Get an instance",
)
def get_instance(request: HttpRequest, cluster: str, instance: str) -> HttpResponse:
    target = selectors.cluster_get(cluster)
    return json_with_etag(
        request,
        selectors.get_object(selectors.INSTANCES, target, instance, "instance"),
        InstanceOut,
    )


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
)
def list_instances(request: HttpRequest, query: Query[InstanceQuery]) -> HttpResponse:
    refs = selectors.cluster_refs()
    queryset = selectors.instance_queryset(_filters(query), refs)
    page = selectors.list_objects(selectors.INSTANCES, queryset, _params(query), refs)
    return json_with_etag(request, page, InstancePage)
