"""Every operation gwm can ask of Ganeti: its parameters, what it holds, and its RAPI call.

One table, so the API, the services and the workers agree on what each action
is. Parameter schemas reject unknown fields (422), and each action says which
resource status it holds while it runs (docs/status-model.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gwm.kit.names import GanetiName
from gwm.rapi import RapiClient

Call = Callable[[RapiClient, str, dict[str, Any], str | None, bool], int]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    pass


class Changes(Params):
    """A modify body: it must change something, or Ganeti has nothing to do (422).

    An empty ``{}`` or ``[]`` changes nothing either.

    Fields named in ``modifiers`` only say how to change (``force``), not what.
    """

    modifiers: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _changes_something(self) -> Changes:
        changes = [
            name
            for name in type(self).model_fields
            if name not in self.modifiers and getattr(self, name) not in (None, {}, [])
        ]
        if not changes:
            settable = sorted(set(type(self).model_fields) - self.modifiers)
            raise ValueError(f"nothing to change: give at least one of {', '.join(settable)}")
        return self


def _args(params: dict[str, Any], *names: str) -> dict[str, Any]:
    """The given parameters that are set, as keyword arguments for the client."""
    return {name: params[name] for name in names if params.get(name) is not None}


@dataclass(frozen=True)
class Action:
    resource: str
    name: str
    params: type[Params]
    call: Call
    hold: str | None = None
    dry_run: bool = False
    #: Ganeti drops the reason on a few resources; adoption then matches opcodes.
    carries_reason: bool = True
    opcodes: tuple[str, ...] = ()
    summary: str = ""

    @property
    def key(self) -> str:
        return f"{self.resource}.{self.name}"


# -- instances ----------------------------------------------------------------


class Disk(Params):
    size: int = Field(ge=1, description="MiB")
    mode: Literal["rw", "ro"] | None = None
    name: str | None = None
    spindles: int | None = None


class Nic(Params):
    ip: str | None = None
    mac: str | None = None
    mode: Literal["bridged", "routed", "openvswitch"] | None = None
    link: str | None = None
    network: str | None = None
    name: str | None = None


class InstanceCreate(Params):
    name: GanetiName
    disk_template: Literal[
        "diskless", "file", "sharedfile", "plain", "drbd", "blockdev", "rbd", "ext", "gluster"
    ]
    disks: list[Disk] = []
    nics: list[Nic] = []
    os: str | None = Field(None, description="OS definition, e.g. debootstrap+default")
    pnode: str | None = None
    snode: str | None = None
    iallocator: str | None = None
    beparams: dict[str, Any] = {}
    hvparams: dict[str, Any] = {}
    osparams: dict[str, Any] = {}
    tags: list[str] = []
    start: bool = True
    name_check: bool = True
    ip_check: bool = True
    wait_for_sync: bool | None = None
    no_install: bool | None = None


def _create(client: RapiClient, name: str, p: dict[str, Any], reason: str | None, dry: bool) -> int:
    return client.create_instance(
        name,
        disk_template=p["disk_template"],
        disks=[{k: v for k, v in d.items() if v is not None} for d in p["disks"]],
        nics=[{k: v for k, v in n.items() if v is not None} for n in p["nics"]],
        os_type=p.get("os"),
        beparams=p["beparams"] or None,
        hvparams=p["hvparams"] or None,
        osparams=p["osparams"] or None,
        tags=p["tags"] or None,
        start=p["start"],
        name_check=p["name_check"],
        ip_check=p["ip_check"],
        dry_run=dry,
        reason=reason,
        **_args(p, "pnode", "snode", "iallocator", "wait_for_sync", "no_install"),
    )


class InstanceDelete(Params):
    shutdown_timeout: int | None = Field(None, ge=0)


class InstanceModify(Changes):
    modifiers: ClassVar[frozenset[str]] = frozenset({"force", "wait_for_sync"})

    beparams: dict[str, Any] | None = None
    hvparams: dict[str, Any] | None = None
    osparams: dict[str, Any] | None = None
    os_name: str | None = None
    disk_template: str | None = None
    remote_node: str | None = None
    disks: list[Any] | None = Field(None, description='Ganeti\'s form: [["add", {...}], ...]')
    nics: list[Any] | None = None
    offline: bool | None = None
    force: bool | None = None
    wait_for_sync: bool | None = None


class Start(Params):
    force: bool | None = None
    no_remember: bool | None = None


class Shutdown(Params):
    timeout: int | None = Field(None, ge=0, description="seconds before a hard stop")
    force: bool | None = None
    no_remember: bool | None = None


class Reboot(Params):
    type: Literal["soft", "hard", "full"] = "hard"
    ignore_secondaries: bool | None = None
    shutdown_timeout: int | None = Field(None, ge=0)


class Reinstall(Params):
    os: str | None = None
    start: bool = True
    osparams: dict[str, Any] | None = None


class Migrate(Params):
    mode: Literal["live", "non-live"] | None = None
    cleanup: bool | None = None
    target_node: str | None = None
    allow_failover: bool | None = None
    iallocator: str | None = None


class Failover(Params):
    target_node: str | None = None
    iallocator: str | None = None
    ignore_consistency: bool | None = None
    shutdown_timeout: int | None = Field(None, ge=0)


class Rename(Params):
    new_name: GanetiName
    ip_check: bool | None = None
    name_check: bool | None = None


class GrowDisk(Params):
    disk: int = Field(ge=0, description="disk index")
    amount: int = Field(ge=1, description="MiB to add (or the new size when absolute)")
    absolute: bool | None = None
    wait_for_sync: bool | None = None


class ActivateDisks(Params):
    ignore_size: bool | None = None


class DeactivateDisks(Params):
    force: bool | None = None


class Tags(Params):
    tags: list[str] = Field(min_length=1)


INSTANCE_ACTIONS = [
    Action(
        "instance",
        "create",
        InstanceCreate,
        _create,
        hold="PROVISIONING",
        dry_run=True,
        opcodes=("OP_INSTANCE_CREATE",),
        summary="create an instance",
    ),
    Action(
        "instance",
        "delete",
        InstanceDelete,
        lambda c, n, p, r, d: c.delete_instance(
            n, dry_run=d, reason=r, **_args(p, "shutdown_timeout")
        ),
        hold="DELETING",
        dry_run=True,
        opcodes=("OP_INSTANCE_REMOVE",),
    ),
    Action(
        "instance",
        "modify",
        InstanceModify,
        lambda c, n, p, r, d: c.modify_instance(
            n, reason=r, **{k: v for k, v in p.items() if v is not None}
        ),
        hold="BUSY",
        opcodes=("OP_INSTANCE_SET_PARAMS",),
    ),
    Action(
        "instance",
        "start",
        Start,
        lambda c, n, p, r, d: c.startup_instance(
            n, dry_run=d, reason=r, **_args(p, "force", "no_remember")
        ),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_INSTANCE_STARTUP",),
    ),
    Action(
        "instance",
        "shutdown",
        Shutdown,
        lambda c, n, p, r, d: c.shutdown_instance(
            n, dry_run=d, reason=r, **_args(p, "timeout", "force", "no_remember")
        ),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_INSTANCE_SHUTDOWN",),
    ),
    Action(
        "instance",
        "reboot",
        Reboot,
        lambda c, n, p, r, d: c.reboot_instance(
            n,
            reboot_type=p["type"],
            dry_run=d,
            reason=r,
            **_args(p, "ignore_secondaries", "shutdown_timeout"),
        ),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_INSTANCE_REBOOT",),
    ),
    Action(
        "instance",
        "reinstall",
        Reinstall,
        lambda c, n, p, r, d: c.reinstall_instance(
            n, os_type=p.get("os"), start=p["start"], osparams=p.get("osparams"), reason=r
        ),
        hold="BUSY",
        carries_reason=False,
        opcodes=("OP_INSTANCE_SHUTDOWN", "OP_INSTANCE_REINSTALL"),
    ),
    Action(
        "instance",
        "migrate",
        Migrate,
        lambda c, n, p, r, d: c.migrate_instance(
            n,
            reason=r,
            **_args(p, "mode", "cleanup", "target_node", "allow_failover", "iallocator"),
        ),
        hold="BUSY",
        opcodes=("OP_INSTANCE_MIGRATE",),
    ),
    Action(
        "instance",
        "failover",
        Failover,
        lambda c, n, p, r, d: c.failover_instance(
            n,
            reason=r,
            **_args(p, "target_node", "iallocator", "ignore_consistency", "shutdown_timeout"),
        ),
        hold="BUSY",
        opcodes=("OP_INSTANCE_FAILOVER",),
    ),
    Action(
        "instance",
        "rename",
        Rename,
        lambda c, n, p, r, d: c.rename_instance(
            n, p["new_name"], reason=r, **_args(p, "ip_check", "name_check")
        ),
        hold="BUSY",
        opcodes=("OP_INSTANCE_RENAME",),
    ),
    Action(
        "instance",
        "grow-disk",
        GrowDisk,
        lambda c, n, p, r, d: c.grow_instance_disk(
            n, p["disk"], p["amount"], reason=r, **_args(p, "absolute", "wait_for_sync")
        ),
        hold="BUSY",
        opcodes=("OP_INSTANCE_GROW_DISK",),
    ),
    Action(
        "instance",
        "activate-disks",
        ActivateDisks,
        lambda c, n, p, r, d: c.activate_instance_disks(n, reason=r, **_args(p, "ignore_size")),
        hold="BUSY",
        opcodes=("OP_INSTANCE_ACTIVATE_DISKS",),
    ),
    Action(
        "instance",
        "deactivate-disks",
        DeactivateDisks,
        lambda c, n, p, r, d: c.deactivate_instance_disks(n, reason=r, **_args(p, "force")),
        hold="BUSY",
        opcodes=("OP_INSTANCE_DEACTIVATE_DISKS",),
    ),
    Action(
        "instance",
        "add-tags",
        Tags,
        lambda c, n, p, r, d: c.add_instance_tags(n, p["tags"], dry_run=d, reason=r),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_TAGS_SET",),
    ),
    Action(
        "instance",
        "remove-tags",
        Tags,
        lambda c, n, p, r, d: c.delete_instance_tags(n, p["tags"], dry_run=d, reason=r),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_TAGS_DEL",),
    ),
]

# -- nodes --------------------------------------------------------------------


class SetRole(Params):
    role: Literal["master-candidate", "regular", "drained", "offline"]
    force: bool | None = None
    auto_promote: bool | None = None


class Evacuate(Params):
    mode: Literal["primary-only", "secondary-only", "all"] | None = None
    iallocator: str | None = None
    remote_node: str | None = None
    early_release: bool | None = None


class NodeMigrate(Params):
    mode: Literal["live", "non-live"] | None = None
    target_node: str | None = None
    iallocator: str | None = None


class Powercycle(Params):
    force: bool | None = None


def _node_flag(flag: str, value: bool) -> Call:
    def call(c: RapiClient, n: str, p: dict[str, Any], r: str | None, d: bool) -> int:
        return c.modify_node(n, reason=r, **{flag: value})

    return call


def _node_migrate(c: RapiClient, n: str, p: dict[str, Any], r: str | None, d: bool) -> int:
    # Ganeti ignores the body when the query string has parameters (reason):
    # a target or allocator therefore goes without the reason.
    if p.get("target_node") or p.get("iallocator"):
        return c.migrate_node(n, **_args(p, "mode", "target_node", "iallocator"))
    return c.migrate_node(n, reason=r, **_args(p, "mode"))


NODE_ACTIONS = [
    Action(
        "node",
        "drain",
        NoParams,
        _node_flag("drained", True),
        hold="BUSY",
        opcodes=("OP_NODE_SET_PARAMS",),
    ),
    Action(
        "node",
        "undrain",
        NoParams,
        _node_flag("drained", False),
        hold="BUSY",
        opcodes=("OP_NODE_SET_PARAMS",),
    ),
    Action(
        "node",
        "offline",
        NoParams,
        _node_flag("offline", True),
        hold="BUSY",
        opcodes=("OP_NODE_SET_PARAMS",),
    ),
    Action(
        "node",
        "online",
        NoParams,
        _node_flag("offline", False),
        hold="BUSY",
        opcodes=("OP_NODE_SET_PARAMS",),
    ),
    Action(
        "node",
        "set-role",
        SetRole,
        lambda c, n, p, r, d: c.set_node_role(
            n, p["role"], reason=r, **_args(p, "force", "auto_promote")
        ),
        hold="BUSY",
        opcodes=("OP_NODE_SET_PARAMS",),
    ),
    Action(
        "node",
        "evacuate",
        Evacuate,
        lambda c, n, p, r, d: c.evacuate_node(
            n, dry_run=d, reason=r, **_args(p, "mode", "iallocator", "remote_node", "early_release")
        ),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_NODE_EVACUATE",),
    ),
    Action(
        "node", "migrate", NodeMigrate, _node_migrate, hold="BUSY", opcodes=("OP_NODE_MIGRATE",)
    ),
    Action(
        "node",
        "powercycle",
        Powercycle,
        lambda c, n, p, r, d: c.powercycle_node(n, reason=r, **_args(p, "force")),
        hold="BUSY",
        opcodes=("OP_NODE_POWERCYCLE",),
    ),
    Action(
        "node",
        "add-tags",
        Tags,
        lambda c, n, p, r, d: c.add_node_tags(n, p["tags"], dry_run=d, reason=r),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_TAGS_SET",),
    ),
    Action(
        "node",
        "remove-tags",
        Tags,
        lambda c, n, p, r, d: c.delete_node_tags(n, p["tags"], dry_run=d, reason=r),
        hold="BUSY",
        dry_run=True,
        opcodes=("OP_TAGS_DEL",),
    ),
]

# -- groups -------------------------------------------------------------------


class GroupCreate(Params):
    name: GanetiName
    alloc_policy: Literal["preferred", "last_resort", "unallocable"] | None = None


class GroupModify(Changes):
    alloc_policy: Literal["preferred", "last_resort", "unallocable"] | None = None
    ndparams: dict[str, Any] | None = None
    diskparams: dict[str, Any] | None = None
    ipolicy: dict[str, Any] | None = None


class NewName(Params):
    new_name: GanetiName


class AssignNodes(Params):
    nodes: list[str] = Field(min_length=1)
    force: bool | None = None


GROUP_ACTIONS = [
    Action(
        "group",
        "create",
        GroupCreate,
        lambda c, n, p, r, d: c.create_group(n, dry_run=d, reason=r, **_args(p, "alloc_policy")),
        dry_run=True,
        opcodes=("OP_GROUP_ADD",),
    ),
    Action(
        "group",
        "modify",
        GroupModify,
        lambda c, n, p, r, d: c.modify_group(
            n, reason=r, **{k: v for k, v in p.items() if v is not None}
        ),
        opcodes=("OP_GROUP_SET_PARAMS",),
    ),
    Action(
        "group",
        "rename",
        NewName,
        lambda c, n, p, r, d: c.rename_group(n, p["new_name"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_GROUP_RENAME",),
    ),
    Action(
        "group",
        "delete",
        NoParams,
        lambda c, n, p, r, d: c.delete_group(n, dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_GROUP_REMOVE",),
    ),
    Action(
        "group",
        "assign-nodes",
        AssignNodes,
        lambda c, n, p, r, d: c.assign_group_nodes(
            n, p["nodes"], dry_run=d, reason=r, **_args(p, "force")
        ),
        dry_run=True,
        opcodes=("OP_GROUP_ASSIGN_NODES",),
    ),
    Action(
        "group",
        "add-tags",
        Tags,
        lambda c, n, p, r, d: c.add_group_tags(n, p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_SET",),
    ),
    Action(
        "group",
        "remove-tags",
        Tags,
        lambda c, n, p, r, d: c.delete_group_tags(n, p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_DEL",),
    ),
]

# -- networks -----------------------------------------------------------------


class NetworkCreate(Params):
    name: GanetiName
    network: str = Field(description="IPv4 network in CIDR form, e.g. 10.0.0.0/24")
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    add_reserved_ips: list[str] | None = None
    tags: list[str] | None = None


class NetworkModify(Changes):
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    add_reserved_ips: list[str] | None = None
    remove_reserved_ips: list[str] | None = None


class Connect(Params):
    group: str
    mode: Literal["bridged", "routed", "openvswitch"]
    link: str
    vlan: str | None = None


class Disconnect(Params):
    group: str


NETWORK_ACTIONS = [
    Action(
        "network",
        "create",
        NetworkCreate,
        lambda c, n, p, r, d: c.create_network(
            n,
            p["network"],
            dry_run=d,
            reason=r,
            **_args(p, "gateway", "network6", "gateway6", "mac_prefix", "add_reserved_ips", "tags"),
        ),
        dry_run=True,
        opcodes=("OP_NETWORK_ADD",),
    ),
    Action(
        "network",
        "modify",
        NetworkModify,
        lambda c, n, p, r, d: c.modify_network(
            n, reason=r, **{k: v for k, v in p.items() if v is not None}
        ),
        opcodes=("OP_NETWORK_SET_PARAMS",),
    ),
    Action(
        "network",
        "rename",
        NewName,
        lambda c, n, p, r, d: c.rename_network(n, p["new_name"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_NETWORK_RENAME",),
    ),
    Action(
        "network",
        "delete",
        NoParams,
        lambda c, n, p, r, d: c.delete_network(n, dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_NETWORK_REMOVE",),
    ),
    Action(
        "network",
        "connect",
        Connect,
        lambda c, n, p, r, d: c.connect_network(
            n, p["group"], mode=p["mode"], link=p["link"], dry_run=d, reason=r, **_args(p, "vlan")
        ),
        dry_run=True,
        opcodes=("OP_NETWORK_CONNECT",),
    ),
    Action(
        "network",
        "disconnect",
        Disconnect,
        lambda c, n, p, r, d: c.disconnect_network(n, p["group"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_NETWORK_DISCONNECT",),
    ),
    Action(
        "network",
        "add-tags",
        Tags,
        lambda c, n, p, r, d: c.add_network_tags(n, p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_SET",),
    ),
    Action(
        "network",
        "remove-tags",
        Tags,
        lambda c, n, p, r, d: c.delete_network_tags(n, p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_DEL",),
    ),
]

# -- the cluster itself ----------------------------------------------------------

CLUSTER_ACTIONS = [
    Action(
        "cluster",
        "redistribute-config",
        NoParams,
        lambda c, n, p, r, d: c.redistribute_config(reason=r),
        opcodes=("OP_CLUSTER_REDIST_CONF",),
    ),
    Action(
        "cluster",
        "add-tags",
        Tags,
        lambda c, n, p, r, d: c.add_cluster_tags(p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_SET",),
    ),
    Action(
        "cluster",
        "remove-tags",
        Tags,
        lambda c, n, p, r, d: c.delete_cluster_tags(p["tags"], dry_run=d, reason=r),
        dry_run=True,
        opcodes=("OP_TAGS_DEL",),
    ),
]

ACTIONS: dict[str, Action] = {
    a.key: a
    for a in (*INSTANCE_ACTIONS, *NODE_ACTIONS, *GROUP_ACTIONS, *NETWORK_ACTIONS, *CLUSTER_ACTIONS)
}


def actions_for(resource: str) -> dict[str, Action]:
    return {a.name: a for a in ACTIONS.values() if a.resource == resource}
