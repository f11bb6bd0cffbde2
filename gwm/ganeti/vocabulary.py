"""gwm's words in Ganeti's language: reason trails, job statuses and timestamps.

gwm marks every job it submits with a reason trail entry ``gwm:op:<job id>``
(dry runs with ``gwm:dry-run``): that is how the fast tier tells gwm's jobs from
foreign ones, and how a restarted worker adopts a job an interrupted attempt
submitted. Jobs others ran carry Ganeti's own sources (``gnt:client:...``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gwm.rapi.constants import JOB_STATUS_FINALIZED

#: Every reason gwm writes starts with this.
GWM_REASON_MARK = "gwm:"
DRY_RUN_REASON = f"{GWM_REASON_MARK}dry-run"
#: Ganeti's job statuses after which nothing changes (its own names, lower case).
FINAL_JOB_STATUSES: frozenset[str] = frozenset(str(status) for status in JOB_STATUS_FINALIZED)
#: Reason sources of jobs people and Ganeti's own daemons ran.
FOREIGN_SOURCES = ("gnt:client:", "gnt:watcher", "gnt:user")
#: Opcode fields that name the object a job works on, and its kind.
TARGET_FIELDS = (
    ("instance_name", "instance"),
    ("node_name", "node"),
    ("group_name", "group"),
    ("network_name", "network"),
)


def operation_reason(job_id: int) -> str:
    """The reason trail entry of gwm job ``job_id``'s submission."""
    return f"{GWM_REASON_MARK}op:{job_id}"


def reasons(ops: list[dict[str, Any]]) -> list[str]:
    """Every reason text in a job's opcodes."""
    return [str(entry[1]) for op in ops for entry in (op.get("reason") or []) if len(entry) >= 2]


def is_gwm_job(ops: list[dict[str, Any]]) -> bool:
    return any(reason.startswith(GWM_REASON_MARK) for reason in reasons(ops))


def foreign_source(op: dict[str, Any]) -> str:
    """Who ran a foreign job, from its reason trail (``gnt:client:gnt-instance stop``)."""
    for entry in op.get("reason") or []:
        if str(entry[0]).startswith(FOREIGN_SOURCES):
            return " ".join(str(part) for part in entry[:2] if part).strip()
    return ""


def foreign_target(op: dict[str, Any]) -> tuple[str, str]:
    """(kind, name) of what an opcode works on; the cluster itself when it names nothing."""
    for key, kind in TARGET_FIELDS:
        if op.get(key):
            return kind, str(op[key])
    return "cluster", ""


def foreign_action(op: dict[str, Any]) -> str:
    """A foreign job's action in gwm's form: ``OP_NODE_SET_PARAMS`` → ``ganeti.node-set-params``."""
    op_id = str(op.get("OP_ID", "OP_UNKNOWN"))
    return "ganeti." + op_id.removeprefix("OP_").lower().replace("_", "-")


def ganeti_time(value: Any) -> datetime | None:
    """Ganeti's timestamps are ``[seconds, microseconds]`` (or plain seconds)."""
    if not value:
        return None
    seconds = value[0] + value[1] / 1e6 if isinstance(value, list | tuple) else float(value)
    return datetime.fromtimestamp(seconds, tz=UTC)
