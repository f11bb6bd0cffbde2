"""The query filter language (``qfilter``): parsing, evaluation, what it names.

A filter is a nested list such as ``["&", ["=", "name", "x"], ["?", "admin_up"]]``.
Semantics follow src/Ganeti/Query/Filter.hs: unknown fields and bad shapes
are errors; a field without data (node down) lets the row pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gwm.simulator.fields.base import RS_NORMAL, Ctx, FieldDef, Getter, QueryError

Pred = Callable[[Ctx, Any], bool]
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def compile_filter(defs: dict[str, FieldDef], flt: Any) -> Pred | None:
    """A predicate over the objects whose fields are ``defs`` (None: no filter)."""
    if flt is None:
        return None
    return _compile(defs, flt)


def _field_getter(defs: dict[str, FieldDef], name: Any) -> Getter:
    if not isinstance(name, str) or name not in defs:
        raise QueryError(f"Can't find field named '{name}'")
    return defs[name].getter


def _on_value(getter: Getter, test: Callable[[Any], bool]) -> Pred:
    """``test`` of the field's value; a row whose field has no data passes."""

    def pred(c: Ctx, o: Any) -> bool:
        status, v = getter(c, o)
        return True if status != RS_NORMAL else test(v)

    return pred


def _compile(defs: dict[str, FieldDef], flt: Any) -> Pred:
    if not (isinstance(flt, list) and flt and isinstance(flt[0], str)):
        raise QueryError(f"Cannot deserialise filter: expected array [string, args], got {flt!r}")
    op, args = flt[0], flt[1:]
    if op in ("&", "|"):
        subs = [_compile(defs, a) for a in args]
        if op == "&":
            return lambda c, o: all(s(c, o) for s in subs)
        return lambda c, o: any(s(c, o) for s in subs)
    if op == "!":
        if len(args) != 1:
            raise QueryError(f"Cannot deserialise field, expected [filter] but got {args!r}")
        sub = _compile(defs, args[0])
        return lambda c, o: not sub(c, o)
    if op == "?":
        if len(args) != 1:
            raise QueryError(f"Cannot deserialise field, expected [fieldname] but got {args!r}")
        return _on_value(_field_getter(defs, args[0]), _truth)
    if op == "!=":
        # Ganeti reads "!=" as a legacy shorthand for ["!", ["==", ...]]
        eq = _compile(defs, ["==", *args])
        return lambda c, o: not eq(c, o)
    if op not in (*COMPARISONS, "=~", "=[]"):
        raise QueryError(f"Unknown filter operand '{op}'")
    if len(args) != 2:
        raise QueryError(
            f"Cannot deserialise field/value pair, expected [fieldname, value] but got {args!r}"
        )
    getter = _field_getter(defs, args[0])
    value = args[1]
    if op == "=~":
        return _on_value(getter, _regexp(value))
    if not (isinstance(value, str | int) and not isinstance(value, bool)):
        raise QueryError(
            f"Cannot deserialise filter value, expecting string or integer, got {value!r}"
        )
    if op == "=[]":
        return _on_value(getter, lambda v: _contains(v, value))
    compare = COMPARISONS[op]
    return _on_value(getter, lambda v: compare(_comparable(v, value), value))


def _truth(v: Any) -> bool:
    if not isinstance(v, bool):
        raise QueryError(f"Unexpected value '{v!r}' in boolean context")
    return v


def _regexp(value: Any) -> Callable[[Any], bool]:
    if not isinstance(value, str):
        raise QueryError("Cannot deserialise regexp, expected a string")
    try:
        rx = re.compile(value)
    except re.error as exc:
        raise QueryError(f"Invalid regular expression: {exc}") from exc

    def search(v: Any) -> bool:
        if not isinstance(v, str):
            raise QueryError(
                f"Invalid field value used in regexp matching, expecting string but got '{v!r}'"
            )
        return rx.search(v) is not None

    return search


def _contains(v: Any, value: Any) -> bool:
    if not isinstance(v, list):
        raise QueryError(f"Invalid value for a list field: {v!r}")
    return value in v


def _comparable(v: Any, value: Any) -> Any:
    """``v`` if it can be compared with the filter's ``value``, else an error."""
    same = (isinstance(value, str) and isinstance(v, str)) or (
        isinstance(value, int) and isinstance(v, int | float) and not isinstance(v, bool)
    )
    if not same:
        raise QueryError(f"Invalid types in comparison, trying to compare {v!r} with {value!r}")
    return v


# ---- what a filter names ---------------------------------------------------


def requested_names(flt: Any) -> list[str] | None:
    """Names a filter asks for by equality (luxid's requestedNames): luxid
    looks these up directly and fails the query on an unknown one."""
    if not isinstance(flt, list) or not flt:
        return None
    if flt[0] in ("=", "==") and len(flt) == 3 and flt[1] == "name" and isinstance(flt[2], str):
        return [flt[2]]
    if flt[0] == "|" and len(flt) > 1:
        names: list[str] = []
        for sub in flt[1:]:
            found = requested_names(sub)
            if found is None:
                return None
            names.extend(found)
        return names
    return None


def filter_fields(flt: Any) -> list[str]:
    """The fields a filter reads (what decides whether a query is a runtime one)."""
    if not isinstance(flt, list) or not flt:
        return []
    op = flt[0]
    if op in ("&", "|"):
        return [f for sub in flt[1:] for f in filter_fields(sub)]
    if op == "!":
        return filter_fields(flt[1]) if len(flt) > 1 else []
    return [flt[1]] if len(flt) > 1 and isinstance(flt[1], str) else []
