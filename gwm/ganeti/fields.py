"""Which Ganeti query fields gwm reads, and how they map onto the cache's columns.

Fields are split by cost (docs/sync.md, "Tiers"): *config* fields come from
Ganeti's configuration and are cheap; *runtime* fields make Ganeti ask every
node and are only read by the runtime sweep. ``/2/query/<resource>`` answers
each cell as ``[status, value]``: 0 is a value; 2 (no data: the node does not
answer, or is marked offline) means "Ganeti could not ask", so the last known
value stays; 3 (unavailable: the item has no such value now, such as the memory
of a stopped instance) clears the runtime fields that name it in ``cleared_by``.
An instance whose primary node is marked offline runs nowhere: its live values
are cleared too (``instance_runtime_values``), though Ganeti answers "no data".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gwm.clusters.models import InstanceStatus, NodeStatus
from gwm.rapi.constants import AdminState
from gwm.rapi.constants import InstanceStatus as GanetiInstanceStatus

QUERY_STATUS_NORMAL = 0
QUERY_STATUS_UNAVAILABLE = 3


@dataclass(frozen=True)
class Field:
    ganeti: str
    column: str
    convert: Callable[[Any], Any] | None = None
    #: Cell statuses that mean the value no longer exists: the column becomes None.
    cleared_by: frozenset[int] = frozenset()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if value else {}


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _common(prefix: list[Field] | None = None) -> list[Field]:
    return [
        Field("name", "name", _str),
        Field("uuid", "uuid", _str),
        Field("serial_no", "serial_no"),
        Field("ctime", "ctime", _float),
        Field("mtime", "mtime", _float),
        Field("tags", "tags", _list),
        *(prefix or []),
    ]


# -- instances --------------------------------------------------------------

#: The cheap fields the fast tier reads for every instance to see what changed.
INSTANCE_FINGERPRINT = ["name", "serial_no", "mtime", "admin_state", "pnode"]

INSTANCE_CONFIG = [
    *_common(),
    Field("admin_state", "admin_state", _str),
    Field("os", "os", _str),
    Field("pnode", "primary_node", _str),
    Field("snodes", "secondary_nodes", _list),
    Field("disk_template", "disk_template", _str),
    Field("network_port", "network_port"),
    Field("disk_usage", "disk_usage"),
    Field("beparams", "beparams", _dict),
    Field("hvparams", "hvparams", _dict),
    Field("osparams", "osparams", _dict),
    Field("custom_beparams", "custom_beparams", _dict),
    Field("custom_hvparams", "custom_hvparams", _dict),
    Field("custom_osparams", "custom_osparams", _dict),
    Field("custom_nicparams", "custom_nicparams", _list),
]
# Per-disk and per-NIC lists, zipped into one dict per disk / NIC.
INSTANCE_DISK_LISTS = {
    "disk.sizes": "size",
    "disk.spindles": "spindles",
    "disk.names": "name",
    "disk.uuids": "uuid",
}
INSTANCE_NIC_LISTS = {
    "nic.names": "name",
    "nic.uuids": "uuid",
    "nic.ips": "ip",
    "nic.macs": "mac",
    "nic.modes": "mode",
    "nic.links": "link",
    "nic.networks": "network",
    "nic.bridges": "bridge",
}
INSTANCE_RUNTIME = [
    Field("status", "ganeti_status", _str),
    Field("oper_state", "oper_state"),
    Field("oper_ram", "oper_ram", cleared_by=frozenset({QUERY_STATUS_UNAVAILABLE})),
    Field("oper_vcpus", "oper_vcpus", cleared_by=frozenset({QUERY_STATUS_UNAVAILABLE})),
]
#: What a running instance reports live, and loses when its node is marked offline.
INSTANCE_LIVE_COLUMNS = ("oper_state", "oper_ram", "oper_vcpus")


def instance_config_query_fields() -> list[str]:
    return [
        *(f.ganeti for f in INSTANCE_CONFIG),
        *INSTANCE_DISK_LISTS,
        *INSTANCE_NIC_LISTS,
    ]


def instance_runtime_query_fields() -> list[str]:
    return ["name", *(f.ganeti for f in INSTANCE_RUNTIME)]


# -- nodes ------------------------------------------------------------------

NODE_CONFIG = [
    *_common(),
    Field("role", "role", _str),
    Field("offline", "offline", bool),
    Field("drained", "drained", bool),
    Field("master_candidate", "master_candidate", bool),
    Field("master_capable", "master_capable", bool),
    Field("vm_capable", "vm_capable", bool),
    Field("group.uuid", "group_uuid", _str),
    Field("group", "group_name", _str),
    Field("pip", "primary_ip", _str),
    Field("sip", "secondary_ip", _str),
    Field("ndparams", "ndparams", _dict),
    Field("pinst_list", "primary_instances", _list),
    Field("sinst_list", "secondary_instances", _list),
]
NODE_RUNTIME = [
    Field("mtotal", "memory_total"),
    Field("mfree", "memory_free"),
    Field("mnode", "memory_node"),
    Field("dtotal", "disk_total"),
    Field("dfree", "disk_free"),
    Field("sptotal", "spindles_total"),
    Field("spfree", "spindles_free"),
    Field("ctotal", "cpu_total"),
    Field("cnodes", "cpu_nodes"),
    Field("csockets", "cpu_sockets"),
    Field("cnos", "cpu_cores"),
]

# -- groups and networks ----------------------------------------------------

GROUP_CONFIG = [
    *_common(),
    Field("alloc_policy", "alloc_policy", _str),
    Field("node_list", "node_list", _list),
    Field("ipolicy", "ipolicy", _dict),
    Field("diskparams", "diskparams", _dict),
    Field("ndparams", "ndparams", _dict),
    Field("networks", "networks", _list),
]

NETWORK_CONFIG = [
    *_common(),
    Field("network", "network", _str),
    Field("gateway", "gateway", _str),
    Field("network6", "network6", _str),
    Field("gateway6", "gateway6", _str),
    Field("mac_prefix", "mac_prefix", _str),
    Field("free_count", "free_count"),
    Field("reserved_count", "reserved_count"),
    Field("map", "map", _str),
    Field("group_list", "group_list", _list),
    Field("inst_list", "inst_list", _list),
    Field("external_reservations", "external_reservations", _str),
]


# -- rows -------------------------------------------------------------------


def row_values(
    query_fields: list[str], row: list[list[Any]], fields: list[Field]
) -> dict[str, Any]:
    """Map one ``/2/query`` row onto columns, leaving out cells Ganeti had no data for."""
    cells = dict(zip(query_fields, row, strict=True))
    values: dict[str, Any] = {}
    for field in fields:
        cell = cells.get(field.ganeti)
        if cell is None:
            continue
        if cell[0] in field.cleared_by:
            values[field.column] = None
            continue
        if cell[0] != QUERY_STATUS_NORMAL:
            continue
        value = cell[1]
        values[field.column] = field.convert(value) if field.convert else value
    return values


def instance_runtime_values(query_fields: list[str], row: list[list[Any]]) -> dict[str, Any]:
    """An instance's runtime row; on a node marked offline nothing runs, so nothing is live."""
    values = row_values(query_fields, row, INSTANCE_RUNTIME)
    if values.get("ganeti_status") == GanetiInstanceStatus.ERROR_NODEOFFLINE:
        values.update(dict.fromkeys(INSTANCE_LIVE_COLUMNS))
    return values


