"""The simulated cluster's configuration and runtime state: pure data, no HTTP.

Objects mirror Ganeti's configuration objects closely enough that the RAPI
views (the query fields in ``fields/``) can be derived from them the way luxid
derives its answers: config fields straight from here, runtime fields
(``status``, ``oper_state``, ``mfree``...) from the ``running_on`` and
``unreachable`` values that stand in for what the node daemons would report.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Node roles as luxid reports them in the ``role`` field (one letter).
ROLE_MASTER = "M"
ROLE_CANDIDATE = "C"
ROLE_REGULAR = "R"
ROLE_DRAINED = "D"
ROLE_OFFLINE = "O"

# What /2/nodes/[n]/role answers for each letter (rlib2._NR_MAP).
ROLE_NAMES = {
    ROLE_MASTER: "master",
    ROLE_CANDIDATE: "master-candidate",
    ROLE_REGULAR: "regular",
    ROLE_DRAINED: "drained",
    ROLE_OFFLINE: "offline",
}

ADMIN_UP = "up"
ADMIN_DOWN = "down"
ADMIN_OFFLINE = "offline"


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def now() -> float:
    return time.time()


@dataclass(slots=True, kw_only=True)
class ConfigObject:
    """What every configuration object has (the query fields of the same names)."""

    tags: list[str] = field(default_factory=list)
    ctime: float = 0.0
    mtime: float = 0.0
    serial_no: int = 1


@dataclass(slots=True)
class Node(ConfigObject):
    name: str
    uuid: str
    group_uuid: str
    pip: str
    sip: str
    master_candidate: bool = True
    drained: bool = False
    offline: bool = False
    master_capable: bool = True
    vm_capable: bool = True
    ndparams: dict[str, Any] = field(default_factory=dict)  # custom ndparams
    # hardware, as the node daemon would report it
    mtotal: int = 65536
    mnode: int = 1024
    dtotal: int = 1_048_576
    ctotal: int = 16
    cnos: int = 1
    cnodes: int = 1
    csockets: int = 1
    # runtime: the node daemon does not answer (RPC fails). Not in the config.
    unreachable: bool = False


@dataclass(slots=True)
class Group(ConfigObject):
    name: str
    uuid: str
    alloc_policy: str = "preferred"
    ndparams: dict[str, Any] = field(default_factory=dict)
    ipolicy: dict[str, Any] = field(default_factory=dict)
    diskparams: dict[str, Any] = field(default_factory=dict)
    # network uuid -> {"mode", "link", "vlan"}
    networks: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Network(ConfigObject):
    name: str
    uuid: str
    network: str
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    # offsets into the network's address range
    reserved: set[int] = field(default_factory=set)  # taken by instances
    external: set[int] = field(default_factory=set)  # reserved by the admin


@dataclass(slots=True)
class Disk:
    uuid: str
    size: int
    mode: str = "rw"
    name: str | None = None
    spindles: int | None = None


@dataclass(slots=True)
class Nic:
    uuid: str
    mac: str
    ip: str | None = None
    name: str | None = None
    network: str | None = None  # network uuid
    nicparams: dict[str, str] = field(default_factory=dict)  # custom mode/link/vlan


@dataclass(slots=True)
class Instance(ConfigObject):
    name: str
    uuid: str
    os: str
    pnode: str  # node uuid
    snodes: list[str] = field(default_factory=list)  # node uuids
    disk_template: str = "plain"
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)
    admin_state: str = ADMIN_UP
    admin_state_source: str = "admin"
    hypervisor: str = "kvm"
    beparams: dict[str, Any] = field(default_factory=dict)  # custom
    hvparams: dict[str, Any] = field(default_factory=dict)  # custom
    osparams: dict[str, Any] = field(default_factory=dict)  # custom
    network_port: int | None = None
    disks_active: bool = True
    # runtime, as the hypervisor would report it: where it actually runs
    # (None = not running anywhere). Differs from pnode for ERROR_wrongnode.
    running_on: str | None = None


@dataclass
class ClusterState:
    """One simulated cluster: config objects plus the runtime flags."""

    info: dict[str, Any]
    nodes: dict[str, Node] = field(default_factory=dict)  # by name
    groups: dict[str, Group] = field(default_factory=dict)  # by name
    networks: dict[str, Network] = field(default_factory=dict)  # by name
    instances: dict[str, Instance] = field(default_factory=dict)  # by name
    os_list: list[dict[str, Any]] = field(default_factory=list)
    master_uuid: str = ""
    _sorted_instances: list[str] | None = None
    _node_by_uuid: dict[str, Node] = field(default_factory=dict)
    _group_by_uuid: dict[str, Group] = field(default_factory=dict)
    _network_by_uuid: dict[str, Network] = field(default_factory=dict)

    # ---- lookups -------------------------------------------------------
    def reindex(self) -> None:
        """Rebuild the uuid maps; call after adding or removing objects."""
        self._node_by_uuid = {n.uuid: n for n in self.nodes.values()}
        self._group_by_uuid = {g.uuid: g for g in self.groups.values()}
        self._network_by_uuid = {n.uuid: n for n in self.networks.values()}
        self._sorted_instances = None

    def node_by_uuid(self, node_uuid: str) -> Node:
        return self._node_by_uuid[node_uuid]

    def group_by_uuid(self, group_uuid: str) -> Group:
        return self._group_by_uuid[group_uuid]

    def network_by_uuid(self, net_uuid: str) -> Network:
        return self._network_by_uuid[net_uuid]

    def by_kind(self, kind: str) -> Mapping[str, ConfigObject]:
        """The objects of one kind by name: instance, node, group (or nodegroup), network."""
        tables: dict[str, Mapping[str, ConfigObject]] = {
            "instance": self.instances,
            "node": self.nodes,
            "group": self.groups,
            "nodegroup": self.groups,
            "network": self.networks,
        }
        return tables[kind]

    @property
    def master(self) -> Node:
        return self._node_by_uuid[self.master_uuid]

    def sorted_instance_names(self) -> list[str]:
        # Ganeti answers in "nice sort" order; cached because bulk lists of
        # 10,000 instances are the hot path.
        if self._sorted_instances is None:
            self._sorted_instances = sorted(self.instances, key=nice_sort_key)
        return self._sorted_instances

    def sorted_nodes(self) -> list[Node]:
        return [self.nodes[n] for n in sorted(self.nodes, key=nice_sort_key)]

    def sorted_groups(self) -> list[Group]:
        return [self.groups[n] for n in sorted(self.groups, key=nice_sort_key)]

    def sorted_networks(self) -> list[Network]:
        return [self.networks[n] for n in sorted(self.networks, key=nice_sort_key)]

    # ---- changes -------------------------------------------------------
    def touch(self, obj: ConfigObject | None) -> None:
        """Record a configuration change of ``obj`` (None: of the cluster).

        Ganeti bumps ``serial_no`` and ``mtime`` together when its configuration
        changes, and the cluster's ``mtime`` with them. Runtime changes (an
        instance starting or crashing, a node's daemon going away) touch
        neither: they only change what the nodes report.
        """
        t = now()
        if obj is not None:
            obj.mtime = t
            obj.serial_no += 1
        self.info["mtime"] = t

    def instance_set_changed(self) -> None:
        """Call after adding, removing or renaming an instance."""
        self._sorted_instances = None

    def node_role(self, node: Node) -> str:
        if node.uuid == self.master_uuid:
            return ROLE_MASTER
        if node.master_candidate:
            return ROLE_CANDIDATE
        if node.drained:
            return ROLE_DRAINED
        if node.offline:
            return ROLE_OFFLINE
        return ROLE_REGULAR


def nice_sort_key(name: str) -> tuple[Any, ...]:
    """Ganeti's niceSort: digit runs compare as numbers."""
    parts: list[Any] = []
    num = ""
    text = ""
    for ch in name:
        if ch.isdigit():
            if text:
                parts.append((1, text))
                text = ""
            num += ch
        else:
            if num:
                parts.append((0, int(num)))
                num = ""
            text += ch
    if num:
        parts.append((0, int(num)))
    if text:
        parts.append((1, text))
    return tuple(parts)
