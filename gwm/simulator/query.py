"""Query fields and filters, the way luxid answers ``/2/query`` and bulk lists.

Every field has a definition (name, title, kind, doc) and a getter returning
``(result_status, value)``. The classic RAPI lists (``/2/instances?bulk=1``)
use the same getters and turn every non-normal status into ``null``, as
luxid's classic queries do. Runtime fields are flagged: they are what makes
Ganeti ask the nodes, hence what the cost model charges for.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gwm.simulator import state as st
from gwm.simulator.state import ClusterState, Group, Instance, Network, Node

if TYPE_CHECKING:
    from gwm.simulator.jobs import Job

RS_NORMAL = 0
RS_UNKNOWN = 1
RS_NODATA = 2
RS_UNAVAIL = 3
RS_OFFLINE = 4

Entry = tuple[int, Any]
Getter = Callable[["Ctx", Any], Entry]


class QueryError(Exception):
    """A luxid error; RAPI answers these with a 500 showing (message, code)."""

    def __init__(self, message: str, code: str = "wrong_input") -> None:
        super().__init__(message)
        self.code = code

    def rapi_message(self) -> str:
        return str((str(self), self.code))


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    title: str
    kind: str  # text, bool, number, unit, timestamp, other, unknown
    doc: str
    getter: Getter
    runtime: bool = False

    def definition(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "kind": self.kind, "doc": self.doc}


@dataclass
class Ctx:
    """Per-request caches: indexes computed once, used for every row."""

    state: ClusterState
    jobs: dict[int, Job] = field(default_factory=dict)
    _pinst: dict[str, list[str]] | None = None
    _sinst: dict[str, list[str]] | None = None
    _node_mem_used: dict[str, int] | None = None
    _node_disk_used: dict[str, int] | None = None
    _net_insts: dict[str, list[str]] | None = None

    def _build_node_index(self) -> None:
        pinst: dict[str, list[str]] = {u: [] for u in self.state._node_by_uuid}
        sinst: dict[str, list[str]] = {u: [] for u in self.state._node_by_uuid}
        mem: dict[str, int] = dict.fromkeys(self.state._node_by_uuid, 0)
        disk: dict[str, int] = dict.fromkeys(self.state._node_by_uuid, 0)
        be_default = self.state.info["beparams"]["default"]
        for name in self.state.sorted_instance_names():
            inst = self.state.instances[name]
            pinst.setdefault(inst.pnode, []).append(name)
            used = sum(d.size for d in inst.disks)
            disk[inst.pnode] = disk.get(inst.pnode, 0) + used
            for s in inst.snodes:
                sinst.setdefault(s, []).append(name)
                disk[s] = disk.get(s, 0) + used
            if inst.running_on is not None:
                maxmem = inst.beparams.get("maxmem", be_default["maxmem"])
                mem[inst.running_on] = mem.get(inst.running_on, 0) + maxmem
        self._pinst, self._sinst = pinst, sinst
        self._node_mem_used, self._node_disk_used = mem, disk

    def pinst(self, node: Node) -> list[str]:
        if self._pinst is None:
            self._build_node_index()
        assert self._pinst is not None
        return self._pinst.get(node.uuid, [])

    def sinst(self, node: Node) -> list[str]:
        if self._sinst is None:
            self._build_node_index()
        assert self._sinst is not None
        return self._sinst.get(node.uuid, [])

    def mem_used(self, node: Node) -> int:
        if self._node_mem_used is None:
            self._build_node_index()
        assert self._node_mem_used is not None
        return self._node_mem_used.get(node.uuid, 0)

    def disk_used(self, node: Node) -> int:
        if self._node_disk_used is None:
            self._build_node_index()
        assert self._node_disk_used is not None
        return self._node_disk_used.get(node.uuid, 0)

    def net_instances(self, net: Network) -> list[str]:
        if self._net_insts is None:
            idx: dict[str, list[str]] = {}
            for name in self.state.sorted_instance_names():
                for nic in self.state.instances[name].nics:
                    if nic.network is not None:
                        lst = idx.setdefault(nic.network, [])
                        if not lst or lst[-1] != name:
                            lst.append(name)
            self._net_insts = idx
        return self._net_insts.get(net.uuid, [])


def ok(value: Any) -> Entry:
    return (RS_NORMAL, value)


def _common_fields(kind: str) -> list[FieldDef]:
    return [
        FieldDef("ctime", "CTime", "timestamp", "Creation timestamp", lambda c, o: ok(o.ctime)),
        FieldDef("mtime", "MTime", "timestamp", "Modification timestamp", lambda c, o: ok(o.mtime)),
        FieldDef("uuid", "UUID", "text", f"{kind} UUID", lambda c, o: ok(o.uuid)),
        FieldDef(
            "serial_no",
            "SerialNo",
            "number",
            f"{kind} object serial number, incremented on each modification",
            lambda c, o: ok(o.serial_no),
        ),
        FieldDef("tags", "Tags", "other", "Tags", lambda c, o: ok(list(o.tags))),
    ]


# ---- instances -------------------------------------------------------------


def instance_beparams(state: ClusterState, inst: Instance) -> dict[str, Any]:
    return {**state.info["beparams"]["default"], **inst.beparams}


# cluster-wide hypervisor parameters luxid leaves out of an instance's hvparams
HV_GLOBALS = frozenset({"migration_port", "migration_bandwidth", "migration_mode", "xen_cmd"})


def instance_hvparams(state: ClusterState, inst: Instance) -> dict[str, Any]:
    merged = {**state.info["hvparams"].get(inst.hypervisor, {}), **inst.hvparams}
    return {k: v for k, v in merged.items() if k not in HV_GLOBALS}


def ordinal(n: int) -> str:
    """Ganeti's formatOrdinal: 1st, 2nd, 3rd, 4th, 11th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def nic_filled(state: ClusterState, nic: st.Nic) -> dict[str, str]:
    return {**state.info["nicparams"]["default"], **nic.nicparams}


