"""A request's audit row, written by the service inside its own transaction.

Most writes run inside the request's transaction, audit row included
(gwm.audit_writes). A few must not (they ask Ganeti before they write, and on
SQLite a transaction holds the write lock from its start); for those the request
layer leaves the row's writer here, and the service calls :func:`audit_here` inside
the block that makes the change, so the change and its row are still kept together
or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_pending: ContextVar[Callable[[], None] | None] = ContextVar("gwm_pending_audit", default=None)


@contextmanager
def audit_pending(write: Callable[[], None]) -> Iterator[None]:
    """Within the block, :func:`audit_here` calls ``write`` (once)."""
    token = _pending.set(write)
    try:
        yield
    finally:
        _pending.reset(token)


def audit_here() -> None:
    """Write the current request's audit row now, in the caller's transaction (if any)."""
    write = _pending.get()
    if write is not None:
        _pending.set(None)
        write()
