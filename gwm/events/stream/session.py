"""One client's stream: catch up from its cursor, then follow the hub, until it must end.

The stream joins the hub first and reads the log second: every change after
the hub's position at joining reaches the stream's buffer, and the catch-up
(gwm.events.feed.page_read, the feed's own reader) covers everything up to
it, so the two overlap and never leave a hole. The overlap is skipped by seq
(nothing at or below the last seq looked at is sent twice).

Every frame is checked against what the caller may see now; the hub re-reads
the caller's grants when they change. A caller who may see less than when
the stream opened (a role binding deleted) or nothing at all (a revoked or
expired token) gets a last ``revoked`` frame: they reconnect with
``Last-Event-ID`` and go on with what they may see now, never silently less.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from gwm.accounts.grants import token_of
from gwm.errors import Gone
from gwm.events.feed import Filters, page_read
from gwm.events.stream import frames
from gwm.events.stream.callers import in_thread
from gwm.events.stream.hub import Hub, Subscriber, hub_here
from gwm.kit.asgi_threads import release_request_thread

log = logging.getLogger(__name__)

#: Events per catch-up read (the feed's reader scans at most 5000 rows a call).
CATCH_UP_PAGE = 500


class Session:
    def __init__(self, hub: Hub, subscriber: Subscriber, cursor: int | None) -> None:
        self.hub = hub
        self.subscriber = subscriber
        # Every change up to ``cursor`` was sent or was not for this client.
        self.cursor = subscriber.start if cursor is None else cursor
        self.last_sent = self.cursor  # the Last-Event-ID the client resumes from
        self.beat = max(float(settings.GWM_STREAM_HEARTBEAT_SECONDS), 0.05)
        self.beat_at = 0.0

    async def frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        yield frames.heartbeat(self.cursor)
        self.beat_at = loop.time() + self.beat
        async for chunk in self._catch_up():
            yield chunk
        while True:
            last = self._last_frame()
            if last:
                yield last
                return
            chunk = self._take()
            if chunk:
                yield chunk
                self.beat_at = loop.time() + self.beat
                continue
            self.subscriber.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._until_due(loop.time())):
                    await self.subscriber.wake.wait()
            if loop.time() >= self.beat_at and not self.subscriber.pending:
                self.cursor = max(self.cursor, self.hub.position)
                yield frames.heartbeat(self.cursor)
                self.beat_at = loop.time() + self.beat

    async def _catch_up(self) -> AsyncIterator[bytes]:
        subscriber = self.subscriber
        while self.cursor < subscriber.start and not self._last_frame():
            before = self.cursor
            try:
                page = await in_thread(
                    page_read,
                    subscriber.caller.visibility,
                    self.cursor,
                    CATCH_UP_PAGE,
                    subscriber.filters,
                )
            except Gone as gone:
                floor = int(gone.extra["floor"])
                self.cursor = self.last_sent = floor
                yield frames.reset(floor, gone.detail)
                continue
            if page.events:
                self.last_sent = page.events[-1]["seq"]
                yield b"".join(frames.event_frame(event) for event in page.events)
            self.cursor = max(self.cursor, page.next_since)
            if self.cursor <= before:
                break  # nothing moved: the log ends below the hub's position

    def _take(self) -> bytes:
        """What the buffer holds for this client now, as one chunk."""
        pending = self.subscriber.pending
        if not pending:
            return b""
        sees = self.subscriber.caller.visibility.sees
        chunk: list[bytes] = []
        while pending:
            entry = pending.popleft()
            if entry.seq <= self.cursor:
                continue  # the catch-up sent it, or it was not for this client
            self.cursor = entry.seq
            # A change is sent when the caller may see it; a reset (no change: the hub
            # lost changes to a purge) always.
            if entry.change is None or sees(entry.change):
                chunk.append(entry.frame)
                self.last_sent = entry.seq
        return b"".join(chunk)

    def _last_frame(self) -> bytes:
        """The frame that ends the stream, if it must end now."""
        subscriber = self.subscriber
        if subscriber.overflowed:
            return frames.overflow(self.last_sent)
        caller = subscriber.caller
        if caller.ended:
            return frames.ended(frames.REVOKED, caller.ended, self.last_sent)
        if caller.visibility.expired():
            return frames.ended(frames.REVOKED, "your token has expired", self.last_sent)
        if caller.reach is not subscriber.reach:
            if caller.reach.narrower_than(subscriber.reach):
                detail = (
                    "your permissions changed; reconnect with Last-Event-ID to go on with "
                    "what you may see now"
                )
                return frames.ended(frames.REVOKED, detail, self.last_sent)
            subscriber.reach = caller.reach
        return b""

    def _until_due(self, now: float) -> float:
        """Seconds until the next heartbeat, or until the caller's token expires."""
        due = self.beat_at - now
        token = token_of(self.subscriber.caller.visibility.user)
        if token is not None and token.expires_at is not None:
            due = min(due, (token.expires_at - timezone.now()).total_seconds())
        return max(due, 0.0)


def _close_connection() -> None:
    connection.close()  # looked up here: the connection of the thread this runs in


async def stream_of(user: User, filters: Filters, cursor: int | None) -> AsyncIterator[bytes]:
    """The frames of one client's stream; leaving the hub however it ends."""
    # A stream lives for hours: let go of the connection its request opened
    # (authentication), or every open stream would hold one.
    await sync_to_async(_close_connection)()
    release_request_thread()
    hub = hub_here()  # the loop's that serves the response, found once it runs
    limit = int(settings.GWM_STREAM_BUFFER_EVENTS)
    subscriber = await hub.join(user, filters, limit)
    try:
        session = Session(hub, subscriber, cursor)
        try:
            async for chunk in session.frames():
                yield chunk
        except Exception:  # never a torn stream without a word: say so, and end
            log.exception("an event stream failed")
            yield frames.ended(
                frames.ERROR,
                "the stream failed on the server; reconnect with Last-Event-ID",
                session.last_sent,
            )
    finally:
        hub.leave(subscriber)