def instance_status(state: ClusterState, inst: Instance) -> str:
    """Ganeti's determineInstanceStatus (src/Ganeti/Query/Instance.hs)."""
    pnode = state.node_by_uuid(inst.pnode)
    if pnode.offline:
        return "ERROR_nodeoffline"
    if pnode.unreachable:
        return "ERROR_nodedown"
    if inst.running_on is not None:
        if inst.running_on != inst.pnode:
            return "ERROR_wrongnode"
        return "running" if inst.admin_state == st.ADMIN_UP else "ERROR_up"
    if inst.admin_state == st.ADMIN_UP:
        return "ERROR_down"
    if inst.admin_state == st.ADMIN_OFFLINE:
        return "ADMIN_offline"
    if inst.admin_state_source == "user" and state.info.get("enabled_user_shutdown"):
        return "USER_down"
    return "ADMIN_down"


def _node_rpc_status(node: Node) -> int | None:
    """Status for runtime fields of a node that cannot be asked, else None."""
    if node.offline:
        return RS_OFFLINE
    if node.unreachable:
        return RS_NODATA
    return None


def _inst_live(c: Ctx, inst: Instance, fn: Callable[[Instance], Any]) -> Entry:
    bad = _node_rpc_status(c.state.node_by_uuid(inst.pnode))
    if bad is not None:
        return (bad, None)
    if inst.running_on is None:
        return (RS_UNAVAIL, None)
    return ok(fn(inst))


def _oper_state(c: Ctx, inst: Instance) -> Entry:
    # Ganeti answers "no data", not "offline", for a node marked offline too: an
    # offline state would say the instance is offline when it only is not known
    # (seen on the real two-node sandbox).
    bad = _node_rpc_status(c.state.node_by_uuid(inst.pnode))
    if bad is not None:
        return (RS_NODATA, None)
    return ok(inst.running_on is not None)


def instance_console(state: ClusterState, inst: Instance) -> dict[str, Any]:
    """What OpInstanceConsole / the ``console`` field report for the hypervisor."""
    node = state.node_by_uuid(inst.running_on or inst.pnode)
    if inst.hypervisor == "kvm" and inst.network_port is not None:
        return {
            "instance": inst.name,
            "kind": "vnc",
            "host": node.name,
            "port": inst.network_port,
            "display": inst.network_port - 5900,
        }
    return {
        "instance": inst.name,
        "kind": "msg",
        "message": "Console not available for fake hypervisor",
    }


def _console(c: Ctx, inst: Instance) -> Entry:
    bad = _node_rpc_status(c.state.node_by_uuid(inst.pnode))
    if bad is not None:
        return (bad, None)
    if inst.running_on is None:
        return (RS_NODATA, None)
    return ok(instance_console(c.state, inst))


def _disk_usage(inst: Instance) -> int:
    if inst.disk_template == "diskless":
        return 0
    extra = 128 if inst.disk_template == "drbd" else 0
    return sum(d.size + extra for d in inst.disks)


def _node_names(c: Ctx, uuids: Iterable[str]) -> list[str]:
    return [c.state.node_by_uuid(u).name for u in uuids]


def _indexed(items: list[Any], idx: int, fn: Callable[[Any], Any]) -> Entry:
    if idx >= len(items):
        return (RS_UNAVAIL, None)
    value = fn(items[idx])
    return (RS_UNAVAIL, None) if value is None else ok(value)


def _bridge(c: Ctx, nic: st.Nic) -> str | None:
    params = nic_filled(c.state, nic)
    return params["link"] if params["mode"] == "bridged" else None


def _idx_getter(attr: str, idx: int, fn: Callable[[Ctx, Any], Any]) -> Getter:
    """A getter for one item (disk or NIC) of an instance, by index."""

    def getter(c: Ctx, inst: Instance) -> Entry:
        return _indexed(getattr(inst, attr), idx, lambda item: fn(c, item))

    return getter


def _be_getter(param: str) -> Getter:
    def getter(c: Ctx, inst: Instance) -> Entry:
        return ok(instance_beparams(c.state, inst).get(param))

    return getter


def _net_name(c: Ctx, net_uuid: str | None) -> str | None:
    return None if net_uuid is None else c.state.network_by_uuid(net_uuid).name


