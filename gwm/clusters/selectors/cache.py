"""Reads of the cluster registry and the cache, for one user. Hot paths use ``.values()``.

Every read takes the requesting ``user`` and reads only what
gwm.accounts.permissions lets that user read; what they may not read is
404, like what does not exist. Every object's ``status`` is its effective
status: objects of a cluster gwm has not heard from for longer than its
``stale_after`` read UNKNOWN, whatever was last cached. The clusters table is
small, so the stale set is computed once per request in Python and folded
into the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Case, Count, F, Q, QuerySet, Value, When
from django.utils import timezone

from gwm.accounts.permissions import grant_for, readable_clusters, readable_objects
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Node
from gwm.clusters.selectors.fields import (
    INSTANCES,
    ClusterRef,
    Refs,
    Resource,
    columns,
    render,
    render_cluster,
)
from gwm.errors import BadRequest, NotFound
from gwm.kit.pagination import check_limit, paginate, parse_fields, parse_ordering

VALID_INSTANCE_STATUSES = {
    "PROVISIONING",
    "RUNNING",
    "STOPPED",
    "BUSY",
    "ERROR",
    "DELETING",
    "UNKNOWN",
}


@dataclass(frozen=True)
class ListParams:
    """How a client pages a collection: ``?fields=&ordering=&cursor=&limit=``."""

    fields: str | None = None
    ordering: str | None = None
    cursor: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class InstanceFilters:
    """The instance filters, each a comma-separated list meaning any of them."""

    cluster: str | None = None
    status: str | None = None
    node: str | None = None
    tag: str | None = None
    search: str | None = None


# -- the registry ----------------------------------------------------------------------


def cluster_get(name: str, *, user: User) -> Cluster:
    cluster = readable_clusters(user).filter(name=name).first()
    if cluster is None:
        raise NotFound(f"no cluster named {name!r}")
    return cluster


def cluster_counts(cluster_ids: list[int], user: User | None = None) -> dict[int, dict[str, int]]:
    """Nodes and instances per cluster that ``user`` (None: anyone) may see, in two grouped
    queries (no N+1)."""
    counts = {pk: {"nodes": 0, "instances": 0} for pk in cluster_ids}
    for model, key in ((Node, "nodes"), (Instance, "instances")):
        objects: QuerySet[Any] = model._default_manager.filter(cluster_id__in=cluster_ids)
        if user is not None:
            objects = readable_objects(user, objects)
        rows = objects.values("cluster_id").annotate(total=Count("id"))
        for row in rows:
            counts[row["cluster_id"]][key] = row["total"]
    return counts


def cluster_detail(cluster: Cluster, user: User | None = None) -> dict[str, Any]:
    """One cluster as the API shows it (ClusterOut) to ``user`` (None: an admin of it): the
    counts of what they see, its connection only when they administer it."""
    connection = user is None or grant_for(user, "admin", cluster) is not None
    counts = cluster_counts([cluster.pk], user)[cluster.pk]
    return render_cluster(cluster, counts, connection=connection)


def cluster_read(name: str, *, user: User) -> dict[str, Any]:
    return cluster_detail(cluster_get(name, user=user), user)


def cluster_list(*, user: User, cursor: str | None, limit: int | None) -> dict[str, Any]:
    """One page of the clusters ``user`` may read, by name (ClusterPage)."""
    page = paginate(
        readable_clusters(user),
        columns=["id"],
        order_column="name",
        descending=False,
        cursor=cursor,
        limit=check_limit(limit),
    )
    ids = [row["id"] for row in page.rows]
    clusters = Cluster.objects.in_bulk(ids)
    counts = cluster_counts(ids, user)
    items = [
        render_cluster(
            clusters[pk], counts[pk], connection=grant_for(user, "admin", clusters[pk]) is not None
        )
        for pk in ids
    ]
    return {"items": items, "next": page.next_cursor}


# -- the cache -------------------------------------------------------------------------


def cluster_refs(user: User) -> Refs:
    """Name and freshness of every cluster ``user`` may read, in one query."""
    now = timezone.now()
    refs = {}
    for pk, name, synced_at, stale_after, status in readable_clusters(user).values_list(
        "pk", "name", "synced_at", "stale_after", "status"
    ):
        stale = status != ClusterStatus.PROVISIONING and (
            synced_at is None or synced_at < now - timedelta(seconds=stale_after)
        )
        refs[pk] = ClusterRef(name=name, synced_at=synced_at, stale=stale)
    return refs


def _with_effective_status(queryset: QuerySet[Any], refs: Refs) -> QuerySet[Any]:
    stale_ids = [pk for pk, ref in refs.items() if ref.stale]
    status: F | Case = F("status")
    if stale_ids:
        status = Case(When(cluster_id__in=stale_ids, then=Value("UNKNOWN")), default=F("status"))
    annotated: QuerySet[Any] = queryset.annotate(effective_status=status)
    return annotated


def _page(
    resource: Resource, queryset: QuerySet[Any], params: ListParams, refs: Refs
) -> dict[str, Any]:
    """One page of ``queryset`` as ``{"items": [...], "next": cursor}``."""
    chosen = parse_fields(params.fields, resource.fields)
    order_column, descending = parse_ordering(params.ordering, resource.orderings, "name")
    limit = check_limit(params.limit)
    if resource.has_status:
        queryset = _with_effective_status(queryset, refs)
    page = paginate(
        queryset,
        columns=columns(chosen, resource.fields),
        order_column=order_column,
        descending=descending,
        cursor=params.cursor,
        limit=limit,
    )
    return {"items": render(page.rows, chosen, resource.fields, refs), "next": page.next_cursor}


def object_list(
    resource: Resource, cluster_name: str, params: ListParams, *, user: User
) -> dict[str, Any]:
    """One page of a cluster's nodes, groups or networks (its ...Page schema)."""
    cluster = cluster_get(cluster_name, user=user)
    queryset = readable_objects(user, resource.model._default_manager.filter(cluster=cluster))
    return _page(resource, queryset, params, cluster_refs(user))


