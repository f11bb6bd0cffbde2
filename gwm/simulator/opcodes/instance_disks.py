"""Instance disk opcodes: activate, deactivate, recreate, replace, grow."""

from __future__ import annotations

from typing import Any

from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.allocator import pick_node
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import ADMIN_DOWN

OPCODES = Registry()


@OPCODES.on(
    "instance",
    "OP_INSTANCE_ACTIVATE_DISKS",
    "ignore_size wait_for_sync",
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


@OPCODES.on("instance", "OP_INSTANCE_DEACTIVATE_DISKS", "force")
async def instance_deactivate_disks(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if not p.get("force"):
        # _SafeShutdownInstanceDisks: only for an instance marked down and not running
        x.check_state(inst, (ADMIN_DOWN,), "cannot shutdown disks")
    await x.work()
    inst.disks_active = False
    x.state.touch(inst)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_RECREATE_DISKS",
    "disks nodes node_uuids iallocator",
    defaults={"disks": [], "nodes": []},
)
async def instance_recreate_disks(x: Exec, p: dict[str, Any]) -> Any:
    inst = x.instance(p["instance_name"])
    if not inst.disks:
        raise OpPrereqError(f"Instance '{p['instance_name']}' has no disks", "wrong_input")
    x.check_state(inst, (ADMIN_DOWN,), "cannot recreate disks")
    await x.work()
    x.state.touch(inst)
    return None


@OPCODES.on(
    "instance",
    "OP_INSTANCE_REPLACE_DISKS",
    "mode disks remote_node remote_node_uuid iallocator early_release ignore_ipolicy",
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
            new_secondary = pick_node(
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


@OPCODES.on(
    "instance",
    "OP_INSTANCE_GROW_DISK",
    "disk amount wait_for_sync absolute ignore_ipolicy",
    required="disk amount",
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