def _instance_fields() -> list[FieldDef]:
    f = FieldDef
    fields = [
        f(
            "admin_state",
            "InstanceState",
            "text",
            "Desired state of instance",
            lambda c, i: ok(i.admin_state),
        ),
        f(
            "admin_state_source",
            "InstanceStateSource",
            "text",
            "Who last changed the desired state of the instance",
            lambda c, i: ok(i.admin_state_source),
        ),
        f(
            "admin_up",
            "Autostart",
            "bool",
            "Desired state of instance",
            lambda c, i: ok(i.admin_state == st.ADMIN_UP),
        ),
        f(
            "disks_active",
            "DisksActive",
            "bool",
            "Desired state of instance disks",
            lambda c, i: ok(i.disks_active),
        ),
        f("name", "Instance", "text", "Instance name", lambda c, i: ok(i.name)),
        f("hypervisor", "Hypervisor", "text", "Hypervisor name", lambda c, i: ok(i.hypervisor)),
        f(
            "network_port",
            "Network_port",
            "other",
            "Instance network port if available (e.g. for VNC console)",
            lambda c, i: (RS_UNAVAIL, None) if i.network_port is None else ok(i.network_port),
        ),
        f("os", "OS", "text", "Operating system", lambda c, i: ok(i.os)),
        f(
            "pnode",
            "Primary_node",
            "text",
            "Primary node",
            lambda c, i: ok(c.state.node_by_uuid(i.pnode).name),
        ),
        f(
            "pnode.group",
            "PrimaryNodeGroup",
            "text",
            "Primary node's group",
            lambda c, i: ok(c.state.group_by_uuid(c.state.node_by_uuid(i.pnode).group_uuid).name),
        ),
        f(
            "pnode.group.uuid",
            "PrimaryNodeGroupUUID",
            "text",
            "Primary node's group UUID",
            lambda c, i: ok(c.state.node_by_uuid(i.pnode).group_uuid),
        ),
        f(
            "snodes",
            "Secondary_Nodes",
            "other",
            "Secondary nodes; usually this will just be one node",
            lambda c, i: ok(_node_names(c, i.snodes)),
        ),
        f(
            "snodes.group",
            "SecondaryNodesGroups",
            "other",
            "Node groups of secondary nodes",
            lambda c, i: ok(
                [c.state.group_by_uuid(c.state.node_by_uuid(s).group_uuid).name for s in i.snodes]
            ),
        ),
        f(
            "snodes.group.uuid",
            "SecondaryNodesGroupsUUID",
            "other",
            "Node group UUIDs of secondary nodes",
            lambda c, i: ok([c.state.node_by_uuid(s).group_uuid for s in i.snodes]),
        ),
        f(
            "hvparams",
            "HypervisorParameters",
            "other",
            "Hypervisor parameters (merged)",
            lambda c, i: ok(instance_hvparams(c.state, i)),
        ),
        f(
            "beparams",
            "BackendParameters",
            "other",
            "Backend parameters (merged)",
            lambda c, i: ok(instance_beparams(c.state, i)),
        ),
        f(
            "osparams",
            "OpSysParameters",
            "other",
            "Operating system parameters (merged)",
            lambda c, i: ok(dict(i.osparams)),
        ),
        f(
            "custom_hvparams",
            "CustomHypervisorParameters",
            "other",
            "Custom hypervisor parameters",
            lambda c, i: ok(dict(i.hvparams)),
        ),
        f(
            "custom_beparams",
            "CustomBackendParameters",
            "other",
            "Custom backend parameters",
            lambda c, i: ok(dict(i.beparams)),
        ),
        f(
            "custom_osparams",
            "CustomOpSysParameters",
            "other",
            "Custom operating system parameters",
            lambda c, i: ok(dict(i.osparams)),
        ),
        f(
            "custom_nicparams",
            "CustomNicParameters",
            "other",
            "Custom network interface parameters",
            lambda c, i: ok([dict(n.nicparams) for n in i.nics]),
        ),
        f(
            "disk_usage",
            "DiskUsage",
            "unit",
            "Total disk space used by instance on each of its nodes; this is not the disk"
            " size visible to the instance, but the usage on the node",
            lambda c, i: ok(_disk_usage(i)),
        ),
        f("disk.count", "Disks", "number", "Number of disks", lambda c, i: ok(len(i.disks))),
        f(
            "disk.sizes",
            "Disk_sizes",
            "other",
            "List of disk sizes",
            lambda c, i: ok([d.size for d in i.disks]),
        ),
        f(
            "disk.spindles",
            "Disk_spindles",
            "other",
            "List of disk spindles",
            lambda c, i: ok([d.spindles for d in i.disks]),
        ),
        f(
            "disk.names",
            "Disk_names",
            "other",
            "List of disk names",
            lambda c, i: ok([d.name for d in i.disks]),
        ),
        f(
            "disk.uuids",
            "Disk_UUIDs",
            "other",
            "List of disk UUIDs",
            lambda c, i: ok([d.uuid for d in i.disks]),
        ),
        f(
            "disk_template",
            "Disk_template",
            "text",
            "Instance disk template",
            lambda c, i: ok(i.disk_template),
        ),
        f(
            "nic.count",
            "NICs",
            "number",
            "Number of network interfaces",
            lambda c, i: ok(len(i.nics)),
        ),
        f(
            "nic.macs",
            "NIC_MACs",
            "other",
            "List containing each network interface's MAC address",
            lambda c, i: ok([n.mac for n in i.nics]),
        ),
        f(
            "nic.ips",
            "NIC_IPs",
            "other",
            "List containing each network interface's IP address",
            lambda c, i: ok([n.ip for n in i.nics]),
        ),
        f(
            "nic.names",
            "NIC_Names",
            "other",
            "List containing each network interface's name",
            lambda c, i: ok([n.name for n in i.nics]),
        ),
        f(
            "nic.uuids",
            "NIC_UUIDs",
            "other",
            "List containing each network interface's UUID",
            lambda c, i: ok([n.uuid for n in i.nics]),
        ),
        f(
            "nic.modes",
            "NIC_modes",
            "other",
            "List containing each network interface's mode",
            lambda c, i: ok([nic_filled(c.state, n)["mode"] for n in i.nics]),
        ),
        f(
            "nic.vlans",
            "NIC_VLANs",
            "other",
            "List containing each network interface's VLAN",
            lambda c, i: ok([None for _ in i.nics]),
        ),
        f(
            "nic.bridges",
            "NIC_bridges",
            "other",
            "List containing each network interface's bridge",
            lambda c, i: ok(
                [
                    p["link"] if p["mode"] == "bridged" else None
                    for p in (nic_filled(c.state, n) for n in i.nics)
                ]
            ),
        ),
        f(
            "nic.links",
            "NIC_links",
            "other",
            "List containing each network interface's link",
            lambda c, i: ok([nic_filled(c.state, n)["link"] for n in i.nics]),
        ),
        f(
            "nic.networks",
            "NIC_networks",
            "other",
            "List containing each interface's network",
            lambda c, i: ok([n.network for n in i.nics]),
        ),
        f(
            "nic.networks.names",
            "NIC_networks_names",
            "other",
            "List containing the name of each interface's network",
            lambda c, i: ok([_net_name(c, n.network) for n in i.nics]),
        ),
        # runtime fields: luxid asks the nodes for these
        f(
            "status",
            "Status",
            "text",
            'Instance status; "running" if instance is set to be running and actually is,'
            ' "ADMIN_down" if instance is stopped and is not running, "ERROR_wrongnode"'
            ' if instance running, but not on its designated primary node, "ERROR_up" if'
            ' instance should be stopped, but is actually running, "ERROR_down" if'
            " instance should run, but doesn't, \"ERROR_nodedown\" if instance's primary"
            ' node is down, "ERROR_nodeoffline" if instance\'s primary node is marked'
            ' offline, "ADMIN_offline" if instance is offline and does not use dynamic'
            " resources",
            lambda c, i: ok(instance_status(c.state, i)),
            runtime=True,
        ),
        f("oper_state", "Running", "bool", "Actual state of instance", _oper_state, runtime=True),
        f("console", "Console", "other", "Instance console information", _console, runtime=True),
        f(
            "oper_ram",
            "Memory",
            "unit",
            "Actual memory usage as seen by hypervisor",
            lambda c, i: _inst_live(c, i, lambda x: instance_beparams(c.state, x)["maxmem"]),
            runtime=True,
        ),
        f(
            "oper_vcpus",
            "VCPUs",
            "number",
            "Actual number of VCPUs as seen by hypervisor",
            lambda c, i: _inst_live(c, i, lambda x: instance_beparams(c.state, x)["vcpus"]),
            runtime=True,
        ),
    ]
    # (name, title, kind, backend parameter) as luxid lists them
    be_fields = [
        ("always_failover", "be/always_failover", "bool", "always_failover"),
        ("auto_balance", "Auto_balance", "bool", "auto_balance"),
        ("maxmem", "ConfigMaxMem", "unit", "maxmem"),
        ("minmem", "ConfigMinMem", "unit", "minmem"),
        ("spindle_use", "be/spindle_use", "number", "spindle_use"),
        ("vcpus", "ConfigVCPUs", "number", "vcpus"),
    ]
    for name, title, kind, param in be_fields:
        fields.append(
            f(
                f"be/{name}",
                title,
                kind,
                f'The "{param}" backend parameter',
                _be_getter(param),
            )
        )
    fields.append(
        f(
            "forthcoming",
            "Forthcoming",
            "bool",
            "whether the Instance is forthcoming",
            lambda c, i: ok(False),
        )
    )
    for idx in range(8):
        n = ordinal(idx + 1)
        fields += [
            f(
                f"disk.size/{idx}",
                f"Disk/{idx}",
                "unit",
                f"Disk size of {n} disk",
                _idx_getter("disks", idx, lambda c, d: d.size),
            ),
            f(
                f"disk.name/{idx}",
                f"DiskName/{idx}",
                "text",
                f"Name of {n} disk",
                _idx_getter("disks", idx, lambda c, d: d.name),
            ),
            f(
                f"disk.uuid/{idx}",
                f"DiskUUID/{idx}",
                "text",
                f"UUID of {n} disk",
                _idx_getter("disks", idx, lambda c, d: d.uuid),
            ),
            f(
                f"nic.ip/{idx}",
                f"NicIP/{idx}",
                "text",
                f"IP address of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: x.ip),
            ),
            f(
                f"nic.mac/{idx}",
                f"NicMAC/{idx}",
                "text",
                f"MAC address of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: x.mac),
            ),
            f(
                f"nic.link/{idx}",
                f"NicLink/{idx}",
                "text",
                f"Link of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: nic_filled(c.state, x)["link"]),
            ),
            f(
                f"nic.mode/{idx}",
                f"NicMode/{idx}",
                "text",
                f"Mode of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: nic_filled(c.state, x)["mode"]),
            ),
            f(
                f"nic.bridge/{idx}",
                f"NicBridge/{idx}",
                "text",
                f"Bridge of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: _bridge(c, x)),
            ),
            f(
                f"nic.network/{idx}",
                f"NicNetwork/{idx}",
                "text",
                f"Network of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: x.network),
            ),
            f(
                f"nic.network.name/{idx}",
                f"NicNetworkName/{idx}",
                "text",
                f"Network name of {n} network interface",
                _idx_getter("nics", idx, lambda c, x: _net_name(c, x.network)),
            ),
        ]
    fields += _common_fields("Instance")
    by_name = {fd.name: fd for fd in fields}
    for alias, target in INSTANCE_ALIASES:
        fd = by_name[target]
        fields.append(FieldDef(alias, fd.title, fd.kind, fd.doc, fd.getter, fd.runtime))
    return fields


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


