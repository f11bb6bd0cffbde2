"""Answering queries the way luxid does: ``/2/query`` and the classic bulk lists.

The field catalogue (``FIELDS``) puts together the fields of every resource
(``fields/``); filters are ``qfilter``. The classic RAPI lists
(``/2/instances?bulk=1``) use the same getters and turn every non-normal
status into ``null``, as luxid's classic queries do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gwm.simulator.fields.base import RS_NORMAL, RS_UNKNOWN, Ctx, FieldDef, QueryError, by_name
from gwm.simulator.fields.groups import group_fields
from gwm.simulator.fields.instances import instance_fields
from gwm.simulator.fields.jobs import job_fields
from gwm.simulator.fields.networks import network_fields
from gwm.simulator.fields.nodes import node_fields
from gwm.simulator.qfilter import compile_filter, requested_names

FIELDS: dict[str, dict[str, FieldDef]] = {
    "instance": by_name(instance_fields()),
    "node": by_name(node_fields()),
    "group": by_name(group_fields()),
    "network": by_name(network_fields()),
    "job": by_name(job_fields()),
}

NAME_KINDS = {"instance": "Instance", "node": "Node", "group": "Group", "network": "Network"}


def is_runtime(resource: str, names: Iterable[str]) -> bool:
    defs = FIELDS.get(resource, {})
    return any(defs[n].runtime for n in names if n in defs)


def unknown_field(name: str) -> FieldDef:
    return FieldDef(
        name, name, "unknown", f"Unknown field '{name}'", lambda c, o: (RS_UNKNOWN, None)
    )


def resolve(resource: str, names: list[str]) -> list[FieldDef]:
    defs = FIELDS[resource]
    return [defs.get(n) or unknown_field(n) for n in names]


def _defs(resource: str) -> dict[str, FieldDef]:
    if resource not in FIELDS:
        raise QueryError(f"Resource '{resource}' is not supported")
    return FIELDS[resource]


def objects_for(c: Ctx, resource: str) -> list[Any]:
    s = c.state
    if resource == "instance":
        return [s.instances[n] for n in s.sorted_instance_names()]
    if resource == "node":
        return s.sorted_nodes()
    if resource == "group":
        return s.sorted_groups()
    if resource == "network":
        return s.sorted_networks()
    if resource == "job":
        return [c.jobs[k] for k in sorted(c.jobs) if not c.jobs[k].archived]
    raise QueryError(f"Resource '{resource}' is not supported")


def check_requested_names(c: Ctx, resource: str, flt: Any) -> None:
    """luxid fails a query whose filter asks for an unknown name by equality."""
    names = requested_names(flt)
    if names is None or resource not in NAME_KINDS:
        return
    known = c.state.by_kind(resource)
    for name in names:
        if name not in known:
            raise QueryError(f"{NAME_KINDS[resource]} name {name} not found", "unknown_entity")


def run_query(c: Ctx, resource: str, names: list[str], qfilter: Any) -> dict[str, Any]:
    """The ``/2/query`` answer: field definitions and rows of [status, value]."""
    pred = compile_filter(_defs(resource), qfilter)
    defs = resolve(resource, names)
    check_requested_names(c, resource, qfilter)
    rows = []
    for obj in objects_for(c, resource):
        if pred is not None and not pred(c, obj):
            continue
        rows.append([list(fd.getter(c, obj)) for fd in defs])
    return {"data": rows, "fields": [fd.definition() for fd in defs]}


def classic_rows(c: Ctx, resource: str, names: list[str], items: list[Any]) -> list[dict[str, Any]]:
    """Bulk-list dicts: like a query, with every non-normal value as null."""
    getters = [(fd.name, fd.getter) for fd in resolve(resource, names)]
    out = []
    for obj in items:
        row = {}
        for name, getter in getters:
            status, value = getter(c, obj)
            row[name] = value if status == RS_NORMAL else None
        out.append(row)
    return out


def query_fields(resource: str, names: list[str] | None) -> dict[str, Any]:
    """The ``/2/query/RESOURCE/fields`` answer."""
    known = _defs(resource)
    defs = list(known.values()) if names is None else resolve(resource, names)
    return {"fields": [fd.definition() for fd in defs]}
