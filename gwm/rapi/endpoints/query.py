"""``/2/query``: Ganeti's generic query, cheap when asked for config-only fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gwm.rapi.endpoints._base import path, read
from gwm.rapi.models import QueryField, QueryFieldsResult, QueryResult
from gwm.rapi.requests import Query, RapiCall, RapiRequest, model_parser


def query(
    resource: str, fields: Sequence[str], *, qfilter: list[Any] | None = None
) -> RapiCall[QueryResult]:
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
    parse = model_parser(QueryResult)
    if qfilter is None:
        return read(url, action, parse, query=Query().add("fields", ",".join(fields)))
    body = {"fields": fields, "qfilter": qfilter}
    return RapiCall(RapiRequest("PUT", url, action, body=body), parse)


def query_fields(
    resource: str, *, fields: Sequence[str] | None = None
) -> RapiCall[list[QueryField]]:
    """``/2/query/<resource>/fields``: name, title, kind and doc of each field."""
    query = Query().add("fields", ",".join(fields) if fields else None)
    return read(
        path("query", str(resource), "fields"),
        f"list the query fields of {resource}s",
        lambda value: model_parser(QueryFieldsResult)(value).fields,
        query=query,
    )