# ---- nodes -----------------------------------------------------------------


def _node_live(fn: Callable[[Ctx, Node], Any]) -> Getter:
    def getter(c: Ctx, n: Node) -> Entry:
        bad = _node_rpc_status(n)
        if bad is not None:
            return (bad, None)
        return ok(fn(c, n))

    return getter


def node_ndparams(state: ClusterState, node: Node) -> dict[str, Any]:
    group = state.group_by_uuid(node.group_uuid)
    return {**state.info["ndparams"], **group.ndparams, **node.ndparams}


def _node_nodata(c: Ctx, n: Node) -> Entry:
    # spindles are only reported with LVM exclusive storage
    bad = _node_rpc_status(n)
    return (bad if bad is not None else RS_NODATA, None)


def _node_fields() -> list[FieldDef]:
    f = FieldDef
    fields = [
        f("drained", "Drained", "bool", "Whether node is drained", lambda c, n: ok(n.drained)),
        f(
            "master_candidate",
            "MasterC",
            "bool",
            "Whether node is a master candidate",
            lambda c, n: ok(n.master_candidate),
        ),
        f(
            "master_capable",
            "MasterCapable",
            "bool",
            "Whether node can become a master candidate",
            lambda c, n: ok(n.master_capable),
        ),
        f("name", "Node", "text", "Node name", lambda c, n: ok(n.name)),
        f(
            "offline",
            "Offline",
            "bool",
            "Whether node is marked offline",
            lambda c, n: ok(n.offline),
        ),
        f(
            "vm_capable",
            "VMCapable",
            "bool",
            "Whether node can host instances",
            lambda c, n: ok(n.vm_capable),
        ),
        f("pip", "PrimaryIP", "text", "Primary IP address", lambda c, n: ok(n.pip)),
        f("sip", "SecondaryIP", "text", "Secondary IP address", lambda c, n: ok(n.sip)),
        f(
            "master",
            "IsMaster",
            "bool",
            "Whether node is master",
            lambda c, n: ok(n.uuid == c.state.master_uuid),
        ),
        f(
            "group",
            "Group",
            "text",
            "Node group",
            lambda c, n: ok(c.state.group_by_uuid(n.group_uuid).name),
        ),
        f("group.uuid", "GroupUUID", "text", "UUID of node group", lambda c, n: ok(n.group_uuid)),
        f(
            "ndparams",
            "NodeParameters",
            "other",
            "Merged node parameters",
            lambda c, n: ok(node_ndparams(c.state, n)),
        ),
        f(
            "custom_ndparams",
            "CustomNodeParameters",
            "other",
            "Custom node parameters",
            lambda c, n: ok(dict(n.ndparams)),
        ),
        f(
            "pinst_cnt",
            "Pinst",
            "number",
            "Number of instances with this node as primary",
            lambda c, n: ok(len(c.pinst(n))),
        ),
        f(
            "sinst_cnt",
            "Sinst",
            "number",
            "Number of instances with this node as secondary",
            lambda c, n: ok(len(c.sinst(n))),
        ),
        f(
            "pinst_list",
            "PriInstances",
            "other",
            "List of instances with this node as primary",
            lambda c, n: ok(list(c.pinst(n))),
        ),
        f(
            "sinst_list",
            "SecInstances",
            "other",
            "List of instances with this node as secondary",
            lambda c, n: ok(list(c.sinst(n))),
        ),
        f(
            "role",
            "Role",
            "text",
            'Node role; "M" for master, "C" for master candidate, "R" for regular,'
            ' "D" for drained, "O" for offline',
            lambda c, n: ok(c.state.node_role(n)),
        ),
        f(
            "powered",
            "Powered",
            "bool",
            "Whether node is thought to be powered on",
            lambda c, n: (RS_UNAVAIL, None),
        ),
        f(
            "hv_state",
            "HypervisorState",
            "other",
            "Hypervisor state",
            lambda c, n: (RS_UNAVAIL, None),
        ),
        f("disk_state", "DiskState", "other", "Disk state", lambda c, n: (RS_UNAVAIL, None)),
        # runtime fields: one RPC per node
        f(
            "bootid",
            "BootID",
            "text",
            "Random UUID renewed for each system reboot, can be used for detecting reboots"
            " by tracking changes",
            _node_live(lambda c, n: n.uuid),
            runtime=True,
        ),
        f(
            "cnodes",
            "CNodes",
            "number",
            "Number of NUMA domains on node (if exported by hypervisor)",
            _node_live(lambda c, n: n.cnodes),
            runtime=True,
        ),
        f(
            "cnos",
            "CNOs",
            "number",
            "Number of logical processors used by the node OS (dom0 for Xen)",
            _node_live(lambda c, n: n.cnos),
            runtime=True,
        ),
        f(
            "csockets",
            "CSockets",
            "number",
            "Number of physical CPU sockets (if exported by hypervisor)",
            _node_live(lambda c, n: n.csockets),
            runtime=True,
        ),
        f(
            "ctotal",
            "CTotal",
            "number",
            "Number of logical processors",
            _node_live(lambda c, n: n.ctotal),
            runtime=True,
        ),
        f(
            "dfree",
            "DFree",
            "unit",
            "Available storage space on storage unit",
            _node_live(lambda c, n: max(0, n.dtotal - c.disk_used(n))),
            runtime=True,
        ),
        f(
            "dtotal",
            "DTotal",
            "unit",
            "Total storage space on storage unit for instance disk allocation",
            _node_live(lambda c, n: n.dtotal),
            runtime=True,
        ),
        f(
            "spfree",
            "SpFree",
            "number",
            "Available spindles in volume group (exclusive storage only)",
            _node_nodata,
            runtime=True,
        ),
        f(
            "sptotal",
            "SpTotal",
            "number",
            "Total spindles in volume group (exclusive storage only)",
            _node_nodata,
            runtime=True,
        ),
        f(
            "mfree",
            "MFree",
            "unit",
            "Memory available for instance allocations",
            _node_live(lambda c, n: max(0, n.mtotal - n.mnode - c.mem_used(n))),
            runtime=True,
        ),
        f(
            "mnode",
            "MNode",
            "unit",
            "Amount of memory used by node (dom0 for Xen)",
            _node_live(lambda c, n: n.mnode),
            runtime=True,
        ),
        f(
            "mtotal",
            "MTotal",
            "unit",
            "Total amount of memory of physical machine",
            _node_live(lambda c, n: n.mtotal),
            runtime=True,
        ),
    ]
    return fields + _common_fields("Node")


