"""One simulated cluster: its state, job queue, faults, stats and users.

The HTTP side is elsewhere: ``asgi.build_app`` serves a ``Simulator`` (the
RAPI resources in ``resources/`` through ``http``, the admin API in
``admin``), ``server`` runs that with uvicorn.
"""

from __future__ import annotations

from dataclasses import replace

from gwm.simulator.config import SimConfig
from gwm.simulator.cost import Cost, request_cost
from gwm.simulator.faults import Faults
from gwm.simulator.fields.base import Ctx
from gwm.simulator.jobs import JobQueue
from gwm.simulator.opcodes.catalogue import OPCODES
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import ClusterState
from gwm.simulator.stats import Stats

# A user's rights, as in Ganeti's RAPI users file (write implies read).
READ = "read"
WRITE = "write"

# name -> (password, rights)
DEFAULT_USERS: dict[str, tuple[str, frozenset[str]]] = {
    "gwm": ("gwm", frozenset({READ, WRITE})),
    "reader": ("reader", frozenset({READ})),
}


class Simulator:
    """One simulated cluster: state, job queue, faults, stats and users."""

    def __init__(
        self,
        state: ClusterState,
        config: SimConfig | None = None,
        users: dict[str, tuple[str, frozenset[str]]] | None = None,
    ) -> None:
        self.state = state
        self.config = config or SimConfig()
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.faults = Faults()
        self.stats = Stats()
        self.opcodes: Registry = OPCODES
        self.queue = JobQueue(state, self.config, self.faults, self.opcodes)

    def ctx(self) -> Ctx:
        """A query context (per-request caches) over the cluster and its jobs."""
        return Ctx(self.state, self.queue.jobs)

    def cost_of(self, cost: Cost) -> float:
        """Seconds the master spends on a request, with the jobs running now."""
        model = replace(self.config.cost, time_scale=self.config.time_scale)
        return request_cost(
            model,
            cost.kind,
            nodes=cost.nodes,
            instances=cost.instances,
            rows=cost.rows,
            running_jobs=self.queue.busy_jobs(),
            unreachable=cost.unreachable,
        )
