"""The instance query fields, in luxid's order, with its aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gwm.simulator.derived import (
    instance_beparams,
    instance_console,
    instance_hvparams,
    instance_status,
    nic_filled,
)
from gwm.simulator.fields.base import (
    RS_NODATA,
    RS_UNAVAIL,
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
from gwm.simulator.state import ADMIN_UP, Instance, Nic

# luxid's instanceAliases
INSTANCE_ALIASES = [
    ("vcpus", "be/vcpus"),
    ("be/memory", "be/maxmem"),
    ("sda_size", "disk.size/0"),
    ("sdb_size", "disk.size/1"),
    ("ip", "nic.ip/0"),
    ("mac", "nic.mac/0"),
    ("bridge", "nic.bridge/0"),
    ("nic_mode", "nic.mode/0"),
    ("nic_link", "nic.link/0"),
    ("nic_network", "nic.network/0"),
]

STATUS_DOC = (
    'Instance status; "running" if instance is set to be running and actually is,'
    ' "ADMIN_down" if instance is stopped and is not running, "ERROR_wrongnode"'
    ' if instance running, but not on its designated primary node, "ERROR_up" if'
    ' instance should be stopped, but is actually running, "ERROR_down" if'
    " instance should run, but doesn't, \"ERROR_nodedown\" if instance's primary"
    ' node is down, "ERROR_nodeoffline" if instance\'s primary node is marked'
    ' offline, "ADMIN_offline" if instance is offline and does not use dynamic'
    " resources"
)


def ordinal(n: int) -> str:
    """Ganeti's formatOrdinal: 1st, 2nd, 3rd, 4th, 11th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _live(fn: Callable[[Ctx, Instance], Any], not_running: int = RS_UNAVAIL) -> Getter:
    """A runtime getter: no data from a node that cannot be asked, nor from an
    instance that does not run."""

    def getter(c: Ctx, inst: Instance) -> Entry:
        bad = node_rpc_status(c.state.node_by_uuid(inst.pnode))
        if bad is not None:
            return (bad, None)
        if inst.running_on is None:
            return (not_running, None)
        return ok(fn(c, inst))

    return getter


def _oper_state(c: Ctx, inst: Instance) -> Entry:
    # Ganeti answers "no data", not "offline", for a node marked offline too: an
    # offline state would say the instance is offline when it only is not known
    # (seen on the real two-node sandbox).
    if node_rpc_status(c.state.node_by_uuid(inst.pnode)) is not None:
        return (RS_NODATA, None)
    return ok(inst.running_on is not None)


def _disk_usage(inst: Instance) -> int:
    if inst.disk_template == "diskless":
        return 0
    extra = 128 if inst.disk_template == "drbd" else 0
    return sum(d.size + extra for d in inst.disks)


def _bridge(c: Ctx, nic: Nic) -> str | None:
    params = nic_filled(c.state, nic)
    return params["link"] if params["mode"] == "bridged" else None


def _net_name(c: Ctx, net_uuid: str | None) -> str | None:
    return None if net_uuid is None else c.state.network_by_uuid(net_uuid).name


def _group_name(c: Ctx, node_uuid: str) -> str:
    return c.state.group_by_uuid(c.state.node_by_uuid(node_uuid).group_uuid).name


def _each(name: str, title: str, doc: str, items: str, fn: Callable[[Ctx, Any], Any]) -> FieldDef:
    """A list field: ``fn`` of every disk or NIC of the instance."""
    return computed(name, title, "other", doc, lambda c, i: [fn(c, x) for x in getattr(i, items)])


# (name, title, kind, doc with {n} for the ordinal, "disks" or "nics", value of the item)
INDEXED: list[tuple[str, str, str, str, str, Callable[[Ctx, Any], Any]]] = [
    ("disk.size", "Disk", "unit", "Disk size of {n} disk", "disks", lambda c, d: d.size),
    ("disk.name", "DiskName", "text", "Name of {n} disk", "disks", lambda c, d: d.name),
    ("disk.uuid", "DiskUUID", "text", "UUID of {n} disk", "disks", lambda c, d: d.uuid),
    ("nic.ip", "NicIP", "text", "IP address of {n} network interface", "nics", lambda c, x: x.ip),
    (
        "nic.mac",
        "NicMAC",
        "text",
        "MAC address of {n} network interface",
        "nics",
        lambda c, x: x.mac,
    ),
    (
        "nic.link",
        "NicLink",
        "text",
        "Link of {n} network interface",
        "nics",
        lambda c, x: nic_filled(c.state, x)["link"],
    ),
    (
        "nic.mode",
        "NicMode",
        "text",
        "Mode of {n} network interface",
        "nics",
        lambda c, x: nic_filled(c.state, x)["mode"],
    ),
    ("nic.bridge", "NicBridge", "text", "Bridge of {n} network interface", "nics", _bridge),
    (
        "nic.network",
        "NicNetwork",
        "text",
        "Network of {n} network interface",
        "nics",
        lambda c, x: x.network,
    ),
    (
        "nic.network.name",
        "NicNetworkName",
        "text",
        "Network name of {n} network interface",
        "nics",
        lambda c, x: _net_name(c, x.network),
    ),
]


