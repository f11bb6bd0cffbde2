"""``/2/query``: Ganeti's generic query, cheap when asked for config-only fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gwm.rapi.builders._shared import path, read
from gwm.rapi.calls import Query, RapiCall, RapiRequest, ShapeError, model_parser
from gwm.rapi.schemas import RapiQueryField, RapiQueryFieldsResult, RapiQueryResult


def query(
    resource: str, fields: Sequence[str], *, qfilter: list[Any] | None = None
) -> RapiCall[RapiQueryResult]:
    """``/2/query/<resource>``: rows of ``(status, value)`` cells for ``fields``.

    Without a filter this is ``GET ?fields=a,b`` (retried on failure); with
    one, ``PUT {"fields", "qfilter"}``, e.g. ``["=", "name", "web1"]`` or
    ``["|", ["=", "name", "a"], ["=", "name", "b"]]``. ``resource`` is a
    :class:`~gwm.rapi.constants.QueryResource`.
    """
    fields = list(fields)
    if not fields:
        raise ValueError("query needs at least one field")
    url = path("query", str(resource))
    action = f"query {resource}s"
    parse = model_parser(RapiQueryResult)
    if qfilter is None:
        return read(url, action, parse, query=Query().add("fields", ",".join(fields)))
    body = {"fields": fields, "qfilter": qfilter}
    return RapiCall(RapiRequest("PUT", url, action, body=body), parse)


def _rows(value: Any) -> list[list[list[Any]]]:
    data = value.get("data") if isinstance(value, dict) else None
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise ShapeError("a query answer has a data list of rows")
    return data


def query_rows(
    resource: str, fields: Sequence[str], *, qfilter: list[Any] | None = None
) -> RapiCall[list[list[list[Any]]]]:
    """:func:`query` for hot paths: the rows as decoded JSON, ``[status, value]``
    cells in the order of ``fields``, without building a model per cell."""
    call = query(resource, fields, qfilter=qfilter)
    return RapiCall(call.request, _rows)


def query_fields(
    resource: str, *, fields: Sequence[str] | None = None
) -> RapiCall[list[RapiQueryField]]:
    """``/2/query/<resource>/fields``: name, title, kind and doc of each field."""
    query = Query().add("fields", ",".join(fields) if fields else None)
    return read(
        path("query", str(resource), "fields"),
        f"list the query fields of {resource}s",
        lambda value: model_parser(RapiQueryFieldsResult)(value).fields,
        query=query,
    )
