"""Hints between the processes of one `gwm serve`, as Unix datagrams.

`gwm serve` runs the API in several processes and the embedded worker in
another. Without a broker or PostgreSQL's NOTIFY between them they pass two
kinds of short messages over datagram sockets in one directory:

- doorbells, from an API process to the worker process ("send task X with
  these ids"), which the worker puts on its in-memory broker;
- wake-ups, from any process to every process with waiters ("channel C moved").

Both are hints. The database holds the truth: a lost doorbell is re-rung by the
sweepers, a lost wake-up is caught by the waiters' own recheck. So a sender never
waits: a full socket or a peer that is gone is skipped (a dead peer's socket is
removed by the first sender that finds it refusing).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Larger than any doorbell or channel name gwm sends.
MAX_DATAGRAM = 64 * 1024

#: Linux queues only ``net.unix.max_dgram_qlen`` (often 10) datagrams per socket, so a
#: burst can find a socket full for a moment: a doorbell may wait that long for room.
_DOORBELL_WAIT_SECONDS = 0.5
_nowait = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
_nowait.setblocking(False)
_waiting = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
_waiting.settimeout(_DOORBELL_WAIT_SECONDS)


def send(path: Path, payload: bytes, *, wait: bool = False) -> bool:
    """Send ``payload`` to the socket at ``path``; False if it was not taken.

    Without ``wait`` a full socket is skipped at once (wake-ups: the waiters recheck
    anyway); with it the sender waits up to half a second for room (doorbells)."""
    try:
        (_waiting if wait else _nowait).sendto(payload, str(path))
    except ConnectionRefusedError:  # its process is gone and left the socket behind
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    except (FileNotFoundError, BlockingIOError, TimeoutError):
        return False
    return True


def peers(directory: Path, prefix: str) -> list[Path]:
    """The sockets named ``<prefix>*`` in ``directory``."""
    try:
        return [
            Path(entry.path) for entry in os.scandir(directory) if entry.name.startswith(prefix)
        ]
    except FileNotFoundError:
        return []


class Listener:
    """A socket at ``path`` whose datagrams a daemon thread hands to ``handle``."""

    def __init__(self, path: Path, handle: Callable[[bytes], None]) -> None:
        self.path = path
        self._handle = handle
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._socket.bind(str(path))
        self._closed = False
        self._thread = threading.Thread(
            target=self._serve, name=f"gwm-bus-{path.name}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                payload = self._socket.recv(MAX_DATAGRAM)
            except OSError:
                return
            if self._closed:
                return
            try:
                self._handle(payload)
            except Exception:  # one bad message must not stop the next ones
                log.exception("handling a message on %s failed", self.path)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the thread's recv
        self._thread.join(timeout=2)
        self._socket.close()
