"""Knobs of one simulated cluster (all durations in real-Ganeti seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gwm.simulator.cost import CostModel

# How long each opcode runs on a real Ganeti 3.0 cluster (measured on the
# sandbox: shutdown/startup/reboot/delete 0.3-0.6 s, create 0.5-0.9 s,
# migrate 0.8 s, failover 0.6 s). Anything not listed takes DEFAULT_OP_SECONDS.
OP_SECONDS: dict[str, float] = {
    "OP_INSTANCE_CREATE": 0.7,
    "OP_INSTANCE_REMOVE": 0.4,
    "OP_INSTANCE_STARTUP": 0.4,
    "OP_INSTANCE_SHUTDOWN": 0.4,
    "OP_INSTANCE_REBOOT": 0.5,
    "OP_INSTANCE_REINSTALL": 0.6,
    "OP_INSTANCE_MIGRATE": 0.8,
    "OP_INSTANCE_FAILOVER": 0.6,
    "OP_INSTANCE_REPLACE_DISKS": 1.0,
    "OP_INSTANCE_GROW_DISK": 0.5,
    "OP_INSTANCE_QUERY_DATA": 0.1,
    "OP_OS_DIAGNOSE": 0.1,
    "OP_TAGS_SET": 0.1,
    "OP_TAGS_DEL": 0.1,
    "OP_NODE_EVACUATE": 0.3,
    "OP_NODE_MIGRATE": 0.3,
    "OP_NODE_POWERCYCLE": 0.5,
}
DEFAULT_OP_SECONDS = 0.3


@dataclass
class SimConfig:
    time_scale: float = 1.0  # multiplies every simulated duration
    wait_timeout: float = 10.0  # luxid's cap for /2/jobs/ID/wait (not scaled)
    archive_age: float = 6 * 3600.0  # ganeti-watcher archives older jobs (not scaled)
    queued_seconds: float = 0.05  # time a job sits queued before it is picked up
    op_seconds: dict[str, float] = field(default_factory=lambda: dict(OP_SECONDS))
    max_running_jobs: int = 20
    admin_token: str | None = None  # required on /__sim__ when set
    os_bulk: bool = False  # /2/os?bulk=1 gives dicts (Ganeti >= 3.1), names in 3.0
    cost: CostModel = field(default_factory=CostModel)

    def op_duration(self, op_id: str) -> float:
        return self.op_seconds.get(op_id, DEFAULT_OP_SECONDS) * self.time_scale

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale
