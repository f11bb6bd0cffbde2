"""Webhook attempts over real HTTP on loopback, and the retry schedule that follows them.

The receiver is a real HTTP server on 127.0.0.1; only loopback is allowed,
and the refused targets (metadata, private addresses) are refused before any
connection, so nothing here leaves the machine.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gwm.events.webhooks import transport
from gwm.events.webhooks.backoff import (
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP,
    SCHEDULE,
    next_delay,
    parse_retry_after,
)
from gwm.events.webhooks.targets import TargetRefused
from gwm.events.webhooks.transport import BODY_LIMIT, Sender, guarded_transport
from gwm.simulator.server import make_certificate

LOOPBACK_V4 = [ipaddress.ip_network("127.0.0.1/32")]
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
BODY = b'{"id":"evt_7","type":"instance.status_changed"}'
HEADERS = {"content-type": "application/json", "webhook-id": "evt_7"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class Receiver:
    base: str
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    endless_sent: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked answers
    receiver: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.receiver.seen.append(Seen("POST", url.path, headers, body, self.client_address[1]))
        parts = url.path.strip("/").split("/")
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        route = getattr(self, "route_" + parts[0])
        route(*parts[1:], **query)

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self) -> None:
        self.answer(200, b"x" * 1500)

    def route_status(self, code: str) -> None:
        self.answer(int(code), f"status {code}".encode())

    def route_busy(self, after: str) -> None:
        self.answer(503, b"later", Retry_After=after)

    def route_slow(self) -> None:
        self.receiver.release.wait(5)
        self.answer(200, b"too late")

    def route_endless(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk, sent = b"y" * 4096, 0
        try:
            while sent < 64 * 1024 * 1024 and not self.receiver.release.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the client hung up: what it should do
        self.receiver.endless_sent.append(sent)
        self.close_connection = True

    def route_bytes(self, kind: str) -> None:
        if kind == "latin1":
            self.answer(200, b"caf\xe9", Content_Type="text/plain; charset=latin-1")
        elif kind == "broken":
            self.answer(200, b"ok \xff\xfe!", Content_Type="text/plain; charset=utf-8")
        elif kind == "gzip":
            self.answer(200, gzip.compress(b"hello" * 1000), Content_Encoding="gzip")

    def route_cookie(self) -> None:
        self.answer(200, b"have one", Set_Cookie="session=abc; Path=/")

    def route_redirect(self, code: str, to: str) -> None:
        self.answer(int(code), b"moved", Location=to)

    def route_hops(self, left: str) -> None:
        if int(left) == 0:
            self.answer(200, b"arrived")
        else:
            self.answer(307, b"", Location=f"/hops/{int(left) - 1}")


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    receiver = Receiver(f"{scheme}://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("BoundHandler", (Handler,), {"receiver": receiver})
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture
def sender() -> Iterator[Sender]:
    with Sender() as shared:
        yield shared


def post(
    sender: Sender, url: str, *, timeout: float = 5, allowed: list[Any] = LOOPBACK_V4
) -> transport.Outcome:
    return sender.post(url, BODY, HEADERS, timeout=timeout, allowed=allowed)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_2xx_answer_is_delivered_with_its_excerpt(receiver: Receiver, sender: Sender) -> None:
    assert receiver.seen == []
    outcome = post(sender, receiver.url("/ok"))
    assert outcome.status == 200
    assert outcome.delivered
    assert outcome.excerpt == "x" * 1000
    assert outcome.error == ""
    assert outcome.redirected_to is None
    assert 0 < outcome.duration_ms < 5000
    [seen] = receiver.seen
    assert (seen.method, seen.path, seen.body) == ("POST", "/ok", BODY)
    assert seen.headers["webhook-id"] == "evt_7"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == "gwm-webhooks/1"
    assert seen.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("code", [500, 410, 404, 429])
def test_other_answers_are_outcomes_not_deliveries(
    receiver: Receiver, sender: Sender, code: int
) -> None:
    outcome = post(sender, receiver.url(f"/status/{code}"))
    assert (outcome.status, outcome.excerpt, outcome.error) == (code, f"status {code}", "")
    assert not outcome.delivered


def test_retry_after_is_reported_and_sets_the_next_delay(
    receiver: Receiver, sender: Sender
) -> None:
    outcome = post(sender, receiver.url("/busy/120"))
    assert (outcome.status, outcome.retry_after) == (503, "120")
    # After the first failure the schedule says about 5 s; the receiver asked for 120.
    assert next_delay(1, retry_after=outcome.retry_after, random=lambda: 0.5) == 120
    assert post(sender, receiver.url("/ok")).retry_after is None


def test_a_slow_receiver_times_out(receiver: Receiver, sender: Sender) -> None:
    outcome = post(sender, receiver.url("/slow"), timeout=0.3)
    assert outcome.status is None
    assert outcome.error == "timed out after 0.3 s (waiting for the answer)"
    assert 300 <= outcome.duration_ms < 2000
    assert not outcome.delivered


def test_a_closed_port_is_an_outcome(sender: Sender) -> None:
    outcome = post(sender, f"http://127.0.0.1:{closed_port()}/hook")
    assert outcome.status is None
    assert outcome.error.startswith("cannot connect: ")
    assert not outcome.delivered


def test_a_refused_target_is_not_contacted(receiver: Receiver, sender: Sender) -> None:
    outcome = post(sender, receiver.url("/ok"), allowed=[])
    assert outcome.status is None
    assert outcome.error == "target refused: 127.0.0.1 is a loopback address"
    assert receiver.seen == []
    outcome = post(sender, "http://10.20.30.40/hook")
    assert outcome.error == "target refused: 10.20.30.40 is a private address"
    assert post(sender, receiver.url("/ok")).delivered  # the same URL, allowed
    assert len(receiver.seen) == 1


def test_the_socket_is_guarded_even_when_the_url_check_is_skipped(
    receiver: Receiver, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the name had resolved to a public address for the check and to loopback
    # when connecting (DNS rebinding): the connection itself is refused.
    monkeypatch.setattr(transport, "check_target", lambda url, allowed: [])
    outcome = post(sender, receiver.url("/ok"), allowed=[])
    assert outcome.status is None
    assert outcome.error == "target refused when connecting: 127.0.0.1 is a loopback address"
    assert receiver.seen == []
    # A plain httpx client on the guarded transport, outside post(), may reach nothing internal.
    with httpx.Client(transport=guarded_transport()) as client, pytest.raises(TargetRefused):
        client.post(receiver.url("/ok"), content=BODY)
    assert receiver.seen == []
    assert post(sender, receiver.url("/ok")).delivered


def test_a_name_is_connected_to_through_its_checked_addresses(
    receiver: Receiver, sender: Sender
) -> None:
    port = urlsplit(receiver.base).port
    outcome = post(sender, f"http://localhost:{port}/ok", allowed=LOOPBACK)
    assert outcome.delivered
    assert receiver.seen[0].headers["host"] == f"localhost:{port}"


def test_connections_are_kept_alive_and_cookies_are_not(receiver: Receiver, sender: Sender) -> None:
    assert post(sender, receiver.url("/cookie")).delivered
    assert post(sender, receiver.url("/ok")).delivered
    first, second = receiver.seen
    assert first.client_port == second.client_port  # one pooled connection
    assert "cookie" not in second.headers


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_are_followed_with_the_same_post(
    receiver: Receiver, sender: Sender, code: int
) -> None:
    outcome = post(sender, receiver.url(f"/redirect/{code}?to=/ok"))
    assert outcome.status == 200
    assert outcome.delivered
    assert outcome.redirected_to == receiver.url("/ok")
    assert [seen.path for seen in receiver.seen] == [f"/redirect/{code}", "/ok"]
    again = receiver.seen[1]
    assert (again.method, again.body, again.headers["webhook-id"]) == ("POST", BODY, "evt_7")


def test_at_most_three_redirects_are_followed(receiver: Receiver, sender: Sender) -> None:
    outcome = post(sender, receiver.url("/hops/3"))
    assert (outcome.status, outcome.excerpt) == (200, "arrived")
    assert outcome.redirected_to == receiver.url("/hops/0")
    receiver.seen.clear()
    outcome = post(sender, receiver.url("/hops/4"))
    assert outcome.status == 307
    assert outcome.error == "too many redirects (more than 3)"
    assert not outcome.delivered
    assert [seen.path for seen in receiver.seen] == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://[::1]:{port}/ok", "::1 is a loopback address"),  # loopback, but not 127.0.0.1
        ("ftp://127.0.0.1/", "only http and https URLs are allowed, not ftp"),
    ],
)
def test_a_redirect_to_a_refused_target_is_not_followed(
    receiver: Receiver, sender: Sender, target: str, reason: str
) -> None:
    target = target.format(port=urlsplit(receiver.base).port)
    outcome = post(sender, receiver.url(f"/redirect/302?to={target}"))
    assert outcome.status == 302
    assert outcome.error == f"redirect to {target} refused: {reason}"
    assert outcome.redirected_to == target
    assert outcome.excerpt == "moved"
    assert not outcome.delivered
    assert [seen.path for seen in receiver.seen] == ["/redirect/302"]


def test_an_endless_answer_is_cut_short(receiver: Receiver, sender: Sender) -> None:
    outcome = post(sender, receiver.url("/endless"), timeout=10)
    assert outcome.status == 200
    assert outcome.excerpt == "y" * 1000
    assert outcome.duration_ms < 3000
    # The receiver sees the hang-up soon after BODY_LIMIT, long before its own limit.
    deadline = time.monotonic() + 3
    while not receiver.endless_sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert BODY_LIMIT <= receiver.endless_sent[0] < 64 * 1024 * 1024


@pytest.mark.parametrize(
    ("kind", "excerpt"),
    [
        ("latin1", "café"),
        ("broken", "ok \ufffd\ufffd!"),
        ("gzip", "[gzip-encoded answer not shown]"),
    ],
)
def test_excerpts_are_decoded_with_replacement(
    receiver: Receiver, sender: Sender, kind: str, excerpt: str
) -> None:
    outcome = post(sender, receiver.url(f"/bytes/{kind}"))
    assert (outcome.status, outcome.excerpt) == (200, excerpt)


def test_https_goes_through_the_guard_and_is_still_verified(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_certificate("localhost", cert, key)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    serving = serve(server_tls)
    receiver = next(serving)
    url = f"https://localhost:{urlsplit(receiver.base).port}/ok"
    try:
        with Sender(verify=ssl.create_default_context(cafile=str(cert))) as sender:
            outcome = post(sender, url, allowed=LOOPBACK)
            assert (outcome.status, outcome.error) == (200, "")
        # Without trusting that certificate the handshake fails: the guard connects
        # to the checked address, TLS still verifies the host named in the URL.
        with Sender() as sender:
            outcome = post(sender, url, allowed=LOOPBACK)
            assert outcome.status is None
            assert "CERTIFICATE_VERIFY_FAILED" in outcome.error
    finally:
        next(serving, None)
    assert [seen.path for seen in receiver.seen] == ["/ok"]


# The retry schedule that follows a failed attempt.

LOW, MIDDLE, HIGH = (lambda: 0.0), (lambda: 0.5), (lambda: 0.999999)


def delays(random: Any) -> list[float]:
    found = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        delay = next_delay(attempt, random=random)
        if delay is None:
            break
        found.append(delay)
    return found


def test_retries_span_more_than_a_day_then_stop() -> None:
    assert delays(MIDDLE) == list(SCHEDULE)
    # Even with every wait as short as the jitter allows, a day-long outage is covered.
    assert sum(delays(LOW)) >= 24 * 3600
    assert len(delays(LOW)) == MAX_ATTEMPTS - 1
    assert next_delay(MAX_ATTEMPTS - 1, random=MIDDLE) is not None
    assert next_delay(MAX_ATTEMPTS, random=MIDDLE) is None
    assert next_delay(MAX_ATTEMPTS + 5, retry_after="60", random=MIDDLE) is None
    with pytest.raises(ValueError):
        next_delay(0)
    assert tuple(sorted(SCHEDULE)) == SCHEDULE  # never sooner after more failures


def test_jitter_stays_within_twenty_percent() -> None:
    for attempt, nominal in enumerate(SCHEDULE, start=1):
        low, high = next_delay(attempt, random=LOW), next_delay(attempt, random=HIGH)
        assert low == pytest.approx(nominal * 0.8)
        assert high is not None and nominal * 1.19 < high <= nominal * 1.2
    spread = {next_delay(5) for _ in range(50)}  # the real random source
    assert len(spread) > 1
    assert all(d is not None and 1800 * 0.8 <= d <= 1800 * 1.2 for d in spread)


def test_retry_after_in_seconds_is_a_floor_capped_at_an_hour() -> None:
    assert next_delay(1, retry_after="120", random=MIDDLE) == 120
    assert next_delay(4, retry_after="120", random=MIDDLE) == 600  # never sooner than planned
    assert next_delay(2, retry_after="86400", random=MIDDLE) == RETRY_AFTER_CAP == 3600
    assert next_delay(9, retry_after="86400", random=MIDDLE) == 28800  # the cap is no ceiling
    for ignored in ("", "soon", "-5", "1.5"):
        assert next_delay(1, retry_after=ignored, random=MIDDLE) == 5


def test_retry_after_as_an_http_date() -> None:
    now = dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC)
    in_ten_minutes = format_datetime(now + dt.timedelta(minutes=10), usegmt=True)
    assert in_ten_minutes == "Wed, 02 Dec 2026 17:10:00 GMT"
    assert parse_retry_after(in_ten_minutes, now=now) == 600
    assert next_delay(1, retry_after=in_ten_minutes, random=MIDDLE, now=now) == 600
    past = format_datetime(now - dt.timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past, now=now) == 0
    assert next_delay(1, retry_after=past, random=MIDDLE, now=now) == 5
    assert parse_retry_after("Wed, 02 Dec 2026 17:10:00 -0000", now=now) == 600
    assert parse_retry_after("next tuesday", now=now) is None
    assert parse_retry_after(None) is None


def test_the_scale_setting_shrinks_every_delay(settings: Any) -> None:
    assert next_delay(11, random=MIDDLE) == 28800
    settings.GWM_WEBHOOK_RETRY_SCALE = 0.001
    assert next_delay(11, random=MIDDLE) == pytest.approx(28.8)
    assert next_delay(1, retry_after="120", random=MIDDLE) == pytest.approx(0.12)
    assert next_delay(MAX_ATTEMPTS, random=MIDDLE) is None
