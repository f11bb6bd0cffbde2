"""Opcodes: validation (what rlib2's FillOpcode checks) and effects.

Each opcode checks its prerequisites first (OpPrereqError: nothing changed
yet), then logs, takes its time and changes the cluster, the way Ganeti's
logical units do. Messages and error codes follow lib/cmdlib.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gwm.simulator import query
from gwm.simulator import state as st
from gwm.simulator.data import mac_for
from gwm.simulator.jobs import Job, JobQueue, OpExecError, OpPrereqError, OpState
from gwm.simulator.state import ClusterState, Instance, Node

COMMON_PARAMS = ("dry_run", "debug_level", "priority", "depends", "comment", "reason")


class InvalidParams(Exception):
    """rlib2 answers these with 400 "Invalid body parameters: ..."."""


class Exec:
    """What an opcode sees while it runs: the cluster, its job, a logger."""

    def __init__(self, queue: JobQueue, job: Job, op: OpState) -> None:
        self.queue = queue
        self.state: ClusterState = queue.state
        self.job = job
        self.op = op

    def log(self, message: str) -> None:
        self.job.add_log(self.op, message)
        self.queue.notify()

    async def work(self, fraction: float = 1.0) -> None:
        await asyncio.sleep(self.queue.config.op_duration(self.op.input["OP_ID"]) * fraction)

    # ---- lookups that fail like Ganeti's _ExpandItemName -----------------
    def instance(self, name: Any) -> Instance:
        inst = self.state.instances.get(name) if isinstance(name, str) else None
        if inst is None:
            raise OpPrereqError(f"Instance '{name}' not known", "unknown_entity")
        return inst

    def node(self, name: Any) -> Node:
        node = self.state.nodes.get(name) if isinstance(name, str) else None
        if node is None:
            raise OpPrereqError(f"Node '{name}' not known", "unknown_entity")
        return node

    def group(self, name: Any) -> st.Group:
        group = self.state.groups.get(name) if isinstance(name, str) else None
        if group is None:
            raise OpPrereqError(f"Group '{name}' not known", "unknown_entity")
        return group

    def network(self, name: Any) -> st.Network:
        net = self.state.networks.get(name) if isinstance(name, str) else None
        if net is None:
            raise OpPrereqError(f"Network '{name}' not known", "unknown_entity")
        return net

    def check_online(self, node: Node) -> None:
        if node.offline:
            raise OpPrereqError(f"Can't use offline node: {node.name}", "wrong_state")

    def check_reachable(self, node: Node, what: str, *, prereq: bool = True) -> None:
        if node.unreachable:
            msg = f"{what}: Error 7: Failed to connect to {node.pip} port 1811: Connection refused"
            if prereq:
                raise OpPrereqError(msg, "environment_error")
            raise OpExecError(msg)

    def check_state(self, inst: Instance, allowed: tuple[str, ...], msg: str) -> None:
        """cmdlib.CheckInstanceState."""
        if inst.admin_state not in allowed:
            raise OpPrereqError(
                f"Instance '{inst.name}' is marked to be {inst.admin_state}, {msg}", "wrong_state"
            )
        if st.ADMIN_UP not in allowed:
            pnode = self.state.node_by_uuid(inst.pnode)
            if not pnode.offline and inst.running_on is not None:
                raise OpPrereqError(f"Instance {inst.name} is running, {msg}", "wrong_state")

    def dry_run(self, params: dict[str, Any]) -> bool:
        """Whether to stop after the checks; mcpu logs that it does."""
        if not params.get("dry_run"):
            return False
        self.log(" - INFO: dry-run mode requested, not actually executing the operation")
        return True


OpFn = Callable[[Exec, dict[str, Any]], Awaitable[Any]]
LockFn = Callable[[ClusterState, dict[str, Any]], set[str]]


@dataclass
class OpSpec:
    op_id: str
    run: OpFn
    params: frozenset[str]
    required: frozenset[str] = frozenset()
    summary_key: str | None = None
    locks: LockFn = field(default=lambda s, p: {"cluster"})
    types: dict[str, type | tuple[type, ...]] = field(default_factory=dict)
    # defaults present as soon as the opcode is submitted, and the ones the
    # job adds when the opcode starts (as the real ``ops`` show them)
    defaults: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, frozenset[Any]] = field(default_factory=dict)
    exec_defaults: dict[str, Any] = field(default_factory=dict)

    def fill(self, state: ClusterState, op: dict[str, Any]) -> dict[str, Any]:
        """The opcode as it reads once it runs: debug_level, uuids, defaults."""
        out: dict[str, Any] = {}
        if "dry_run" in op:
            out["dry_run"] = op["dry_run"]
        out["debug_level"] = op.get("debug_level", 0)
        for key, value in op.items():
            if key in ("dry_run", "debug_level"):
                continue
            out[key] = value
            if key == "instance_name" and "instance_uuid" not in op:
                inst = state.instances.get(value) if isinstance(value, str) else None
                if inst is not None and self.op_id != "OP_INSTANCE_CREATE":
                    out["instance_uuid"] = inst.uuid
        for key, value in self.exec_defaults.items():
            out.setdefault(key, value)
        return out

    @property
    def class_name(self) -> str:
        return "Op" + "".join(part.capitalize() for part in self.op_id[3:].split("_"))


SPECS: dict[str, OpSpec] = {}


def opcode(
    op_id: str,
    params: str = "",
    *,
    required: str = "",
    summary: str | None = None,
    locks: LockFn | None = None,
    types: dict[str, type | tuple[type, ...]] | None = None,
    defaults: dict[str, Any] | None = None,
    exec_defaults: dict[str, Any] | None = None,
    choices: dict[str, frozenset[Any]] | None = None,
) -> Callable[[OpFn], OpFn]:
    def register(fn: OpFn) -> OpFn:
        SPECS[op_id] = OpSpec(
            op_id=op_id,
            run=fn,
            params=frozenset(params.split()) | frozenset(required.split()),
            required=frozenset(required.split()),
            summary_key=summary,
            locks=locks or (lambda s, p: {"cluster"}),
            types=types or {},
            defaults=defaults or {},
            exec_defaults=exec_defaults or {},
            choices=choices or {},
        )
        return fn

    return register


def summarize(op: dict[str, Any]) -> str:
    """Ganeti's opSummary: ``INSTANCE_STARTUP(name)``."""
    spec = SPECS.get(op["OP_ID"])
    text = op["OP_ID"][3:]
    if spec is not None and spec.summary_key is not None:
        value = op.get(spec.summary_key)
        if value is not None:
            return f"{text}({value})"
    return text


def build_op(op_id: str, params: dict[str, Any], reason: list[list[Any]]) -> dict[str, Any]:
    """Validate and serialise an opcode as it appears in a job's ``ops``.

    Raises InvalidParams with the text rlib2 puts after "Invalid body
    parameters: " (a TypeError for unknown names, OpPrereqError for values).
    """
    spec = SPECS[op_id]
    for key in params:
        if key not in spec.params and key not in COMMON_PARAMS:
            raise InvalidParams(f"Object {spec.class_name} doesn't support the parameter '{key}'")
    fails = [k for k in sorted(spec.required) if params.get(k) is None]
    fails += [k for k, allowed in spec.choices.items() if k in params and params[k] not in allowed]
    fails += [
        k
        for k, t in spec.types.items()
        if params.get(k) is not None
        and (
            not isinstance(params[k], t) or (isinstance(params[k], bool) and bool not in _tuple(t))
        )
    ]
    if fails:
        raise InvalidParams(
            str((f"Parameter '{op_id}.{fails[0]}' fails validation", "wrong_input"))
        )
    # dry_run is only there when rlib2 (or the body) set it
    op: dict[str, Any] = {}
    if "dry_run" in params:
        op["dry_run"] = bool(params["dry_run"])
    op.update(
        {
            "priority": params.get("priority", 0),
            "depends": params.get("depends"),
            "comment": params.get("comment"),
            "reason": [list(r) for r in reason],
            "OP_ID": op_id,
        }
    )
    for key, value in params.items():
        # luxid drops unset (None) optional parameters when it stores the job
        if key not in COMMON_PARAMS and value is not None:
            op[key] = value
    for key, value in spec.defaults.items():
        op.setdefault(key, value)
    return op