def _nth(idx: int, items: str, fn: Callable[[Ctx, Any], Any]) -> Getter:
    """One disk or NIC by index: unavailable when missing or unset."""

    def getter(c: Ctx, inst: Instance) -> Entry:
        found = getattr(inst, items)
        value = fn(c, found[idx]) if idx < len(found) else None
        return UNAVAILABLE if value is None else ok(value)

    return getter


def _indexed_fields(count: int = 8) -> list[FieldDef]:
    return [
        FieldDef(
            f"{name}/{idx}",
            f"{title}/{idx}",
            kind,
            doc.format(n=ordinal(idx + 1)),
            _nth(idx, items, fn),
        )
        for idx in range(count)
        for name, title, kind, doc, items, fn in INDEXED
    ]


def _base_fields() -> list[FieldDef]:
    f = computed
    return [
        attr("admin_state", "InstanceState", "text", "Desired state of instance"),
        attr(
            "admin_state_source",
            "InstanceStateSource",
            "text",
            "Who last changed the desired state of the instance",
        ),
        f(
            "admin_up",
            "Autostart",
            "bool",
            "Desired state of instance",
            lambda c, i: i.admin_state == ADMIN_UP,
        ),
        attr("disks_active", "DisksActive", "bool", "Desired state of instance disks"),
        attr("name", "Instance", "text", "Instance name"),
        attr("hypervisor", "Hypervisor", "text", "Hypervisor name"),
        FieldDef(
            "network_port",
            "Network_port",
            "other",
            "Instance network port if available (e.g. for VNC console)",
            lambda c, i: UNAVAILABLE if i.network_port is None else ok(i.network_port),
        ),
        attr("os", "OS", "text", "Operating system"),
        f(
            "pnode",
            "Primary_node",
            "text",
            "Primary node",
            lambda c, i: c.state.node_by_uuid(i.pnode).name,
        ),
        f(
            "pnode.group",
            "PrimaryNodeGroup",
            "text",
            "Primary node's group",
            lambda c, i: _group_name(c, i.pnode),
        ),
        f(
            "pnode.group.uuid",
            "PrimaryNodeGroupUUID",
            "text",
            "Primary node's group UUID",
            lambda c, i: c.state.node_by_uuid(i.pnode).group_uuid,
        ),
        f(
            "snodes",
            "Secondary_Nodes",
            "other",
            "Secondary nodes; usually this will just be one node",
            lambda c, i: [c.state.node_by_uuid(u).name for u in i.snodes],
        ),
        f(
            "snodes.group",
            "SecondaryNodesGroups",
            "other",
            "Node groups of secondary nodes",
            lambda c, i: [_group_name(c, u) for u in i.snodes],
        ),
        f(
            "snodes.group.uuid",
            "SecondaryNodesGroupsUUID",
            "other",
            "Node group UUIDs of secondary nodes",
            lambda c, i: [c.state.node_by_uuid(u).group_uuid for u in i.snodes],
        ),
        f(
            "hvparams",
            "HypervisorParameters",
            "other",
            "Hypervisor parameters (merged)",
            lambda c, i: instance_hvparams(c.state, i),
        ),
        f(
            "beparams",
            "BackendParameters",
            "other",
            "Backend parameters (merged)",
            lambda c, i: instance_beparams(c.state, i),
        ),
        f(
            "osparams",
            "OpSysParameters",
            "other",
            "Operating system parameters (merged)",
            lambda c, i: dict(i.osparams),
        ),
        f(
            "custom_hvparams",
            "CustomHypervisorParameters",
            "other",
            "Custom hypervisor parameters",
            lambda c, i: dict(i.hvparams),
        ),
        f(
            "custom_beparams",
            "CustomBackendParameters",
            "other",
            "Custom backend parameters",
            lambda c, i: dict(i.beparams),
        ),
        f(
            "custom_osparams",
            "CustomOpSysParameters",
            "other",
            "Custom operating system parameters",
            lambda c, i: dict(i.osparams),
        ),
        _each(
            "custom_nicparams",
            "CustomNicParameters",
            "Custom network interface parameters",
            "nics",
            lambda c, n: dict(n.nicparams),
        ),
        f(
            "disk_usage",
            "DiskUsage",
            "unit",
            "Total disk space used by instance on each of its nodes; this is not the disk"
            " size visible to the instance, but the usage on the node",
            lambda c, i: _disk_usage(i),
        ),
        f("disk.count", "Disks", "number", "Number of disks", lambda c, i: len(i.disks)),
        _each("disk.sizes", "Disk_sizes", "List of disk sizes", "disks", lambda c, d: d.size),
        _each(
            "disk.spindles",
            "Disk_spindles",
            "List of disk spindles",
            "disks",
            lambda c, d: d.spindles,
        ),
        _each("disk.names", "Disk_names", "List of disk names", "disks", lambda c, d: d.name),
        _each("disk.uuids", "Disk_UUIDs", "List of disk UUIDs", "disks", lambda c, d: d.uuid),
        attr("disk_template", "Disk_template", "text", "Instance disk template"),
        f("nic.count", "NICs", "number", "Number of network interfaces", lambda c, i: len(i.nics)),
        *_nic_lists(),
    ]


