"""One reader of the change log per event loop, handing each new change to every stream.

Ten thousand open streams must not mean ten thousand database readers. The hub
wakes on the "changes" channel, reads the new rows once (in a thread, in seq
order, in batches), renders each event once (its frame's bytes are shared by
every client) and appends the rows each subscriber's filters want to that
subscriber's bounded buffer. Each stream then decides visibility in memory
(gwm.events.visibility), so the work per change and client is a few
comparisons and no query.

Callers are shared too: the streams of one user and token hold one
:class:`~gwm.events.stream.callers.Caller` (its Visibility), which the hub
re-reads once when grants change anywhere (the "grants" channel) or every
``RECHECK_SECONDS``, and whose instance tags it loads in its own read step.

A subscriber that falls more than its buffer behind is dropped from the
fan-out at once (the hub never holds more than the buffer for it) and told
to end with an ``overflow`` frame; if its connection does not take even that
within ``OVERFLOW_GRACE_SECONDS``, its request is cancelled, which closes
the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import weakref
from collections import deque
from dataclasses import dataclass

from django.contrib.auth.models import User

from gwm.events import notify
from gwm.events.feed import Filters
from gwm.events.models import Change
from gwm.events.notify import CHANGES_CHANNEL, GRANTS_CHANNEL, broadcaster
from gwm.events.render import event_of
from gwm.events.services import last_seq, seq_bounds
from gwm.events.stream import frames
from gwm.events.stream.callers import Caller, caller_key, in_thread
from gwm.events.visibility import Visibility
from gwm.events.waiting import DOWN_RECHECK_SECONDS
from gwm.observability import metrics

log = logging.getLogger(__name__)

READ_BATCH = 500
#: The hub reads the log this often even without a wake-up (a lost notification).
POLL_SECONDS = 5.0
#: Grants are re-read this often even when no "grants" notification came.
RECHECK_SECONDS = 60.0
#: How long an overflowed client's connection has to take its last frame.
OVERFLOW_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Entry:
    """A change as every stream sends it; ``change`` None: a reset to ``seq`` (the floor)."""

    seq: int
    change: Change | None
    frame: bytes

    @classmethod
    def of(cls, change: Change) -> Entry:
        return cls(change.seq, change, frames.event_frame(event_of(change)))


class Subscriber:
    """One open stream as the hub sees it: its filters and what it has not sent yet."""

    __slots__ = (
        "abort",
        "caller",
        "filters",
        "joined",
        "limit",
        "overflowed",
        "pending",
        "reach",
        "start",
        "task",
        "wake",
    )

    def __init__(self, caller: Caller, filters: Filters, limit: int, start: int) -> None:
        self.caller = caller
        self.filters = filters
        self.limit = max(1, limit)
        self.start = start  # the hub's position when it joined: the catch-up's end
        self.pending: deque[Entry] = deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.reach = caller.reach  # what it was allowed when it joined (or last accepted)
        # The request's task (cancelling it drops the connection). Weakly: the task holds
        # the response, the response this stream, which holds this; a cycle would keep a
        # finished stream (and its place in the hub) alive until the garbage collector ran.
        task = asyncio.current_task()
        self.task = weakref.ref(task) if task is not None else None
        self.joined = True
        self.abort: asyncio.TimerHandle | None = None

    def push(self, entries: list[Entry]) -> bool:
        """Buffer ``entries``; False (nothing kept) when they do not fit."""
        if len(self.pending) + len(entries) > self.limit:
            return False
        self.pending.extend(entries)
        self.wake.set()
        return True


def _cancel(task: weakref.ref[asyncio.Task[object]]) -> None:
    running = task()
    if running is not None:
        running.cancel()


@dataclass
class _Read:
    entries: list[Entry]
    floor: int
    last: int


def _read_after(position: int, tagged: list[Visibility]) -> _Read:
    """The next rows after ``position`` (up to the last committed), rendered once."""
    floor, last = seq_bounds()
    rows = list(Change.objects.filter(seq__gt=position, seq__lte=last).order_by("seq")[:READ_BATCH])
    for visibility in tagged:
        visibility.prepare(rows)
    return _Read([Entry.of(row) for row in rows], floor, last)


class Hub:
    def __init__(self) -> None:
        self.position = 0  # every change up to here was handed to the subscribers
        self._subscribers: set[Subscriber] = set()
        self._callers: dict[tuple[int, int | None], Caller] = {}
        self._joining = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._starting = asyncio.Lock()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def callers(self) -> int:
        return len(self._callers)

    async def join(self, user: User, filters: Filters, limit: int) -> Subscriber:
        """Subscribe a stream; changes after ``Subscriber.start`` will reach its buffer."""
        self._joining += 1
        caller: Caller | None = None
        try:
            caller = await self._caller(user)
            await self._start()
            # No await from here on: nothing is fanned out between reading the position
            # and registering, so every change after ``start`` reaches the buffer.
            subscriber = Subscriber(caller, filters, limit, self.position)
            self._subscribers.add(subscriber)
            metrics.stream_joined()
            return subscriber
        except BaseException:
            if caller is not None:
                self._release(caller)
            raise
        finally:
            self._joining -= 1

    def leave(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (once it was left, a second call does nothing)."""
        if subscriber.abort is not None:
            subscriber.abort.cancel()
        subscriber.pending.clear()
        self._subscribers.discard(subscriber)
        if subscriber.joined:
            subscriber.joined = False
            self._release(subscriber.caller)
            metrics.stream_left()
        if not self._subscribers and not self._joining:
            self._stop()

    async def _caller(self, user: User) -> Caller:
        key = caller_key(user)
        caller = self._callers.get(key)
        if caller is None or caller.ended:
            visibility = await in_thread(Visibility, user)
            caller = self._callers.get(key)  # another stream of theirs may have come meanwhile
            if caller is None or caller.ended:
                caller = self._callers[key] = Caller(key, visibility)
        caller.clients += 1
        return caller

    def _release(self, caller: Caller) -> None:
        caller.clients -= 1
        if caller.clients <= 0 and self._callers.get(caller.key) is caller:
            del self._callers[caller.key]

    # -- the reader ----------------------------------------------------------------

    async def _start(self) -> None:
        if self._tasks:
            return
        async with self._starting:
            if self._tasks:
                return
            self.position = await in_thread(last_seq)
            loop = asyncio.get_running_loop()
            # Fresh contexts: the tasks outlive the request that started them.
            self._tasks = [
                loop.create_task(self._follow_changes(), context=contextvars.Context()),
                loop.create_task(self._follow_grants(), context=contextvars.Context()),
            ]

    def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def _follow_changes(self) -> None:
        loop, woken = broadcaster.subscribe(CHANGES_CHANNEL)
        try:
            while True:
                woken.clear()
                try:
                    await self._read_new()
                except Exception:  # the database went away: keep the streams, read again
                    log.exception("the stream hub could not read the change log")
                    await asyncio.sleep(1)
                    continue
                poll = DOWN_RECHECK_SECONDS if notify.listener_down() else POLL_SECONDS
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        await woken.wait()
        finally:
            broadcaster.unsubscribe(CHANGES_CHANNEL, (loop, woken))

    async def _read_new(self) -> None:
        while True:
            tagged = [c.visibility for c in self._callers.values() if c.tag_clusters]
            read = await in_thread(_read_after, self.position, tagged)
            if read.floor > self.position:
                # Purged before the hub read them (it lagged more than the retention).
                self._fan_out([Entry(read.floor, None, frames.reset(read.floor, _PURGED))])
                self.position = read.floor
            if read.entries:
                self._fan_out(read.entries)
                self.position = read.entries[-1].seq
            if len(read.entries) < READ_BATCH:
                self.position = max(self.position, read.last)
                return

    def _fan_out(self, entries: list[Entry]) -> None:
        wanted: dict[Filters, list[Entry]] = {}  # streams with the same filters share one list
        for subscriber in list(self._subscribers):
            mine = wanted.get(subscriber.filters)
            if mine is None:
                mine = wanted[subscriber.filters] = [
                    e for e in entries if e.change is None or subscriber.filters.matches(e.change)
                ]
            if mine and not subscriber.push(mine):
                self._overflow(subscriber)

    def _overflow(self, subscriber: Subscriber) -> None:
        subscriber.overflowed = True
        subscriber.pending.clear()
        self._subscribers.discard(subscriber)
        subscriber.wake.set()
        if subscriber.task is not None:
            subscriber.abort = asyncio.get_running_loop().call_later(
                OVERFLOW_GRACE_SECONDS, _cancel, subscriber.task
            )

    # -- grants ----------------------------------------------------------------------

    async def _follow_grants(self) -> None:
        loop, woken = broadcaster.subscribe(GRANTS_CHANNEL)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECHECK_SECONDS):
                        await woken.wait()
                woken.clear()
                try:
                    await self._recheck()
                except Exception:
                    log.exception("the stream hub could not re-read grants")
                    await asyncio.sleep(1)
                    woken.set()
        finally:
            broadcaster.unsubscribe(GRANTS_CHANNEL, (loop, woken))

    async def _recheck(self) -> None:
        callers = list(self._callers.values())
        results = await asyncio.gather(*(in_thread(c.visibility.refresh) for c in callers))
        for caller, live in zip(callers, results, strict=True):
            caller.refreshed(live)
        for subscriber in list(self._subscribers):
            subscriber.wake.set()  # each stream compares its caller's reach with its own


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def hub_here() -> Hub:
    """This event loop's hub (one per loop: its streams and their waits live there)."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = Hub()
        return hub


def hubs() -> list[Hub]:
    with _hubs_lock:
        return list(_hubs.values())


_PURGED = "changes were purged before this server could send them; relist, then follow on"