# ---- groups and networks ---------------------------------------------------


def group_nodes(c: Ctx, g: Group) -> list[Node]:
    return [n for n in c.state.sorted_nodes() if n.group_uuid == g.uuid]


def _group_fields() -> list[FieldDef]:
    f = FieldDef

    def pinst(c: Ctx, g: Group) -> list[str]:
        return [name for n in group_nodes(c, g) for name in c.pinst(n)]

    fields = [
        f(
            "alloc_policy",
            "AllocPolicy",
            "text",
            "Allocation policy for group",
            lambda c, g: ok(g.alloc_policy),
        ),
        f("name", "Group", "text", "Group name", lambda c, g: ok(g.name)),
        f(
            "node_cnt",
            "Nodes",
            "number",
            "Number of nodes",
            lambda c, g: ok(len(group_nodes(c, g))),
        ),
        f(
            "node_list",
            "NodeList",
            "other",
            "List of nodes",
            lambda c, g: ok([n.name for n in group_nodes(c, g)]),
        ),
        f(
            "pinst_cnt",
            "Instances",
            "number",
            "Number of primary instances",
            lambda c, g: ok(len(pinst(c, g))),
        ),
        f(
            "pinst_list",
            "InstanceList",
            "other",
            "List of primary instances",
            lambda c, g: ok(sorted(pinst(c, g), key=st.nice_sort_key)),
        ),
        f(
            "ipolicy",
            "InstancePolicy",
            "other",
            "Instance policy limitations (merged)",
            lambda c, g: ok({**c.state.info["ipolicy"], **g.ipolicy}),
        ),
        f(
            "custom_ipolicy",
            "CustomInstancePolicy",
            "other",
            "Custom instance policy limitations",
            lambda c, g: ok(dict(g.ipolicy)),
        ),
        f(
            "diskparams",
            "DiskParameters",
            "other",
            "Disk parameters (merged)",
            lambda c, g: ok({**c.state.info["diskparams"], **g.diskparams}),
        ),
        f(
            "custom_diskparams",
            "CustomDiskParameters",
            "other",
            "Custom disk parameters",
            lambda c, g: ok(dict(g.diskparams)),
        ),
        f(
            "ndparams",
            "NDParams",
            "other",
            "Node parameters",
            lambda c, g: ok({**c.state.info["ndparams"], **g.ndparams}),
        ),
        f(
            "custom_ndparams",
            "CustomNDParams",
            "other",
            "Custom node parameters",
            lambda c, g: ok(dict(g.ndparams)),
        ),
        f(
            "networks",
            "Networks",
            "other",
            "Node group networks",
            lambda c, g: ok([c.state.network_by_uuid(u).name for u in g.networks]),
        ),
    ]
    return fields + _common_fields("Group")


