"""The one long-poll engine: wait until something moved, holding no thread.

A waiter names the channels it listens on (:mod:`gwm.events.notify`), how to
load what it watches and how to tell that it moved. The engine subscribes
first and loads second, so a change committed between the two still wakes
it; then it sleeps on the channels' events, reloads on every wake-up and
answers as soon as the load moved, or with the last load when the timeout
passes. The loads run in Django's thread pool; the waiting itself is an
asyncio wait, so a thousand waiters hold no thread between wake-ups.

Wake-ups are hints (a listener may be reconnecting, a datagram between two
processes may be dropped), so a waiter also reloads every ``RECHECK_SECONDS``
without one: a lost wake-up delays an answer by that much, never to the timeout.
While this process's PostgreSQL listener is known to be down it reloads every
``DOWN_RECHECK_SECONDS`` instead, and the listener wakes every waiter once it is
back (gwm.events.notify).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from asgiref.sync import sync_to_async

from gwm.events import notify
from gwm.events.notify import broadcaster

T = TypeVar("T")

RECHECK_SECONDS = 5.0
DOWN_RECHECK_SECONDS = 1.0


async def wait_until_moved(
    channels: Sequence[str],
    load: Callable[[], T],
    moved: Callable[[T, T], bool],
    *,
    timeout: float,
    settled: Callable[[T], bool] | None = None,
) -> tuple[bool, T]:
    """(whether it moved, the last load) once ``load()`` moved, or after ``timeout`` seconds.

    ``moved(first, current)`` compares a load with the first one; it may also
    compare with what the caller already knows (the first load moved when the
    caller's picture is older). ``settled(first)`` true answers at once: what
    can no longer move is not waited on. An error of ``load`` propagates.
    """
    subscriptions = [(channel, broadcaster.subscribe(channel)) for channel in channels]
    try:
        first = current = await sync_to_async(load)()
        if moved(first, first) or (settled is not None and settled(first)):
            return moved(first, first), first
        events = [event for _, (_, event) in subscriptions]
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            recheck = DOWN_RECHECK_SECONDS if notify.listener_down() else RECHECK_SECONDS
            waiters = [asyncio.ensure_future(event.wait()) for event in events]
            done, pending = await asyncio.wait(
                waiters, timeout=min(remaining, recheck), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
            if not done and remaining <= recheck:
                break
            for event in events:
                event.clear()
            current = await sync_to_async(load)()
            if moved(first, current):
                return True, current
        return False, current
    finally:
        for channel, entry in subscriptions:
            broadcaster.unsubscribe(channel, entry)
