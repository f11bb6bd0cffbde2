"""A tiny stand-in for Ganeti's iallocator (hail): free memory, node choice."""

from __future__ import annotations

from gwm.simulator.derived import instance_maxmem
from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.state import ClusterState, Node

#: What hail answers (Ganeti 3.0.2) when it finds no node to move an instance to.
NO_GOOD_NODE = (
    "Can't compute nodes using iallocator 'hail': Request failed: Can't find any good node: "
)


def node_mem_free(s: ClusterState, node: Node) -> int:
    used = sum(instance_maxmem(s, i) for i in s.instances.values() if i.running_on == node.uuid)
    return node.mtotal - node.mnode - used


def pick_node(s: ClusterState, *, exclude: set[str], group_uuid: str | None = None) -> Node:
    """The usable node with the fewest primary instances."""
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