def network_size(net: Network) -> int:
    return int(ipaddress.ip_network(net.network, strict=False).num_addresses)


def network_map(net: Network) -> str:
    size = network_size(net)
    chars = ["."] * size
    for off in net.reserved | net.external:
        if off < size:
            chars[off] = "X"
    return "".join(chars)


def _net_group_list(c: Ctx, net: Network) -> list[list[str]]:
    out = []
    for g in c.state.sorted_groups():
        if net.uuid in g.networks:
            p = g.networks[net.uuid]
            out.append([g.name, p["mode"], p["link"], p.get("vlan", "")])
    return out


def _external(net: Network) -> str:
    base = ipaddress.ip_network(net.network, strict=False).network_address
    return ", ".join(str(base + off) for off in sorted(net.external))


def _network_fields() -> list[FieldDef]:
    f = FieldDef
    fields = [
        f("name", "Network", "text", "Name", lambda c, n: ok(n.name)),
        f("network", "Subnet", "text", "IPv4 subnet", lambda c, n: ok(n.network)),
        f("gateway", "Gateway", "other", "IPv4 gateway", lambda c, n: ok(n.gateway)),
        f("network6", "IPv6Subnet", "other", "IPv6 subnet", lambda c, n: ok(n.network6)),
        f("gateway6", "IPv6Gateway", "other", "IPv6 gateway", lambda c, n: ok(n.gateway6)),
        f("mac_prefix", "MacPrefix", "other", "MAC address prefix", lambda c, n: ok(n.mac_prefix)),
        f(
            "free_count",
            "FreeCount",
            "number",
            "Number of available addresses",
            lambda c, n: ok(network_size(n) - len(n.reserved | n.external)),
        ),
        f(
            "reserved_count",
            "ReservedCount",
            "number",
            "Number of reserved addresses",
            lambda c, n: ok(len(n.reserved | n.external)),
        ),
        f("map", "Map", "text", "Actual mapping", lambda c, n: ok(network_map(n))),
        f(
            "external_reservations",
            "ExternalReservations",
            "text",
            "External reservations",
            lambda c, n: ok(_external(n)),
        ),
        f(
            "group_list",
            "GroupList",
            "other",
            "List of nodegroups (group name, NIC mode, NIC link)",
            lambda c, n: ok(_net_group_list(c, n)),
        ),
        f(
            "group_cnt",
            "NodeGroups",
            "number",
            "Number of nodegroups",
            lambda c, n: ok(len(_net_group_list(c, n))),
        ),
        f(
            "inst_list",
            "InstanceList",
            "other",
            "List of instances",
            lambda c, n: ok(list(c.net_instances(n))),
        ),
        f(
            "inst_cnt",
            "Instances",
            "number",
            "Number of instances",
            lambda c, n: ok(len(c.net_instances(n))),
        ),
    ]
    return fields + _common_fields("Network")


# ---- jobs ------------------------------------------------------------------


