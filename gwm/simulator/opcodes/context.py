"""What an opcode sees while it runs: the cluster, its job, a logger, checks.

The lookups and checks fail the way Ganeti's logical units do (OpPrereqError:
nothing changed yet); the instance changes below are the ones several
opcodes share. Messages and error codes follow lib/cmdlib.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from gwm.simulator.jobs import Job, JobQueue, OpExecError, OpPrereqError, OpState
from gwm.simulator.state import ADMIN_UP, ClusterState, Group, Instance, Network, Node

T = TypeVar("T")
Renamable = TypeVar("Renamable", Instance, Group, Network)
Added = TypeVar("Added", Group, Network)
# Registry.build: (OP_ID, params, reason trail) -> the opcode as a job stores it
Build = Callable[[str, dict[str, Any], list[list[Any]]], dict[str, Any]]


class Exec:
    """The context of one running opcode (``x`` in the opcode functions)."""

    def __init__(self, queue: JobQueue, job: Job, op: OpState, build: Build) -> None:
        self.queue = queue
        self.state: ClusterState = queue.state
        self.job = job
        self.op = op
        self.build = build

    def log(self, message: str) -> None:
        self.job.add_log(self.op, message)
        self.queue.notify()

    async def work(self, fraction: float = 1.0) -> None:
        await asyncio.sleep(self.queue.config.op_duration(self.op.input["OP_ID"]) * fraction)

    def dry_run(self, params: dict[str, Any]) -> bool:
        """Whether to stop after the checks; mcpu logs that it does."""
        if not params.get("dry_run"):
            return False
        self.log(" - INFO: dry-run mode requested, not actually executing the operation")
        return True

    def child_jobs(self, ops: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
        """Submit one job per ``(OP_ID, params)``, with this opcode's reason
        trail: the ``[success, job id]`` pairs of a node evacuation or migration."""
        reason = [list(r) for r in self.op.input.get("reason", [])]
        return [[True, self.queue.submit([self.build(op_id, p, reason)])] for op_id, p in ops]

    # ---- lookups that fail like Ganeti's _ExpandItemName -----------------
    def instance(self, name: Any) -> Instance:
        return self._lookup(self.state.instances, "Instance", name)

    def node(self, name: Any) -> Node:
        return self._lookup(self.state.nodes, "Node", name)

    def group(self, name: Any) -> Group:
        return self._lookup(self.state.groups, "Group", name)

    def network(self, name: Any) -> Network:
        return self._lookup(self.state.networks, "Network", name)

    @staticmethod
    def _lookup(table: dict[str, T], label: str, name: Any) -> T:
        found = table.get(name) if isinstance(name, str) else None
        if found is None:
            raise OpPrereqError(f"{label} '{name}' not known", "unknown_entity")
        return found

    # ---- checks ----------------------------------------------------------
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
        if ADMIN_UP not in allowed:
            pnode = self.state.node_by_uuid(inst.pnode)
            if not pnode.offline and inst.running_on is not None:
                raise OpPrereqError(f"Instance {inst.name} is running, {msg}", "wrong_state")

    def check_os(self, os_type: Any, pnode: Node) -> None:
        """The OS (``name+variant``) must be one the nodes have."""
        valid = {o["name"] for o in self.state.os_list}
        if os_type is None or os_type.split("+")[0] not in valid:
            raise OpPrereqError(
                f"OS '{os_type}' not in supported OS list for primary node {pnode.name}",
                "wrong_input",
            )

    # ---- adding, removing, renaming --------------------------------------
    def check_free(self, table: dict[str, Added], name: str, what: str, kind: str) -> None:
        """Adding a group or network: the name must not be taken."""
        if name in table:
            raise OpPrereqError(
                f"Desired {what} name '{name}' already exists as a {kind} (UUID:"
                f" {table[name].uuid})",
                "already_exists",
            )

    def add(self, table: dict[str, Added], obj: Added) -> None:
        """A new group or network joins the configuration."""
        table[obj.name] = obj
        self.state.reindex()
        self.state.touch(None)

    def remove(self, table: dict[str, Added], obj: Added) -> None:
        del table[obj.name]
        self.state.reindex()
        self.state.touch(None)

    async def rename(
        self, p: dict[str, Any], table: dict[str, Renamable], obj: Renamable, taken: str
    ) -> str:
        """Rename ``obj`` to ``p["new_name"]``; ``taken`` (``{}``: the name) is the
        error when another object has that name already."""
        new: str = p["new_name"]
        if new in table:
            raise OpPrereqError(taken.format(new), "already_exists")
        if self.dry_run(p):
            return new
        await self.work()
        del table[obj.name]
        obj.name = new
        table[new] = obj
        self.state.touch(obj)
        return new

    # ---- instance changes ------------------------------------------------
    @staticmethod
    def start(inst: Instance) -> None:
        """The instance runs on its primary (a runtime change: no config touched)."""
        inst.running_on = inst.pnode
        inst.disks_active = True

    @staticmethod
    def stop(inst: Instance) -> None:
        inst.running_on = None
        inst.disks_active = False

    def mark_admin(self, inst: Instance, admin_state: str, source: str = "admin") -> None:
        """Record the desired state (a config change, when it is one)."""
        if inst.admin_state != admin_state or inst.admin_state_source != source:
            inst.admin_state = admin_state
            inst.admin_state_source = source
            self.state.touch(inst)
