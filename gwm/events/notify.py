"""Wake-ups for waiters (job wait, feed long-poll), holding no thread per waiter.

A writer calls :func:`publish_on_commit` inside its transaction. After the
commit every waiter of that channel in this process is woken through its
event loop. On PostgreSQL the same channel is also sent with ``pg_notify``,
which PostgreSQL delivers only at commit, to every API process: each runs
one LISTEN thread that wakes its own waiters. On SQLite, the processes of one
`gwm serve` (several API processes and the worker's) send the channel to each
other as a datagram (gwm.kit.localbus) in ``GWM_WAKE_DIR``, which `gwm serve`
sets. Wake-ups are hints either way: waiters recheck on their own now and then
(gwm.events.waiting), so a lost one delays, never hangs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from gwm.kit import localbus

log = logging.getLogger(__name__)

PG_CHANNEL = "gwm_events"
#: Published with every commit that writes change rows (the feed moved).
CHANGES_CHANNEL = "changes"
#: Published with every commit that changes who may see what (tokens, bindings,
#: groups, users): open streams re-read their callers' grants.
GRANTS_CHANNEL = "grants"


def job_channel(job_id: int) -> str:
    """The channel a job's waiters listen on; every write to the job publishes it."""
    return f"job:{job_id}"


#: What one waiter holds: the event loop that waits and the event that wakes it.
Subscription = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class Broadcaster:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Subscription]] = defaultdict(set)
        self._callbacks: dict[str, list[Callable[[], None]]] = defaultdict(list)

    def on_publish(self, channel: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` (quickly, in the publishing thread) on every publish of
        ``channel`` in this process, from this or (through the listener) another one."""
        with self._lock:
            self._callbacks[channel].append(callback)
        _ensure_listener()

    def subscribe(self, channel: str) -> Subscription:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[channel].add(entry)
        _ensure_listener()
        return entry

    def unsubscribe(self, channel: str, entry: Subscription) -> None:
        with self._lock:
            waiters = self._waiters.get(channel)
            if waiters is not None:
                waiters.discard(entry)
                if not waiters:
                    del self._waiters[channel]

    def publish(self, channel: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(channel, ()))
            callbacks = list(self._callbacks.get(channel, ()))
        for callback in callbacks:
            callback()
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def publish_all(self) -> None:
        """Wake every waiter and call every callback of every channel: anything may
        have moved (the wake-ups of a while were lost)."""
        with self._lock:
            channels = set(self._waiters) | set(self._callbacks)
        for channel in channels:
            self.publish(channel)

    def waiting(self, channel: str) -> int:
        with self._lock:
            return len(self._waiters.get(channel, ()))


broadcaster = Broadcaster()
#: Guards starting this process's one listener (LISTEN thread or wake-up socket).
_listener_lock = threading.Lock()


def publish_on_commit(channel: str) -> None:
    """Wake ``channel``'s waiters once the current transaction commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [PG_CHANNEL, channel])
        transaction.on_commit(lambda: broadcaster.publish(channel))
    else:
        transaction.on_commit(lambda: _publish_here_and_to_peers(channel))


def _publish_here_and_to_peers(channel: str) -> None:
    broadcaster.publish(channel)
    directory = _wake_dir()
    if directory is None:
        return
    own = _own_wake_socket(directory)
    payload = channel.encode()
    for peer in localbus.peers(directory, WAKE_PREFIX):
        if peer != own:
            localbus.send(peer, payload)


# -- wake-ups between the processes of one `gwm serve` (SQLite) -------------------

WAKE_PREFIX = "wake-"
_wake_listener: localbus.Listener | None = None


def _wake_dir() -> Path | None:
    return Path(settings.GWM_WAKE_DIR) if settings.GWM_WAKE_DIR else None


def _own_wake_socket(directory: Path) -> Path:
    return directory / f"{WAKE_PREFIX}{os.getpid()}.sock"


def _ensure_wake_listener() -> None:
    """Listen for other processes' wake-ups (once per process, when it first has waiters)."""
    global _wake_listener
    directory = _wake_dir()
    if directory is None:
        return
    with _listener_lock:
        if _wake_listener is None:
            _wake_listener = localbus.Listener(
                _own_wake_socket(directory), lambda payload: broadcaster.publish(payload.decode())
            )


# -- PostgreSQL LISTEN ---------------------------------------------------------

_listener: threading.Thread | None = None
#: Set while this process's LISTEN connection is up. While it is down (the database
#: restarted, the connection was cut) other processes' wake-ups do not reach this one:
#: waiters poll faster meanwhile (gwm.events.waiting), and when it is back every
#: waiter is woken once, since what was published in between is lost.
_listening = threading.Event()
#: How long the listener waits before connecting again after losing its connection.
RECONNECT_SECONDS = 1.0


def listener_down() -> bool:
    """True while this process's LISTEN connection is being made again (PostgreSQL)."""
    return _listener is not None and not _listening.is_set()


def _ensure_listener() -> None:
    global _listener
    if connection.vendor != "postgresql":
        _ensure_wake_listener()
        return
    with _listener_lock:
        if _listener is not None and _listener.is_alive():
            return
        _listener = threading.Thread(target=_listen_forever, name="gwm-pg-listen", daemon=True)
        _listener.start()


def _listen_forever() -> None:
    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    while True:
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {PG_CHANNEL}")
                if not _listening.is_set():
                    _listening.set()
                    broadcaster.publish_all()  # what was sent while it was down is lost
                for notice in conn.notifies():
                    broadcaster.publish(notice.payload)
        except Exception:  # reconnect whatever happened; never let waiters hang forever
            if _listening.is_set():
                _listening.clear()
                broadcaster.publish_all()  # each waiter looks again, and polls meanwhile
            log.exception("LISTEN %s failed; reconnecting", PG_CHANNEL)
            time.sleep(RECONNECT_SECONDS)
