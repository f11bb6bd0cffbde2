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

from django.db.models import Q, QuerySet

from gwm.errors import BadRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def parse_ordering(ordering: str | None, allowed: dict[str, str], default: str) -> tuple[str, bool]:
    """``name`` or ``-name`` → (column, descending); unknown names are a 400."""
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
        if ordering != f"{sign}{order_column}" or not isinstance(last_id, int):
            raise BadRequest(
                "cursor was made for another ordering; start again without it",
                parameter="cursor",
            )
        after = "lt" if descending else "gt"
        if last_value is None:
            queryset = queryset.filter(**{f"{order_column}__isnull": True, f"id__{after}": last_id})
        else:
            queryset = queryset.filter(
                Q(**{f"{order_column}__{after}": last_value})
                | Q(**{order_column: last_value, f"id__{after}": last_id})
            )
    needed = list(dict.fromkeys([*columns, "id", order_column]))
    rows = list(
        queryset.order_by(f"{sign}{order_column}", f"{sign}id").values(*needed)[: limit + 1]
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode([f"{sign}{order_column}", last[order_column], last["id"]])
    return Page(rows=rows, next_cursor=next_cursor)


def parse_fields(
    raw: str | None, available: dict[str, Any], always: tuple[str, ...] = ()
) -> list[str]:
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
    chosen = set(wanted) | set(always)
    return [name for name in available if name in chosen]
