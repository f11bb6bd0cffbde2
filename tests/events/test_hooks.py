"""Per-resource hooks (PUT/GET/DELETE .../hook) and a write's ``callback_url``.

A hook is a Webhook row of kind ``hook``: these tests check the rows the API
writes (one per caller and resource, the cursor, ``once`` for jobs), who may
write them, and, with a real receiver on loopback and jobs run by the embedded
workers on the simulator, that the fan-out and delivery call it from
``job.created`` to the job's end and then remove it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster, Instance, Node
from gwm.events.models import Change, Delivery, Webhook, WebhookKind
from gwm.events.services import last_seq
from gwm.events.webhooks.fanout import fanout
from gwm.events.webhooks.signing import verify
from gwm.operations.models import Job, JobStatus
from tests.clusters.helpers import full_sync, register

LOOPBACK = ["127.0.0.0/8"]
CALLBACK = "http://127.0.0.1:9/called"


@pytest.fixture
def world(simulator, settings) -> Cluster:
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    running = simulator(nodes=3, instances=5)
    cluster = register(running, name="sim")
    full_sync(cluster)
    cluster.refresh_from_db()
    return cluster


def _names(cluster: Cluster) -> tuple[str, str, str]:
    """Two instances and a node of ``cluster``."""
    first, second = Instance.objects.filter(cluster=cluster).order_by("name")[:2]
    node = Node.objects.filter(cluster=cluster).order_by("name").first()
    assert node is not None
    return first.name, second.name, node.name


def _user(django_user_model: Any, name: str, role: str, **scope: Any) -> Any:
    user = django_user_model.objects.create_user(name, f"{name}@localhost", "pw-long-enough-1")
    if scope:
        RoleBinding.objects.create(role=Role.objects.get(name=role), user=user, **scope)
    return user


def _client(user: Any, **token: Any) -> Client:
    _, secret = token_create(actor=None, user=user, name="hooks", **token)
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _put(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.put(path, body, content_type="application/json")


def _hook_path(kind: str, name: str) -> str:
    return f"/api/v1/clusters/sim/{kind}s/{name}/hook"


def _rows() -> list[Webhook]:
    return list(Webhook.objects.filter(kind=WebhookKind.HOOK))


# -- instance and node hooks ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["instance", "node"])
def test_a_hook_is_put_read_replaced_and_removed(world, api, kind) -> None:
    instance, _, node = _names(world)
    name = instance if kind == "instance" else node
    path = _hook_path(kind, name)
    assert api.get(path).status_code == 404
    before = last_seq()

    made = _put(api, path, {"url": CALLBACK})
    assert made.status_code == 201, made.content
    hook = made.json()
    [row] = _rows()
    assert hook["id"] == row.pk and hook["resource"] == f"{kind}:sim/{name}"
    assert hook["types"] == [f"{kind}.*"] and hook["once"] is False
    assert hook["webhook_url"] == f"/api/v1/webhooks/{row.pk}"
    assert hook["deliveries_url"] == f"/api/v1/webhooks/{row.pk}/deliveries"
    assert hook["secret_url"] == f"/api/v1/webhooks/{row.pk}/secret"
    assert row.resources == [f"{kind}:sim/{name}"] and row.cursor == before
    [secret] = row.secrets
    assert secret["secret"].startswith("whsec_") and secret["expires_at"] is None

    changed = _put(api, path, {"url": "http://127.0.0.1:9/elsewhere", "types": [f"{kind}.deleted"]})
    assert changed.status_code == 200, changed.content
    [again] = _rows()
    assert again.pk == row.pk and again.secrets == row.secrets
    assert again.url == "http://127.0.0.1:9/elsewhere" and again.types == [f"{kind}.deleted"]
    assert api.get(path).json()["url"] == "http://127.0.0.1:9/elsewhere"

    assert api.delete(path).status_code == 204
    assert _rows() == []
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404


@pytest.mark.django_db
def test_hooks_are_per_caller_and_per_resource(world, api, django_user_model) -> None:
    first, second, _ = _names(world)
    owner = _user(
        django_user_model, "olga", "operator", scope="instance", cluster=world, instance=first
    )
    assert _put(api, _hook_path("instance", first), {"url": CALLBACK}).status_code == 201
    assert _put(api, _hook_path("instance", second), {"url": CALLBACK}).status_code == 201
    mine = _put(_client(owner), _hook_path("instance", first), {"url": CALLBACK})
    assert mine.status_code == 201, mine.content
    assert len(_rows()) == 3
    assert Webhook.objects.get(pk=mine.json()["id"]).owner == owner


@pytest.mark.django_db
def test_who_may_set_a_hook(world, api, reader_api, django_user_model) -> None:
    instance, other, node = _names(world)
    path = _hook_path("instance", instance)
    operator = _user(
        django_user_model, "otto", "operator", scope="instance", cluster=world, instance=instance
    )
    stranger = _user(
        django_user_model, "sam", "operator", scope="instance", cluster=world, instance=other
    )
    cluster_operator = _user(django_user_model, "cleo", "operator", scope="cluster", cluster=world)
    admin = api  # a superuser
    read_only_admin = _client(django_user_model.objects.get(username="root"), read_only=True)

    def status(client: Client, where: str) -> int:
        return int(_put(client, where, {"url": CALLBACK}).status_code)

    assert status(reader_api, path) == 403  # sees it, may not change it
    assert status(_client(stranger), path) == 404  # may not see it
    assert status(read_only_admin, path) == 403
    assert status(_client(cluster_operator), _hook_path("node", node)) == 403  # no manage_nodes
    assert status(_client(operator), _hook_path("node", node)) == 404  # sees no node
    assert _rows() == []
    assert status(_client(operator), path) == 201  # power on the instance
    assert status(admin, _hook_path("node", node)) == 201
    assert status(admin, _hook_path("instance", "no-such.example.test")) == 404

    # Removing needs a token that may write, and a hook of one's own there.
    assert read_only_admin.delete(_hook_path("node", node)).status_code == 403
    assert _client(stranger).delete(path).status_code == 404
    assert _client(operator).delete(path).status_code == 204
    assert len(_rows()) == 1


@pytest.mark.django_db
def test_refused_targets_and_types(world, api, settings) -> None:
    instance, _, _ = _names(world)
    path = _hook_path("instance", instance)
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = []
    refused = _put(api, path, {"url": CALLBACK})  # loopback, no longer allowed
    assert refused.status_code == 422 and refused.json()["code"] == "target_refused"
    for url in ("ftp://example.test/", "http://10.1.2.3/", "http://169.254.169.254/"):
        assert _put(api, path, {"url": url}).json()["code"] == "target_refused", url
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    unknown = _put(api, path, {"url": CALLBACK, "types": ["instance.exploded"]})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_event_type"
    other = _put(api, path, {"url": CALLBACK, "types": ["job.*"]})
    assert other.status_code == 422 and other.json()["code"] == "event_type_mismatch"
    assert _put(api, path, {"url": CALLBACK, "extra": 1}).status_code == 422
    assert _rows() == []


@pytest.mark.django_db
def test_a_hooks_links_lead_to_it_as_a_webhook(world, api) -> None:
    """The hook's webhook, delivery log and secret are the webhooks API's (one machinery)."""
    instance, _, _ = _names(world)
    hook = _put(api, _hook_path("instance", instance), {"url": CALLBACK}).json()
    row = Webhook.objects.get(pk=hook["id"])
    itself = api.get(hook["webhook_url"])
    assert itself.status_code == 200, itself.content
    assert itself.json()["id"] == row.pk and itself.json()["url"] == CALLBACK
    deliveries = api.get(hook["deliveries_url"])
    assert deliveries.status_code == 200 and deliveries.json()["items"] == []
    secret = api.get(hook["secret_url"])
    assert secret.status_code == 200, secret.content
    assert row.secrets[0]["secret"] in json.dumps(secret.json())


# -- job hooks --------------------------------------------------------------------------


def _start(client: Client, instance: str, query: str = "", **headers: str) -> Any:
    return client.post(
        f"/api/v1/clusters/sim/instances/{instance}/actions{query}",
        {"action": "shutdown"},
        content_type="application/json",
        headers=headers or None,
    )


@pytest.mark.django_db
def test_a_job_hook_lasts_as_long_as_the_job(world, api, reader_api, django_user_model) -> None:
    instance, other, _ = _names(world)
    submitter = _user(
        django_user_model, "suzy", "operator", scope="instance", cluster=world, instance=instance
    )
    accepted = _start(_client(submitter), instance)
    assert accepted.status_code == 202, accepted.content
    job_id = accepted.json()["id"]
    path = f"/api/v1/jobs/{job_id}/hook"
    stranger = _user(
        django_user_model, "stan", "operator", scope="instance", cluster=world, instance=other
    )
    assert _put(_client(stranger), path, {"url": CALLBACK}).status_code == 404
    assert _put(reader_api, path, {"url": CALLBACK}).status_code == 403  # sees it only
    assert _put(api, "/api/v1/jobs/999999/hook", {"url": CALLBACK}).status_code == 404
    other_job = _put(api, path, {"url": CALLBACK, "types": ["instance.*"]})
    assert other_job.json()["code"] == "event_type_mismatch"
    endless = _put(api, path, {"url": CALLBACK, "types": ["job.created", "job.succeeded"]})
    assert endless.status_code == 422 and endless.json()["code"] == "job_end_required"
    assert _rows() == []

    before = last_seq()
    made = _put(_client(submitter), path, {"url": CALLBACK})
    assert made.status_code == 201, made.content
    assert made.json()["types"] == ["job.*"] and made.json()["once"] is True
    [row] = _rows()
    assert row.resources == [f"job:{job_id}"] and row.once and row.cursor == before
    assert api.put(path, {"url": CALLBACK}, content_type="application/json").status_code == 201

    Job.objects.filter(pk=job_id).update(status=JobStatus.SUCCESS)
    # An existing hook may still move (its last deliveries may be on their way) ...
    moved = _put(_client(submitter), path, {"url": "http://127.0.0.1:9/moved"})
    assert moved.status_code == 200
    assert _client(submitter).delete(path).status_code == 204
    # ... but a new one on an ended job would never be called.
    finished = _put(_client(submitter), path, {"url": CALLBACK})
    assert finished.status_code == 409 and finished.json()["code"] == "job_finished"
    assert [hook.owner.username for hook in _rows()] == ["root"]


# -- callback_url on writes -------------------------------------------------------------


def _job_changes(job_id: int) -> list[Change]:
    return list(Change.objects.filter(resource="job", name=str(job_id)).order_by("seq"))


@pytest.mark.django_db
def test_a_write_with_callback_url_makes_the_job_hook_with_it(world, django_user_model) -> None:
    instance, _, _ = _names(world)
    owner = _user(
        django_user_model, "cal", "operator", scope="instance", cluster=world, instance=instance
    )
    client = _client(owner)
    assert _rows() == []
    answer = _start(client, instance, f"?callback_url={CALLBACK}")
    assert answer.status_code == 202, answer.content
    job_id = answer.json()["id"]
    [hook] = _rows()
    assert answer["Link"] == f'</api/v1/webhooks/{hook.pk}>; rel="callback"'
    assert hook.owner == owner and hook.once and hook.url == CALLBACK
    assert hook.resources == [f"job:{job_id}"] and hook.types == ["job.*"]
    assert hook.secrets[0]["secret"].startswith("whsec_")
    # Neither a parameter for Ganeti nor part of what the job is.
    job = Job.objects.get(pk=job_id)
    assert "callback_url" not in json.dumps(job.params)
    [created] = _job_changes(job_id)
    assert created.type == "job.created" and hook.cursor == created.seq - 1
    assert hook.cursor < last_seq()  # the instance's BUSY came after, in the same commit

    fanout(budget=5)
    queued = Delivery.objects.filter(webhook=hook)
    assert [(d.seq, d.type) for d in queued] == [(created.seq, "job.created")]
    assert json.loads(queued[0].request_body)["resource"]["name"] == str(job_id)

    # GET .../hook on the job shows it; the answer without callback_url links nothing.
    shown = client.get(f"/api/v1/jobs/{job_id}/hook").json()
    assert shown["id"] == hook.pk and shown["once"] is True
    Job.objects.filter(pk=job_id).update(status=JobStatus.SUCCESS)
    Instance.objects.filter(cluster=world, name=instance).update(status="RUNNING")
    plain = _start(client, instance)
    assert plain.status_code == 202 and "Link" not in plain


@pytest.mark.django_db
def test_a_refused_callback_makes_no_job(world, api, settings) -> None:
    instance, _, _ = _names(world)
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = []
    refused = _start(api, instance, f"?callback_url={CALLBACK}")
    assert refused.status_code == 422 and refused.json()["code"] == "target_refused"
    dry = _start(api, instance, f"?dry_run=true&callback_url={CALLBACK}")
    assert dry.status_code == 422
    assert not Job.objects.exists() and _rows() == []
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    checked = _start(api, instance, f"?dry_run=true&callback_url={CALLBACK}")
    assert checked.status_code == 200, checked.content
    assert "Link" not in checked and _rows() == []


@pytest.mark.django_db
def test_an_idempotent_replay_links_the_first_hook(world, api) -> None:
    instance, _, _ = _names(world)
    first = _start(api, instance, f"?callback_url={CALLBACK}", **{"Idempotency-Key": "k1"})
    again = _start(api, instance, f"?callback_url={CALLBACK}", **{"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    [hook] = _rows()
    assert first["Link"] == again["Link"] == f'</api/v1/webhooks/{hook.pk}>; rel="callback"'


@pytest.mark.django_db
def test_every_job_making_write_takes_callback_url(world, api) -> None:
    """The node and cluster writes take the same path (gwm.clusters.api.common.submit)."""
    _, _, node = _names(world)
    writes = [
        (f"/api/v1/clusters/sim/nodes/{node}/actions", {"action": "add-tags", "tags": ["t"]}),
        ("/api/v1/clusters/sim/actions", {"action": "add-tags", "tags": ["t"]}),
        ("/api/v1/clusters/sim/groups/default/actions", {"action": "add-tags", "tags": ["t"]}),
    ]
    for path, body in writes:
        answer = api.post(f"{path}?callback_url={CALLBACK}", body, content_type="application/json")
        assert answer.status_code == 202, (path, answer.content)
        hook = Webhook.objects.get(resources=[f"job:{answer.json()['id']}"])
        assert answer["Link"] == f'</api/v1/webhooks/{hook.pk}>; rel="callback"'
    assert len(_rows()) == len(writes)


# -- end to end: a real receiver, real jobs ---------------------------------------------


class Receiver:
    """An HTTP endpoint on loopback that keeps what it was sent and answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def live(simulator, api, settings) -> Iterator[tuple[Cluster, Any]]:
    """A simulated cluster with gwm's workers running in-process (tests/operations' idea)."""
    from gwm.embedded import start_embedded_workers

    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    running = simulator(nodes=3, instances=5, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="sim", fast_interval=1.0, runtime_interval=2.0)
    full_sync(cluster)
    cluster.refresh_from_db()
    workers = start_embedded_workers()
    try:
        yield cluster, workers
    finally:
        workers.stop()
        connections.close_all()


