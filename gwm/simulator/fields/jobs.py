"""The job query fields, in luxid's order."""

from __future__ import annotations

from gwm.simulator.fields.base import FieldDef, attr, ok

# per-opcode lists: (name, title, doc, attribute of each opcode)
PER_OPCODE = [
    ("ops", "OpCodes", "List of all opcodes", "input"),
    ("opresult", "OpCode_result", "List of opcodes results", "result"),
    ("opstatus", "OpCode_status", "List of opcodes status", "status"),
    ("oplog", "OpCode_log", "List of opcode output logs", "log"),
    (
        "opstart",
        "OpCode_start",
        "List of opcode start timestamps (before acquiring locks)",
        "start_ts",
    ),
    (
        "opexec",
        "OpCode_exec",
        "List of opcode execution start timestamps (after acquiring locks)",
        "exec_ts",
    ),
    ("opend", "OpCode_end", "List of opcode end timestamps", "end_ts"),
    ("oppriority", "OpCode_prio", "List of opcode priorities", "priority"),
    ("summary", "Summary", "List of per-opcode summaries", "summary"),
]


def _per_opcode(name: str, title: str, doc: str, attribute: str) -> FieldDef:
    if attribute == "log":  # a copy: the log grows while the job runs
        return FieldDef(name, title, "other", doc, lambda c, j: ok([list(o.log) for o in j.ops]))
    return FieldDef(
        name, title, "other", doc, lambda c, j: ok([getattr(o, attribute) for o in j.ops])
    )


def job_fields() -> list[FieldDef]:
    return [
        attr("id", "ID", "number", "Job ID"),
        attr("status", "Status", "text", "Job status"),
        attr(
            "priority",
            "Priority",
            "number",
            "Current job priority (-20 to 19, lower is more important)",
        ),
        attr("archived", "Archived", "bool", "Whether job is archived"),
        *[_per_opcode(*row) for row in PER_OPCODE],
        attr("received_ts", "Received", "other", "Timestamp of when job was received"),
        attr("start_ts", "Start", "other", "Timestamp of job start"),
        attr("end_ts", "End", "other", "Timestamp of job end"),
    ]
