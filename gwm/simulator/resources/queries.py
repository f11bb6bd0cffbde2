"""``/2/query/RESOURCE`` and its field list, with what a query costs."""

from __future__ import annotations

from typing import Any

from gwm.simulator.cost import CallKind, Cost
from gwm.simulator.fields.base import QueryError
from gwm.simulator.http import READERS, HttpError, Req, Resources, check_type, runtime_cost
from gwm.simulator.qfilter import filter_fields, requested_names
from gwm.simulator.query import is_runtime, query_fields, run_query

RESOURCES = Resources()


def _query_cost(r: Req, resource: str, names: list[str], qfilter: Any, rows: int) -> Cost:
    """Runtime fields (asked for or filtered on) make luxid ask every node; but for
    instances asked for by name, only those instances' nodes (luxid looks the
    requested names up first and collects live data for just those)."""
    if is_runtime(resource, [*names, *filter_fields(qfilter)]):
        s = r.sim.state
        wanted = requested_names(qfilter) if resource == "instance" else None
        if wanted is not None:
            chosen = [s.instances[name] for name in set(wanted) if name in s.instances]
            nodes = {s.node_by_uuid(inst.pnode).name: s.node_by_uuid(inst.pnode) for inst in chosen}
            return runtime_cost(list(nodes.values()), len(chosen))
        return runtime_cost(list(s.nodes.values()), len(s.instances))
    return Cost(CallKind.CONFIG_QUERY, rows=rows)


def _run(r: Req, fields: list[str], qfilter: Any) -> Any:
    resource = r.items[0]
    try:
        result = run_query(r.sim.ctx(), resource, fields, qfilter)
    except QueryError as err:
        raise HttpError(500, err.rapi_message()) from None
    r.cost = _query_cost(r, resource, fields, qfilter, len(result["data"]))
    return result


def _fields_arg(r: Req) -> list[str] | None:
    raw = r.args.get("fields")
    return [f.strip() for f in raw[0].split(",")] if raw else None


def _required_fields_arg(r: Req) -> list[str]:
    fields = _fields_arg(r)
    if fields is None:
        raise HttpError(400, "Missing 'fields' query argument")
    return fields


@RESOURCES.resource("/2/query/{name}", "query", get_access=READERS, access={"PUT": READERS})
class RQuery:
    @staticmethod
    async def GET(r: Req) -> Any:
        return _run(r, _required_fields_arg(r), None)

    @staticmethod
    async def PUT(r: Req) -> Any:
        body = check_type(r.body, dict, "Body contents")
        fields = body["fields"] if "fields" in body else _required_fields_arg(r)
        qfilter = body.get("qfilter")
        if qfilter is None:
            qfilter = body.get("filter")
        return _run(r, fields, qfilter)


@RESOURCES.resource("/2/query/{name}/fields", "query_fields")
class RQueryFields:
    @staticmethod
    async def GET(r: Req) -> Any:
        try:
            return query_fields(r.items[0], _fields_arg(r))
        except QueryError as err:
            raise HttpError(500, err.rapi_message()) from None