def _nic_lists() -> list[FieldDef]:
    # (name, title, what the doc says of each interface, value of one NIC)
    lists: list[tuple[str, str, str, Callable[[Ctx, Nic], Any]]] = [
        ("nic.macs", "NIC_MACs", "network interface's MAC address", lambda c, n: n.mac),
        ("nic.ips", "NIC_IPs", "network interface's IP address", lambda c, n: n.ip),
        ("nic.names", "NIC_Names", "network interface's name", lambda c, n: n.name),
        ("nic.uuids", "NIC_UUIDs", "network interface's UUID", lambda c, n: n.uuid),
        (
            "nic.modes",
            "NIC_modes",
            "network interface's mode",
            lambda c, n: nic_filled(c.state, n)["mode"],
        ),
        ("nic.vlans", "NIC_VLANs", "network interface's VLAN", lambda c, n: None),
        ("nic.bridges", "NIC_bridges", "network interface's bridge", _bridge),
        (
            "nic.links",
            "NIC_links",
            "network interface's link",
            lambda c, n: nic_filled(c.state, n)["link"],
        ),
        ("nic.networks", "NIC_networks", "interface's network", lambda c, n: n.network),
    ]
    fields = [
        _each(name, title, f"List containing each {what}", "nics", fn)
        for name, title, what, fn in lists
    ]
    fields.append(
        _each(
            "nic.networks.names",
            "NIC_networks_names",
            "List containing the name of each interface's network",
            "nics",
            lambda c, n: _net_name(c, n.network),
        )
    )
    return fields


def _runtime_fields() -> list[FieldDef]:
    """luxid asks the nodes for these."""
    return [
        FieldDef(
            "status",
            "Status",
            "text",
            STATUS_DOC,
            lambda c, i: ok(instance_status(c.state, i)),
            runtime=True,
        ),
        FieldDef(
            "oper_state", "Running", "bool", "Actual state of instance", _oper_state, runtime=True
        ),
        FieldDef(
            "console",
            "Console",
            "other",
            "Instance console information",
            _live(lambda c, i: instance_console(c.state, i), not_running=RS_NODATA),
            runtime=True,
        ),
        FieldDef(
            "oper_ram",
            "Memory",
            "unit",
            "Actual memory usage as seen by hypervisor",
            _live(lambda c, i: instance_beparams(c.state, i)["maxmem"]),
            runtime=True,
        ),
        FieldDef(
            "oper_vcpus",
            "VCPUs",
            "number",
            "Actual number of VCPUs as seen by hypervisor",
            _live(lambda c, i: instance_beparams(c.state, i)["vcpus"]),
            runtime=True,
        ),
    ]


# (name, title, kind) of the backend parameter fields ``be/NAME``, as luxid lists them
BE_FIELDS = [
    ("always_failover", "be/always_failover", "bool"),
    ("auto_balance", "Auto_balance", "bool"),
    ("maxmem", "ConfigMaxMem", "unit"),
    ("minmem", "ConfigMinMem", "unit"),
    ("spindle_use", "be/spindle_use", "number"),
    ("vcpus", "ConfigVCPUs", "number"),
]


def _be_getter(param: str) -> Getter:
    return lambda c, i: ok(instance_beparams(c.state, i).get(param))


def instance_fields() -> list[FieldDef]:
    fields = [*_base_fields(), *_runtime_fields()]
    fields += [
        FieldDef(f"be/{name}", title, kind, f'The "{name}" backend parameter', _be_getter(name))
        for name, title, kind in BE_FIELDS
    ]
    fields.append(
        FieldDef(
            "forthcoming",
            "Forthcoming",
            "bool",
            "whether the Instance is forthcoming",
            lambda c, i: ok(False),
        )
    )
    fields += _indexed_fields()
    fields += common_fields("Instance")
    by_name = {fd.name: fd for fd in fields}
    for alias, target in INSTANCE_ALIASES:
        fd = by_name[target]
        fields.append(FieldDef(alias, fd.title, fd.kind, fd.doc, fd.getter, fd.runtime))
    return fields
