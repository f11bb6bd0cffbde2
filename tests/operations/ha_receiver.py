"""A webhook receiver on loopback for the distributed-mode suite (test_distributed_ha.py).

A threaded ``http.server`` in the test process: every POST is recorded as it came (the
path, the three Standard Webhooks headers, the raw body, when it arrived) and answered
``204``. Each webhook the test registers gets a path of its own, so one receiver serves
them all and a delivery is never counted for the wrong webhook. The signatures are
checked afterwards (the secret is known only once the webhook is created, and its
first delivery may come before the test has read the answer), with the secret and
the scheme of docs/events.md ("Signing: Standard Webhooks").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: How far a delivery's ``webhook-timestamp`` may be from the receiver's clock.
TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class Delivery:
    path: str
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    received_at: float

    @property
    def seq(self) -> int | None:
        """The seq the ``webhook-id`` names (``evt_<seq>``), or None for another id."""
        head, _, tail = self.webhook_id.partition("_")
        return int(tail) if head == "evt" and tail.isdigit() else None

    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def verifies(self, secret: str) -> bool:
        """Standard Webhooks: one of the ``v1,<base64>`` signatures is the HMAC-SHA256 of
        ``{id}.{timestamp}.{body}`` under the secret's key, and the timestamp is recent."""
        try:
            sent_at = int(self.timestamp)
        except ValueError:
            return False
        if abs(self.received_at - sent_at) > TOLERANCE_SECONDS:
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{self.webhook_id}.{self.timestamp}.".encode() + self.body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [
            part.partition(",")[2] for part in self.signature.split() if part.startswith("v1,")
        ]
        return any(hmac.compare_digest(expected, candidate) for candidate in given)


class Receiver:
    """Records every POST it is sent, per path; answers 204 to each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as gwm's sender pools connections

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._record(
                    Delivery(
                        path=self.path,
                        webhook_id=self.headers.get("webhook-id", ""),
                        timestamp=self.headers.get("webhook-timestamp", ""),
                        signature=self.headers.get("webhook-signature", ""),
                        body=body,
                        received_at=time.time(),
                    )
                )
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the test reports what it needs

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def deliveries(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self._deliveries if d.path == path]

    def delivered_seqs(self, path: str) -> set[int]:
        """The seqs delivered to ``path``, each once however often it came (by webhook-id)."""
        return {d.seq for d in self.deliveries(path) if d.seq is not None}
