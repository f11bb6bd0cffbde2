"""gwm's own ASGI app served over real HTTP (uvicorn in a thread), and an SSE reader.

For tests that need what only a real server shows: streamed responses,
client disconnects, slow readers. The server runs in this process, on its
own event loop in a thread, on a free port of 127.0.0.1; it shares the test
database with the test. The fixture asks for ``transactional_db``: rows a
test writes are committed, so the server's threads see them (a test inside
one rolled-back transaction would show them nothing). On SQLite that works
because the test database is a file (gwm.settings sets TEST NAME; an
in-memory database is private to each connection); on PostgreSQL the server
connects to the same ``test_`` database.

A test module makes its fixture of :func:`serving` (fixtures are not imported
across modules here)::

    pytestmark = pytest.mark.django_db(transaction=True)

    @pytest.fixture
    def live(transactional_db: None) -> Iterator[LiveGwm]:
        with serving() as running:
            yield running
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

START_SECONDS = 10.0


@dataclass
class Frame:
    """One SSE frame: its fields (``id``, ``event``, ``data``) and its comment lines."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def event(self) -> str | None:
        return self.fields.get("event")

    @property
    def id(self) -> str | None:
        return self.fields.get("id")

    def data(self) -> Any:
        return json.loads(self.fields["data"])


def frames_of(response: httpx.Response) -> Iterator[Frame]:
    """The frames of a streamed response, as they arrive (the SSE line rules, simplified:
    one ``data`` line per frame, which is what gwm sends)."""
    current = Frame()
    for line in response.iter_lines():
        if line == "":
            if current.fields or current.comments:
                yield current
            current = Frame()
        elif line.startswith(":"):
            current.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            current.fields[name] = value[1:] if value.startswith(" ") else value
    if current.fields or current.comments:
        yield current


@dataclass
class LiveGwm:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs.setdefault("timeout", httpx.Timeout(10.0))
        return httpx.Client(base_url=self.url, headers=headers, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_gwm() -> LiveGwm:
    """Start gwm's ASGI application on a free loopback port; stop it with ``.stop()``."""
    from gwm.asgi import application

    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=_free_port(),
        log_level="warning",
        lifespan="off",
        access_log=False,
        # Stopping must not wait long for streams a test left open.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)  # no signal handlers outside the main thread
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve()), name="live-gwm", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gwm did not start")
        time.sleep(0.01)
    return LiveGwm(f"http://127.0.0.1:{config.port}", server, thread)


@contextlib.contextmanager
def serving() -> Iterator[LiveGwm]:
    """gwm served for the length of the block (a test's fixture wraps it; see above)."""
    running = serve_gwm()
    try:
        yield running
    finally:
        running.stop()
        from django.db import connections

        connections.close_all()
