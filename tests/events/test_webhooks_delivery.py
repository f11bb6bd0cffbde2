"""Webhook deliveries end to end: changes written through the change log, fanned out,
signed and POSTed over real HTTP to receivers on loopback, as a receiver sees them.

The fan-out and the sender run in the test's thread (``fanout()``, ``deliver_due()``),
except in the last tests: gwm's embedded workers deliver by themselves, and a receiver in
another process takes 2,000 deliveries to measure the rate. Retry delays are scaled down
(GWM_WEBHOOK_RETRY_SCALE) so the day-long schedule runs in moments.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster, Instance
from gwm.events.models import Delivery, Webhook
from gwm.events.render import THIN_KEYS
from gwm.events.services import ChangeRecord, changes_record
from gwm.events.webhooks import services
from gwm.events.webhooks.deliver import deliver_due
from gwm.events.webhooks.fanout import fanout
from gwm.events.webhooks.signing import verify

pytestmark = pytest.mark.django_db

#: What a receiver answers to one request: status, headers, seconds to wait first.
Answer = tuple[int, dict[str, str], float]


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes
    arrived: float
    answered: float = 0.0

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def name(self) -> str:
        return str(self.event["resource"]["name"])


@dataclass
class Receiver:
    url: str
    seen: list[Seen] = field(default_factory=list)
    answer: Callable[[Seen], Answer] = lambda seen: (200, {}, 0.0)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        return [seen.headers["webhook-id"] for seen in self.seen]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        seen = Seen(headers, body, time.monotonic())
        with self.receiver.lock:
            self.receiver.seen.append(seen)
            status, extra, delay = self.receiver.answer(seen)
        time.sleep(delay)
        try:
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # gwm gave up waiting (a timeout test): nobody to answer
        seen.answered = time.monotonic()


@pytest.fixture
def serve() -> Iterator[Callable[..., Receiver]]:
    """Start receivers (on 127.0.0.1, or another loopback address); stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(host: str = "127.0.0.1") -> Receiver:
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        receiver = Receiver(f"http://{host}:{server.server_address[1]}/hook")
        server.RequestHandlerClass = type("Bound", (Handler,), {"receiver": receiver})
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(serve: Callable[..., Receiver]) -> Receiver:
    return serve()


@pytest.fixture(autouse=True)
def _fast(settings: Any) -> None:
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.GWM_WEBHOOK_RETRY_SCALE = 0.0001  # 5 s → 0.5 ms ... 8 h → 2.9 s
    settings.GWM_WEBHOOK_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def prod() -> Cluster:
    return Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")


def _change(cluster: Cluster | None, name: str, **values: Any) -> int:
    """One change of an instance through the change log (its status, unless told); its seq."""
    values = values or {"status": "STOPPED"}
    with transaction.atomic():
        [row] = changes_record(
            cluster_id=cluster.pk if cluster else None,
            cluster_name=cluster.name if cluster else "",
            records=[ChangeRecord("instance", name, "updated", sorted(values), values)],
        )
    return row.seq