def object_get(resource: Resource, cluster_name: str, name: str, *, user: User) -> dict[str, Any]:
    """One cached object, every field (its ...Out schema)."""
    cluster = cluster_get(cluster_name, user=user)
    refs = cluster_refs(user)
    queryset = readable_objects(
        user, resource.model._default_manager.filter(cluster=cluster, name=name)
    )
    if resource.has_status:
        queryset = _with_effective_status(queryset, refs)
    row = queryset.values(*columns(list(resource.fields), resource.fields)).first()
    if row is None:
        raise NotFound(f"cluster {cluster.name!r} has no {resource.kind} named {name!r}")
    return render([row], list(resource.fields), resource.fields, refs)[0]


def instance_list(
    filters: InstanceFilters,
    params: ListParams,
    *,
    user: User,
    cluster_name: str | None = None,
) -> dict[str, Any]:
    """One page of instances, of one cluster or across every readable one (InstancePage)."""
    cluster = cluster_get(cluster_name, user=user) if cluster_name is not None else None
    refs = cluster_refs(user)
    queryset = readable_objects(user, _instance_queryset(filters, refs, cluster))
    return _page(INSTANCES, queryset, params, refs)


#: Rows fetched per round trip while an export streams (iterator chunk size).
EXPORT_CHUNK = 2000


def instance_export(
    filters: InstanceFilters,
    fields: str | None,
    ordering: str | None,
    *,
    user: User,
) -> Iterator[list[dict[str, Any]]]:
    """Every readable instance the filters match, in chunks of rendered objects: one query
    without pages, for a client that wants them all at once. Bad input raises here, before
    the first chunk."""
    refs = cluster_refs(user)
    chosen = parse_fields(fields, INSTANCES.fields)
    order_column, descending = parse_ordering(ordering, INSTANCES.orderings, "name")
    sign = "-" if descending else ""
    queryset = readable_objects(user, _instance_queryset(filters, refs, None))
    rows = (
        queryset.order_by(f"{sign}{order_column}", f"{sign}id")
        .values(*columns(chosen, INSTANCES.fields))
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    return (render(chunk, chosen, INSTANCES.fields, refs) for chunk in _chunks(rows))


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(rows, EXPORT_CHUNK)):
        yield chunk


def _instance_queryset(
    filters: InstanceFilters, refs: Refs, cluster: Cluster | None
) -> QuerySet[Any]:
    queryset = _with_effective_status(Instance.objects.all(), refs)
    if cluster is not None:
        queryset = queryset.filter(cluster=cluster)
    if filters.cluster:
        names = set(_parts(filters.cluster))
        queryset = queryset.filter(cluster_id__in=[pk for pk, r in refs.items() if r.name in names])
    if filters.status:
        statuses = {part.upper() for part in _parts(filters.status)}
        unknown = statuses - VALID_INSTANCE_STATUSES
        if unknown:
            raise BadRequest(
                f"unknown status {', '.join(sorted(unknown))}; "
                f"choose from {', '.join(sorted(VALID_INSTANCE_STATUSES))}",
                parameter="status",
            )
        queryset = queryset.filter(effective_status__in=statuses)
    if filters.node:
        queryset = queryset.filter(primary_node__in=_parts(filters.node))
    if filters.tag:
        any_tag = Q()
        for tag in _parts(filters.tag):
            any_tag |= Q(tag_index__contains=f"\n{tag}\n")
        queryset = queryset.filter(any_tag)
    if filters.search:
        queryset = queryset.filter(name__icontains=filters.search)
    return queryset


def _parts(raw: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
