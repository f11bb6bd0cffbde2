"""Whom the running code works for: a request, a job, a cluster; written on every log line.

One context variable holds a small immutable mapping, so each asyncio task and each
thread (asgiref copies contexts into the threads it runs sync code on) sees its own.
The API's middleware starts one per request (:func:`request_started`); a Celery task's
is set from its job's row or its doorbell's header (gwm.observability.tasklog); a sync
round adds its cluster (:func:`bound`). :class:`ContextFilter` copies it onto each
log record as ``request_id``, ``job_id``, ``cluster`` and ``task`` (``None`` when not
known) and ``context`` (the request id, or ``-``, then ``job_id=`` and ``cluster=``
when known: the plain format's words).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

#: The header a request id comes in on and goes out on.
REQUEST_ID_HEADER = "X-Request-ID"
#: What an incoming id may be: up to 128 characters that are safe in a log line, a
#: header and a URL (UUIDs, hex, base64, tracing ids). Anything else is replaced.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
FIELDS = ("request_id", "job_id", "cluster", "task")
#: The Celery message header a doorbell carries the request id of its ringer in.
TASK_HEADER = "gwm_request_id"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("gwm_log_context", default=_EMPTY)


def current() -> Mapping[str, Any]:
    return _context.get()


def request_id() -> str | None:
    value = _context.get().get("request_id")
    return str(value) if value else None


def task_headers() -> dict[str, str]:
    """The headers a doorbell rung now carries: this context's request id, if any."""
    rid = request_id()
    return {TASK_HEADER: rid} if rid else {}


def acceptable_request_id(candidate: str | None) -> str | None:
    """``candidate`` if it is a sane request id (see REQUEST_ID_PATTERN), else None."""
    if candidate and REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return None


def new_request_id() -> str:
    """32 random hex digits (as a UUID4's hex, at a fifth of its cost)."""
    return os.urandom(16).hex()


def request_started(incoming: str | None) -> tuple[str, Token[Mapping[str, Any]]]:
    """A fresh context for one HTTP request: the incoming id if sane, else a new one.
    Returns the id and the token that ends it (:func:`restore`)."""
    rid = acceptable_request_id(incoming) or new_request_id()
    return rid, _context.set(MappingProxyType({"request_id": rid, "http": True}))


def replace(fields: Mapping[str, Any]) -> None:
    """This context becomes ``fields`` (a Celery task's, at its start)."""
    _context.set(MappingProxyType({k: v for k, v in fields.items() if v is not None}))


def clear() -> None:
    _context.set(_EMPTY)


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ``fields`` to this context until :func:`restore` is called with the token."""
    return _context.set(MappingProxyType({**_context.get(), **fields}))


def restore(token: Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``fields`` in this context for the block (a sync round's ``cluster``)."""
    token = bind(**fields)
    try:
        yield
    finally:
        restore(token)


def job_request_id() -> str:
    """The default of a job's ``request_id``: the id of the HTTP request creating it
    (empty for jobs a worker writes, such as foreign ones)."""
    found = _context.get()
    return str(found["request_id"]) if found.get("http") else ""


class ContextFilter(logging.Filter):
    """Writes the context onto every record that passes the handler (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = _context.get()
        for name in FIELDS:
            # A value the caller passed with ``extra=`` wins.
            if getattr(record, name, None) is None:
                setattr(record, name, found.get(name))
        # The plain format's words: the request id (``-`` for none), then what is known.
        words = [str(getattr(record, "request_id", None) or "-")]
        for name in ("job_id", "cluster"):
            value = getattr(record, name)
            if value is not None:
                words.append(f"{name}={value}")
        record.context = " ".join(words)
        return True
