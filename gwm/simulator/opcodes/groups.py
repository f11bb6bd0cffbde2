"""Node group opcodes: add, modify, rename, assign nodes, remove."""

from __future__ import annotations

from typing import Any

from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import Group, new_uuid, nice_sort_key, now

OPCODES = Registry()


@OPCODES.on(
    "group",
    "OP_GROUP_ADD",
    "alloc_policy ndparams diskparams ipolicy hv_state disk_state",
    types={"group_name": str},
)
async def group_add(x: Exec, p: dict[str, Any]) -> Any:
    name = p["group_name"]
    x.check_free(x.state.groups, name, "group", "node group")
    if x.dry_run(p):
        return None
    await x.work()
    t = now()
    x.add(
        x.state.groups,
        Group(
            name=name,
            uuid=new_uuid(),
            alloc_policy=p.get("alloc_policy") or "preferred",
            ndparams=dict(p.get("ndparams") or {}),
            ipolicy=dict(p.get("ipolicy") or {}),
            diskparams=dict(p.get("diskparams") or {}),
            ctime=t,
            mtime=t,
        ),
    )
    return None


@OPCODES.on(
    "group", "OP_GROUP_SET_PARAMS", "alloc_policy ndparams diskparams ipolicy hv_state disk_state"
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


@OPCODES.on(
    "group",
    "OP_GROUP_RENAME",
    "new_name",
    required="new_name",
    summary=None,
)
async def group_rename(x: Exec, p: dict[str, Any]) -> Any:
    group = x.group(p["group_name"])
    taken = "Desired new name '{}' clashes with existing node group"
    return await x.rename(p, x.state.groups, group, taken)


@OPCODES.on(
    "group",
    "OP_GROUP_ASSIGN_NODES",
    "force nodes node_uuids",
    required="nodes",
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


@OPCODES.on("group", "OP_GROUP_REMOVE")
async def group_remove(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    group = x.group(p["group_name"])
    # Ganeti 3.0 names the nodes by uuid, nice-sorted
    members = sorted(
        (n.uuid for n in s.nodes.values() if n.group_uuid == group.uuid), key=nice_sort_key
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
    x.remove(s.groups, group)
    return None