def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_callback_is_called_from_created_to_succeeded_then_removed(live, api, receiver) -> None:
    from gwm.events.webhooks.rounds import deliver_round

    cluster, _ = live
    running = Instance.objects.filter(cluster=cluster, status="RUNNING").order_by("name").first()
    assert running is not None
    answer = _start(api, running.name, f"?callback_url={receiver.url}")
    assert answer.status_code == 202, answer.content
    job_id = answer.json()["id"]
    hook = Webhook.objects.get(resources=[f"job:{job_id}"])
    secrets = [entry["secret"] for entry in hook.secrets]
    _until(lambda: Job.objects.get(pk=job_id).finished, 20, "the job did not end")
    assert Job.objects.get(pk=job_id).status == JobStatus.SUCCESS

    def called_to_the_end() -> bool:
        deliver_round(budget=0.5)  # the doorbell's work, in case no worker rang it yet
        return any(event["type"] == "job.succeeded" for event in receiver.events())

    _until(called_to_the_end, 20, f"no job.succeeded: {receiver.events()}")
    events = receiver.events()
    types = [event["type"] for event in events]
    assert types[0] == "job.created" and types[-1] == "job.succeeded", types
    assert {event["resource"]["name"] for event in events} == {str(job_id)}
    assert [event["seq"] for event in events] == sorted(event["seq"] for event in events)
    expected = [change.seq for change in _job_changes(job_id)]
    assert [event["seq"] for event in events] == expected
    for headers, body in receiver.received:
        assert verify(secrets, headers, body), headers
    # once: gone after the job's final event was delivered, its log with it.
    _until(lambda: not Webhook.objects.filter(pk=hook.pk).exists(), 10, "the hook stayed")
    assert not Delivery.objects.filter(webhook_id=hook.pk).exists()