def _tuple(t: type | tuple[type, ...]) -> tuple[type, ...]:
    return t if isinstance(t, tuple) else (t,)


def _lock_instance(key: str = "instance_name") -> LockFn:
    def locks(s: ClusterState, p: dict[str, Any]) -> set[str]:
        name = p.get(key)
        inst = s.instances.get(name) if isinstance(name, str) else None
        out = {f"instance:{name}"}
        if inst is not None:
            out.add(f"node:{inst.pnode}")
            out.update(f"node:{u}" for u in inst.snodes)
        return out

    return locks


def _lock_name(prefix: str, key: str) -> LockFn:
    return lambda s, p: {f"{prefix}:{p.get(key)}"}


# ---- helpers ---------------------------------------------------------------


def _node_mem_free(s: ClusterState, node: Node) -> int:
    be = s.info["beparams"]["default"]
    used = sum(
        i.beparams.get("maxmem", be["maxmem"])
        for i in s.instances.values()
        if i.running_on == node.uuid
    )
    return node.mtotal - node.mnode - used


#: What hail answers (Ganeti 3.0.2) when it finds no node to move an instance to.
NO_GOOD_NODE = (
    "Can't compute nodes using iallocator 'hail': Request failed: Can't find any good node: "
)


def _pick_node(s: ClusterState, *, exclude: set[str], group_uuid: str | None = None) -> Node:
    """A tiny stand-in for hail: the usable node with the fewest primaries."""
    counts: dict[str, int] = {}
    for inst in s.instances.values():
        counts[inst.pnode] = counts.get(inst.pnode, 0) + 1
    candidates = [
        n
        for n in s.sorted_nodes()
        if n.uuid not in exclude
        and not n.offline
        and not n.drained
        and n.vm_capable
        and (group_uuid is None or n.group_uuid == group_uuid)
    ]
    if not candidates:
        raise OpPrereqError(NO_GOOD_NODE, "insufficient_resources")
    return min(candidates, key=lambda n: counts.get(n.uuid, 0))


def _start(x: Exec, inst: Instance) -> None:
    inst.running_on = inst.pnode
    inst.disks_active = True
    x.state.touch(inst, config=False)


def _stop(x: Exec, inst: Instance) -> None:
    inst.running_on = None
    inst.disks_active = False
    x.state.touch(inst, config=False)


def _mark_admin(x: Exec, inst: Instance, admin_state: str, source: str = "admin") -> None:
    if inst.admin_state != admin_state or inst.admin_state_source != source:
        inst.admin_state = admin_state
        inst.admin_state_source = source
        x.state.touch(inst)


# ---- cluster ---------------------------------------------------------------


@opcode("OP_OS_DIAGNOSE", "output_fields names")
async def os_diagnose(x: Exec, p: dict[str, Any]) -> Any:
    await x.work()
    fields = p.get("output_fields") or ["name", "variants"]
    return [[os.get(f) for f in fields] for os in x.state.os_list]


@opcode(
    "OP_CLUSTER_SET_PARAMS",
    "vg_name drbd_helper enabled_hypervisors hvparams beparams os_hvp osparams "
    "osparams_private_cluster diskparams candidate_pool_size max_running_jobs "
    "max_tracked_jobs uid_pool add_uids remove_uids maintain_node_health "
    "prealloc_wipe_disks nicparams ndparams ipolicy drbd_helper default_iallocator "
    "default_iallocator_params mac_prefix master_netdev master_netmask reserved_lvs "
    "hidden_os blacklisted_os use_external_mip_script enabled_disk_templates "
    "modify_etc_hosts file_storage_dir shared_file_storage_dir gluster_storage_dir "
    "install_image instance_communication_network zeroing_image enabled_user_shutdown "
    "enabled_data_collectors data_collector_interval force hv_state disk_state "
    "modify_ssh_setup ssh_key_type ssh_key_bits",
)
async def cluster_set_params(x: Exec, p: dict[str, Any]) -> Any:
    if x.dry_run(p):
        return None
    await x.work()
    info = x.state.info
    for key, value in p.items():
        if key in COMMON_PARAMS or key in ("OP_ID", "force") or value is None:
            continue
        if key in ("hvparams", "diskparams") and isinstance(value, dict):
            for sub, params in value.items():
                info[key].setdefault(sub, {}).update(params)
        elif key in ("beparams", "nicparams") and isinstance(value, dict):
            info[key]["default"].update(value)
        elif key in ("ndparams", "ipolicy") and isinstance(value, dict):
            info[key].update(value)
        elif key == "vg_name":
            info["volume_group_name"] = info["vg_name"] = value
        elif key == "drbd_helper":
            info["drbd_usermode_helper"] = info["drbd_helper"] = value
        elif key in info:
            info[key] = value
    x.state.touch(None)
    return None


@opcode("OP_CLUSTER_REDIST_CONF")
async def cluster_redist_conf(x: Exec, p: dict[str, Any]) -> Any:
    await x.work()
    # cfg.Update(cluster): wconfd bumps the cluster's serial and mtime
    x.state.touch(None)
    return None


def _tag_target(x: Exec, kind: str, name: Any) -> Any:
    if kind == "cluster":
        return None
    if kind == "instance":
        return x.instance(name)
    if kind == "node":
        return x.node(name)
    if kind == "nodegroup":
        return x.group(name)
    if kind == "network":
        return x.network(name)
    raise OpPrereqError(f"Unknown tag kind '{kind}'", "wrong_input")


async def _tags(x: Exec, p: dict[str, Any], add: bool) -> Any:
    kind = p.get("kind")
    target = _tag_target(x, str(kind), p.get("name"))
    tags: list[str] = list(x.state.info["tags"] if target is None else target.tags)
    for tag in p.get("tags") or []:
        if not isinstance(tag, str) or not tag or len(tag) > 128:
            raise OpPrereqError(f"Invalid tag: '{tag}'", "wrong_input")
        if not add and tag not in tags:
            raise OpPrereqError(f"Tag(s) '{tag}' not found", "unknown_entity")
    if x.dry_run(p):
        return None
    await x.work()
    for tag in p.get("tags") or []:
        if add and tag not in tags:
            tags.append(tag)
        elif not add and tag in tags:
            tags.remove(tag)
    if target is None:
        x.state.info["tags"] = tags
        x.state.touch(None)
    else:
        target.tags = tags
        x.state.touch(target)
    return None


def _tag_locks(s: ClusterState, p: dict[str, Any]) -> set[str]:
    return {f"{p.get('kind')}:{p.get('name')}"}


@opcode("OP_TAGS_SET", "kind name tags", summary=None, locks=_tag_locks)
async def tags_set(x: Exec, p: dict[str, Any]) -> Any:
    return await _tags(x, p, add=True)


@opcode("OP_TAGS_DEL", "kind name tags", locks=_tag_locks)
async def tags_del(x: Exec, p: dict[str, Any]) -> Any:
    return await _tags(x, p, add=False)


# ---- instances -------------------------------------------------------------

_CREATE_PARAMS = (
    "mode instance_name disk_template disks nics os_type pnode snode iallocator beparams "
    "hvparams osparams osparams_private osparams_secret start name_check ip_check "
    "wait_for_sync no_install tags hypervisor file_driver file_storage_dir forthcoming "
    "commit conflicts_check identify_defaults ignore_ipolicy instance_communication "
    "helper_startup_timeout helper_shutdown_timeout opportunistic_locking os_image "
    "src_node src_path source_handshake source_instance_name source_shutdown_timeout "
    "source_x509_ca compress pnode_uuid snode_uuid group_name"
)


