"""What a cached object looks like in an answer: its output fields, columns and orderings.

Each output field names the columns it reads and how it renders them, so
``?fields=`` reads only the columns the chosen fields need. Renderers take the
row and the clusters' :class:`ClusterRef` (name and freshness), read once per
request. The response schemas (gwm.clusters.schemas) declare exactly these
fields; a test keeps the two the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Model

from gwm.clusters.models import Cluster, Instance, Network, Node, NodeGroup
from gwm.kit.http import rfc3339
from gwm.kit.urls import cluster_url, resource_url


@dataclass(frozen=True)
class ClusterRef:
    """What rendering an object needs of its cluster."""

    name: str
    synced_at: datetime | None
    stale: bool


Refs = dict[int, ClusterRef]
Render = Callable[[dict[str, Any], Refs], Any]
#: output field -> (the columns it reads, how it renders them)
Spec = dict[str, tuple[list[str], Render]]


def _col(column: str) -> tuple[list[str], Render]:
    return [column], lambda row, refs: row[column]


def _time(column: str) -> tuple[list[str], Render]:
    return [column], lambda row, refs: rfc3339(row[column])


def _epoch(column: str) -> tuple[list[str], Render]:
    def render(row: dict[str, Any], refs: Refs) -> Any:
        value = row[column]
        return None if value is None else rfc3339(datetime.fromtimestamp(value, tz=UTC))

    return [column], render


def _synced_at(row: dict[str, Any], refs: Refs) -> str | None:
    # A round that read the whole cluster confirmed every object in it.
    own = row["synced_at"]
    cluster = refs[row["cluster_id"]].synced_at
    latest = max((t for t in (own, cluster) if t is not None), default=None)
    return rfc3339(latest)


def _url(kind: str) -> tuple[list[str], Render]:
    return ["cluster_id", "name"], lambda row, refs: resource_url(
        kind, refs[row["cluster_id"]].name, row["name"]
    )


def _ganeti(columns: dict[str, str]) -> tuple[list[str], Render]:
    return list(columns.values()), lambda row, refs: {
        name: row[column] for name, column in columns.items()
    }


def _common(kind: str) -> Spec:
    return {
        "name": _col("name"),
        "cluster": (["cluster_id"], lambda row, refs: refs[row["cluster_id"]].name),
        "url": _url(kind),
        "status": (["effective_status"], lambda row, refs: row["effective_status"]),
        "synced_at": (["synced_at", "cluster_id"], _synced_at),
        "uuid": _col("uuid"),
        "tags": _col("tags"),
        "serial_no": _col("serial_no"),
        "ctime": _epoch("ctime"),
        "mtime": _epoch("mtime"),
    }


def _without_status(kind: str) -> Spec:
    return {name: spec for name, spec in _common(kind).items() if name != "status"}


INSTANCE_FIELDS: Spec = {
    **_common("instance"),
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
    "runtime_synced_at": _time("runtime_synced_at"),
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

NODE_FIELDS: Spec = {
    **_common("node"),
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
    "runtime_synced_at": _time("runtime_synced_at"),
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

GROUP_FIELDS: Spec = {
    **_without_status("group"),
    "alloc_policy": _col("alloc_policy"),
    "nodes": _col("node_list"),
    "networks": _col("networks"),
    "ipolicy": _col("ipolicy"),
    "diskparams": _col("diskparams"),
    "ndparams": _col("ndparams"),
}

NETWORK_FIELDS: Spec = {
    **_without_status("network"),
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
    """A cached collection: its kind (as jobs name it), model, fields and orderings."""

    kind: str
    model: type[Model]
    fields: Spec
    orderings: dict[str, str]
    has_status: bool = True


INSTANCES = Resource(
    "instance",
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
NODES = Resource("node", Node, NODE_FIELDS, {"name": "name", "status": "effective_status"})
GROUPS = Resource("group", NodeGroup, GROUP_FIELDS, {"name": "name"}, has_status=False)
NETWORKS = Resource("network", Network, NETWORK_FIELDS, {"name": "name"}, has_status=False)


def columns(chosen: list[str], spec: Spec) -> list[str]:
    """The columns the ``chosen`` output fields read, each once."""
    return list(dict.fromkeys(col for name in chosen for col in spec[name][0]))


def render(
    rows: list[dict[str, Any]], chosen: list[str], spec: Spec, refs: Refs
) -> list[dict[str, Any]]:
    renderers = [(name, spec[name][1]) for name in chosen]
    return [{name: draw(row, refs) for name, draw in renderers} for row in rows]


def render_cluster(
    cluster: Cluster, counts: dict[str, int], *, connection: bool = True
) -> dict[str, Any]:
    """A registered cluster as the API shows it (ClusterOut); its connection (RAPI URL, user,
    TLS) is blanked unless ``connection``: only the cluster's admins see where it is."""
    shown = {
        "rapi_url": cluster.rapi_url if connection else "",
        "username": cluster.username if connection else "",
        "tls_fingerprint": (cluster.tls_fingerprint or None) if connection else None,
        "tls_ca_pem": (cluster.tls_ca_pem or None) if connection else None,
    }
    return {
        "name": cluster.name,
        "url": cluster_url(cluster.name),
        "status": cluster.status,
        "description": cluster.description,
        **shown,
        "tls_verify": cluster.tls_verify,
        "error": cluster.error or None,
        "error_at": rfc3339(cluster.error_at),
        "synced_at": rfc3339(cluster.synced_at),
        "sync": {
            "watch_interval": cluster.watch_interval,
            "fast_interval": cluster.fast_interval,
            "runtime_interval": cluster.runtime_interval,
            "slow_interval": cluster.slow_interval,
            "stale_after": cluster.stale_after,
            "watch_synced_at": rfc3339(cluster.watch_synced_at),
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