def _job_fields() -> list[FieldDef]:
    f = FieldDef
    return [
        f("id", "ID", "number", "Job ID", lambda c, j: ok(j.id)),
        f("status", "Status", "text", "Job status", lambda c, j: ok(j.status)),
        f(
            "priority",
            "Priority",
            "number",
            "Current job priority (-20 to 19, lower is more important)",
            lambda c, j: ok(j.priority),
        ),
        f("archived", "Archived", "bool", "Whether job is archived", lambda c, j: ok(j.archived)),
        f(
            "ops",
            "OpCodes",
            "other",
            "List of all opcodes",
            lambda c, j: ok([o.input for o in j.ops]),
        ),
        f(
            "opresult",
            "OpCode_result",
            "other",
            "List of opcodes results",
            lambda c, j: ok([o.result for o in j.ops]),
        ),
        f(
            "opstatus",
            "OpCode_status",
            "other",
            "List of opcodes status",
            lambda c, j: ok([o.status for o in j.ops]),
        ),
        f(
            "oplog",
            "OpCode_log",
            "other",
            "List of opcode output logs",
            lambda c, j: ok([list(o.log) for o in j.ops]),
        ),
        f(
            "opstart",
            "OpCode_start",
            "other",
            "List of opcode start timestamps (before acquiring locks)",
            lambda c, j: ok([o.start_ts for o in j.ops]),
        ),
        f(
            "opexec",
            "OpCode_exec",
            "other",
            "List of opcode execution start timestamps (after acquiring locks)",
            lambda c, j: ok([o.exec_ts for o in j.ops]),
        ),
        f(
            "opend",
            "OpCode_end",
            "other",
            "List of opcode end timestamps",
            lambda c, j: ok([o.end_ts for o in j.ops]),
        ),
        f(
            "oppriority",
            "OpCode_prio",
            "other",
            "List of opcode priorities",
            lambda c, j: ok([o.priority for o in j.ops]),
        ),
        f(
            "summary",
            "Summary",
            "other",
            "List of per-opcode summaries",
            lambda c, j: ok([o.summary for o in j.ops]),
        ),
        f(
            "received_ts",
            "Received",
            "other",
            "Timestamp of when job was received",
            lambda c, j: ok(j.received_ts),
        ),
        f("start_ts", "Start", "other", "Timestamp of job start", lambda c, j: ok(j.start_ts)),
        f("end_ts", "End", "other", "Timestamp of job end", lambda c, j: ok(j.end_ts)),
    ]


def _by_name(fields: list[FieldDef]) -> dict[str, FieldDef]:
    return {fd.name: fd for fd in fields}


FIELDS: dict[str, dict[str, FieldDef]] = {
    "instance": _by_name(_instance_fields()),
    "node": _by_name(_node_fields()),
    "group": _by_name(_group_fields()),
    "network": _by_name(_network_fields()),
    "job": _by_name(_job_fields()),
}

# The field lists rlib2 asks for in its classic (bulk) resources.
I_FIELDS = [
    "name",
    "admin_state",
    "os",
    "pnode",
    "snodes",
    "disk_template",
    "nic.ips",
    "nic.macs",
    "nic.modes",
    "nic.uuids",
    "nic.names",
    "nic.links",
    "nic.networks",
    "nic.networks.names",
    "nic.bridges",
    "network_port",
    "disk.sizes",
    "disk.spindles",
    "disk_usage",
    "disk.uuids",
    "disk.names",
    "beparams",
    "hvparams",
    "oper_state",
    "oper_ram",
    "oper_vcpus",
    "status",
    "custom_hvparams",
    "custom_beparams",
    "custom_nicparams",
    # Ganeti 3.1 adds "custom_osparams" here; the 3.0 sandbox does not have it
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
]
N_FIELDS = [
    "name",
    "offline",
    "master_candidate",
    "drained",
    "dtotal",
    "dfree",
    "sptotal",
    "spfree",
    "mtotal",
    "mnode",
    "mfree",
    "pinst_cnt",
    "sinst_cnt",
    "ctotal",
    "cnos",
    "cnodes",
    "csockets",
    "pip",
    "sip",
    "role",
    "pinst_list",
    "sinst_list",
    "master_capable",
    "vm_capable",
    "ndparams",
    "group.uuid",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
]
G_FIELDS = [
    "alloc_policy",
    "name",
    "node_cnt",
    "node_list",
    "ipolicy",
    "custom_ipolicy",
    "diskparams",
    "custom_diskparams",
    "ndparams",
    "custom_ndparams",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
]
NET_FIELDS = [
    "name",
    "network",
    "gateway",
    "network6",
    "gateway6",
    "mac_prefix",
    "free_count",
    "reserved_count",
    "map",
    "group_list",
    "inst_list",
    "external_reservations",
    "ctime",
    "mtime",
    "uuid",
    "serial_no",
    "tags",
]
J_FIELDS_BULK = ["id", "ops", "status", "summary", "opstatus", "received_ts", "start_ts", "end_ts"]
J_FIELDS = [*J_FIELDS_BULK, "oplog", "opresult"]


def is_runtime(resource: str, names: Iterable[str]) -> bool:
    defs = FIELDS.get(resource, {})
    return any(defs[n].runtime for n in names if n in defs)


def unknown_field(name: str) -> FieldDef:
    return FieldDef(
        name, name, "unknown", f"Unknown field '{name}'", lambda c, o: (RS_UNKNOWN, None)
    )


def resolve(resource: str, names: list[str]) -> list[FieldDef]:
    defs = FIELDS[resource]
    return [defs.get(n) or unknown_field(n) for n in names]


# ---- filters ---------------------------------------------------------------

Pred = Callable[[Ctx, Any], bool]


def _value_ok(v: Any) -> bool:
    return isinstance(v, str | int) and not isinstance(v, bool)


def compile_filter(resource: str, flt: Any) -> Pred | None:
    """Compile a qfilter (``["&", ["=", "name", "x"], ...]``) into a predicate.

    Semantics follow src/Ganeti/Query/Filter.hs: unknown fields and bad shapes
    are errors; a field without data (node down) lets the row pass.
    """
    if flt is None:
        return None
    return _compile(FIELDS[resource], flt)


def _field_getter(defs: dict[str, FieldDef], name: Any) -> Getter:
    if not isinstance(name, str) or name not in defs:
        raise QueryError(f"Can't find field named '{name}'")
    return defs[name].getter


