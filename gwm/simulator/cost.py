"""What a RAPI call costs a Ganeti master, as a pure function.

The simulator sleeps for this long before answering, so that gwm's load on a
cluster can be measured against the simulator as it would be on Ganeti.
Calibrated on a real Ganeti 3.0 cluster (idle, 2 nodes, ~630 instances):

- a plain call (``/2/info``, a job submit, ``/2/jobs/ID``) or a ``/2/query``
  with configuration fields only costs about 15 ms;
- anything with runtime fields (``status``, ``oper_*``, ``console``,
  ``mfree``, ``dfree``...) makes luxid ask every node involved: about 110 ms,
  growing slowly with nodes and instances;
- ``/2/instances?bulk=1`` costs about 0.25 ms per instance (630 -> ~158 ms);
- all of it is 3-5 times slower while jobs are running;
- a node that does not answer holds a runtime query for the RPC timeout.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CallKind(enum.Enum):
    """The cost classes a RAPI request falls into."""

    PLAIN = "plain"  # no luxi query at all, or a cheap one (info, jobs, submit)
    CONFIG_QUERY = "config_query"  # config-only fields, rows from the config
    RUNTIME_QUERY = "runtime_query"  # runtime fields: RPC to the nodes involved
    BULK_INSTANCES = "bulk_instances"  # /2/instances?bulk=1: runtime + big rows


@dataclass(frozen=True)
class CostModel:
    """The calibration, all in seconds; ``time_scale`` multiplies the result."""

    plain: float = 0.015
    config_row: float = 0.000_002  # serialising a config-only row
    runtime_base: float = 0.095  # luxid + one RPC round trip
    runtime_per_node: float = 0.005  # nodes are asked in parallel: slow growth
    runtime_per_instance: float = 0.000_008
    bulk_per_instance: float = 0.000_075  # on top of the runtime query
    rpc_timeout: float = 5.0  # an unreachable node makes the RPC wait this long
    busy_factor_first_job: float = 3.0
    busy_factor_per_extra_job: float = 0.5
    busy_factor_max: float = 5.0
    time_scale: float = 1.0


@dataclass
class Cost:
    """What one request is charged for: the arguments of ``request_cost``."""

    kind: CallKind = CallKind.PLAIN
    nodes: int = 0
    instances: int = 0
    rows: int = 0
    unreachable: int = 0


def busy_factor(model: CostModel, running_jobs: int) -> float:
    """How much slower the master answers while ``running_jobs`` run."""
    if running_jobs <= 0:
        return 1.0
    factor = model.busy_factor_first_job + model.busy_factor_per_extra_job * (running_jobs - 1)
    return min(model.busy_factor_max, factor)


def request_cost(
    model: CostModel,
    kind: CallKind,
    *,
    nodes: int = 0,
    instances: int = 0,
    rows: int = 0,
    running_jobs: int = 0,
    unreachable: int = 0,
) -> float:
    """Seconds the master spends answering one request.

    ``nodes`` are the nodes luxid has to ask (runtime queries), ``instances``
    the instances in the answer, ``rows`` the rows of a config-only query,
    ``unreachable`` how many of the asked nodes do not answer (ganeti#356).
    """
    if kind is CallKind.PLAIN:
        base = model.plain
    elif kind is CallKind.CONFIG_QUERY:
        base = model.plain + model.config_row * rows
    else:
        base = (
            model.runtime_base
            + model.runtime_per_node * nodes
            + model.runtime_per_instance * instances
        )
        if kind is CallKind.BULK_INSTANCES:
            base += model.bulk_per_instance * instances
        if unreachable > 0:
            base += model.rpc_timeout
    return base * busy_factor(model, running_jobs) * model.time_scale
