"""The tracker's guarantees under fire, in the spirit of etcd's watch tests.

Writers change things concurrently (API writes through a real API process, sync rounds
of a simulated cluster, gwm jobs that end in real worker processes, and direct service
writes), while three kinds of reader follow: a feed pager (``since`` + ``wait``), a
stream reader that is cut off again and again and resumes with ``Last-Event-ID``, and a
webhook receiver on loopback. In the middle a worker is SIGKILLed (another takes over)
and the API process is killed and started again. Afterwards every reader holds the
same ordered sequence: no gap, no duplicate (webhooks: at least once, each repeat the
same event under the same id), each resource's events in order; and the feed read
from any cursor is the matching suffix. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections, transaction

from gwm.accounts.services.tokens import token_create
from gwm.events.models import Change
from gwm.events.services import ChangeRecord, changes_record, last_seq
from gwm.events.webhooks.signing import verify
from gwm.kit.enqueue import ring
from tests.clusters.helpers import full_sync, register
from tests.operations.distributed import ROOT, distributed_mode, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("broker")]

WEBHOOKS_TASK = "events.deliver_webhooks"
RUN_SECONDS = 12.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiProcess:
    """gwm's API as its own process (uvicorn), killed and restarted by the test."""

    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        argv = [
            *guard,
            sys.executable,
            "-m",
            "uvicorn",
            "gwm.asgi:application",
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--lifespan=off",
            "--log-level=warning",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        until(self._answers, timeout=30, interval=0.1, what="the API process to answer")

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code < 500
        return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Received:
    """What the webhook receiver got, in arrival order: (webhook-id, body)."""

    secret: list[str] = field(default_factory=list)
    arrivals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _receiver(received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if not verify(received.secret, headers, body):
                with received.lock:
                    received.bad_signatures += 1
                self.send_response(400)
                self.end_headers()
                return
            # Now and then answer 500: the delivery is retried, under the same id.
            if random.random() < 0.05:
                self.send_response(500)
                self.end_headers()
                return
            with received.lock:
                received.arrivals.append((headers["webhook-id"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Readers:
    """The feed pager and the stream reader, each in its own thread, both tolerant of
    the API process going away (they retry, as a client would)."""

    def __init__(self, api: ApiProcess, token: str, start: int) -> None:
        self.api, self.start = api, start
        self.headers = {"Authorization": f"Bearer {token}"}
        self.feed: list[int] = []
        self.stream: list[int] = []
        self.stream_types: dict[int, str] = {}
        self.resumes = 0
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._page, daemon=True),
            threading.Thread(target=self._follow, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _page(self) -> None:
        since = self.start
        while not self.stop.is_set():
            try:
                answer = httpx.get(
                    f"{self.api.base}/api/v1/changes",
                    params={"since": since, "limit": 200, "wait": 1},
                    headers=self.headers,
                    timeout=10,
                )
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if answer.status_code != 200:
                time.sleep(0.2)
                continue
            page = answer.json()
            self.feed += [event["seq"] for event in page["items"]]
            since = page["next_since"]

    def _follow(self) -> None:
        last = self.start
        while not self.stop.is_set():
            cut_after = random.randint(5, 60)  # events until this connection is cut
            try:
                with httpx.stream(
                    "GET",
                    f"{self.api.base}/api/v1/changes/stream",
                    headers={**self.headers, "Last-Event-ID": str(last)},
                    timeout=httpx.Timeout(10, read=5),
                ) as response:
                    if response.status_code != 200:
                        time.sleep(0.2)
                        continue
                    event_id = None
                    for line in response.iter_lines():
                        if line.startswith("id:"):
                            event_id = int(line[3:].strip())
                        elif line.startswith("data:") and event_id is not None:
                            self.stream.append(event_id)
                            self.stream_types[event_id] = json.loads(line[5:])["type"]
                            last, event_id = self.stream[-1], None
                            cut_after -= 1
                            if cut_after <= 0 or self.stop.is_set():
                                break  # a forced disconnect, mid-stream
            except httpx.HTTPError:
                time.sleep(0.2)
            self.resumes += 1


def _write_directly(stop: threading.Event, cluster: Any) -> None:
    """A service writer: many small commits on a handful of resources."""
    try:
        counter = 0
        while not stop.is_set():
            counter += 1
            name = f"n{counter % 4}"
            with transaction.atomic():
                changes_record(
                    cluster_id=cluster.pk,
                    cluster_name=cluster.name,
                    records=[
                        ChangeRecord("network", name, "updated", ["tags"], {"tags": [str(counter)]})
                    ],
                )
            time.sleep(0.01)
    finally:
        connections.close_all()


def _sync_rounds(stop: threading.Event, cluster: Any, running: Any) -> None:
    """Sync rounds while the simulated cluster changes "outside gwm"."""
    from tests.conftest import sim_admin

    try:
        names = sorted(running.sim.state.instances)
        turn = 0
        while not stop.is_set():
            turn += 1
            name = names[turn % len(names)]
            with contextlib.suppress(Exception):
                sim_admin(
                    running,
                    "POST",
                    "exec",
                    {
                        "client": "gnt-instance",
                        "command": "add-tags",
                        "name": name,
                        "params": {"tags": [f"t{turn}"]},
                    },
                )
            full_sync(cluster)
            time.sleep(0.2)
    finally:
        connections.close_all()


def _api_writes(stop: threading.Event, api: ApiProcess, token: str, instances: list[str]) -> None:
    """Jobs through the API process (they end in the workers) and cluster changes."""
    headers = {"Authorization": f"Bearer {token}"}
    turn = 0
    while not stop.is_set():
        turn += 1
        with contextlib.suppress(httpx.HTTPError):
            if turn % 2:
                httpx.patch(
                    f"{api.base}/api/v1/clusters/sim",
                    json={"description": f"turn {turn}"},
                    headers=headers,
                    timeout=10,
                )
            else:
                instance = instances[turn % len(instances)]
                httpx.post(
                    f"{api.base}/api/v1/clusters/sim/instances/{instance}/actions",
                    json={"action": "reboot"},
                    headers=headers,
                    timeout=10,
                )
        time.sleep(0.15)


@pytest.fixture
def distributed(tmp_path: Path) -> Iterator[Any]:
    yield from distributed_mode(logs=tmp_path, lease_seconds=5)


def test_every_reader_sees_the_same_ordered_history_through_kills_and_restarts(
    simulator, admin_user, distributed, tmp_path, monkeypatch
) -> None:
    from tests.operations.distributed import database_url

    monkeypatch.setenv("GWM_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("GWM_WEBHOOK_RETRY_SCALE", "0.001")
    monkeypatch.setenv("GWM_WEBHOOK_TIMEOUT_SECONDS", "2")
    running = simulator(nodes=2, instances=6, time_scale=0.02, wait_timeout=1.0)
    cluster = register(running, name="sim", fast_interval=3600, runtime_interval=3600)
    full_sync(cluster)
    _, token = token_create(actor=None, user=admin_user, name="robustness")
    instances = sorted(running.sim.state.instances)
    distributed.start_worker(concurrency=4)

    env = dict(os.environ)
    for variable in ("PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST"):
        env.pop(variable, None)
    env.update(
        DJANGO_SETTINGS_MODULE="gwm.settings",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=distributed.broker,
        GWM_CELERY_QUEUE=distributed.queue,
        GWM_STREAM_HEARTBEAT_SECONDS="0.5",
        GWM_LOG_LEVEL="WARNING",
    )
    api = ApiProcess(env, _free_port(), tmp_path / "api.log")
    api.start()

    received = Received()
    receiver = _receiver(received)
    answer = httpx.post(
        f"{api.base}/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{receiver.server_port}/hook"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    received.secret.append(answer.json()["secret"])
    start = last_seq()

    readers = Readers(api, token, start)
    stop = threading.Event()
    writers = [
        threading.Thread(target=_write_directly, args=(stop, cluster), daemon=True),
        threading.Thread(target=_sync_rounds, args=(stop, cluster, running), daemon=True),
        threading.Thread(target=_api_writes, args=(stop, api, token, instances), daemon=True),
    ]
    for writer in writers:
        writer.start()
    try:
        time.sleep(RUN_SECONDS / 3)
        distributed.workers[0].kill()  # mid-delivery, mid-job: the next one takes over
        distributed.start_worker(concurrency=4)
        time.sleep(RUN_SECONDS / 3)
        api.kill()  # readers lose their connections; writes through it fail meanwhile
        api.start()
        time.sleep(RUN_SECONDS / 3)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=30)

    final = last_seq()
    # The jobs the API started end in the workers after the writers stopped: wait for
    # the log to be still, then for every reader to reach its end.
    until(lambda: _settled(final_check=final), timeout=60, what="the log to settle")
    final = last_seq()
    expected = list(
        Change.objects.filter(seq__gt=start, seq__lte=final)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    assert len(expected) > 200, "the run made too few changes to prove anything"

    def delivered() -> bool:
        ring(WEBHOOKS_TASK)  # beat's tick, played by the test (no beat runs here)
        with received.lock:
            return {int(i.removeprefix("evt_")) for i, _ in received.arrivals} >= set(expected)

    until(lambda: readers.feed[-1:] == [final], timeout=60, what="the feed reader")
    until(lambda: readers.stream[-1:] == [final], timeout=60, what="the stream reader")
    until(delivered, timeout=90, interval=1, what="the webhook receiver")
    readers.stop.set()
    api.kill()
    receiver.shutdown()

    assert readers.feed == expected, "the feed reader saw a gap or a duplicate"
    assert readers.stream == expected, "the stream reader saw a gap or a duplicate"
    assert readers.resumes >= 3, "the stream was never cut: resuming was not tested"
    assert received.bad_signatures == 0
    by_id: dict[str, dict[str, Any]] = {}
    order: dict[str, list[int]] = defaultdict(list)
    for webhook_id, body in received.arrivals:
        assert webhook_id == body["id"] == f"evt_{body['seq']}"
        if webhook_id in by_id:  # at least once: a repeat is the same event
            assert by_id[webhook_id] == body
            continue
        by_id[webhook_id] = body
        resource = body["resource"]
        order[f"{resource['kind']}:{resource['cluster']}/{resource['name']}"].append(body["seq"])
    assert {int(i.removeprefix("evt_")) for i in by_id} == set(expected) | {
        int(i.removeprefix("evt_")) for i in by_id if int(i.removeprefix("evt_")) > final
    }
    for key, seqs in order.items():
        assert seqs == sorted(seqs), f"{key}'s events arrived out of order: {seqs}"
        # previous_seq chains each resource's events: the receiver can tell a gap.
    for body in by_id.values():
        if body["previous_seq"] is not None and body["previous_seq"] > start:
            assert f"evt_{body['previous_seq']}" in by_id
    # Resumable from any cursor: the feed from there is the rest of the same history.
    headers = {"Authorization": f"Bearer {token}"}
    from django.test import Client

    client = Client(headers=headers)
    for cursor in random.sample(expected, 5):
        rest: list[int] = []
        since = cursor
        while True:
            page = client.get(f"/api/v1/changes?since={since}&limit=1000").json()
            rest += [event["seq"] for event in page["items"] if event["seq"] <= final]
            if not page["more"] or page["next_since"] >= final:
                break
            since = page["next_since"]
        assert rest == expected[expected.index(cursor) + 1 :]


def _settled(final_check: int) -> bool:
    """True once no change was written for a second (the API's jobs have ended)."""
    before = last_seq()
    time.sleep(1.0)
    return last_seq() == before
