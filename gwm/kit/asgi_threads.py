"""Run each request's synchronous part on a reused thread, not a new one.

Django's ASGI handler gives every request a thread of its own for its
synchronous code (middleware, view, ORM), started for the request and joined
after it, so each request also opens a new database connection. Under load
those two cost more than a cached read itself. :class:`ReusedThreads` hands
each request one of a few long-lived single-thread executors (asgiref's
``ThreadSensitiveContext(executor=...)``, which Django's own inner context then
uses), so its thread and that thread's database connection (``CONN_MAX_AGE``)
serve the next request too. A request still has its thread to itself while it
runs: when every kept thread is busy, a new one is made, and it is kept only
while fewer than ``keep`` are idle.

A request that will wait for hours without synchronous work (a stream) gives its
thread back early with :func:`release_request_thread`.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext


class _Lease:
    """One request's hold on a kept thread; given back once, early or at the end."""

    def __init__(self, pool: ReusedThreads, executor: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.executor: ThreadPoolExecutor | None = executor

    def give_back(self) -> None:
        executor, self.executor = self.executor, None
        if executor is not None:
            self.pool.give_back(executor)


_lease: ContextVar[_Lease | None] = ContextVar("gwm_request_thread", default=None)


class ReusedThreads:
    def __init__(self, app: Any, *, keep: int) -> None:
        self.app = app
        self.keep = keep
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lease = _Lease(self, self._take())
        token = _lease.set(lease)
        try:
            assert lease.executor is not None
            async with ThreadSensitiveContext(executor=lease.executor):
                await self.app(scope, receive, send)
        finally:
            _lease.reset(token)
            lease.give_back()

    def _take(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gwm-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)


def release_request_thread() -> None:
    """Let go of the thread this request's synchronous work ran on (a stream that will
    now only wait); a later synchronous call of the request gets a thread of its own.

    A stream lives for hours, and an idle thread per stream would cost more memory
    than everything else the stream holds: ten thousand streams, ten thousand threads.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    executor = SyncToAsync.context_to_thread_executor.pop(context, None) if context else None
    lease = _lease.get()
    if lease is not None:
        lease.give_back()  # a kept thread: to the next request
    elif executor is not None:
        executor.shutdown(wait=False)  # Django's own thread for this request: ended
