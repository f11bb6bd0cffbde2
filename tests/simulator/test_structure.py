"""The job queue runs whatever opcode registry it is handed, and imports none."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.faults import Faults
from gwm.simulator.jobs import Job, JobQueue, OpPrereqError, OpState
from gwm.simulator.state import ClusterState

JOBS = Path(__file__).parents[2] / "gwm" / "simulator" / "jobs.py"


def test_the_job_queue_imports_no_opcodes() -> None:
    imported = set()
    for node in ast.walk(ast.parse(JOBS.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not [m for m in imported if m.startswith("gwm.simulator.opcodes")]


class Recorder:
    """A registry of two opcodes: OP_OK answers its ``x``, OP_FAIL fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def summarize(self, op: dict[str, Any]) -> str:
        return f"{op['OP_ID']}({op.get('x')})"

    def locks(self, state: ClusterState, op: dict[str, Any]) -> set[str]:
        self.calls.append(f"locks {op['OP_ID']}")
        return {"cluster"}

    def fill(self, state: ClusterState, op: dict[str, Any]) -> dict[str, Any]:
        return {**op, "filled": True}

    async def run(self, queue: JobQueue, job: Job, op: OpState) -> Any:
        self.calls.append(f"run {op.input['OP_ID']} filled={op.input['filled']}")
        if op.input["OP_ID"] == "OP_FAIL":
            raise OpPrereqError("no", "wrong_state")
        return op.input["x"]


def test_a_queue_runs_the_registry_it_is_given() -> None:
    registry = Recorder()

    async def scenario() -> tuple[Job, Job]:
        config = SimConfig(time_scale=0, queued_seconds=0)
        queue = JobQueue(generate_cluster(nodes=1, instances=0), config, Faults(), registry)
        ok = queue.jobs[queue.submit([{"OP_ID": "OP_OK", "x": 7}])]
        failed = queue.jobs[queue.submit([{"OP_ID": "OP_FAIL"}, {"OP_ID": "OP_OK", "x": 8}])]
        while not (ok.finalized and failed.finalized):
            await asyncio.sleep(0.01)
        return ok, failed

    ok, failed = asyncio.run(scenario())
    assert (ok.status, [o.result for o in ok.ops], ok.ops[0].summary) == (
        "success",
        [7],
        "OP_OK(7)",
    )
    assert failed.status == "error"
    assert [o.result for o in failed.ops] == [
        ["OpPrereqError", ["no", "wrong_state"]],
        ["OpExecError", ["Preceding opcode failed"]],
    ]
    assert registry.calls == [
        "locks OP_OK",
        "run OP_OK filled=True",
        "locks OP_FAIL",
        "run OP_FAIL filled=True",
    ]