def _subscribe(client: Client, url: str, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/webhooks", {"url": url, **body}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _run(until: Callable[[], bool], timeout: float = 10.0) -> None:
    """Fan out and deliver, as the worker's task does, until ``until()`` holds after a round."""
    deadline = time.monotonic() + timeout
    while True:
        fanout()
        attempted = deliver_due()
        if until():
            return
        assert time.monotonic() < deadline, "the deliveries did not get there in time"
        if not attempted:
            time.sleep(0.01)


def _settled(webhook_id: int) -> Callable[[], bool]:
    return lambda: not Delivery.objects.filter(webhook_id=webhook_id, status="pending").exists()


def _log(client: Client, webhook_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert answer.status_code == 200, answer.content
    return list(reversed(answer.json()["items"]))  # oldest first


def _feed(client: Client, since: int = 0) -> list[dict[str, Any]]:
    return list(client.get(f"/api/v1/changes?since={since}&limit=1000").json()["items"])


def test_a_delivery_is_the_feeds_event_signed_for_the_receiver(api, receiver, prod) -> None:
    hook = _subscribe(api, receiver.url)
    seq = _change(prod, "web1")
    assert receiver.seen == []
    _run(lambda: len(receiver.seen) == 1)

    [seen] = receiver.seen
    assert seen.headers["webhook-id"] == f"evt_{seq}"
    assert seen.headers["content-type"] == "application/json"
    assert verify([hook["secret"]], seen.headers, seen.body)
    assert not verify(["whsec_" + "A" * 43 + "="], seen.headers, seen.body)
    assert seen.event == _feed(api, seq - 1)[0]  # the very event the feed serves
    _run(_settled(hook["id"]))
    [entry] = _log(api, hook["id"])
    assert (entry["status"], entry["attempts"], entry["event_id"]) == ("delivered", 1, f"evt_{seq}")
    assert entry["response"] == {"status": 200, "excerpt": "ok"}
    assert entry["request"]["body"] == seen.body.decode()
    assert entry["request"]["headers"]["webhook-signature"] == seen.headers["webhook-signature"]
    assert entry["duration_ms"] > 0 and entry["ordering_key"] == "instance:prod/web1"
    health = api.get(f"/api/v1/webhooks/{hook['id']}").json()["health"]
    assert health["state"] == "healthy" and health["last_success_at"]
    assert health["backlog"] == 0 and health["p95_latency_ms"] == entry["duration_ms"]


def test_after_a_rotation_both_secrets_sign(api, receiver, prod) -> None:
    hook = _subscribe(api, receiver.url)
    answer = api.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", {}, "application/json")
    new, old = (entry["secret"] for entry in answer.json()["secrets"])
    assert old == hook["secret"]
    _change(prod, "web1")
    _run(lambda: len(receiver.seen) == 1)
    seen = receiver.seen[0]
    assert len(seen.headers["webhook-signature"].split()) == 2
    assert verify([old], seen.headers, seen.body) and verify([new], seen.headers, seen.body)


def test_a_500_is_retried_with_the_same_id_until_it_is_taken(api, receiver, prod) -> None:
    receiver.answer = lambda seen: (500, {}, 0.0) if len(receiver.seen) <= 2 else (200, {}, 0.0)
    hook = _subscribe(api, receiver.url)
    seq = _change(prod, "web1")
    fanout()
    deliver_due(limit=1)
    assert len(receiver.seen) == 1
    health = api.get(f"/api/v1/webhooks/{hook['id']}").json()["health"]
    assert health["state"] == "retrying" and health["failing_since"] and health["backlog"] == 1

    _run(_settled(hook["id"]))
    assert receiver.ids() == [f"evt_{seq}"] * 3
    assert all(verify([hook["secret"]], seen.headers, seen.body) for seen in receiver.seen)
    [entry] = _log(api, hook["id"])
    assert (entry["status"], entry["attempts"]) == ("delivered", 3)
    health = api.get(f"/api/v1/webhooks/{hook['id']}").json()["health"]
    assert health["state"] == "healthy" and health["failing_since"] is None


def test_a_timeout_is_retried_with_the_same_id(api, receiver, prod, settings) -> None:
    settings.GWM_WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.answer = lambda seen: (200, {}, 1.0 if len(receiver.seen) == 1 else 0.0)
    hook = _subscribe(api, receiver.url)
    seq = _change(prod, "web1")
    fanout()
    deliver_due(limit=1)
    [entry] = _log(api, hook["id"])
    assert entry["status"] == "pending" and "timed out" in entry["error"]
    _run(_settled(hook["id"]))
    assert receiver.ids() == [f"evt_{seq}"] * 2
    assert _log(api, hook["id"])[0]["status"] == "delivered"


def test_410_disables_the_endpoint_and_says_so_in_the_feed(api, serve, receiver, prod) -> None:
    watcher_receiver = serve()
    watcher = _subscribe(api, watcher_receiver.url, types=["webhook.*"])
    receiver.answer = lambda seen: (410, {}, 0.2 if seen.name == "web2" else 0.0)
    hook = _subscribe(api, receiver.url, types=["instance.*"])
    mark = _change(prod, "web1") - 1
    _change(prod, "web2")
    _run(lambda: Webhook.objects.get(pk=hook["id"]).state == "disabled")

    got = api.get(f"/api/v1/webhooks/{hook['id']}").json()
    assert got["active"] is False and got["health"]["state"] == "disabled"
    assert "410" in got["health"]["reason"] and got["health"]["disabled_at"]
    assert {entry["status"] for entry in _log(api, hook["id"])} == {"failed"}
    disabled = [e for e in _feed(api, mark) if e["type"] == "webhook.disabled"]
    assert [e["resource"] for e in disabled] == [
        {"kind": "webhook", "cluster": None, "name": str(hook["id"]), "url": got["api_url"]}
    ]
    assert disabled[0]["changes"]["state"] == {"before": "healthy", "after": "disabled"}
    # The owner's other webhook hears of it; the disabled one hears nothing more.
    _run(lambda: len(watcher_receiver.seen) == 1)
    assert watcher_receiver.seen[0].event["type"] == "webhook.disabled"
    before = len(receiver.seen)
    _change(prod, "web3")
    fanout()
    deliver_due(limit=1)
    assert len(receiver.seen) == before
    assert Webhook.objects.get(pk=watcher["id"]).active


def test_failing_for_more_than_a_day_disables_the_endpoint(api, receiver, prod) -> None:
    receiver.answer = lambda seen: (500, {}, 0.0)
    hook = _subscribe(api, receiver.url)
    Webhook.objects.filter(pk=hook["id"]).update(
        failing_since=timezone.now() - timezone.timedelta(days=1, minutes=1)
    )
    _change(prod, "web1")
    fanout()
    deliver_due(limit=1)
    webhook = Webhook.objects.get(pk=hook["id"])
    assert (webhook.active, webhook.state) == (False, "disabled")
    assert "more than a day" in webhook.disabled_reason


def test_the_schedule_gives_up_after_its_last_attempt(
    api, receiver, prod, settings, monkeypatch
) -> None:
    settings.GWM_WEBHOOK_RETRY_SCALE = 0.000005  # the whole schedule in about half a second
    # Not disabled first for failing all day: the endpoint's other resources are fine, say.
    monkeypatch.setattr(services, "DISABLE_AFTER", timedelta(days=365))
    receiver.answer = lambda seen: (500, {}, 0.0)
    hook = _subscribe(api, receiver.url)
    Webhook.objects.filter(pk=hook["id"]).update(failing_since=None)
    _change(prod, "web1")
    _run(_settled(hook["id"]))
    [entry] = _log(api, hook["id"])
    assert (entry["status"], entry["attempts"]) == ("failed", 12)
    assert entry["error"].startswith("gave up after 12 attempts")
    assert len(receiver.seen) == 12


def test_retry_after_is_honoured(api, receiver, prod, settings) -> None:
    settings.GWM_WEBHOOK_RETRY_SCALE = 0.1  # the first retry would come 0.4 to 0.6 s later
    receiver.answer = lambda seen: (503, {"Retry-After": "30"}, 0.0)
    hook = _subscribe(api, receiver.url)
    _change(prod, "web1")
    fanout()
    deliver_due(limit=1)
    delivery = Delivery.objects.get(webhook_id=hook["id"])
    assert delivery.attempted_at is not None
    waited = (delivery.next_attempt_at - delivery.attempted_at).total_seconds()
    assert 2.9 < waited < 3.5  # 30 s asked, scaled like every delay
    assert deliver_due() == 0 and len(receiver.seen) == 1  # not before it is due


def test_each_resource_keeps_its_order_and_a_slow_one_holds_back_no_other(
    api, receiver, prod
) -> None:
    receiver.answer = lambda seen: (200, {}, 0.4 if seen.name == "slow" else 0.0)
    hook = _subscribe(api, receiver.url)
    seqs: dict[str, list[int]] = {"slow": [], "fast": []}
    for n in range(3):
        for name in ("slow", "fast"):
            seqs[name].append(_change(prod, name, status=f"S{n}"))
    _run(_settled(hook["id"]))

    by_name = {name: [s for s in receiver.seen if s.name == name] for name in seqs}
    for name, expected in seqs.items():
        assert [seen.event["seq"] for seen in by_name[name]] == expected
    slow, fast = by_name["slow"], by_name["fast"]
    # One at a time per resource: the next is sent only once the one before was answered.
    assert all(later.arrived >= earlier.answered for earlier, later in itertools.pairwise(slow))
    # And the slow one held nobody else: the fast resource was done before its first answer.
    assert max(seen.arrived for seen in fast) < slow[0].answered


def _by_seq(seen: list[Seen]) -> list[Seen]:
    """Requests by event (web1's and web2's go out side by side, in either order)."""
    return sorted(seen, key=lambda one: int(one.event["seq"]))


def test_redelivery_and_replay_send_history_again_with_the_original_ids(
    api, receiver, prod
) -> None:
    hook = _subscribe(api, receiver.url)
    seqs = [_change(prod, name) for name in ("web1", "web2", "web1")]
    _run(_settled(hook["id"]))
    first = _by_seq(receiver.seen)
    assert [seen.event["seq"] for seen in first] == seqs

    original = next(entry for entry in _log(api, hook["id"]) if entry["seq"] == seqs[0])
    path = f"/api/v1/webhooks/{hook['id']}/deliveries/{original['id']}/redeliver"
    again = api.post(path)
    assert again.status_code == 202, again.content
    assert again.json()["replay"] and again.json()["event_id"] == original["event_id"]
    _run(lambda: len(receiver.seen) == 4)
    assert receiver.seen[3].headers["webhook-id"] == first[0].headers["webhook-id"]
    assert receiver.seen[3].body == first[0].body

    answer = api.post(
        f"/api/v1/webhooks/{hook['id']}/replay", {"since": seqs[0] - 1}, "application/json"
    )
    assert answer.status_code == 202, answer.content
    assert answer.json() == {"queued": 3, "next_since": seqs[-1], "more": False}
    _run(lambda: len(receiver.seen) == 7)
    replayed = receiver.seen[4:]
    assert [seen.headers["webhook-id"] for seen in _by_seq(replayed)] == [
        seen.headers["webhook-id"] for seen in first
    ]
    assert [seen.event for seen in _by_seq(replayed)] == [seen.event for seen in first]
    # web1's two events in their order again.
    assert [seen.event["seq"] for seen in replayed if seen.name == "web1"] == [seqs[0], seqs[2]]
    assert sum(entry["replay"] for entry in _log(api, hook["id"])) == 4


def test_a_pending_delivery_is_not_redelivered(api, receiver, prod) -> None:
    receiver.answer = lambda seen: (500, {}, 0.0)
    hook = _subscribe(api, receiver.url)
    _change(prod, "web1")
    fanout()
    [entry] = _log(api, hook["id"])
    answer = api.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{entry['id']}/redeliver")
    assert answer.status_code == 409 and answer.json()["code"] == "delivery_pending"


def test_thin_payloads_and_the_size_limit(api, serve, receiver, prod, settings) -> None:
    settings.GWM_WEBHOOK_MAX_PAYLOAD_BYTES = 600
    thin = serve()
    _subscribe(api, thin.url, payload="thin")
    _subscribe(api, receiver.url)
    _change(prod, "web1")
    _change(prod, "web2", status="STOPPED", note="x" * 1000)
    _run(lambda: len(thin.seen) == 2 and len(receiver.seen) == 2)

    assert [set(seen.event) for seen in thin.seen] == [set(THIN_KEYS)] * 2
    small, big = sorted(receiver.seen, key=lambda seen: seen.event["seq"])
    assert "changes" in small.event and "truncated" not in small.event
    assert set(big.event) == {*THIN_KEYS, "truncated"} and big.event["truncated"] is True
    assert len(small.body) <= 600 < len(json.dumps(_feed(api)[-1]))


def test_filters_choose_the_events(api, prod) -> None:
    test = Cluster.objects.create(name="test", rapi_url="https://test.invalid:5080")
    for name, tags in (("db1", ["db"]), ("web1", ["web"])):
        Instance.objects.create(
            cluster=prod, name=name, status="RUNNING", tags=tags, synced_at=timezone.now()
        )
    url = "http://127.0.0.1:9/never-called"
    hooks = {
        "types": _subscribe(api, url, types=["instance.status_changed"]),
        "clusters": _subscribe(api, url, clusters=["test"]),
        "resources": _subscribe(api, url, resources=["instance:prod/web1", "job"]),
        "tags": _subscribe(api, url, tags=["db"]),
    }
    status_web1 = _change(prod, "web1")
    memory_db1 = _change(prod, "db1", memory=1024)
    with transaction.atomic():
        [job] = changes_record(
            cluster_id=prod.pk,
            cluster_name="prod",
            records=[ChangeRecord("job", "12", "created", ["status"], {"status": "QUEUED"})],
        )
    other = _change(test, "web1")
    fanout()

    def got(kind: str) -> list[int]:
        rows = Delivery.objects.filter(webhook_id=hooks[kind]["id"]).order_by("seq")
        return list(rows.values_list("seq", flat=True))

    assert got("types") == [status_web1, other]
    assert got("clusters") == [other]
    assert got("resources") == [status_web1, job.seq]
    assert got("tags") == [memory_db1]


def _viewer(django_user_model: Any, cluster: Cluster) -> tuple[Any, Client]:
    ann = django_user_model.objects.create_user("ann", "ann@localhost", "pw-long-enough-1")
    RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"), user=ann, scope="cluster", cluster=cluster
    )
    _, secret = token_create(actor=None, user=ann, name="hooks")
    return ann, Client(headers={"Authorization": f"Bearer {secret}"})


def test_a_webhook_gets_what_its_owner_may_see_and_no_more(
    api, receiver, prod, django_user_model
) -> None:
    test = Cluster.objects.create(name="test", rapi_url="https://test.invalid:5080")
    ann, as_ann = _viewer(django_user_model, prod)
    hook = _subscribe(as_ann, receiver.url)
    mine = [_change(prod, "web1"), _change(test, "web1"), _change(prod, "web2")]
    _run(_settled(hook["id"]))
    assert sorted(seen.event["seq"] for seen in receiver.seen) == [mine[0], mine[2]]

    # A replay is read as she may see it too.
    replay = f"/api/v1/webhooks/{hook['id']}/replay"
    answer = as_ann.post(replay, {"since": mine[0] - 1}, content_type="application/json")
    assert answer.json()["queued"] == 2
    _run(lambda: len(receiver.seen) == 4)
    assert {seen.event["resource"]["cluster"] for seen in receiver.seen} == {"prod"}

    # Queued while she could see it, sent after she lost the binding: failed, never sent.
    queued = _change(prod, "web3")
    fanout()
    assert Delivery.objects.filter(webhook_id=hook["id"], seq=queued).exists()
    RoleBinding.objects.filter(user=ann).delete()
    deliver_due()
    entry = _log(as_ann, hook["id"])[-1]
    assert (entry["seq"], entry["status"]) == (queued, "failed")
    assert entry["error"] == "not visible to the owner any more"
    # And what comes later is not even queued.
    later = _change(prod, "web1")
    fanout()
    assert not Delivery.objects.filter(webhook_id=hook["id"], seq=later).exists()
    assert len(receiver.seen) == 4


def test_a_redirect_to_a_refused_target_is_not_followed(
    api, serve, receiver, prod, settings
) -> None:
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    elsewhere = serve("127.0.0.2")  # loopback too, but not on the allow list
    receiver.answer = lambda seen: (307, {"Location": elsewhere.url}, 0.0)
    hook = _subscribe(api, receiver.url)
    _change(prod, "web1")
    fanout()
    deliver_due(limit=1)
    [entry] = _log(api, hook["id"])
    assert entry["status"] == "pending" and "refused" in entry["error"]
    assert entry["response"]["status"] == 307
    assert len(receiver.seen) == 1 and elsewhere.seen == []


@pytest.mark.django_db(transaction=True)
def test_the_workers_deliver_by_themselves(api, receiver, prod) -> None:
    from gwm.embedded import start_embedded_workers

    hook = _subscribe(api, receiver.url)
    later = timezone.now() + timedelta(hours=1)  # no sync rounds of the made-up cluster
    Cluster.objects.filter(pk=prod.pk).update(
        next_fast_at=later, next_runtime_at=later, next_slow_at=later
    )
    workers = start_embedded_workers()
    try:
        seq = _change(prod, "web1")  # its commit rings the doorbell
        deadline = time.monotonic() + 15
        while not receiver.seen:
            assert time.monotonic() < deadline, "the workers delivered nothing"
            time.sleep(0.05)
        assert receiver.ids() == [f"evt_{seq}"]
        assert verify([hook["secret"]], receiver.seen[0].headers, receiver.seen[0].body)
    finally:
        workers.stop()
        connections.close_all()
