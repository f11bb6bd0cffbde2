"""The node query fields, in luxid's order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gwm.simulator.derived import node_ndparams
from gwm.simulator.fields.base import (
    RS_NODATA,
    UNAVAILABLE,
    Ctx,
    Entry,
    FieldDef,
    Getter,
    attr,
    common_fields,
    computed,
    node_rpc_status,
    ok,
)
from gwm.simulator.state import Node


def _live(fn: Callable[[Ctx, Node], Any]) -> Getter:
    """A runtime getter: no data from a node that cannot be asked."""

    def getter(c: Ctx, n: Node) -> Entry:
        bad = node_rpc_status(n)
        if bad is not None:
            return (bad, None)
        return ok(fn(c, n))

    return getter


def _spindles(c: Ctx, n: Node) -> Entry:
    # spindles are only reported with LVM exclusive storage
    bad = node_rpc_status(n)
    return (bad if bad is not None else RS_NODATA, None)


def _config_fields() -> list[FieldDef]:
    f = computed
    return [
        attr("drained", "Drained", "bool", "Whether node is drained"),
        attr("master_candidate", "MasterC", "bool", "Whether node is a master candidate"),
        attr(
            "master_capable", "MasterCapable", "bool", "Whether node can become a master candidate"
        ),
        attr("name", "Node", "text", "Node name"),
        attr("offline", "Offline", "bool", "Whether node is marked offline"),
        attr("vm_capable", "VMCapable", "bool", "Whether node can host instances"),
        attr("pip", "PrimaryIP", "text", "Primary IP address"),
        attr("sip", "SecondaryIP", "text", "Secondary IP address"),
        f(
            "master",
            "IsMaster",
            "bool",
            "Whether node is master",
            lambda c, n: n.uuid == c.state.master_uuid,
        ),
        f(
            "group",
            "Group",
            "text",
            "Node group",
            lambda c, n: c.state.group_by_uuid(n.group_uuid).name,
        ),
        attr("group.uuid", "GroupUUID", "text", "UUID of node group", "group_uuid"),
        f(
            "ndparams",
            "NodeParameters",
            "other",
            "Merged node parameters",
            lambda c, n: node_ndparams(c.state, n),
        ),
        f(
            "custom_ndparams",
            "CustomNodeParameters",
            "other",
            "Custom node parameters",
            lambda c, n: dict(n.ndparams),
        ),
        f(
            "pinst_cnt",
            "Pinst",
            "number",
            "Number of instances with this node as primary",
            lambda c, n: len(c.pinst(n)),
        ),
        f(
            "sinst_cnt",
            "Sinst",
            "number",
            "Number of instances with this node as secondary",
            lambda c, n: len(c.sinst(n)),
        ),
        f(
            "pinst_list",
            "PriInstances",
            "other",
            "List of instances with this node as primary",
            lambda c, n: list(c.pinst(n)),
        ),
        f(
            "sinst_list",
            "SecInstances",
            "other",
            "List of instances with this node as secondary",
            lambda c, n: list(c.sinst(n)),
        ),
        f(
            "role",
            "Role",
            "text",
            'Node role; "M" for master, "C" for master candidate, "R" for regular,'
            ' "D" for drained, "O" for offline',
            lambda c, n: c.state.node_role(n),
        ),
        FieldDef(
            "powered",
            "Powered",
            "bool",
            "Whether node is thought to be powered on",
            lambda c, n: UNAVAILABLE,
        ),
        FieldDef(
            "hv_state", "HypervisorState", "other", "Hypervisor state", lambda c, n: UNAVAILABLE
        ),
        FieldDef("disk_state", "DiskState", "other", "Disk state", lambda c, n: UNAVAILABLE),
    ]


# runtime fields, one RPC per node: (name, title, kind, doc, value)
RUNTIME: list[tuple[str, str, str, str, Callable[[Ctx, Node], Any]]] = [
    (
        "bootid",
        "BootID",
        "text",
        "Random UUID renewed for each system reboot, can be used for detecting reboots"
        " by tracking changes",
        lambda c, n: n.uuid,
    ),
    (
        "cnodes",
        "CNodes",
        "number",
        "Number of NUMA domains on node (if exported by hypervisor)",
        lambda c, n: n.cnodes,
    ),
    (
        "cnos",
        "CNOs",
        "number",
        "Number of logical processors used by the node OS (dom0 for Xen)",
        lambda c, n: n.cnos,
    ),
    (
        "csockets",
        "CSockets",
        "number",
        "Number of physical CPU sockets (if exported by hypervisor)",
        lambda c, n: n.csockets,
    ),
    ("ctotal", "CTotal", "number", "Number of logical processors", lambda c, n: n.ctotal),
    (
        "dfree",
        "DFree",
        "unit",
        "Available storage space on storage unit",
        lambda c, n: max(0, n.dtotal - c.disk_used(n)),
    ),
    (
        "dtotal",
        "DTotal",
        "unit",
        "Total storage space on storage unit for instance disk allocation",
        lambda c, n: n.dtotal,
    ),
]
MEMORY: list[tuple[str, str, str, str, Callable[[Ctx, Node], Any]]] = [
    (
        "mfree",
        "MFree",
        "unit",
        "Memory available for instance allocations",
        lambda c, n: max(0, n.mtotal - n.mnode - c.mem_used(n)),
    ),
    (
        "mnode",
        "MNode",
        "unit",
        "Amount of memory used by node (dom0 for Xen)",
        lambda c, n: n.mnode,
    ),
    (
        "mtotal",
        "MTotal",
        "unit",
        "Total amount of memory of physical machine",
        lambda c, n: n.mtotal,
    ),
]


def node_fields() -> list[FieldDef]:
    def live(rows: list[tuple[str, str, str, str, Callable[[Ctx, Node], Any]]]) -> list[FieldDef]:
        return [FieldDef(*row[:4], _live(row[4]), runtime=True) for row in rows]

    spindles = [
        FieldDef(
            "spfree",
            "SpFree",
            "number",
            "Available spindles in volume group (exclusive storage only)",
            _spindles,
            runtime=True,
        ),
        FieldDef(
            "sptotal",
            "SpTotal",
            "number",
            "Total spindles in volume group (exclusive storage only)",
            _spindles,
            runtime=True,
        ),
    ]
    return [*_config_fields(), *live(RUNTIME), *spindles, *live(MEMORY), *common_fields("Node")]
