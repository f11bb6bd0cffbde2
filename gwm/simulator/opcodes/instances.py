"""Instance opcodes: remove, query data, start, stop, reboot, reinstall,
rename, modify. Creation, moves and disks have modules of their own."""

from __future__ import annotations

import random
from typing import Any

from gwm.simulator.data import mac_for
from gwm.simulator.derived import address_offset, instance_beparams, instance_hvparams, nic_filled
from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.allocator import node_mem_free
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import (
    ADMIN_DOWN,
    ADMIN_OFFLINE,
    ADMIN_UP,
    ClusterState,
    Disk,
    Instance,
    Nic,
    Node,
    new_uuid,
    nice_sort_key,
)

OPCODES = Registry()


@OPCODES.on(
    "instance",
    "OP_INSTANCE_REMOVE",
    "ignore_failures shutdown_timeout",
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
            net.reserved.discard(address_offset(net, nic.ip))
    del s.instances[inst.name]
    s.instance_set_changed()
    s.touch(None)
    return None


@OPCODES.opcode(
    "OP_INSTANCE_QUERY_DATA",
    "instances static use_locking",
    locks=lambda s, p: set(),
    defaults={"use_locking": False, "static": False},
)
async def instance_query_data(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    names = p.get("instances") or sorted(s.instances, key=nice_sort_key)
    insts = [x.instance(n) for n in names]
    if not p.get("static"):
        x.log(" - WARNING: Non-static data requested, locks need to be acquired")
    await x.work()
    return {inst.name: _instance_data(x.state, inst, bool(p.get("static"))) for inst in insts}


def _primary(x: Exec, inst: Instance, p: dict[str, Any]) -> tuple[Node, bool]:
    """The primary node, and whether it is offline and ``ignore_offline_nodes``
    lets the opcode go on without it (else it must be online)."""
    pnode = x.state.node_by_uuid(inst.pnode)
    if pnode.offline and p.get("ignore_offline_nodes"):
        x.log("Ignoring offline primary node")
        return pnode, True
    x.check_online(pnode)
    return pnode, False


@OPCODES.on(
    "instance",
    "OP_INSTANCE_STARTUP",
    "force ignore_offline_nodes hvparams beparams no_remember startup_paused shutdown_timeout",
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
    x.check_state(inst, (ADMIN_UP, ADMIN_DOWN), "cannot start instance")
    pnode, primary_offline = _primary(x, inst, p)
    if not primary_offline:
        x.check_reachable(pnode, f"Error checking node {pnode.name}")
        if inst.running_on is None:
            need = instance_beparams(s, inst)["minmem"]
            free = node_mem_free(s, pnode)
            if free < need:
                raise OpPrereqError(
                    f"Not enough memory on node {pnode.name} for starting instance"
                    f" {inst.name}: needed {need} MiB, available {free} MiB",
                    "insufficient_resources",
                )
    if x.dry_run(p):
        return None
    if not p.get("no_remember"):
        x.mark_admin(inst, ADMIN_UP)
    if primary_offline:
        x.log("Primary node offline, marked instance as started")
        return None
    await x.work()
    x.start(inst)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_SHUTDOWN",
    "force ignore_offline_nodes timeout no_remember admin_state_source",
    defaults={"force": False, "ignore_offline_nodes": False, "timeout": 120},
    exec_defaults={"no_remember": False, "admin_state_source": "admin"},
)
async def instance_shutdown(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if p.get("force"):
        x.log("Ignoring offline instance check")
    else:
        x.check_state(inst, (ADMIN_UP, ADMIN_DOWN), "cannot shutdown instance")
    pnode, primary_offline = _primary(x, inst, p)
    if x.dry_run(p):
        return None
    if not p.get("no_remember") and inst.admin_state in (ADMIN_UP, ADMIN_DOWN):
        x.mark_admin(inst, ADMIN_DOWN, p.get("admin_state_source") or "admin")
    if primary_offline:
        x.log("Primary node offline, marked instance as stopped")
        return None
    x.check_reachable(pnode, f"Could not shutdown instance '{inst.name}'", prereq=False)
    await x.work()
    x.stop(inst)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_REBOOT",
    "ignore_secondaries reboot_type shutdown_timeout",
    types={"reboot_type": str},
    defaults={"ignore_secondaries": False, "reboot_type": "hard", "shutdown_timeout": 120},
)
async def instance_reboot(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    rtype = p.get("reboot_type") or "hard"
    if rtype not in ("soft", "hard", "full"):
        raise OpPrereqError(f"Invalid reboot type '{rtype}'", "wrong_input")
    x.check_state(inst, (ADMIN_UP, ADMIN_DOWN), "cannot reboot instance")
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
            x.stop(inst)
        else:
            x.log(f" - INFO: Instance {inst.name} was already stopped, starting now")
        await x.work(0.5)
    x.start(inst)
    x.mark_admin(inst, ADMIN_UP)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_REINSTALL",
    "os_type osparams osparams_private osparams_secret "
    "force_variant clear_osparams clear_osparams_private remove_os_parameters "
    "remove_os_parameters_private os_image",
    defaults={"force_variant": False},
)
async def instance_reinstall(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    inst = x.instance(p["instance_name"])
    pnode = s.node_by_uuid(inst.pnode)
    x.check_online(pnode)
    if not inst.disks:
        raise OpPrereqError(f"Instance '{p['instance_name']}' has no disks", "wrong_input")
    x.check_state(inst, (ADMIN_DOWN,), "cannot reinstall")
    os_type = p.get("os_type")
    if os_type is not None:
        x.check_os(os_type, pnode)
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


@OPCODES.on(
    "instance",
    "OP_INSTANCE_RENAME",
    "new_name ip_check name_check",
    required="new_name",
    summary=None,
    locks=lambda s, p: {f"instance:{p.get('instance_name')}", f"instance:{p.get('new_name')}"},
    types={"new_name": str},
)
async def instance_rename(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    x.check_state(inst, (ADMIN_DOWN, ADMIN_OFFLINE), "cannot rename")
    new = await x.rename(p, x.state.instances, inst, "Instance '{}' is already in the cluster")
    x.state.instance_set_changed()
    return new


@OPCODES.on(
    "instance",
    "OP_INSTANCE_SET_PARAMS",
    "force force_variant nics disks beparams runtime_mem "
    "hvparams disk_template pnode pnode_uuid remote_node remote_node_uuid iallocator "
    "os_name osparams osparams_private clear_osparams clear_osparams_private "
    "remove_os_parameters remove_os_parameters_private wait_for_sync offline conflicts_check "
    "hotplug hotplug_if_possible instance_communication ext_params file_driver "
    "file_storage_dir",
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
        inst.admin_state = ADMIN_OFFLINE if offline else ADMIN_DOWN
        changes.append(["admin_state", inst.admin_state])
    if p.get("runtime_mem") is not None:
        changes.append(["runtime_memory", p["runtime_mem"]])
    for mod in p.get("disks") or []:
        if isinstance(mod, list) and len(mod) == 2 and mod[0] in ("add", -1):
            spec = mod[1] if isinstance(mod[1], dict) else {}
            inst.disks.append(Disk(uuid=new_uuid(), size=int(spec.get("size", 1024))))
            changes.append([f"disk/{len(inst.disks) - 1}", "add"])
    for mod in p.get("nics") or []:
        if isinstance(mod, list) and len(mod) == 2 and mod[0] in ("add", -1):
            spec = mod[1] if isinstance(mod[1], dict) else {}
            inst.nics.append(Nic(uuid=new_uuid(), mac=mac_for(random.Random()), ip=spec.get("ip")))
            changes.append([f"nic.{len(inst.nics) - 1}", "add"])
    s.touch(inst)
    return changes


def _instance_data(s: ClusterState, inst: Instance, static: bool) -> dict[str, Any]:
    """One instance as OpInstanceQueryData reports it (static: no run state)."""
    pnode = s.node_by_uuid(inst.pnode)
    if static:
        run_state = None
    elif inst.running_on is not None:
        run_state = "up"
    else:
        run_state = "down"
    groups = {g.uuid: g.name for g in s.groups.values()}
    return {
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
                nic_filled(s, n),
                n.network,
                None if n.network is None else s.network_by_uuid(n.network).name,
            ]
            for n in inst.nics
        ],
        "hv_instance": dict(inst.hvparams),
        "hv_actual": instance_hvparams(s, inst),
        "be_instance": dict(inst.beparams),
        "be_actual": instance_beparams(s, inst),
        "os_instance": dict(inst.osparams),
        "os_actual": dict(inst.osparams),
        "uuid": inst.uuid,
        "serial_no": inst.serial_no,
        "mtime": inst.mtime,
        "ctime": inst.ctime,
        "tags": list(inst.tags),
    }
