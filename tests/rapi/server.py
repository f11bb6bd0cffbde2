"""A tiny real HTTP(S) server answering canned RAPI replies and recording requests.

Real sockets and real TLS, so the client's connection handling, TLS trust
and retries are exercised the way they run against Ganeti.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    json: Any = None
    text: str | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.text is not None:
            return self.text.encode()
        return json.dumps(self.json).encode()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def ganeti_error(status: int, message: str, explain: str = "") -> Reply:
    return Reply(status, {"code": status, "message": message, "explain": explain})


class _Handler(BaseHTTPRequestHandler):
    server: RapiTestServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        record = Recorded(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        reply = self.server.next_reply(record)
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.payload()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (read timeout tests)

    do_GET = do_PUT = do_POST = do_DELETE = _serve


class RapiTestServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, context: ssl.SSLContext | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.context = context
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, *replies: Reply) -> None:
        """Answer ``method path`` with ``replies`` in turn; the last one repeats."""
        self.routes[(method, path)] = list(replies)

    def next_reply(self, record: Recorded) -> Reply:
        with self._lock:
            self.requests.append(record)
            queue = self.routes.get((record.method, record.path))
            if not queue:
                return ganeti_error(404, "Not Found", "Nothing matches the given URI")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client rejected us, or only looked at the certificate
        _Handler(request, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def __enter__(self) -> RapiTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
