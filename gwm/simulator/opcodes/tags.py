"""Tag opcodes, for the cluster and every kind of object."""

from __future__ import annotations

from typing import Any

from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import ClusterState, ConfigObject

OPCODES = Registry()


def _target(x: Exec, kind: str, name: Any) -> ConfigObject | None:
    """The object whose tags change; None for the cluster."""
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
    target = _target(x, str(p.get("kind")), p.get("name"))
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
    else:
        target.tags = tags
    x.state.touch(target)
    return None


def _locks(s: ClusterState, p: dict[str, Any]) -> set[str]:
    return {f"{p.get('kind')}:{p.get('name')}"}


@OPCODES.opcode("OP_TAGS_SET", "kind name tags", locks=_locks)
async def tags_set(x: Exec, p: dict[str, Any]) -> Any:
    return await _tags(x, p, add=True)


@OPCODES.opcode("OP_TAGS_DEL", "kind name tags", locks=_locks)
async def tags_del(x: Exec, p: dict[str, Any]) -> Any:
    return await _tags(x, p, add=False)
