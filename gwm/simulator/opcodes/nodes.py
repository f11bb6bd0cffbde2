"""Node opcodes: modify (roles and flags), evacuate, migrate, powercycle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import ClusterState, Instance, Node

OPCODES = Registry()


@OPCODES.on(
    "node",
    "OP_NODE_SET_PARAMS",
    "force master_candidate offline drained auto_promote "
    "master_capable vm_capable secondary_ip ndparams powered hv_state disk_state",
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


ChildOp = tuple[str, dict[str, Any]]


async def _instance_jobs(
    x: Exec, p: dict[str, Any], ops: Callable[[Instance], list[ChildOp]]
) -> dict[str, Any]:
    """A job for each opcode ``ops`` gives for the cluster's instances, in
    order (a node evacuation or migration answers these jobs' ids)."""
    if x.dry_run(p):
        return {"jobs": []}
    await x.work()
    s = x.state
    children = [op for name in s.sorted_instance_names() for op in ops(s.instances[name])]
    return {"jobs": x.child_jobs(children)}


@OPCODES.on(
    "node",
    "OP_NODE_EVACUATE",
    "mode remote_node remote_node_uuid iallocator early_release ignore_soft_errors",
)
async def node_evacuate(x: Exec, p: dict[str, Any]) -> Any:
    node = x.node(p["node_name"])
    mode = p.get("mode") or "all"
    if mode not in ("primary-only", "secondary-only", "all"):
        raise OpPrereqError(f"Invalid evacuation mode '{mode}'", "wrong_input")
    if p.get("remote_node") is not None:
        remote = x.node(p["remote_node"])
        if remote is node:
            raise OpPrereqError("Can not use evacuated node as a new secondary node", "wrong_input")

    def ops(inst: Instance) -> list[ChildOp]:
        out: list[ChildOp] = []
        if mode in ("primary-only", "all") and inst.pnode == node.uuid:
            migrate = {"instance_name": inst.name, "allow_failover": True, "mode": None}
            out.append(("OP_INSTANCE_MIGRATE", migrate))
        if mode in ("secondary-only", "all") and node.uuid in inst.snodes:
            params: dict[str, Any] = {"instance_name": inst.name, "mode": "replace_new_secondary"}
            if p.get("remote_node") is not None:
                params["remote_node"] = p["remote_node"]
            out.append(("OP_INSTANCE_REPLACE_DISKS", params))
        return out

    return await _instance_jobs(x, p, ops)


@OPCODES.on(
    "node",
    "OP_NODE_MIGRATE",
    "mode live target_node target_node_uuid iallocator allow_runtime_changes ignore_ipolicy",
)
async def node_migrate(x: Exec, p: dict[str, Any]) -> Any:
    node = x.node(p["node_name"])

    def ops(inst: Instance) -> list[ChildOp]:
        if inst.pnode != node.uuid or inst.running_on is None:
            return []
        params: dict[str, Any] = {"instance_name": inst.name, "mode": p.get("mode")}
        if p.get("target_node") is not None:
            params["target_node"] = p["target_node"]
        return [("OP_INSTANCE_MIGRATE", params)]

    return await _instance_jobs(x, p, ops)


@OPCODES.on("node", "OP_NODE_POWERCYCLE", "force")
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
    return None
