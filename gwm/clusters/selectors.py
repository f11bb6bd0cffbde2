"""Reads of the cluster registry and the cache. Hot paths use ``.values()``.

Every object's ``status`` is read through :func:`effective_status`: objects of
a cluster gwm has not heard from for longer than its ``stale_after`` read
UNKNOWN, whatever was last cached. The clusters table is small, so the stale
set is computed once per request in Python and folded into the query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, Model, Q, QuerySet, Value, When
from django.utils import timezone

from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.errors import BadRequest, NotFound
from gwm.kit.http import rfc3339
from gwm.kit.pagination import Page, check_limit, paginate, parse_fields, parse_ordering

API = "/api/v1"


@dataclass(frozen=True)
class ClusterRef:
    name: str
    synced_at: datetime | None
    stale: bool


def cluster_refs() -> dict[int, ClusterRef]:
    now = timezone.now()
    refs = {}
    for pk, name, synced_at, stale_after, status in Cluster.objects.values_list(
        "pk", "name", "synced_at", "stale_after", "status"
    ):
        stale = status != ClusterStatus.PROVISIONING and (
            synced_at is None or synced_at < now - timedelta(seconds=stale_after)
        )
        refs[pk] = ClusterRef(name=name, synced_at=synced_at, stale=stale)
    return refs


def with_effective_status(queryset: QuerySet[Any], refs: dict[int, ClusterRef]) -> QuerySet[Any]:
    stale_ids = [pk for pk, ref in refs.items() if ref.stale]
    if not stale_ids:
        return queryset.annotate(effective_status=F("status"))
    return queryset.annotate(
        effective_status=Case(
            When(cluster_id__in=stale_ids, then=Value("UNKNOWN")), default=F("status")
        )
    )


def cluster_get(name: str) -> Cluster:
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        raise NotFound(f"no cluster named {name!r}")
    return cluster


# -- output field specs -----------------------------------------------------

Render = Callable[[dict[str, Any], dict[int, ClusterRef]], Any]


def _col(column: str) -> tuple[list[str], Render]:
    return [column], lambda row, refs: row[column]


def _epoch(column: str) -> tuple[list[str], Render]:
    def render(row: dict[str, Any], refs: dict[int, ClusterRef]) -> Any:
        value = row[column]
        return None if value is None else rfc3339(datetime.fromtimestamp(value, tz=UTC))

    return [column], render


def _synced_at(row: dict[str, Any], refs: dict[int, ClusterRef]) -> str | None:
    # A round that read the whole cluster confirmed every object in it.
    own = row["synced_at"]
    cluster = refs[row["cluster_id"]].synced_at
    latest = max((t for t in (own, cluster) if t is not None), default=None)
    return rfc3339(latest)


def _object_url(kind: str) -> tuple[list[str], Render]:
    return [
        "cluster_id",
        "name",
    ], lambda row, refs: f"{API}/clusters/{refs[row['cluster_id']].name}/{kind}/{row['name']}"


def _ganeti(columns: dict[str, str]) -> tuple[list[str], Render]:
    return list(columns.values()), lambda row, refs: {
        name: row[column] for name, column in columns.items()
    }


def _common(kind: str) -> dict[str, tuple[list[str], Render]]:
    return {
        "name": _col("name"),
        "cluster": (["cluster_id"], lambda row, refs: refs[row["cluster_id"]].name),
        "url": _object_url(kind),
        "status": (["effective_status"], lambda row, refs: row["effective_status"]),
        "synced_at": (["synced_at", "cluster_id"], _synced_at),
        "uuid": _col("uuid"),
        "tags": _col("tags"),
        "serial_no": _col("serial_no"),
        "ctime": _epoch("ctime"),
        "mtime": _epoch("mtime"),
    }


INSTANCE_FIELDS: dict[str, tuple[list[str], Render]] = {
    **_common("instances"),
    "os": _col("os"),
    "primary_node": _col("primary_node"),
    "secondary_nodes": _col("secondary_nodes"),
    "disk_template": _col("disk_template"),
    "memory": _col("memory"),
    "vcpus": _col("vcpus"),
    "disks": _col("disks"),
    "nics": _col("nics"),
    "disk_usage": _col("disk_usage"),
    "network_port": _col("network_port"),
    "beparams": _col("beparams"),
    "hvparams": _col("hvparams"),
    "osparams": _col("osparams"),
    "runtime_synced_at": (["runtime_synced_at"], lambda r, refs: rfc3339(r["runtime_synced_at"])),
    "ganeti": _ganeti(
        {
            "status": "ganeti_status",
            "admin_state": "admin_state",
            "oper_state": "oper_state",
            "oper_ram": "oper_ram",
            "oper_vcpus": "oper_vcpus",
            "custom_beparams": "custom_beparams",
            "custom_hvparams": "custom_hvparams",
            "custom_osparams": "custom_osparams",
            "custom_nicparams": "custom_nicparams",
        }
    ),
}

NODE_FIELDS: dict[str, tuple[list[str], Render]] = {
    **_common("nodes"),
    "role": _col("role"),
    "group": _col("group_name"),
    "primary_ip": _col("primary_ip"),
    "secondary_ip": _col("secondary_ip"),
    "master_capable": _col("master_capable"),
    "vm_capable": _col("vm_capable"),
    "memory_total": _col("memory_total"),
    "memory_free": _col("memory_free"),
    "disk_total": _col("disk_total"),
    "disk_free": _col("disk_free"),
    "cpu_total": _col("cpu_total"),
    "primary_instances": _col("primary_instances"),
    "secondary_instances": _col("secondary_instances"),
    "ndparams": _col("ndparams"),
    "runtime_synced_at": (["runtime_synced_at"], lambda r, refs: rfc3339(r["runtime_synced_at"])),
    "ganeti": _ganeti(
        {
            "role": "role",
            "offline": "offline",
            "drained": "drained",
            "master_candidate": "master_candidate",
            "group.uuid": "group_uuid",
            "reachable": "reachable",
            "mnode": "memory_node",
            "sptotal": "spindles_total",
            "spfree": "spindles_free",
            "cnodes": "cpu_nodes",
            "csockets": "cpu_sockets",
            "cnos": "cpu_cores",
        }
    ),
}

GROUP_FIELDS: dict[str, tuple[list[str], Render]] = {
    **{k: v for k, v in _common("groups").items() if k != "status"},
    "alloc_policy": _col("alloc_policy"),
    "nodes": _col("node_list"),
    "networks": _col("networks"),
    "ipolicy": _col("ipolicy"),
    "diskparams": _col("diskparams"),
    "ndparams": _col("ndparams"),
}

NETWORK_FIELDS: dict[str, tuple[list[str], Render]] = {
    **{k: v for k, v in _common("networks").items() if k != "status"},
    "network": _col("network"),
    "gateway": _col("gateway"),
    "network6": _col("network6"),
    "gateway6": _col("gateway6"),
    "mac_prefix": _col("mac_prefix"),
    "free_count": _col("free_count"),
    "reserved_count": _col("reserved_count"),
    "groups": _col("group_list"),
    "instances": _col("inst_list"),
    "map": _col("map"),
    "external_reservations": _col("external_reservations"),
}


@dataclass(frozen=True)
class Resource:
    model: type[Model]
    fields: dict[str, tuple[list[str], Render]]
    orderings: dict[str, str]
    has_status: bool = True


INSTANCES = Resource(
    Instance,
    INSTANCE_FIELDS,
    {
        "name": "name",
        "status": "effective_status",
        "primary_node": "primary_node",
        "memory": "memory",
        "vcpus": "vcpus",
        "os": "os",
        "mtime": "mtime",
    },
)
NODES = Resource(Node, NODE_FIELDS, {"name": "name", "status": "effective_status"})
GROUPS = Resource(NodeGroup, GROUP_FIELDS, {"name": "name"}, has_status=False)
NETWORKS = Resource(Network, NETWORK_FIELDS, {"name": "name"}, has_status=False)


def _render(
    rows: list[dict[str, Any]],
    chosen: list[str],
    spec: dict[str, tuple[list[str], Render]],
    refs: dict[int, ClusterRef],
) -> list[dict[str, Any]]:
    renderers = [(name, spec[name][1]) for name in chosen]
    return [{name: render(row, refs) for name, render in renderers} for row in rows]


def _columns(chosen: list[str], spec: dict[str, tuple[list[str], Render]]) -> list[str]:
    return list(dict.fromkeys(col for name in chosen for col in spec[name][0]))


@dataclass(frozen=True)
class ListParams:
    fields: str | None = None
    ordering: str | None = None
    cursor: str | None = None
    limit: int | None = None


def list_objects(
    resource: Resource,
    queryset: QuerySet[Any],
    params: ListParams,
    refs: dict[int, ClusterRef] | None = None,
) -> dict[str, Any]:
    """One page of a cached collection as ``{"items": [...], "next": cursor}``."""
    refs = refs if refs is not None else cluster_refs()
    chosen = parse_fields(params.fields, resource.fields)
    order_column, descending = parse_ordering(params.ordering, resource.orderings, "name")
    limit = check_limit(params.limit)
    if resource.has_status:
        queryset = with_effective_status(queryset, refs)
    page: Page = paginate(
        queryset,
        columns=_columns(chosen, resource.fields),
        order_column=order_column,
        descending=descending,
        cursor=params.cursor,
        limit=limit,
    )
    return {"items": _render(page.rows, chosen, resource.fields, refs), "next": page.next_cursor}


def get_object(resource: Resource, cluster: Cluster, name: str, kind: str) -> dict[str, Any]:
    refs = cluster_refs()
    queryset = resource.model._default_manager.filter(cluster=cluster, name=name)
    if resource.has_status:
        queryset = with_effective_status(queryset, refs)
    row = queryset.values(*_columns(list(resource.fields), resource.fields)).first()
    if row is None:
        raise NotFound(f"cluster {cluster.name!r} has no {kind} named {name!r}")
    return _render([row], list(resource.fields), resource.fields, refs)[0]


@dataclass(frozen=True)
class InstanceFilters:
    cluster: str | None = None
    status: str | None = None
    node: str | None = None
    tag: str | None = None
    search: str | None = None


VALID_INSTANCE_STATUSES = {
    "PROVISIONING",
    "RUNNING",
    "STOPPED",
    "BUSY",
    "ERROR",
    "DELETING",
    "UNKNOWN",
}


def instance_queryset(
    filters: InstanceFilters, refs: dict[int, ClusterRef], cluster: Cluster | None = None
) -> QuerySet[Any]:
    queryset = with_effective_status(Instance.objects.all(), refs)
    if cluster is not None:
        queryset = queryset.filter(cluster=cluster)
    if filters.cluster:
        names = {part.strip() for part in filters.cluster.split(",") if part.strip()}
        ids = [pk for pk, ref in refs.items() if ref.name in names]
        queryset = queryset.filter(cluster_id__in=ids)
    if filters.status:
        statuses = {part.strip().upper() for part in filters.status.split(",") if part.strip()}
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


def cluster_counts(cluster_ids: list[int]) -> dict[int, dict[str, int]]:
    """Nodes and instances per cluster, in two grouped queries (no N+1)."""
    counts = {pk: {"nodes": 0, "instances": 0} for pk in cluster_ids}
    for model, key in ((Node, "nodes"), (Instance, "instances")):
        rows = (
            model._default_manager.filter(cluster_id__in=cluster_ids)
            .values("cluster_id")
            .annotate(total=Count("id"))
        )
        for row in rows:
            counts[row["cluster_id"]][key] = row["total"]
    return counts


def cluster_detail(cluster: Cluster, counts: dict[str, int] | None = None) -> dict[str, Any]:
    if counts is None:
        counts = cluster_counts([cluster.pk])[cluster.pk]
    return {
        "name": cluster.name,
        "url": f"{API}/clusters/{cluster.name}",
        "status": cluster.status,
        "description": cluster.description,
        "rapi_url": cluster.rapi_url,
        "username": cluster.username,
        "tls_fingerprint": cluster.tls_fingerprint or None,
        "tls_ca_pem": cluster.tls_ca_pem or None,
        "tls_verify": cluster.tls_verify,
        "error": cluster.error or None,
        "error_at": rfc3339(cluster.error_at),
        "synced_at": rfc3339(cluster.synced_at),
        "sync": {
            "fast_interval": cluster.fast_interval,
            "runtime_interval": cluster.runtime_interval,
            "slow_interval": cluster.slow_interval,
            "stale_after": cluster.stale_after,
            "fast_synced_at": rfc3339(cluster.fast_synced_at),
            "runtime_synced_at": rfc3339(cluster.runtime_synced_at),
            "slow_synced_at": rfc3339(cluster.slow_synced_at),
            "runtime_cost": cluster.runtime_cost,
        },
        "ganeti": {
            "name": cluster.ganeti_name or None,
            "uuid": cluster.uuid or None,
            "master": cluster.master or None,
            "software_version": cluster.software_version or None,
            "tags": cluster.tags,
            "ctime": cluster.ctime,
            "mtime": cluster.mtime,
            "enabled_hypervisors": cluster.info.get("enabled_hypervisors"),
            "default_hypervisor": cluster.info.get("default_hypervisor"),
            "enabled_disk_templates": cluster.info.get("enabled_disk_templates"),
        },
        "counts": counts,
        "created_at": rfc3339(cluster.created_at),
        "updated_at": rfc3339(cluster.updated_at),
    }
