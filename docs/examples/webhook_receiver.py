#!/usr/bin/env python3
"""A reference receiver of gwm webhooks: standard library only, no gwm import.

What a receiver must do to lose nothing and do nothing twice (docs/consumers.md):

1. Verify the Standard Webhooks signature: HMAC-SHA256 over
   ``{webhook-id}.{webhook-timestamp}.{body}`` with the secret's base64 after
   ``whsec_``, compared in constant time with each ``v1,`` entry of
   ``webhook-signature``. Several secrets may be configured (a rotation: gwm
   signs with the old and the new one while they overlap; any one match is
   enough). A timestamp further than ``--tolerance`` seconds from now is
   refused, so a captured request cannot be replayed later.
2. Drop duplicates by ``webhook-id`` (``evt_<seq>``: the same on every retry,
   redelivery and replay). gwm delivers at least once.
3. Detect gaps: every event names the seq of the same resource's previous
   change (``previous_seq``). When that is newer than the last change this
   receiver handled for the resource, something was missed (a webhook paused,
   a filter changed, a replay not asked for); it reads them from
   ``GET /api/v1/changes?since=<last handled>&resource=<kind>:<name>&cluster=<c>``
   before handling the new event.
4. Answer 2xx only once the event is handled. When the catch-up fails, answer
   503: gwm tries again later, and the resource's later events wait behind this
   one (each resource's events are delivered in order, one at a time).

Run it::

    GWM_WEBHOOK_SECRETS="whsec_new... whsec_old..." \\
    GWM_URL=https://gwm.example.org GWM_TOKEN=gwm_... \\
    python3 docs/examples/webhook_receiver.py --port 8080 --state /var/lib/receiver.json

It prints ``listening on http://HOST:PORT`` and then one JSON line per event it
handles (``handle_event`` is where an application does its work; make that work
idempotent too, keyed by the event's ``seq``). ``--state`` keeps the seen ids
and each resource's last seq across restarts.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOLERANCE_SECONDS = 300
MAX_BODY = 1024 * 1024
#: How many event ids are remembered for dropping duplicates.
SEEN_MAX = 100_000
#: A catch-up reads at most this many pages of the feed for one gap.
CATCH_UP_PAGES = 50

Event = dict[str, Any]


class Rejected(Exception):
    """A request that is not a genuine, fresh gwm delivery (status: what to answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CatchUpFailed(Exception):
    """The feed could not be read: the delivery is answered 503 and comes again."""


# -- 1. signatures ------------------------------------------------------------------


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """The delivery's ``webhook-id``, or :class:`Rejected` saying why not."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "").strip()
    offered = headers.get("webhook-signature", "").split()
    if not msg_id or not stamp.isdigit() or not offered:
        raise Rejected(400, "missing webhook-id, webhook-timestamp or webhook-signature")
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        raise Rejected(400, f"timestamp {stamp} is outside the tolerance of {tolerance:g} s")
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = [hmac.new(_key(s), signed, hashlib.sha256).digest() for s in secrets]
    for entry in offered:
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # another scheme, or a newer one this receiver does not know
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if any(hmac.compare_digest(candidate, digest) for digest in expected):
            return msg_id
    raise Rejected(401, "no signature matches a configured secret")


# -- 2 and 3. duplicates, gaps, catch-up -------------------------------------------------


def resource_key(resource: Mapping[str, Any]) -> str:
    """One name per resource: ``instance:prod/web1``, ``cluster:prod``, ``job:12``."""
    kind, cluster, name = resource["kind"], resource.get("cluster"), resource["name"]
    if kind in ("job", "webhook", "cluster") or not cluster:
        return f"{kind}:{name}"
    return f"{kind}:{cluster}/{name}"


class Feed:
    """Reads ``GET /api/v1/changes`` with a bearer token (the catch-up's source)."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"GWM_URL is an http or https URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def page(self, since: int, resource: Mapping[str, Any]) -> dict[str, Any]:
        query = {"since": str(since), "limit": "100"}
        query["resource"] = f"{resource['kind']}:{resource['name']}"
        if resource.get("cluster") and resource["kind"] not in ("job", "webhook"):
            query["cluster"] = resource["cluster"]
        url = f"{self.base_url}/api/v1/changes?{urllib.parse.urlencode(query)}"
        # S310: the scheme was checked in __init__ (no file: URLs).
        headers = {"Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(url, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                page: dict[str, Any] = json.load(answer)
                return page
        except urllib.error.HTTPError as error:
            if error.code == 410:  # purged: the resource has to be read afresh
                return {"gone": True, "items": [], "more": False}
            raise CatchUpFailed(f"the feed answered {error.code}") from None
        except (OSError, ValueError) as error:
            raise CatchUpFailed(f"the feed could not be read: {error}") from None


class Receiver:
    """What the HTTP handler calls; one delivery at a time (the lock), so a resource's
    last seq and the seen ids never race."""

    def __init__(
        self,
        secrets: Sequence[str],
        feed: Feed | None,
        *,
        tolerance: float = TOLERANCE_SECONDS,
        state_path: Path | None = None,
        handle: Callable[[Event, str], None] | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("at least one signing secret is needed")
        for secret in secrets:
            _key(secret)  # a mistyped secret fails now, not at the first delivery
        self.secrets = list(secrets)
        self.feed = feed
        self.tolerance = tolerance
        self.state_path = state_path
        self.handle = handle or handle_event
        self.lock = threading.Lock()
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.last: dict[str, int] = {}  # resource key -> seq of the last change handled
        self._load()

    def receive(self, headers: Mapping[str, str], body: bytes) -> str:
        """Handle one delivery; returns what happened, or raises Rejected/CatchUpFailed."""
        msg_id = verify(self.secrets, headers, body, tolerance=self.tolerance)
        try:
            event = json.loads(body)
        except ValueError:
            raise Rejected(400, "the body is not JSON") from None
        if not isinstance(event, dict) or event.get("id") != msg_id:
            raise Rejected(400, "the body's id is not the webhook-id")
        with self.lock:
            if msg_id in self.seen:
                return "duplicate"
            self._catch_up_before(event)
            self._handled(event, "webhook")
            self._save()
        return "handled"

    def _catch_up_before(self, event: Event) -> None:
        key = resource_key(event["resource"])
        last, previous = self.last.get(key), event.get("previous_seq")
        if last is None or previous is None or previous <= last:
            return  # the first event of it here, or nothing missed
        if self.feed is None:
            raise CatchUpFailed(f"a gap before {event['id']}, and no GWM_URL to catch up from")
        since = last
        for _ in range(CATCH_UP_PAGES):
            page = self.feed.page(since, event["resource"])
            if page.get("gone"):
                relist(event)
                return
            for item in page["items"]:
                if item["seq"] >= event["seq"]:
                    return
                if item["id"] not in self.seen and resource_key(item["resource"]) == key:
                    self._handled(item, "catch-up")
            if not page["more"] or page["next_since"] >= event["seq"] - 1:
                return
            since = page["next_since"]
        raise CatchUpFailed(f"the gap before {event['id']} is longer than the catch-up reads")

    def _handled(self, event: Event, via: str) -> None:
        self.handle(event, via)
        self.seen[event["id"]] = None
        while len(self.seen) > SEEN_MAX:
            self.seen.popitem(last=False)
        key = resource_key(event["resource"])
        self.last[key] = max(self.last.get(key, 0), event["seq"])

    # -- state across restarts ---------------------------------------------------------

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        state = json.loads(self.state_path.read_text())
        self.seen = OrderedDict.fromkeys(state.get("seen", []))
        self.last = {key: int(seq) for key, seq in state.get("last", {}).items()}

    def _save(self) -> None:
        if self.state_path is None:
            return
        partial = self.state_path.with_suffix(".partial")
        partial.write_text(json.dumps({"seen": list(self.seen), "last": self.last}))
        partial.replace(self.state_path)  # a crash leaves the old state or the new one


def handle_event(event: Event, via: str) -> None:
    """The application's work. Here: one JSON line on stdout."""
    line = {"handled": event["id"], "seq": event["seq"], "type": event["type"], "via": via}
    print(json.dumps(line), flush=True)


def relist(event: Event) -> None:
    """The changes before ``event`` were purged from gwm: read the resource afresh
    (``event["resource"]["url"]``) instead of replaying its history."""
    line = {"relist": resource_key(event["resource"]), "url": event["resource"].get("url")}
    print(json.dumps(line), flush=True)


# -- 4. HTTP ------------------------------------------------------------------------------


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name for it
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, "body too large")
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                outcome = receiver.receive(headers, body)
            except Rejected as rejected:
                self._answer(rejected.status, rejected.reason)
            except CatchUpFailed as failed:
                # Not handled: gwm tries again (with backoff), later events of it wait.
                self._answer(503, str(failed))
            else:
                self._answer(200, outcome)

        def _answer(self, status: int, text: str) -> None:
            payload = json.dumps({"status": status, "detail": text}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_SECONDS)
    parser.add_argument("--state", type=Path, help="a JSON file for state across restarts")
    args = parser.parse_args(argv)

    secrets = os.environ.get("GWM_WEBHOOK_SECRETS", "").replace(",", " ").split()
    base_url = os.environ.get("GWM_URL", "")
    feed = Feed(base_url, os.environ.get("GWM_TOKEN", "")) if base_url else None
    receiver = Receiver(secrets, feed, tolerance=args.tolerance, state_path=args.state)
    server = ThreadingHTTPServer((args.host, args.port), handler_for(receiver))
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
