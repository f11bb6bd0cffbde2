"""docs/examples/webhook_receiver.py, run for real, fed deliveries signed by gwm's signer.

The receiver is a separate process with its own signature check (stdlib only),
so these tests cross-check two implementations of the Standard Webhooks
scheme; its catch-up reads a feed served by a loopback HTTP server here, which
records what it was asked.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gwm.events.schemas import event_validate
from gwm.events.webhooks.signing import new_secret, signed_headers
from tests.events.live_gwm import LiveGwm, serving

RECEIVER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "webhook_receiver.py"
TOKEN = "gwm_reference-receiver-test"


def event(
    seq: int, previous: int | None, name: str = "web1", cluster: str = "prod", **changes: Any
) -> dict[str, Any]:
    """An instance event as gwm renders it (checked against gwm's schema)."""
    made = {
        "id": f"evt_{seq}",
        "seq": seq,
        "previous_seq": previous,
        "type": "instance.status_changed" if changes else "instance.updated",
        "schema_version": 1,
        "time": "2026-12-02T17:00:00.123456Z",
        "resource": {
            "kind": "instance",
            "cluster": cluster,
            "name": name,
            "url": f"/api/v1/clusters/{cluster}/instances/{name}",
        },
        "changes": {key: {"before": None, "after": value} for key, value in changes.items()}
        or {"memory": {"before": 512, "after": 1024}},
        "cause": {"job": None, "job_url": None, "user": None},
    }
    event_validate(made)
    return made


# -- the feed the receiver catches up from ---------------------------------------------


@dataclass
class FakeFeed:
    """GET /api/v1/changes on loopback: answers ``pages`` in turn, records each call."""

    pages: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(path)
        self.calls.append(
            {
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "authorization": headers.get("authorization", ""),
            }
        )
        return self.pages.pop(0) if self.pages else (200, page([]))


def page(items: list[dict[str, Any]], *, more: bool = False) -> dict[str, Any]:
    last = items[-1]["seq"] if items else 0
    return {"items": items, "next_since": last, "last_seq": last, "floor": 0, "more": more}


@pytest.fixture
def feed() -> Iterator[FakeFeed]:
    fake = FakeFeed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body = fake.answer(self.path, headers)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


# -- the receiver, a process of its own ---------------------------------------------------


class Running:
    def __init__(self, process: subprocess.Popen[str], secret: str) -> None:
        self.process = process
        self.secret = secret
        self.lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on "), first
        self.url = first.split()[-1]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def post(self, body: dict[str, Any], *, secrets: list[str] | None = None, **sign: Any) -> Any:
        raw = json.dumps(body).encode()
        headers = signed_headers(
            secrets or [self.secret],
            sign.get("msg_id", body["id"]),
            sign.get("timestamp", int(time.time())),
            sign.get("signed_body", raw),
        )
        if "header_id" in sign:
            headers["webhook-id"] = sign["header_id"]
        return httpx.post(self.url, content=raw, headers=headers, timeout=10)

    def output(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """What it printed since the last call (it prints before answering)."""
        found, deadline = [], time.monotonic() + wait
        while True:
            try:
                found.append(json.loads(self.lines.get(timeout=0.02)))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return found


@pytest.fixture
def receiver(feed: FakeFeed, tmp_path: Path) -> Iterator[Running]:
    old, new = new_secret(), new_secret()
    env = {
        **os.environ,
        "GWM_WEBHOOK_SECRETS": f"{new} {old}",
        "GWM_URL": feed.url,
        "GWM_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0", "--state", str(tmp_path / "state.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    running = Running(process, new)
    running.old_secret = old  # type: ignore[attr-defined]
    yield running
    process.terminate()
    process.wait(timeout=10)


def handled(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["handled"], line["via"]) for line in lines if "handled" in line]


def test_the_receiver_imports_the_standard_library_only() -> None:
    tree = ast.parse(RECEIVER.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    roots = {name.split(".")[0] for name in imported}
    assert roots and roots <= set(sys.stdlib_module_names) | {"__future__"}, roots


def test_a_signed_event_is_handled_and_a_forged_one_refused(receiver: Running) -> None:
    assert receiver.output(0.05) == []
    good = receiver.post(event(5, None))
    assert good.status_code == 200, good.text
    assert handled(receiver.output()) == [("evt_5", "webhook")]

    unknown = receiver.post(event(6, 5), secrets=[new_secret()])
    assert unknown.status_code == 401
    tampered = receiver.post(event(7, 5), signed_body=b'{"id": "evt_7"}')
    assert tampered.status_code == 401
    moved_id = receiver.post(event(8, 5), msg_id="evt_9", header_id="evt_8")
    assert moved_id.status_code == 401  # the id is part of what is signed
    other_body = receiver.post(event(8, 5), msg_id="evt_9")
    assert other_body.status_code == 400  # signed, but the body is another event's
    stale = receiver.post(event(10, 5), timestamp=int(time.time()) - 3600)
    assert stale.status_code == 400
    assert handled(receiver.output()) == []


def test_a_rotated_secret_verifies_with_either(receiver: Running) -> None:
    # gwm signs with every secret still valid: the new one first, the old until it expires.
    stranger = new_secret()
    both = receiver.post(event(11, None), secrets=[receiver.secret, stranger])
    old_only = receiver.post(event(12, 11), secrets=[stranger, receiver.old_secret])  # type: ignore[attr-defined]
    assert (both.status_code, old_only.status_code) == (200, 200)
    assert handled(receiver.output()) == [("evt_11", "webhook"), ("evt_12", "webhook")]


def test_a_duplicate_id_is_accepted_once_and_not_handled_again(receiver: Running) -> None:
    first = receiver.post(event(20, None))
    assert handled(receiver.output()) == [("evt_20", "webhook")]
    # A retry of the same event (a new attempt: a new timestamp, the same id).
    again = receiver.post(event(20, None), timestamp=int(time.time()) + 1)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["detail"] == "duplicate"
    assert handled(receiver.output()) == []


def test_a_gap_is_caught_up_from_the_feed_before_the_new_event(
    receiver: Running, feed: FakeFeed
) -> None:
    receiver.post(event(30, None))
    receiver.post(event(31, None, name="db1"))  # another resource: no gap for web1
    assert handled(receiver.output()) == [("evt_30", "webhook"), ("evt_31", "webhook")]
    assert feed.calls == []

    # evt_40 follows 35, which this receiver never got, nor 33 before it; 34 is a web1 of
    # another cluster (the receiver asks for cluster=prod, and checks the key anyway).
    feed.pages = [
        (200, page([event(33, 30), event(34, None, cluster="staging")], more=True)),
        (200, page([event(35, 33)])),
    ]
    answer = receiver.post(event(40, 35))
    assert answer.status_code == 200, answer.text
    assert handled(receiver.output()) == [
        ("evt_33", "catch-up"),
        ("evt_35", "catch-up"),
        ("evt_40", "webhook"),
    ]
    assert feed.calls[0] == {
        "path": "/api/v1/changes",
        "query": {"since": "30", "limit": "100", "resource": "instance:web1", "cluster": "prod"},
        "authorization": f"Bearer {TOKEN}",
    }
    assert feed.calls[1]["query"]["since"] == "34"
    assert len(feed.calls) == 2

    # Caught up: the next event follows on, and nothing is asked of the feed.
    calls = len(feed.calls)
    receiver.post(event(41, 40))
    assert handled(receiver.output()) == [("evt_41", "webhook")]
    assert len(feed.calls) == calls


def test_a_failed_catch_up_is_a_503_so_gwm_sends_the_event_again(
    receiver: Running, feed: FakeFeed
) -> None:
    receiver.post(event(50, None))
    receiver.output()
    feed.pages = [(503, {"title": "unavailable"})]
    first = receiver.post(event(60, 55))
    assert first.status_code == 503
    assert handled(receiver.output()) == []  # not handled, not remembered as seen

    feed.pages = [(200, page([event(55, 50)]))]
    retry = receiver.post(event(60, 55), timestamp=int(time.time()) + 1)
    assert retry.status_code == 200
    assert handled(receiver.output()) == [("evt_55", "catch-up"), ("evt_60", "webhook")]


def test_purged_history_makes_it_relist_and_go_on(receiver: Running, feed: FakeFeed) -> None:
    receiver.post(event(70, None))
    receiver.output()
    feed.pages = [(410, {"code": "cursor_gone", "floor": 75})]
    answer = receiver.post(event(80, 72))
    assert answer.status_code == 200
    lines = receiver.output()
    assert {"relist": "instance:prod/web1", "url": "/api/v1/clusters/prod/instances/web1"} in lines
    assert handled(lines) == [("evt_80", "webhook")]


def test_what_it_saw_survives_a_restart(receiver: Running, feed: FakeFeed, tmp_path: Path) -> None:
    receiver.post(event(90, None))
    receiver.output()
    receiver.process.terminate()
    receiver.process.wait(timeout=10)
    env = {
        **os.environ,
        "GWM_WEBHOOK_SECRETS": receiver.secret,
        "GWM_URL": feed.url,
        "GWM_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0", "--state", str(tmp_path / "state.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        again = Running(process, receiver.secret)
        assert again.post(event(90, None)).json()["detail"] == "duplicate"
        feed.pages = [(200, page([event(91, 90)]))]
        again.post(event(95, 91))
        assert handled(again.output()) == [("evt_91", "catch-up"), ("evt_95", "webhook")]
        assert feed.calls[-1]["query"]["since"] == "90"
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- against gwm itself: its deliveries, and its feed for the catch-up --------------------


def _change(cluster: Any, name: str, status: str) -> int:
    from django.db import transaction

    from gwm.events.services import ChangeRecord, changes_record

    with transaction.atomic():
        [row] = changes_record(
            cluster_id=cluster.pk,
            cluster_name=cluster.name,
            records=[ChangeRecord("instance", name, "updated", ["status"], {"status": status})],
        )
    return row.seq


def _deliver(until: Any, timeout: float = 15.0) -> None:
    from gwm.events.webhooks.deliver import deliver_due
    from gwm.events.webhooks.fanout import fanout

    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "gwm did not deliver in time"
        fanout()
        if not deliver_due():
            time.sleep(0.02)


@pytest.fixture
def live(transactional_db: None) -> Iterator[LiveGwm]:
    with serving() as running:
        yield running


@pytest.mark.django_db(transaction=True)
def test_gwm_delivers_to_it_and_its_catch_up_reads_gwms_feed(
    live: LiveGwm, admin_user: Any, settings: Any, tmp_path: Path
) -> None:
    from gwm.accounts.services.tokens import token_create
    from gwm.clusters.models import Cluster
    from gwm.events.models import Delivery

    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.GWM_WEBHOOK_TIMEOUT_SECONDS = 5.0
    prod = Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")
    _, token = token_create(actor=None, user=admin_user, name="receiver")
    gwm = live.client(token)
    created = gwm.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/", "types": []})
    assert created.status_code == 201, created.text
    webhook, secret = created.json()["id"], created.json()["secret"]

    env = {**os.environ, "GWM_WEBHOOK_SECRETS": secret, "GWM_URL": live.url}
    env["GWM_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0", "--state", str(tmp_path / "state.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        receiver = Running(process, secret)
        assert gwm.patch(f"/api/v1/webhooks/{webhook}", json={"url": receiver.url}).is_success
        delivered = Delivery.objects.filter(webhook_id=webhook, status="delivered")

        first = _change(prod, "web1", "STOPPED")
        _deliver(lambda: delivered.count() == 1)
        assert handled(receiver.output()) == [(f"evt_{first}", "webhook")]

        # Paused and resumed, the webhook goes on from the newest change: the one made
        # meanwhile never reaches the receiver as a delivery. The next one names it.
        assert gwm.patch(f"/api/v1/webhooks/{webhook}", json={"active": False}).is_success
        missed = _change(prod, "web1", "RUNNING")
        assert gwm.patch(f"/api/v1/webhooks/{webhook}", json={"active": True}).is_success
        latest = _change(prod, "web1", "STOPPED")
        _deliver(lambda: delivered.count() == 2)
        assert handled(receiver.output()) == [
            (f"evt_{missed}", "catch-up"),
            (f"evt_{latest}", "webhook"),
        ]

        # A redelivery is the same id again: taken, not handled twice.
        last = delivered.order_by("-seq").first()
        assert last is not None
        again = gwm.post(f"/api/v1/webhooks/{webhook}/deliveries/{last.pk}/redeliver")
        assert again.status_code == 202, again.text
        _deliver(lambda: delivered.count() == 3)
        assert handled(receiver.output()) == []
        assert '"duplicate"' in delivered.order_by("-pk").first().response_excerpt  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(timeout=10)
