"""The opcode registry: what each opcode accepts, locks and does.

Every opcode module declares its opcodes on a ``Registry`` of its own (the
``opcode`` and ``on`` decorators); ``opcodes.catalogue`` joins them into the
one the simulator hands to its job queue (``jobs.Opcodes`` is what the queue
needs of it) and to the RAPI handlers, which build opcodes with ``build``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gwm.simulator.jobs import Job, JobQueue, OpState
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.state import ClusterState

COMMON_PARAMS = ("dry_run", "debug_level", "priority", "depends", "comment", "reason")

OpFn = Callable[[Exec, dict[str, Any]], Awaitable[Any]]
LockFn = Callable[[ClusterState, dict[str, Any]], set[str]]
Types = dict[str, type | tuple[type, ...]]


class InvalidParams(Exception):
    """rlib2 answers these with 400 "Invalid body parameters: ..."."""


def lock_cluster(s: ClusterState, p: dict[str, Any]) -> set[str]:
    return {"cluster"}


def lock_instance(s: ClusterState, p: dict[str, Any]) -> set[str]:
    """The instance named by ``instance_name`` and its nodes."""
    name = p.get("instance_name")
    inst = s.instances.get(name) if isinstance(name, str) else None
    out = {f"instance:{name}"}
    if inst is not None:
        out.add(f"node:{inst.pnode}")
        out.update(f"node:{u}" for u in inst.snodes)
    return out


def lock_name(prefix: str, key: str) -> LockFn:
    """The object named by parameter ``key``, as ``prefix:name``."""
    return lambda s, p: {f"{prefix}:{p.get(key)}"}


@dataclass
class OpSpec:
    op_id: str
    run: OpFn
    params: frozenset[str]
    required: frozenset[str] = frozenset()
    summary_key: str | None = None
    locks: LockFn = lock_cluster
    types: Types = field(default_factory=dict)
    # defaults present as soon as the opcode is submitted, and the ones the
    # job adds when the opcode starts (as the real ``ops`` show them)
    defaults: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, frozenset[Any]] = field(default_factory=dict)
    exec_defaults: dict[str, Any] = field(default_factory=dict)

    def fill(self, state: ClusterState, op: dict[str, Any]) -> dict[str, Any]:
        """The opcode as it reads once it runs: debug_level, uuids, defaults."""
        out: dict[str, Any] = {}
        if "dry_run" in op:
            out["dry_run"] = op["dry_run"]
        out["debug_level"] = op.get("debug_level", 0)
        for key, value in op.items():
            if key in ("dry_run", "debug_level"):
                continue
            out[key] = value
            if key == "instance_name" and "instance_uuid" not in op:
                inst = state.instances.get(value) if isinstance(value, str) else None
                if inst is not None and self.op_id != "OP_INSTANCE_CREATE":
                    out["instance_uuid"] = inst.uuid
        for key, value in self.exec_defaults.items():
            out.setdefault(key, value)
        return out

    @property
    def class_name(self) -> str:
        return "Op" + "".join(part.capitalize() for part in self.op_id[3:].split("_"))

    def invalid(self, params: dict[str, Any]) -> list[str]:
        """The parameters that fail validation: missing, not a choice, wrong type."""
        fails = [k for k in sorted(self.required) if params.get(k) is None]
        fails += [
            k for k, allowed in self.choices.items() if k in params and params[k] not in allowed
        ]
        fails += [
            k
            for k, t in self.types.items()
            if params.get(k) is not None
            and (
                not isinstance(params[k], t)
                or (
                    isinstance(params[k], bool)
                    and bool not in (t if isinstance(t, tuple) else (t,))
                )
            )
        ]
        return fails


class Registry:
    """Opcodes by ``OP_ID``."""

    def __init__(self, *parts: Registry) -> None:
        self.specs: dict[str, OpSpec] = {}
        for part in parts:
            for op_id, spec in part.specs.items():
                if op_id in self.specs:
                    raise ValueError(f"{op_id} is declared twice")
                self.specs[op_id] = spec

    def opcode(
        self,
        op_id: str,
        params: str = "",
        *,
        required: str = "",
        summary: str | None = None,
        locks: LockFn = lock_cluster,
        types: Types | None = None,
        defaults: dict[str, Any] | None = None,
        exec_defaults: dict[str, Any] | None = None,
        choices: dict[str, frozenset[Any]] | None = None,
    ) -> Callable[[OpFn], OpFn]:
        """Declare an opcode: its parameters (space-separated), checks and effect."""

        def register(fn: OpFn) -> OpFn:
            self.specs[op_id] = OpSpec(
                op_id=op_id,
                run=fn,
                params=frozenset(params.split()) | frozenset(required.split()),
                required=frozenset(required.split()),
                summary_key=summary,
                locks=locks,
                types=types or {},
                defaults=defaults or {},
                exec_defaults=exec_defaults or {},
                choices=choices or {},
            )
            return fn

        return register

    def on(
        self, kind: str, op_id: str, params: str = "", *, required: str = "", **options: Any
    ) -> Callable[[OpFn], OpFn]:
        """Declare an opcode on one instance, node, group or network, named by
        ``KIND_name``: required, locked, in the summary (unless ``options``
        say otherwise); instances and nodes may be named by ``KIND_uuid`` too."""
        key = f"{kind}_name"
        options.setdefault("summary", key)
        options.setdefault("locks", lock_instance if kind == "instance" else lock_name(kind, key))
        own = f"{key} {kind}_uuid" if kind in ("instance", "node") else key
        return self.opcode(op_id, f"{own} {params}", required=f"{key} {required}", **options)

    def build(self, op_id: str, params: dict[str, Any], reason: list[list[Any]]) -> dict[str, Any]:
        """Validate and serialise an opcode as it appears in a job's ``ops``.

        Raises InvalidParams with the text rlib2 puts after "Invalid body
        parameters: " (a TypeError for unknown names, OpPrereqError for values).
        """
        spec = self.specs[op_id]
        for key in params:
            if key not in spec.params and key not in COMMON_PARAMS:
                raise InvalidParams(
                    f"Object {spec.class_name} doesn't support the parameter '{key}'"
                )
        fails = spec.invalid(params)
        if fails:
            raise InvalidParams(
                str((f"Parameter '{op_id}.{fails[0]}' fails validation", "wrong_input"))
            )
        # dry_run is only there when rlib2 (or the body) set it
        op: dict[str, Any] = {}
        if "dry_run" in params:
            op["dry_run"] = bool(params["dry_run"])
        op.update(
            {
                "priority": params.get("priority", 0),
                "depends": params.get("depends"),
                "comment": params.get("comment"),
                "reason": [list(r) for r in reason],
                "OP_ID": op_id,
            }
        )
        for key, value in params.items():
            # luxid drops unset (None) optional parameters when it stores the job
            if key not in COMMON_PARAMS and value is not None:
                op[key] = value
        for key, value in spec.defaults.items():
            op.setdefault(key, value)
        return op

    # ---- what the job queue needs (jobs.Opcodes) -----------------------
    def summarize(self, op: dict[str, Any]) -> str:
        """Ganeti's opSummary: ``INSTANCE_STARTUP(name)``."""
        op_id = str(op["OP_ID"])
        spec = self.specs.get(op_id)
        if spec is not None and spec.summary_key is not None:
            value = op.get(spec.summary_key)
            if value is not None:
                return f"{op_id[3:]}({value})"
        return op_id[3:]

    def locks(self, state: ClusterState, op: dict[str, Any]) -> set[str]:
        return self.specs[op["OP_ID"]].locks(state, op)

    def fill(self, state: ClusterState, op: dict[str, Any]) -> dict[str, Any]:
        return self.specs[op["OP_ID"]].fill(state, op)

    async def run(self, queue: JobQueue, job: Job, op: OpState) -> Any:
        spec = self.specs[op.input["OP_ID"]]
        return await spec.run(Exec(queue, job, op, self.build), op.input)
