"""The strict request guard: declared query parameters only, and no NUL anywhere.

A silently ignored filter would turn a scripted bulk action into an action on
everything, so no query parameter is ignored: an undeclared one is ``400
unknown_parameter``, a scalar one given twice is ``400``. A NUL character
(which no name or value of gwm's holds, and PostgreSQL cannot store) in a
query or path parameter is ``400``, in a JSON body string ``422``. gwm.api
applies :func:`strict_query` to every operation (``api.add_decorator(...,
mode="view")``), reading what each one declares.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from ninja.operation import Operation

from gwm.errors import BadRequest, ValidationFailed


def _query_names(operation: Operation) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter the operation declares, those that take a list)."""
    names: set[str] = set()
    lists: set[str] = set()
    for model in operation.models:
        if model.__ninja_param_source__ != "query":
            continue
        flat = getattr(model, "__ninja_flatten_map__", None) or {
            (field.alias or name): (name,) for name, field in model.model_fields.items()
        }
        names.update(flat)
        lists.update(getattr(model, "__ninja_collection_fields__", ()) or ())
    return frozenset(names), frozenset(lists)


def _check_query(request: HttpRequest, names: frozenset[str], lists: frozenset[str]) -> None:
    for key, values in request.GET.lists():
        if any("\x00" in value for value in values):
            raise BadRequest(f"query parameter {key!r} contains a NUL character", parameter=key)
    for key in request.GET:
        if key not in names:
            known = f"; this endpoint takes: {', '.join(sorted(names))}" if names else ""
            raise BadRequest(
                f"unknown query parameter {key!r}{known}",
                code="unknown_parameter",
                parameter=key,
            )
        if key not in lists and len(request.GET.getlist(key)) > 1:
            raise BadRequest(
                f"query parameter {key!r} is given more than once; it takes one value",
                parameter=key,
            )


def _check_body(request: HttpRequest) -> None:
    """A JSON string holding NUL: PostgreSQL stores none (text nor jsonb), so 422 up front."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    body = request.body
    if b"\\u0000" not in body and b"\x00" not in body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # ninja answers 400 malformed_body
    if _holds_nul(data):
        raise ValidationFailed("a string in the body contains a NUL character (\\u0000)", errors=[])


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _check_path(path_params: dict[str, Any]) -> None:
    for key, value in path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise BadRequest(f"path parameter {key!r} contains a NUL character", parameter=key)


def strict_query(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an operation's ``run`` with the checks above; a failed one answers its problem."""
    operation = getattr(run, "__self__", None)
    if not isinstance(operation, Operation):  # not ninja's bound run: nothing to read
        return run
    names, lists = _query_names(operation)

    def check(request: HttpRequest, path_params: dict[str, Any]) -> HttpResponseBase | None:
        try:
            _check_query(request, names, lists)
            _check_path(path_params)
            _check_body(request)
        except (BadRequest, ValidationFailed, RequestDataTooBig) as exc:
            return operation.api.on_exception(request, exc)
        return None

    if inspect.iscoroutinefunction(run):

        @functools.wraps(run)
        async def arun(request: HttpRequest, **kw: Any) -> HttpResponseBase:
            refused = check(request, kw)
            return refused if refused is not None else await run(request, **kw)

        return arun

    @functools.wraps(run)
    def wrapped(request: HttpRequest, **kw: Any) -> HttpResponseBase:
        refused = check(request, kw)
        return refused if refused is not None else run(request, **kw)

    return wrapped