def zip_lists(
    query_fields: list[str], row: list[list[Any]], lists: dict[str, str]
) -> list[dict[str, Any]] | None:
    """Zip Ganeti's parallel per-disk/per-NIC lists into one dict per item."""
    cells = dict(zip(query_fields, row, strict=True))
    columns: dict[str, list[Any]] = {}
    for ganeti_name, key in lists.items():
        cell = cells.get(ganeti_name)
        if cell is not None and cell[0] == QUERY_STATUS_NORMAL and cell[1] is not None:
            columns[key] = list(cell[1])
    if not columns:
        return None
    length = max(len(values) for values in columns.values())
    return [
        {"index": index}
        | {key: (values[index] if index < len(values) else None) for key, values in columns.items()}
        for index in range(length)
    ]


# -- status model -----------------------------------------------------------


def instance_status(ganeti_status: str, admin_state: str) -> str:
    """gwm's instance status from Ganeti's (docs/status-model.md)."""
    if ganeti_status == GanetiInstanceStatus.RUNNING:
        return InstanceStatus.RUNNING
    if ganeti_status in {
        GanetiInstanceStatus.ADMIN_DOWN,
        GanetiInstanceStatus.ADMIN_OFFLINE,
        GanetiInstanceStatus.USER_DOWN,
    }:
        return InstanceStatus.STOPPED
    if ganeti_status.startswith("ERROR_"):
        return InstanceStatus.ERROR
    # No runtime answer yet: say what the configuration says it should be.
    if admin_state == AdminState.UP:
        return InstanceStatus.UNKNOWN
    if admin_state in {AdminState.DOWN, AdminState.OFFLINE}:
        return InstanceStatus.STOPPED
    return InstanceStatus.UNKNOWN


def node_status(*, offline: bool, drained: bool, reachable: bool = True) -> str:
    if offline:
        return NodeStatus.OFFLINE
    if not reachable:
        return NodeStatus.UNKNOWN
    if drained:
        return NodeStatus.DRAINED
    return NodeStatus.ONLINE
