"""Keyset (cursor) pagination: stable under inserts, cheap at any depth.

A cursor encodes the ordering and the last row's ``(sort value, id)``; the next
page is every row strictly after it. Cursors are opaque to clients (base64 of
JSON) and a cursor made for another ordering is rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import (
    Tuple,
    TupleGreaterThan,
    TupleLessThan,
    TupleLookupMixin,
)

from gwm.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The range of a database integer (SQLite's and PostgreSQL's bigint).
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def parse_ordering(ordering: str | None, allowed: dict[str, str], default: str) -> tuple[str, bool]:
    """``name`` or ``-name`` → (column, descending); unknown names are a 400."""
    if ordering == "":
        raise BadRequest(
            f"ordering is empty; choose one of: {', '.join(sorted(allowed))}", parameter="ordering"
        )
    key = ordering or default
    descending = key.startswith("-")
    name = key.lstrip("-")
    if name not in allowed:
        raise BadRequest(
            f"cannot order by {name!r}; choose one of: {', '.join(sorted(allowed))}",
            parameter="ordering",
        )
    return allowed[name], descending


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}", parameter="limit")
    return limit


def _encode(payload: list[Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API handed out", parameter="cursor") from None
    if not isinstance(payload, list) or len(payload) != 3:
        raise BadRequest("cursor is not one this API handed out", parameter="cursor")
    return payload


def _foreign() -> BadRequest:
    return BadRequest("cursor is not one this API handed out", parameter="cursor")


def _cursor_value(queryset: QuerySet[Any], column: str, value: Any) -> Any:
    """The cursor's sort value as the column's type; a 400 when it cannot be one."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _foreign()
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise _foreign()
    try:
        field = queryset.model._meta.get_field(column)
    except FieldDoesNotExist:
        # An annotation (effective_status): gwm only orders by text ones.
        if not isinstance(value, str):
            raise _foreign() from None
        return value
    try:
        python = field.to_python(value)
        field.get_prep_value(python)
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise _foreign() from None
    if isinstance(python, int) and not INT_MIN <= python <= INT_MAX:
        raise _foreign()
    if isinstance(python, str) is not isinstance(value, str):
        # A number for a text column (or text for a number) was never handed out.
        raise _foreign()
    return python


def _nullable(queryset: QuerySet[Any], column: str) -> bool:
    try:
        return bool(queryset.model._meta.get_field(column).null)
    except FieldDoesNotExist:
        return False  # an annotation: gwm orders by effective_status only, never NULL


def _order(queryset: QuerySet[Any], column: str, descending: bool) -> list[Any]:
    """(column, id), with NULLs last ascending and first descending on every database.

    That is PostgreSQL's own order (so its indexes serve it) and SQLite is told
    so explicitly; a NOT NULL column keeps the plain order.
    """
    sign = "-" if descending else ""
    if not _nullable(queryset, column):
        return [f"{sign}{column}", f"{sign}id"]
    expression = F(column).desc(nulls_first=True) if descending else F(column).asc(nulls_last=True)
    return [expression, f"{sign}id"]


class _RowValueSQLite:
    """Django 5.2 keeps row values off on SQLite (``supports_tuple_lookups``) and expands
    them into ORs; SQLite has had them since 3.15 (2016) and bounds an index range with
    them, which the ORs do not."""

    def as_sqlite(self, compiler: Any, connection: Any) -> Any:
        # The row-value SQL itself: what the tuple lookup sends where it is supported.
        return super(TupleLookupMixin, self).as_sql(compiler, connection)  # type: ignore[misc]


class _RowAfter(_RowValueSQLite, TupleGreaterThan):
    pass


class _RowBefore(_RowValueSQLite, TupleLessThan):
    pass


def _is_column(queryset: QuerySet[Any], column: str) -> bool:
    try:
        queryset.model._meta.get_field(column)
    except FieldDoesNotExist:
        return False  # an annotation (effective_status)
    return True


def _after(
    column: str, descending: bool, value: Any, last_id: int, nullable: bool, *, real: bool
) -> Q:
    """Every row strictly after (value, last_id) in :func:`_order`'s order.

    ``real``: ``column`` is a table column, so ``(column, id) > (value, last_id)`` as a
    row value, which PostgreSQL and SQLite answer from the ``(column, id)`` index at
    any depth; the equivalent ``column > v OR (column = v AND id > i)`` is not an index
    range, so a deep page filtered every row before it.
    """
    after = "lt" if descending else "gt"
    same = Q(**{f"id__{after}": last_id})
    if value is None:
        if not nullable:
            return Q(**{f"{column}__isnull": True}) & same
        # NULLs come last ascending (only NULLs follow), first descending (all others follow).
        null_tail = Q(**{f"{column}__isnull": True}) & same
        return null_tail | Q(**{f"{column}__isnull": False}) if descending else null_tail
    if real:
        row = (_RowBefore if descending else _RowAfter)(Tuple(F(column), F("id")), (value, last_id))
        later = Q(row)
    else:
        later = Q(**{f"{column}__{after}": value}) | (Q(**{column: value}) & same)
    if not nullable or descending:
        return later
    return later | Q(**{f"{column}__isnull": True})


def paginate(
    queryset: QuerySet[Any],
    *,
    columns: list[str],
    order_column: str,
    descending: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    """One page of ``queryset.values(*columns)`` in (order_column, id) order."""
    sign = "-" if descending else ""
    if cursor:
        ordering, last_value, last_id = _decode(cursor)
        if ordering != f"{sign}{order_column}":
            raise BadRequest(
                "cursor was made for another ordering; start again without it",
                parameter="cursor",
            )
        if isinstance(last_id, bool) or not isinstance(last_id, int):
            raise _foreign()
        if not INT_MIN <= last_id <= INT_MAX:
            raise _foreign()
        last_value = _cursor_value(queryset, order_column, last_value)
        nullable = _nullable(queryset, order_column)
        real = _is_column(queryset, order_column)
        queryset = queryset.filter(
            _after(order_column, descending, last_value, last_id, nullable, real=real)
        )
    needed = list(dict.fromkeys([*columns, "id", order_column]))
    rows = list(
        queryset.order_by(*_order(queryset, order_column, descending)).values(*needed)[: limit + 1]
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode([f"{sign}{order_column}", last[order_column], last["id"]])
    return Page(rows=rows, next_cursor=next_cursor)


def parse_fields(raw: str | None, available: dict[str, Any]) -> list[str]:
    """``fields=a,b`` → the chosen output fields, in the order the resource defines them."""
    if not raw:
        return list(available)
    wanted = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown)}; available: {', '.join(available)}",
            parameter="fields",
        )
    chosen = set(wanted)
    return [name for name in available if name in chosen]
