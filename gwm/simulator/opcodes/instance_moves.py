"""Moving an instance to another node: migration and failover."""

from __future__ import annotations

from typing import Any

from gwm.simulator.jobs import OpExecError, OpPrereqError
from gwm.simulator.opcodes.allocator import pick_node
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import ADMIN_UP, Instance, Node

OPCODES = Registry()


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
        target = pick_node(s, exclude={inst.pnode}, group_uuid=pnode.group_uuid)
    x.check_online(target)
    if target.drained:
        raise OpPrereqError(f"Can't use drained node {target.name}", "wrong_state")
    return target


def _move(x: Exec, inst: Instance, target: Node) -> None:
    s = x.state
    old = inst.pnode
    inst.pnode = target.uuid
    if inst.disk_template == "drbd":
        inst.snodes = [old]
    s.touch(inst)
    if inst.running_on is not None:
        inst.running_on = target.uuid


@OPCODES.on(
    "instance",
    "OP_INSTANCE_MIGRATE",
    "mode live target_node target_node_uuid cleanup "
    "allow_failover allow_runtime_changes ignore_ipolicy iallocator ignore_hvversions",
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
    if inst.admin_state != ADMIN_UP and p.get("allow_failover"):
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
    _move(x, inst, target)
    x.log("* done")
    await x.work(0.1)
    return None


async def _failover(x: Exec, inst: Instance, target: Node, *, ignore_consistency: bool) -> Any:
    s = x.state
    source = s.node_by_uuid(inst.pnode)
    was_up = inst.admin_state == ADMIN_UP
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
    _move(x, inst, target)
    if was_up:
        x.log(f"* starting the instance on the target node {target.name}")
        await x.work(0.6)
        x.start(inst)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_FAILOVER",
    "shutdown_timeout ignore_consistency target_node "
    "target_node_uuid ignore_ipolicy cleanup iallocator",
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