@opcode(
    "OP_INSTANCE_CREATE",
    _CREATE_PARAMS,
    required="mode instance_name disk_template",
    summary="instance_name",
    locks=lambda s, p: {f"instance:{p.get('instance_name')}", "cluster"},
    types={
        "mode": str,
        "instance_name": str,
        "disk_template": str,
        "disks": list,
        "nics": list,
        "beparams": dict,
        "hvparams": dict,
        "osparams": dict,
        "tags": list,
        "start": bool,
        "no_install": bool,
    },
    defaults={
        "force_variant": False,
        "wait_for_sync": True,
        "name_check": True,
        "ignore_ipolicy": False,
        "opportunistic_locking": False,
        "beparams": {},
        "disks": [],
        "hvparams": {},
        "identify_defaults": False,
        "ip_check": True,
        "conflicts_check": True,
        "nics": [],
        "osparams": {},
        "source_shutdown_timeout": 120,
        "compress": "none",
        "start": True,
        "forthcoming": False,
        "commit": False,
        "tags": [],
        "instance_communication": False,
        "helper_startup_timeout": 300,
        "helper_shutdown_timeout": 7200,
    },
    choices={
        "mode": frozenset({"create", "import", "remote-import"}),
        "disk_template": frozenset(
            {"diskless", "file", "sharedfile", "plain", "drbd", "blockdev", "rbd", "ext", "gluster"}
        ),
    },
)
async def instance_create(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    name = p["instance_name"]
    if p.get("pnode") is None:
        p.setdefault("iallocator", s.info["default_iallocator"])
    if p["mode"] not in ("create", "import", "remote-import"):
        raise OpPrereqError(f"Invalid instance creation mode '{p['mode']}'", "wrong_input")
    if name in s.instances:
        raise OpPrereqError(f"Instance '{name}' is already in the cluster", "already_exists")
    template = p["disk_template"]
    if template not in s.info["enabled_disk_templates"]:
        raise OpPrereqError(
            f"Cannot create an instance with disk template '{template}', as it is not"
            " enabled in the cluster",
            "wrong_state",
        )
    p.setdefault("osparams_private", {})
    p.setdefault("osparams_secret", {})
    _convert_memory(p.get("beparams"))
    be = {**s.info["beparams"]["default"], **(p.get("beparams") or {})}
    via_iallocator = p.get("pnode") is None
    if via_iallocator:
        candidates = [n for n in s.sorted_nodes() if _node_mem_free(s, n) >= be["maxmem"]]
        if not candidates:
            group = s.sorted_groups()[0]
            raise OpPrereqError(
                f"Can't compute nodes using iallocator '{p['iallocator']}': Request failed:"
                f" Group {group.name} ({group.alloc_policy}): No valid allocation solutions,"
                f" failure reasons: FailMem: {len(s.nodes)}",
                "insufficient_resources",
            )
        pnode = _pick_node(
            s, exclude={n.uuid for n in s.nodes.values()} - {n.uuid for n in candidates}
        )
    else:
        pnode = x.node(p["pnode"])
        x.check_online(pnode)
        if not p.get("ignore_ipolicy"):
            _check_ipolicy(s, pnode, be, p)
    snodes: list[str] = []
    if template == "drbd":
        if p.get("snode") is not None:
            snode = x.node(p["snode"])
            x.check_online(snode)
            if snode is pnode:
                raise OpPrereqError("The secondary node cannot be the primary node", "wrong_input")
        else:
            snode = _pick_node(s, exclude={pnode.uuid}, group_uuid=pnode.group_uuid)
        snodes = [snode.uuid]
    os_type = p.get("os_type")
    valid_os = {o["name"] for o in s.os_list}
    if os_type is None or os_type.split("+")[0] not in valid_os:
        raise OpPrereqError(
            f"OS '{os_type}' not in supported OS list for primary node {pnode.name}",
            "wrong_input",
        )
    disks = []
    for d in p.get("disks") or []:
        if not isinstance(d, dict) or not isinstance(d.get("size"), int):
            raise OpPrereqError("Missing disk size", "wrong_input")
        disks.append(
            st.Disk(
                uuid=st.new_uuid(),
                size=d["size"],
                mode=d.get("mode", "rw"),
                name=d.get("name"),
                spindles=d.get("spindles"),
            )
        )
    rng = random.Random()
    nics = []
    for n in p.get("nics") or []:
        if not isinstance(n, dict):
            raise OpPrereqError("Invalid NIC specification", "wrong_input")
        net_uuid = None
        ip = n.get("ip")
        if n.get("network") is not None:
            net = x.network(n["network"])
            net_uuid = net.uuid
            if ip == "pool":
                ip = _allocate_ip(net)
        mac = n.get("mac")
        if mac in (None, "auto", "generate"):
            mac = mac_for(rng, s.info["mac_prefix"])
        params = {k: n[k] for k in ("mode", "link", "vlan") if n.get(k) is not None}
        nics.append(
            st.Nic(
                uuid=st.new_uuid(),
                mac=mac,
                ip=ip,
                name=n.get("name"),
                network=net_uuid,
                nicparams=params,
            )
        )
    chosen = [pnode.name, *[s.node_by_uuid(u).name for u in snodes]]
    if via_iallocator:
        x.log(
            f" - INFO: Selected nodes for instance {name} via iallocator {p['iallocator']}:"
            f" {', '.join(chosen)}"
        )
    p["pnode"] = pnode.name
    p["pnode_uuid"] = pnode.uuid
    p.setdefault("hypervisor", s.info["default_hypervisor"])
    if x.dry_run(p):
        # LUInstanceCreate's dry_run_result: the chosen nodes' uuids, not names
        return [pnode.uuid, *snodes]
    start = p.get("start", True)
    if p.get("no_install") and start:
        x.log("No-installation mode selected, disabling startup")
        start = False
    hv = p.get("hypervisor") or s.info["default_hypervisor"]
    ports = [i.network_port for i in s.instances.values() if i.network_port is not None]
    inst = Instance(
        name=name,
        uuid=st.new_uuid(),
        os=os_type,
        pnode=pnode.uuid,
        snodes=snodes,
        disk_template=template,
        disks=disks,
        nics=nics,
        admin_state=st.ADMIN_UP if start else st.ADMIN_DOWN,
        hypervisor=hv,
        beparams=dict(p.get("beparams") or {}),
        hvparams=dict(p.get("hvparams") or {}),
        osparams=dict(p.get("osparams") or {}),
        network_port=(max(ports, default=11000) + 1) if hv == "kvm" else None,
        disks_active=True,
        tags=list(p.get("tags") or []),
        ctime=st.now(),
        mtime=st.now(),
    )
    x.log("* creating instance disks...")
    await x.work(0.3)
    x.log(f"adding instance {name} to cluster config")
    s.instances[name] = inst
    x.log("adding disks to cluster config")
    for nic in nics:
        if nic.network is not None and nic.ip:
            net = s.network_by_uuid(nic.network)
            base = ipaddress.ip_network(net.network, strict=False).network_address
            net.reserved.add(int(ipaddress.ip_address(nic.ip)) - int(base))
    s.instance_set_changed()
    s.touch(None)
    if template == "drbd":
        x.log(f" - INFO: Waiting for instance {name} to sync disks")
    # (the 3.0 sandbox logs no line for the OS create scripts)
    await x.work(0.4)
    if start:
        x.log("* starting instance...")
        await x.work(0.3)
        _start(x, inst)
    else:
        inst.disks_active = False
    return chosen


def _convert_memory(beparams: Any) -> None:
    """Ganeti turns the legacy ``memory`` backend parameter into max/minmem."""
    if isinstance(beparams, dict) and "memory" in beparams:
        memory = beparams.pop("memory")
        beparams.setdefault("maxmem", memory)
        beparams.setdefault("minmem", memory)


def _check_ipolicy(s: ClusterState, node: Node, be: dict[str, Any], p: dict[str, Any]) -> None:
    group = s.group_by_uuid(node.group_uuid)
    policy = {**s.info["ipolicy"], **group.ipolicy}
    disks = p.get("disks") or []
    values = {
        "memory-size": be["maxmem"],
        "cpu-count": be["vcpus"],
        "disk-count": len(disks),
        "nic-count": len(p.get("nics") or []),
    }
    problems = []
    for minmax in policy["minmax"]:
        problems = [
            f"{key} value {value} is not in range [{minmax['min'][key]}, {minmax['max'][key]}]"
            for key, value in values.items()
            if not minmax["min"][key] <= value <= minmax["max"][key]
        ]
        problems += [
            f"disk-size value {d['size']} is not in range"
            f" [{minmax['min']['disk-size']}, {minmax['max']['disk-size']}]"
            for d in disks
            if isinstance(d, dict)
            and isinstance(d.get("size"), int)
            and not minmax["min"]["disk-size"] <= d["size"] <= minmax["max"]["disk-size"]
        ]
        if not problems:
            return
    raise OpPrereqError(
        f"Instance allocation to group {group.uuid} ({group.name}) violates policy:"
        f" {'; '.join(problems)}",
        "wrong_input",
    )


def _allocate_ip(net: st.Network) -> str:
    size = query.network_size(net)
    taken = net.reserved | net.external
    for off in range(size):
        if off not in taken:
            base = ipaddress.ip_network(net.network, strict=False).network_address
            return str(base + off)
    raise OpPrereqError(
        f"Network '{net.name}' has no free addresses", "temp_insufficient_resources"
    )


@opcode(
    "OP_INSTANCE_REMOVE",
    "instance_name instance_uuid ignore_failures shutdown_timeout",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"shutdown_timeout": 120, "ignore_failures": False},
)
async def instance_remove(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if x.dry_run(p):
        return None
    s = x.state
    pnode = s.node_by_uuid(inst.pnode)
    x.log(f"Shutting down instance {inst.name} on target node {pnode.name}")
    if inst.running_on is not None and not pnode.offline and not p.get("ignore_failures"):
        x.check_reachable(
            pnode, f"Could not shutdown instance {inst.name} on node {pnode.name}", prereq=False
        )
    await x.work()
    x.log(f"Removing instance {inst.name} out of cluster config")
    for nic in inst.nics:
        if nic.network is not None and nic.ip:
            net = s.network_by_uuid(nic.network)
            base = ipaddress.ip_network(net.network, strict=False).network_address
            net.reserved.discard(int(ipaddress.ip_address(nic.ip)) - int(base))
    del s.instances[inst.name]
    s.instance_set_changed()
    s.touch(None)
    return None


@opcode(
    "OP_INSTANCE_QUERY_DATA",
    "instances static use_locking",
    locks=lambda s, p: set(),
    defaults={"use_locking": False, "static": False},
)
async def instance_query_data(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    names = p.get("instances") or sorted(s.instances, key=st.nice_sort_key)
    insts = [x.instance(n) for n in names]
    if not p.get("static"):
        x.log(" - WARNING: Non-static data requested, locks need to be acquired")
    await x.work()
    out: dict[str, Any] = {}
    for inst in insts:
        pnode = s.node_by_uuid(inst.pnode)
        if p.get("static"):
            run_state = None
        elif inst.running_on is not None:
            run_state = "up"
        else:
            run_state = "down"
        groups = {g.uuid: g.name for g in s.groups.values()}
        out[inst.name] = {
            "name": inst.name,
            "config_state": inst.admin_state,
            "run_state": run_state,
            "pnode": pnode.name,
            "pnode_group_uuid": pnode.group_uuid,
            "pnode_group_name": groups[pnode.group_uuid],
            "snodes": [s.node_by_uuid(u).name for u in inst.snodes],
            "snodes_group_uuids": [s.node_by_uuid(u).group_uuid for u in inst.snodes],
            "snodes_group_names": [groups[s.node_by_uuid(u).group_uuid] for u in inst.snodes],
            "os": inst.os,
            "network_port": inst.network_port,
            "disks": [
                {
                    "dev_type": inst.disk_template,
                    "iv_name": f"disk/{i}",
                    "size": d.size,
                    "mode": d.mode,
                    "name": d.name,
                    "uuid": d.uuid,
                    "spindles": d.spindles,
                    "pstatus": None,
                    "sstatus": None,
                    "children": [],
                }
                for i, d in enumerate(inst.disks)
            ],
            "disk_template": inst.disk_template,
            "disks_active": inst.disks_active,
            "hypervisor": inst.hypervisor,
            "nics": [
                [
                    n.name,
                    n.uuid,
                    n.ip,
                    n.mac,
                    query.nic_filled(s, n),
                    n.network,
                    None if n.network is None else s.network_by_uuid(n.network).name,
                ]
                for n in inst.nics
            ],
            "hv_instance": dict(inst.hvparams),
            "hv_actual": query.instance_hvparams(s, inst),
            "be_instance": dict(inst.beparams),
            "be_actual": query.instance_beparams(s, inst),
            "os_instance": dict(inst.osparams),
            "os_actual": dict(inst.osparams),
            "uuid": inst.uuid,
            "serial_no": inst.serial_no,
            "mtime": inst.mtime,
            "ctime": inst.ctime,
            "tags": list(inst.tags),
        }
    return out


@opcode(
    "OP_INSTANCE_STARTUP",
    "instance_name instance_uuid force ignore_offline_nodes hvparams beparams no_remember "
    "startup_paused shutdown_timeout",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={
        "force": False,
        "ignore_offline_nodes": False,
        "hvparams": {},
        "beparams": {},
        "no_remember": False,
        "startup_paused": False,
        "shutdown_timeout": 120,
    },
)
async def instance_startup(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    x.check_state(inst, (st.ADMIN_UP, st.ADMIN_DOWN), "cannot start instance")
    pnode = s.node_by_uuid(inst.pnode)
    primary_offline = pnode.offline
    if primary_offline and p.get("ignore_offline_nodes"):
        x.log("Ignoring offline primary node")
    else:
        x.check_online(pnode)
        x.check_reachable(pnode, f"Error checking node {pnode.name}")
        if inst.running_on is None:
            need = query.instance_beparams(s, inst)["minmem"]
            free = _node_mem_free(s, pnode)
            if free < need:
                raise OpPrereqError(
                    f"Not enough memory on node {pnode.name} for starting instance"
                    f" {inst.name}: needed {need} MiB, available {free} MiB",
                    "insufficient_resources",
                )
    if x.dry_run(p):
        return None
    if not p.get("no_remember"):
        _mark_admin(x, inst, st.ADMIN_UP)
    if primary_offline:
        x.log("Primary node offline, marked instance as started")
        return None
    await x.work()
    _start(x, inst)
    return None


@opcode(
    "OP_INSTANCE_SHUTDOWN",
    "instance_name instance_uuid force ignore_offline_nodes timeout no_remember admin_state_source",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"force": False, "ignore_offline_nodes": False, "timeout": 120},
    exec_defaults={"no_remember": False, "admin_state_source": "admin"},
)
async def instance_shutdown(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    if p.get("force"):
        x.log("Ignoring offline instance check")
    else:
        x.check_state(inst, (st.ADMIN_UP, st.ADMIN_DOWN), "cannot shutdown instance")
    pnode = s.node_by_uuid(inst.pnode)
    primary_offline = pnode.offline
    if primary_offline and p.get("ignore_offline_nodes"):
        x.log("Ignoring offline primary node")
    else:
        x.check_online(pnode)
    if x.dry_run(p):
        return None
    if not p.get("no_remember") and inst.admin_state in (st.ADMIN_UP, st.ADMIN_DOWN):
        _mark_admin(x, inst, st.ADMIN_DOWN, p.get("admin_state_source") or "admin")
    if primary_offline:
        x.log("Primary node offline, marked instance as stopped")
        return None
    x.check_reachable(pnode, f"Could not shutdown instance '{inst.name}'", prereq=False)
    await x.work()
    _stop(x, inst)
    return None


@opcode(
    "OP_INSTANCE_REBOOT",
    "instance_name instance_uuid ignore_secondaries reboot_type shutdown_timeout",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    types={"reboot_type": str},
    defaults={"ignore_secondaries": False, "reboot_type": "hard", "shutdown_timeout": 120},
)
async def instance_reboot(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    rtype = p.get("reboot_type") or "hard"
    if rtype not in ("soft", "hard", "full"):
        raise OpPrereqError(f"Invalid reboot type '{rtype}'", "wrong_input")
    x.check_state(inst, (st.ADMIN_UP, st.ADMIN_DOWN), "cannot reboot instance")
    pnode = s.node_by_uuid(inst.pnode)
    x.check_online(pnode)
    x.check_reachable(pnode, f"Error checking node {pnode.name}")
    if x.dry_run(p):
        return None
    if inst.running_on is not None and rtype in ("soft", "hard"):
        await x.work()
    else:
        if inst.running_on is not None:
            await x.work(0.5)
            _stop(x, inst)
        else:
            x.log(f" - INFO: Instance {inst.name} was already stopped, starting now")
        await x.work(0.5)
    _start(x, inst)
    _mark_admin(x, inst, st.ADMIN_UP)
    return None


@opcode(
    "OP_INSTANCE_REINSTALL",
    "instance_name instance_uuid os_type osparams osparams_private osparams_secret "
    "force_variant clear_osparams clear_osparams_private remove_os_parameters "
    "remove_os_parameters_private os_image",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"force_variant": False},
)
async def instance_reinstall(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    pnode = s.node_by_uuid(inst.pnode)
    x.check_online(pnode)
    if not inst.disks:
        raise OpPrereqError(f"Instance '{p['instance_name']}' has no disks", "wrong_input")
    x.check_state(inst, (st.ADMIN_DOWN,), "cannot reinstall")
    os_type = p.get("os_type")
    if os_type is not None and os_type.split("+")[0] not in {o["name"] for o in s.os_list}:
        raise OpPrereqError(
            f"OS '{os_type}' not in supported OS list for primary node {pnode.name}",
            "wrong_input",
        )
    if x.dry_run(p):
        return None
    if os_type is not None and os_type != inst.os:
        x.log(f"Changing OS scripts to '{os_type}'...")
        inst.os = os_type
        s.touch(inst)
    if p.get("osparams"):
        inst.osparams.update(p["osparams"])
        s.touch(inst)
    x.log("Running instance OS create scripts...")
    await x.work()
    return None


def _check_mirrored(inst: Instance, failover: bool) -> None:
    if inst.disk_template not in ("drbd", "sharedfile", "rbd", "blockdev", "ext", "gluster"):
        if inst.disk_template == "diskless":
            return
        text = "failovers" if failover else "migrations"
        raise OpPrereqError(
            f"Instance's disk layout '{inst.disk_template}' does not allow {text}",
            "wrong_state",
        )


def _target(x: Exec, inst: Instance, p: dict[str, Any]) -> Node:
    s = x.state
    if inst.disk_template == "drbd":
        if p.get("target_node") not in (None, s.node_by_uuid(inst.snodes[0]).name):
            raise OpPrereqError(
                "Instances with disk template drbd cannot be migrated to arbitrary nodes",
                "wrong_input",
            )
        target = s.node_by_uuid(inst.snodes[0])
    elif p.get("target_node") is not None:
        target = x.node(p["target_node"])
    else:
        # CheckIAllocatorOrNode: the cluster's default iallocator picks the node
        if p.get("iallocator") is None:
            p["iallocator"] = s.info["default_iallocator"]
        pnode = s.node_by_uuid(inst.pnode)
        target = _pick_node(s, exclude={inst.pnode}, group_uuid=pnode.group_uuid)
    x.check_online(target)
    if target.drained:
        raise OpPrereqError(f"Can't use drained node {target.name}", "wrong_state")
    return target


async def _move(x: Exec, inst: Instance, target: Node) -> None:
    s = x.state
    old = inst.pnode
    inst.pnode = target.uuid
    if inst.disk_template == "drbd":
        inst.snodes = [old]
    s.touch(inst)
    if inst.running_on is not None:
        inst.running_on = target.uuid


@opcode(
    "OP_INSTANCE_MIGRATE",
    "instance_name instance_uuid mode live target_node target_node_uuid cleanup "
    "allow_failover allow_runtime_changes ignore_ipolicy iallocator ignore_hvversions",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={
        "cleanup": False,
        "allow_failover": False,
        "allow_runtime_changes": True,
        "ignore_ipolicy": False,
        "ignore_hvversions": False,
    },
)
async def instance_migrate(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    failover = False
    if inst.admin_state != st.ADMIN_UP and p.get("allow_failover"):
        x.log("Instance is marked down or offline, fallback allowed, switching to failover")
        failover = True
    _check_mirrored(inst, failover)
    target = _target(x, inst, p)
    source = s.node_by_uuid(inst.pnode)
    if not failover and (inst.running_on is None or source.offline or source.unreachable):
        if p.get("allow_failover"):
            x.log("Can't migrate, instance offline, fallback to failover")
            failover = True
        else:
            raise OpPrereqError(
                f"Can't migrate, please use failover: Instance {inst.name} is not running",
                "wrong_state",
            )
    if not failover:  # TLMigrateInstance.CheckPrereq stores the mode it migrates with
        if p.get("live") is not None:
            p["mode"] = "live" if p.pop("live") else "non-live"
        elif p.get("mode") is None:
            p["mode"] = "live"  # the hypervisor's default migration_mode
    if x.dry_run(p):
        return None
    if failover:
        return await _failover(x, inst, target, ignore_consistency=False)
    x.log(f"Migrating instance {inst.name}")
    x.log("* checking disk consistency between source and target")
    await x.work(0.3)
    x.log(f"* migrating instance to {target.name}")
    await x.work(0.6)
    await _move(x, inst, target)
    x.log("* done")
    await x.work(0.1)
    return None


async def _failover(x: Exec, inst: Instance, target: Node, *, ignore_consistency: bool) -> Any:
    s = x.state
    source = s.node_by_uuid(inst.pnode)
    was_up = inst.admin_state == st.ADMIN_UP
    x.log(f"Failover instance {inst.name}")
    if inst.running_on is not None or source.unreachable:
        x.log(f"* shutting down instance on source node {source.name}")
        if source.unreachable and not ignore_consistency and not source.offline:
            raise OpExecError(
                f"Could not shutdown instance {inst.name} on node {source.name}: Error 7:"
                f" Failed to connect to {source.pip} port 1811: Connection refused"
            )
        await x.work(0.4)
        inst.running_on = None
    await _move(x, inst, target)
    if was_up:
        x.log(f"* starting the instance on the target node {target.name}")
        await x.work(0.6)
        _start(x, inst)
    return None


@opcode(
    "OP_INSTANCE_FAILOVER",
    "instance_name instance_uuid shutdown_timeout ignore_consistency target_node "
    "target_node_uuid ignore_ipolicy cleanup iallocator",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={
        "shutdown_timeout": 120,
        "ignore_consistency": False,
        "ignore_ipolicy": False,
        "cleanup": False,
    },
)
async def instance_failover(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    _check_mirrored(inst, True)
    target = _target(x, inst, p)
    if x.dry_run(p):
        return None
    return await _failover(x, inst, target, ignore_consistency=bool(p.get("ignore_consistency")))


@opcode(
    "OP_INSTANCE_RENAME",
    "instance_name instance_uuid new_name ip_check name_check",
    required="instance_name new_name",
    locks=lambda s, p: {f"instance:{p.get('instance_name')}", f"instance:{p.get('new_name')}"},
    types={"new_name": str},
)
async def instance_rename(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    x.check_state(inst, (st.ADMIN_DOWN, st.ADMIN_OFFLINE), "cannot rename")
    new = p["new_name"]
    if new in s.instances:
        raise OpPrereqError(f"Instance '{new}' is already in the cluster", "already_exists")
    if x.dry_run(p):
        return new
    await x.work()
    del s.instances[inst.name]
    inst.name = new
    s.instances[new] = inst
    s.instance_set_changed()
    s.touch(inst)
    return new


@opcode(
    "OP_INSTANCE_SET_PARAMS",
    "instance_name instance_uuid force force_variant nics disks beparams runtime_mem "
    "hvparams disk_template pnode pnode_uuid remote_node remote_node_uuid iallocator "
    "os_name osparams osparams_private clear_osparams clear_osparams_private "
    "remove_os_parameters remove_os_parameters_private wait_for_sync offline conflicts_check "
    "hotplug hotplug_if_possible instance_communication ext_params file_driver "
    "file_storage_dir",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    types={"beparams": dict, "hvparams": dict, "osparams": dict, "disks": list, "nics": list},
    defaults={
        "force": False,
        "force_variant": False,
        "ignore_ipolicy": False,
        "nics": [],
        "disks": [],
        "beparams": {},
        "hvparams": {},
        "ext_params": {},
        "osparams": {},
        "wait_for_sync": True,
        "conflicts_check": True,
        "hotplug": False,
        "hotplug_if_possible": False,
    },
)
async def instance_set_params(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    changes: list[list[Any]] = []
    keys = (
        "beparams",
        "hvparams",
        "osparams",
        "os_name",
        "offline",
        "disks",
        "nics",
        "runtime_mem",
        "disk_template",
        "pnode",
    )
    if not any(p.get(k) not in (None, {}, []) for k in keys):
        raise OpPrereqError("No changes submitted", "wrong_input")
    if p.get("os_name") is not None and p["os_name"].split("+")[0] not in {
        o["name"] for o in s.os_list
    }:
        raise OpPrereqError(f"OS '{p['os_name']}' not in supported OS list", "wrong_input")
    offline = p.get("offline")
    if offline is True and inst.running_on is not None:
        raise OpPrereqError(
            f"Instance {inst.name} is running, cannot be marked offline", "wrong_state"
        )
    if x.dry_run(p):
        return []
    await x.work()
    for key, target in (
        ("beparams", inst.beparams),
        ("hvparams", inst.hvparams),
        ("osparams", inst.osparams),
    ):
        for name, value in (p.get(key) or {}).items():
            prefix = {"beparams": "be", "hvparams": "hv", "osparams": "os"}[key]
            names = ["maxmem", "minmem"] if key == "beparams" and name == "memory" else [name]
            for param in names:
                if value == "default":
                    target.pop(param, None)
                else:
                    target[param] = value
            changes.append([f"{prefix}/{name}", value])
    if p.get("os_name") is not None:
        inst.os = p["os_name"]
        changes.append(["os", inst.os])
    if offline is not None:
        inst.admin_state = st.ADMIN_OFFLINE if offline else st.ADMIN_DOWN
        changes.append(["admin_state", inst.admin_state])
    if p.get("runtime_mem") is not None:
        changes.append(["runtime_memory", p["runtime_mem"]])
    for mod in p.get("disks") or []:
        if isinstance(mod, list) and len(mod) == 2 and mod[0] in ("add", -1):
            spec = mod[1] if isinstance(mod[1], dict) else {}
            inst.disks.append(st.Disk(uuid=st.new_uuid(), size=int(spec.get("size", 1024))))
            changes.append([f"disk/{len(inst.disks) - 1}", "add"])
    for mod in p.get("nics") or []:
        if isinstance(mod, list) and len(mod) == 2 and mod[0] in ("add", -1):
            spec = mod[1] if isinstance(mod[1], dict) else {}
            inst.nics.append(
                st.Nic(uuid=st.new_uuid(), mac=mac_for(random.Random()), ip=spec.get("ip"))
            )
            changes.append([f"nic.{len(inst.nics) - 1}", "add"])
    s.touch(inst)
    return changes


@opcode(
    "OP_INSTANCE_ACTIVATE_DISKS",
    "instance_name instance_uuid ignore_size wait_for_sync",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"ignore_size": False, "wait_for_sync": False},
)
async def instance_activate_disks(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    pnode = x.state.node_by_uuid(inst.pnode)
    x.check_online(pnode)
    await x.work()
    x.check_reachable(pnode, "Cannot activate block device", prereq=False)
    inst.disks_active = True
    x.state.touch(inst)
    return [[pnode.name, f"disk/{i}", f"/dev/drbd{i}"] for i in range(len(inst.disks))]


@opcode(
    "OP_INSTANCE_DEACTIVATE_DISKS",
    "instance_name instance_uuid force",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
)
async def instance_deactivate_disks(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if not p.get("force"):
        # _SafeShutdownInstanceDisks: only for an instance marked down and not running
        x.check_state(inst, (st.ADMIN_DOWN,), "cannot shutdown disks")
    await x.work()
    inst.disks_active = False
    x.state.touch(inst)
    return None


@opcode(
    "OP_INSTANCE_RECREATE_DISKS",
    "instance_name instance_uuid disks nodes node_uuids iallocator",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"disks": [], "nodes": []},
)
async def instance_recreate_disks(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if not inst.disks:
        raise OpPrereqError(f"Instance '{p['instance_name']}' has no disks", "wrong_input")
    x.check_state(inst, (st.ADMIN_DOWN,), "cannot recreate disks")
    await x.work()
    x.state.touch(inst)
    return None


@opcode(
    "OP_INSTANCE_REPLACE_DISKS",
    "instance_name instance_uuid mode disks remote_node remote_node_uuid iallocator "
    "early_release ignore_ipolicy",
    required="instance_name",
    summary="instance_name",
    locks=_lock_instance(),
    defaults={"disks": [], "early_release": False, "ignore_ipolicy": False},
)
async def instance_replace_disks(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    mode = p.get("mode") or "replace_auto"
    modes = ("replace_on_primary", "replace_on_secondary", "replace_new_secondary", "replace_auto")
    if mode not in modes:
        raise OpPrereqError(f"Invalid replace-disks mode '{mode}'", "wrong_input")
    # utils.AllDiskOfType: an instance without disks passes this check...
    if inst.disks and inst.disk_template != "drbd":
        raise OpPrereqError("Can only run replace disks for DRBD8-based instances", "wrong_input")
    # ... and fails on this one
    if len(inst.snodes) != 1:
        raise OpPrereqError(
            "The instance has a strange layout, expected one secondary but found"
            f" {len(inst.snodes)}",
            "internal_error",
        )
    new_secondary = None
    if mode == "replace_new_secondary":
        if p.get("remote_node") is not None:
            new_secondary = x.node(p["remote_node"])
        else:
            pnode = s.node_by_uuid(inst.pnode)
            new_secondary = _pick_node(
                s, exclude={inst.pnode, *inst.snodes}, group_uuid=pnode.group_uuid
            )
        if new_secondary.uuid in (inst.pnode, *inst.snodes):
            raise OpPrereqError(
                "The specified node is already the primary or secondary node", "wrong_input"
            )
        x.check_online(new_secondary)
    if x.dry_run(p):
        return None
    x.log("Checking disk/0 on " + s.node_by_uuid(inst.pnode).name)
    await x.work(0.5)
    if new_secondary is not None:
        x.log(f"Changing secondary node to {new_secondary.name}")
        inst.snodes = [new_secondary.uuid]
        s.touch(inst)
    x.log("Sync done")
    await x.work(0.5)
    return None


@opcode(
    "OP_INSTANCE_GROW_DISK",
    "instance_name instance_uuid disk amount wait_for_sync absolute ignore_ipolicy",
    required="instance_name disk amount",
    summary="instance_name",
    locks=_lock_instance(),
    types={"disk": int, "amount": int, "absolute": bool},
    defaults={"wait_for_sync": True, "absolute": False, "ignore_ipolicy": False},
)
async def instance_grow_disk(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    idx = p["disk"]
    if not 0 <= idx < len(inst.disks):
        # objects.Instance.FindDisk, typo and missing parenthesis included
        raise OpPrereqError(
            f"Invalid disk index: {idx} (instace has disks 0 to {len(inst.disks) - 1}",
            "wrong_input",
        )
    disk = inst.disks[idx]
    new = p["amount"] if p.get("absolute") else disk.size + p["amount"]
    if new < disk.size:
        raise OpPrereqError(
            f"Requested size ({new}) is smaller than current disk size ({disk.size})",
            "wrong_input",
        )
    if x.dry_run(p):
        return None
    x.log(f"Growing disk {idx} of instance '{inst.name}' by {new - disk.size} to {new}")
    await x.work()
    disk.size = new
    x.state.touch(inst)
    return None


# ---- nodes -----------------------------------------------------------------


@opcode(
    "OP_NODE_SET_PARAMS",
    "node_name node_uuid force master_candidate offline drained auto_promote "
    "master_capable vm_capable secondary_ip ndparams powered hv_state disk_state",
    required="node_name",
    summary="node_name",
    locks=_lock_name("node", "node_name"),
    types={"ndparams": dict},
)
async def node_set_params(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    node = x.node(p["node_name"])
    flags = {k: p.get(k) for k in ("master_candidate", "offline", "drained")}
    other = ("master_capable", "vm_capable", "secondary_ip", "ndparams", "powered")
    if all(v is None for v in flags.values()) and all(p.get(k) is None for k in other):
        raise OpPrereqError("Please pass at least one modification", "wrong_input")
    if sum(1 for v in flags.values() if v) > 1:
        raise OpPrereqError(
            "Can't set the node into more than one state at the same time", "wrong_input"
        )
    if node.uuid == s.master_uuid and (
        flags["offline"] or flags["drained"] or flags["master_candidate"] is False
    ):
        raise OpPrereqError(
            "The master role can be changed only via master-failover", "wrong_input"
        )
    if flags["master_candidate"] and not node.master_capable:
        raise OpPrereqError(
            f"Node {node.name} is not master capable, cannot make it a master candidate",
            "wrong_state",
        )
    if x.dry_run(p):
        return []
    await x.work()
    result: list[list[Any]] = []
    if flags["offline"]:
        node.offline, node.master_candidate, node.drained = True, False, False
        result.append(["offline", "True"])
    elif flags["drained"]:
        node.drained, node.master_candidate, node.offline = True, False, False
        result.append(["drained", "True"])
    elif flags["master_candidate"]:
        node.master_candidate, node.offline, node.drained = True, False, False
        result.append(["master_candidate", "True"])
    else:
        for key in ("master_candidate", "offline", "drained"):
            if flags[key] is False and getattr(node, key):
                setattr(node, key, False)
                result.append([key, "False"])
        if result and flags["master_candidate"] is None and _promotion_needed(s, node):
            # Ganeti's LUNodeSetParams: a node back from drained/offline becomes a
            # master candidate again while the candidate pool is not full.
            x.log(" - INFO: Auto-promoting node to master candidate")
            node.master_candidate = True
            result.append(["master_candidate", "True"])
    for key in ("master_capable", "vm_capable"):
        if p.get(key) is not None:
            setattr(node, key, bool(p[key]))
            result.append([key, str(bool(p[key]))])
    if p.get("secondary_ip") is not None:
        node.sip = p["secondary_ip"]
        result.append(["secondary_ip", node.sip])
    if p.get("ndparams"):
        node.ndparams.update(p["ndparams"])
        result.append(["ndparams", str(node.ndparams)])
    s.touch(node)
    return result


def _promotion_needed(s: ClusterState, node: Node) -> bool:
    if not node.master_capable or node.master_candidate or node.offline or node.drained:
        return False
    candidates = sum(1 for n in s.nodes.values() if n.master_candidate)
    capable = sum(1 for n in s.nodes.values() if n.master_capable and not n.offline)
    wanted = min(int(s.info.get("candidate_pool_size") or 10), capable)
    return candidates < wanted


def _node_job(x: Exec, ops: list[dict[str, Any]]) -> list[Any]:
    job_id = x.queue.submit(ops)
    return [True, job_id]


def _child_reason(x: Exec) -> list[list[Any]]:
    return [list(r) for r in x.op.input.get("reason", [])]


@opcode(
    "OP_NODE_EVACUATE",
    "node_name node_uuid mode remote_node remote_node_uuid iallocator early_release "
    "ignore_soft_errors",
    required="node_name",
    summary="node_name",
    locks=_lock_name("node", "node_name"),
)
async def node_evacuate(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    node = x.node(p["node_name"])
    mode = p.get("mode") or "all"
    if mode not in ("primary-only", "secondary-only", "all"):
        raise OpPrereqError(f"Invalid evacuation mode '{mode}'", "wrong_input")
    if p.get("remote_node") is not None:
        remote = x.node(p["remote_node"])
        if remote is node:
            raise OpPrereqError("Can not use evacuated node as a new secondary node", "wrong_input")
    if x.dry_run(p):
        return {"jobs": []}
    await x.work()
    jobs = []
    reason = _child_reason(x)
    for name in s.sorted_instance_names():
        inst = s.instances[name]
        if mode in ("primary-only", "all") and inst.pnode == node.uuid:
            op = build_op(
                "OP_INSTANCE_MIGRATE",
                {"instance_name": name, "allow_failover": True, "mode": None},
                reason,
            )
            jobs.append(_node_job(x, [op]))
        if mode in ("secondary-only", "all") and node.uuid in inst.snodes:
            params: dict[str, Any] = {"instance_name": name, "mode": "replace_new_secondary"}
            if p.get("remote_node") is not None:
                params["remote_node"] = p["remote_node"]
            jobs.append(_node_job(x, [build_op("OP_INSTANCE_REPLACE_DISKS", params, reason)]))
    return {"jobs": jobs}


@opcode(
    "OP_NODE_MIGRATE",
    "node_name node_uuid mode live target_node target_node_uuid iallocator "
    "allow_runtime_changes ignore_ipolicy",
    required="node_name",
    summary="node_name",
    locks=_lock_name("node", "node_name"),
)
async def node_migrate(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    node = x.node(p["node_name"])
    if x.dry_run(p):
        return {"jobs": []}
    await x.work()
    reason = _child_reason(x)
    jobs = []
    for name in s.sorted_instance_names():
        inst = s.instances[name]
        if inst.pnode == node.uuid and inst.running_on is not None:
            params: dict[str, Any] = {"instance_name": name, "mode": p.get("mode")}
            if p.get("target_node") is not None:
                params["target_node"] = p["target_node"]
            jobs.append(_node_job(x, [build_op("OP_INSTANCE_MIGRATE", params, reason)]))
    return {"jobs": jobs}


@opcode(
    "OP_NODE_POWERCYCLE",
    "node_name node_uuid force",
    required="node_name",
    summary="node_name",
    locks=_lock_name("node", "node_name"),
)
async def node_powercycle(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    node = x.node(p["node_name"])
    if node.uuid == s.master_uuid and not p.get("force"):
        raise OpPrereqError(
            "The node is the master and the force parameter was not set", "wrong_input"
        )
    await x.work()
    for inst in s.instances.values():
        if inst.running_on == node.uuid:
            inst.running_on = None
            s.touch(inst, config=False)
    return None


# ---- groups ----------------------------------------------------------------


@opcode(
    "OP_GROUP_ADD",
    "group_name alloc_policy ndparams diskparams ipolicy hv_state disk_state",
    required="group_name",
    summary="group_name",
    locks=_lock_name("group", "group_name"),
    types={"group_name": str},
)
async def group_add(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    name = p["group_name"]
    if name in s.groups:
        raise OpPrereqError(
            f"Desired group name '{name}' already exists as a node group (UUID:"
            f" {s.groups[name].uuid})",
            "already_exists",
        )
    if x.dry_run(p):
        return None
    await x.work()
    t = st.now()
    s.groups[name] = st.Group(
        name=name,
        uuid=st.new_uuid(),
        alloc_policy=p.get("alloc_policy") or "preferred",
        ndparams=dict(p.get("ndparams") or {}),
        ipolicy=dict(p.get("ipolicy") or {}),
        diskparams=dict(p.get("diskparams") or {}),
        ctime=t,
        mtime=t,
    )
    s.reindex()
    s.touch(None)
    return None


@opcode(
    "OP_GROUP_SET_PARAMS",
    "group_name alloc_policy ndparams diskparams ipolicy hv_state disk_state",
    required="group_name",
    summary="group_name",
    locks=_lock_name("group", "group_name"),
)
async def group_set_params(x: Exec, p: dict[str, Any]) -> Any:
    group = x.group(p["group_name"])
    keys = ("alloc_policy", "ndparams", "diskparams", "ipolicy")
    if all(p.get(k) is None for k in keys):
        raise OpPrereqError("Please pass at least one modification", "wrong_input")
    if x.dry_run(p):
        return []
    await x.work()
    result: list[list[Any]] = []
    if p.get("alloc_policy") is not None:
        group.alloc_policy = p["alloc_policy"]
        result.append(["alloc_policy", group.alloc_policy])
    for key in ("ndparams", "diskparams", "ipolicy"):
        if p.get(key) is not None:
            getattr(group, key).update(p[key])
            result.append([key, str(p[key])])
    x.state.touch(group)
    return result


@opcode(
    "OP_GROUP_RENAME",
    "group_name new_name",
    required="group_name new_name",
    locks=_lock_name("group", "group_name"),
)
async def group_rename(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    group = x.group(p["group_name"])
    new = p["new_name"]
    if new in s.groups:
        raise OpPrereqError(
            f"Desired new name '{new}' clashes with existing node group", "already_exists"
        )
    if x.dry_run(p):
        return new
    await x.work()
    del s.groups[group.name]
    group.name = new
    s.groups[new] = group
    s.touch(group)
    return new


@opcode(
    "OP_GROUP_ASSIGN_NODES",
    "group_name force nodes node_uuids",
    required="group_name nodes",
    summary="group_name",
    locks=_lock_name("group", "group_name"),
    types={"nodes": list},
)
async def group_assign_nodes(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    group = x.group(p["group_name"])
    nodes = [x.node(n) for n in p["nodes"]]
    if x.dry_run(p):
        return None
    await x.work()
    for node in nodes:
        if node.group_uuid != group.uuid:
            node.group_uuid = group.uuid
            s.touch(node)
    s.touch(group)
    return None


@opcode(
    "OP_GROUP_REMOVE",
    "group_name",
    required="group_name",
    summary="group_name",
    locks=_lock_name("group", "group_name"),
)
async def group_remove(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    group = x.group(p["group_name"])
    # Ganeti 3.0 names the nodes by uuid, nice-sorted
    members = sorted(
        (n.uuid for n in s.nodes.values() if n.group_uuid == group.uuid), key=st.nice_sort_key
    )
    if members:
        raise OpPrereqError(
            f"Group '{p['group_name']}' not empty, has the following nodes: {', '.join(members)}",
            "wrong_state",
        )
    if len(s.groups) == 1:
        raise OpPrereqError(
            f"Group '{group.name}' is the only group, cannot be removed", "wrong_state"
        )
    if x.dry_run(p):
        return None
    await x.work()
    del s.groups[group.name]
    s.reindex()
    s.touch(None)
    return None


# ---- networks --------------------------------------------------------------


@opcode(
    "OP_NETWORK_ADD",
    "network_name network gateway network6 gateway6 mac_prefix add_reserved_ips "
    "conflicts_check tags",
    required="network_name network",
    summary="network_name",
    locks=_lock_name("network", "network_name"),
    types={"network_name": str, "network": str},
    defaults={"conflicts_check": True, "tags": []},
)
async def network_add(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    name = p["network_name"]
    if name in s.networks:
        raise OpPrereqError(
            f"Desired network name '{name}' already exists as a network (UUID:"
            f" {s.networks[name].uuid})",
            "already_exists",
        )
    try:
        net = ipaddress.ip_network(p["network"], strict=False)
    except ValueError as exc:
        raise OpPrereqError(f"Invalid network: {exc}", "wrong_input") from None
    if net.version != 4 or net.prefixlen < 16:
        raise OpPrereqError("Network must be an IPv4 network of /16 or smaller", "wrong_input")
    if x.dry_run(p):
        return None
    await x.work()
    base = int(net.network_address)
    external = {0, net.num_addresses - 1}
    for ip in [p.get("gateway"), *(p.get("add_reserved_ips") or [])]:
        if ip:
            external.add(int(ipaddress.ip_address(ip)) - base)
    t = st.now()
    s.networks[name] = st.Network(
        name=name,
        uuid=st.new_uuid(),
        network=str(net),
        gateway=p.get("gateway"),
        network6=p.get("network6"),
        gateway6=p.get("gateway6"),
        mac_prefix=p.get("mac_prefix"),
        external=external,
        tags=list(p.get("tags") or []),
        ctime=t,
        mtime=t,
    )
    s.reindex()
    s.touch(None)
    return None


@opcode(
    "OP_NETWORK_SET_PARAMS",
    "network_name gateway network6 gateway6 mac_prefix add_reserved_ips remove_reserved_ips",
    required="network_name",
    summary="network_name",
    locks=_lock_name("network", "network_name"),
)
async def network_set_params(x: Exec, p: dict[str, Any]) -> Any:
    if p.get("gateway") and (p.get("add_reserved_ips") or p.get("remove_reserved_ips")):
        raise OpPrereqError("Cannot modify gateway and reserved ips at once", "wrong_input")
    net = x.network(p["network_name"])
    if x.dry_run(p):
        return None
    await x.work()
    base = int(ipaddress.ip_network(net.network, strict=False).network_address)
    gateway = p.get("gateway")
    if gateway is not None:
        # the gateway is an external reservation: release the old, reserve the new
        if net.gateway:
            net.external.discard(int(ipaddress.ip_address(net.gateway)) - base)
        if gateway != "none":
            net.external.add(int(ipaddress.ip_address(gateway)) - base)
    for key in ("gateway", "network6", "gateway6", "mac_prefix"):
        if p.get(key) is not None:
            setattr(net, key, None if p[key] == "none" else p[key])
    for ip in p.get("add_reserved_ips") or []:
        net.external.add(int(ipaddress.ip_address(ip)) - base)
    for ip in p.get("remove_reserved_ips") or []:
        net.external.discard(int(ipaddress.ip_address(ip)) - base)
    x.state.touch(net)
    return None


@opcode(
    "OP_NETWORK_RENAME",
    "network_name new_name",
    required="network_name new_name",
    locks=_lock_name("network", "network_name"),
)
async def network_rename(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    net = x.network(p["network_name"])
    new = p["new_name"]
    if new in s.networks:
        raise OpPrereqError(f"Network '{new}' already exists", "already_exists")
    if x.dry_run(p):
        return new
    await x.work()
    del s.networks[net.name]
    net.name = new
    s.networks[new] = net
    s.touch(net)
    return new


@opcode(
    "OP_NETWORK_CONNECT",
    "network_name group_name network_mode network_link network_vlan conflicts_check",
    required="network_name group_name network_mode network_link",
    summary="network_name",
    locks=_lock_name("network", "network_name"),
    defaults={"network_vlan": "", "conflicts_check": True},
)
async def network_connect(x: Exec, p: dict[str, Any]) -> Any:
    net = x.network(p["network_name"])
    group = x.group(p["group_name"])
    if x.dry_run(p):
        return None
    await x.work()
    if net.uuid in group.networks:
        x.log(f"Network '{net.name}' is already mapped to group '{group.name}'")
        return None
    group.networks[net.uuid] = {
        "mode": p["network_mode"],
        "link": p["network_link"],
        "vlan": p.get("network_vlan") or "",
    }
    x.state.touch(group)
    return None


@opcode(
    "OP_NETWORK_DISCONNECT",
    "network_name group_name",
    required="network_name group_name",
    summary="network_name",
    locks=_lock_name("network", "network_name"),
)
async def network_disconnect(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    net = x.network(p["network_name"])
    group = x.group(p["group_name"])
    users = [
        i.name
        for i in s.instances.values()
        if s.node_by_uuid(i.pnode).group_uuid == group.uuid
        and any(n.network == net.uuid for n in i.nics)
    ]
    if users:
        raise OpPrereqError(
            f"Network '{net.name}' is in use by instances: {', '.join(users[:5])}",
            "wrong_state",
        )
    if x.dry_run(p):
        return None
    await x.work()
    if group.networks.pop(net.uuid, None) is None:
        x.log(f"Network '{net.name}' is not mapped to group '{group.name}'")
        return None
    s.touch(group)
    return None


@opcode(
    "OP_NETWORK_REMOVE",
    "network_name force",
    required="network_name",
    summary="network_name",
    locks=_lock_name("network", "network_name"),
    defaults={"force": False},
)
async def network_remove(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    net = x.network(p["network_name"])
    if any(net.uuid in g.networks for g in s.groups.values()):
        raise OpPrereqError("Network still connected", "wrong_state")
    if x.dry_run(p):
        return None
    await x.work()
    del s.networks[net.name]
    s.reindex()
    s.touch(None)
    return None


def install(queue: JobQueue) -> None:
    """Let the queue build execution contexts without importing this module."""
    queue.make_exec = Exec