def _compile(defs: dict[str, FieldDef], flt: Any) -> Pred:
    if not (isinstance(flt, list) and flt and isinstance(flt[0], str)):
        raise QueryError(f"Cannot deserialise filter: expected array [string, args], got {flt!r}")
    op, args = flt[0], flt[1:]
    if op in ("&", "|"):
        subs = [_compile(defs, a) for a in args]
        if op == "&":
            return lambda c, o: all(s(c, o) for s in subs)
        return lambda c, o: any(s(c, o) for s in subs)
    if op == "!":
        if len(args) != 1:
            raise QueryError(f"Cannot deserialise field, expected [filter] but got {args!r}")
        sub = _compile(defs, args[0])
        return lambda c, o: not sub(c, o)
    if op == "?":
        if len(args) != 1:
            raise QueryError(f"Cannot deserialise field, expected [fieldname] but got {args!r}")
        getter = _field_getter(defs, args[0])

        def truth(c: Ctx, o: Any) -> bool:
            status, v = getter(c, o)
            if status != RS_NORMAL:
                return True
            if not isinstance(v, bool):
                raise QueryError(f"Unexpected value '{v!r}' in boolean context")
            return v

        return truth
    if op == "!=":
        # Ganeti reads "!=" as a legacy shorthand for ["!", ["==", ...]]
        eq = _compile(defs, ["==", *args])
        return lambda c, o: not eq(c, o)
    if op not in ("==", "=", "<", ">", "<=", ">=", "=~", "=[]"):
        raise QueryError(f"Unknown filter operand '{op}'")
    if len(args) != 2:
        raise QueryError(
            f"Cannot deserialise field/value pair, expected [fieldname, value] but got {args!r}"
        )
    getter = _field_getter(defs, args[0])
    value = args[1]
    if op == "=~":
        if not isinstance(value, str):
            raise QueryError("Cannot deserialise regexp, expected a string")
        try:
            rx = re.compile(value)
        except re.error as exc:
            raise QueryError(f"Invalid regular expression: {exc}") from exc

        def regexp(c: Ctx, o: Any) -> bool:
            status, v = getter(c, o)
            if status != RS_NORMAL:
                return True
            if not isinstance(v, str):
                raise QueryError(
                    f"Invalid field value used in regexp matching, expecting string but got '{v!r}'"
                )
            return rx.search(v) is not None

        return regexp
    if not _value_ok(value):
        raise QueryError(
            f"Cannot deserialise filter value, expecting string or integer, got {value!r}"
        )
    if op == "=[]":

        def contains(c: Ctx, o: Any) -> bool:
            status, v = getter(c, o)
            if status != RS_NORMAL:
                return True
            if not isinstance(v, list):
                raise QueryError(f"Invalid value for a list field: {v!r}")
            return value in v

        return contains

    compare: Callable[[Any, Any], bool] = {
        "==": lambda a, b: a == b,
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }[op]

    def binop(c: Ctx, o: Any) -> bool:
        status, v = getter(c, o)
        if status != RS_NORMAL:
            return True
        same = (isinstance(value, str) and isinstance(v, str)) or (
            isinstance(value, int) and isinstance(v, int | float) and not isinstance(v, bool)
        )
        if not same:
            raise QueryError(f"Invalid types in comparison, trying to compare {v!r} with {value!r}")
        return compare(v, value)

    return binop


# ---- running a query -------------------------------------------------------


def objects_for(c: Ctx, resource: str) -> list[Any]:
    s = c.state
    if resource == "instance":
        return [s.instances[n] for n in s.sorted_instance_names()]
    if resource == "node":
        return s.sorted_nodes()
    if resource == "group":
        return s.sorted_groups()
    if resource == "network":
        return s.sorted_networks()
    if resource == "job":
        return [c.jobs[k] for k in sorted(c.jobs) if not c.jobs[k].archived]
    raise QueryError(f"Resource '{resource}' is not supported")


NAME_KINDS = {"instance": "Instance", "node": "Node", "group": "Group", "network": "Network"}


def requested_names(flt: Any) -> list[str] | None:
    """Names a filter asks for by equality (luxid's requestedNames): luxid
    looks these up directly and fails the query on an unknown one."""
    if not isinstance(flt, list) or not flt:
        return None
    if flt[0] in ("=", "==") and len(flt) == 3 and flt[1] == "name" and isinstance(flt[2], str):
        return [flt[2]]
    if flt[0] == "|" and len(flt) > 1:
        names: list[str] = []
        for sub in flt[1:]:
            found = requested_names(sub)
            if found is None:
                return None
            names.extend(found)
        return names
    return None


def check_requested_names(state: ClusterState, resource: str, flt: Any) -> None:
    names = requested_names(flt)
    if names is None or resource not in NAME_KINDS:
        return
    tables: dict[str, dict[str, Any]] = {
        "instance": state.instances,
        "node": state.nodes,
        "group": state.groups,
        "network": state.networks,
    }
    table = tables[resource]
    for name in names:
        if name not in table:
            raise QueryError(f"{NAME_KINDS[resource]} name {name} not found", "unknown_entity")


def run_query(
    c: Ctx, resource: str, names: list[str], qfilter: Any, items: list[Any] | None = None
) -> dict[str, Any]:
    """The ``/2/query`` answer: field definitions and rows of [status, value]."""
    if resource not in FIELDS:
        raise QueryError(f"Resource '{resource}' is not supported")
    defs = resolve(resource, names)
    pred = compile_filter(resource, qfilter)
    check_requested_names(c.state, resource, qfilter)
    rows = []
    for obj in objects_for(c, resource) if items is None else items:
        if pred is not None and not pred(c, obj):
            continue
        rows.append([list(fd.getter(c, obj)) for fd in defs])
    return {"data": rows, "fields": [fd.definition() for fd in defs]}


def classic_rows(c: Ctx, resource: str, names: list[str], items: list[Any]) -> list[dict[str, Any]]:
    """Bulk-list dicts: like a query, with every non-normal value as null."""
    getters = [(fd.name, fd.getter) for fd in resolve(resource, names)]
    out = []
    for obj in items:
        row = {}
        for name, getter in getters:
            status, value = getter(c, obj)
            row[name] = value if status == RS_NORMAL else None
        out.append(row)
    return out


def query_fields(resource: str, names: list[str] | None) -> dict[str, Any]:
    if resource not in FIELDS:
        raise QueryError(f"Resource '{resource}' is not supported")
    defs = list(FIELDS[resource].values()) if names is None else resolve(resource, names)
    return {"fields": [fd.definition() for fd in defs]}
