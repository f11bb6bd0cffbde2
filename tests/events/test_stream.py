"""GET /api/v1/changes/stream over real HTTP (gwm served by uvicorn in a thread).

What a consumer of the stream relies on: frames that name the change (id = seq,
event = type, data = the event), resuming without a gap or a duplicate,
heartbeats that bookmark, a reset below the retention floor, a slow client
dropped with a last word (and its memory given back), and permissions that
hold on every frame: another cluster's changes never arrive, and a deleted
binding or a revoked token ends the stream.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.db import connection, transaction
from django.utils import timezone

from gwm.accounts.models import Role
from gwm.accounts.services.directory import binding_create, binding_delete
from gwm.accounts.services.tokens import token_create, token_revoke
from gwm.clusters.models import Cluster
from gwm.events import stream
from gwm.events.models import ChangeCounter
from gwm.events.retention import changes_purge
from gwm.events.schemas import event_validate
from gwm.events.services import ChangeRecord, changes_record, last_seq
from gwm.events.stream import hub as stream_hub
from tests.clusters.helpers import register
from tests.events.live_gwm import Frame, LiveGwm, frames_of, serving

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/api/v1/changes/stream"


@pytest.fixture
def live_gwm(transactional_db: None) -> Iterator[LiveGwm]:
    with serving() as running:
        yield running


@pytest.fixture(autouse=True)
def quick_heartbeats(settings: Any) -> None:
    # Every stream says something at least this often, so a read never waits long.
    settings.GWM_STREAM_HEARTBEAT_SECONDS = 0.5


def _token(user: Any) -> str:
    return token_create(actor=None, user=user, name="stream")[1]


def _record(
    count: int = 1, *, cluster: Cluster | None = None, size: int = 0, first: int = 1
) -> list[int]:
    """``count`` changes in one commit (jobs, or instances of ``cluster``); their seqs."""
    kind = "job" if cluster is None else "instance"
    records = [
        ChangeRecord(
            kind,
            str(first + n) if cluster is None else f"web{first + n}",
            "updated",
            ["note"],
            {"note": "x" * size},
        )
        for n in range(count)
    ]
    with transaction.atomic():
        rows = changes_record(
            cluster_id=cluster.pk if cluster else None,
            cluster_name=cluster.name if cluster else "",
            records=records,
        )
    return [row.seq for row in rows]


@contextlib.contextmanager
def _stream(
    live: LiveGwm, token: str, query: str = "", client: httpx.Client | None = None, **headers: str
) -> Iterator[tuple[httpx.Response, Iterator[Frame]]]:
    with contextlib.ExitStack() as stack:
        http = client or stack.enter_context(live.client(token))
        response = stack.enter_context(http.stream("GET", STREAM + query, headers=headers))
        assert response.status_code == 200, response.read()
        yield response, frames_of(response)


def _events(frames: Iterator[Frame], count: int, timeout: float = 5.0) -> list[Frame]:
    """The next ``count`` frames that are not comments, within ``timeout`` seconds
    (heartbeats keep coming, so the clock is read often)."""
    deadline = time.monotonic() + timeout
    found: list[Frame] = []
    for frame in frames:
        if frame.fields:
            found.append(frame)
            if len(found) == count:
                break
        assert time.monotonic() < deadline, f"only {found} in {timeout} s"
    assert len(found) == count, f"the stream ended after {found}"
    return found


def _beat(frames: Iterator[Frame]) -> int:
    """The seq of the next heartbeat (no event may come before it)."""
    frame = next(frames)
    assert not frame.fields, f"an event came first: {frame}"
    assert frame.comments and frame.comments[0].startswith("seq="), frame
    return int(frame.comments[0].removeprefix("seq="))


def _until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_frames_name_the_change_and_carry_the_event(live_gwm: LiveGwm, admin_user: Any) -> None:
    _record(2)  # before the stream: not sent (it starts from now)
    with _stream(live_gwm, _token(admin_user)) as (response, frames):
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert _beat(frames) == last_seq() == 2
        seqs = _record(3, first=10)
        got = _events(frames, 3)
    assert [int(f.id or 0) for f in got] == seqs
    for frame in got:
        event = frame.data()
        event_validate(event)
        assert frame.event == event["type"] == "job.updated"
        assert frame.fields["id"] == str(event["seq"])
        assert event["resource"]["name"] in {"10", "11", "12"}
    _until(lambda: stream.stats() == {"subscribers": 0, "callers": 0}, what="the stream to go")


def test_a_resumed_stream_misses_nothing_and_repeats_nothing(
    live_gwm: LiveGwm, admin_user: Any
) -> None:
    start = _record(1)[0]
    token = _token(admin_user)
    written: list[int] = []

    def write() -> None:
        try:
            for n in range(120):
                written.extend(_record(1 + n % 3, first=100 + 3 * n))
                time.sleep(0.004)
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    with _stream(live_gwm, token, f"?since={start}") as (_, frames):
        writer.start()
        first = [int(f.id or 0) for f in _events(frames, 40)]
    # Disconnected mid-stream while the writer goes on; come back where it stopped.
    with _stream(live_gwm, token, **{"Last-Event-ID": str(first[-1])}) as (_, frames):
        writer.join()
        assert len(written) > 120
        second: list[int] = []
        while not second or second[-1] < written[-1]:
            second += [int(f.id or 0) for f in _events(frames, 1)]
    assert first + second == written  # in order, each once, none missing


def test_last_event_id_wins_over_since(live_gwm: LiveGwm, admin_user: Any) -> None:
    seqs = _record(5)
    headers = {"Last-Event-ID": str(seqs[2])}
    with _stream(live_gwm, _token(admin_user), f"?since={seqs[0]}", **headers) as (_, frames):
        assert _beat(frames) == seqs[2]
        assert [int(f.id or 0) for f in _events(frames, 2)] == seqs[3:]


def test_a_heartbeat_carries_the_current_seq_and_never_an_id(
    live_gwm: LiveGwm, admin_user: Any, settings: Any
) -> None:
    settings.GWM_STREAM_HEARTBEAT_SECONDS = 0.2
    before = _record(1)[0]
    with _stream(live_gwm, _token(admin_user), "?types=instance.*") as (_, frames):
        assert _beat(frames) == before
        started = time.monotonic()
        assert _beat(frames) == before
        assert time.monotonic() - started < 1.0
        skipped = _record(2, first=5)  # jobs: not for this stream, but the bookmark moves
        assert _until(lambda: _beat(frames) == skipped[-1], what="a heartbeat after them")


def test_a_cursor_below_the_floor_gets_a_reset_then_the_changes_from_the_floor(
    live_gwm: LiveGwm, admin_user: Any
) -> None:
    _record(5)
    changes_purge(older_than=timezone.now() + timedelta(seconds=1))
    floor = ChangeCounter.objects.get(pk=1).floor_seq
    assert floor == 5
    after = _record(2, first=20)
    with _stream(live_gwm, _token(admin_user), **{"Last-Event-ID": "1"}) as (_, frames):
        reset, *events = _events(frames, 3)
    assert reset.event == "reset" and reset.id is None
    assert reset.data()["floor"] == floor and "purged" in reset.data()["detail"]
    assert [int(f.id or 0) for f in events] == after


def test_a_client_that_does_not_read_is_dropped_with_an_overflow_event(
    live_gwm: LiveGwm, admin_user: Any, settings: Any
) -> None:
    settings.GWM_STREAM_BUFFER_EVENTS = 5
    token = _token(admin_user)
    with (
        _stream(live_gwm, token) as (_, frames),
    ):
        assert _beat(frames) == 0
        assert stream.stats()["subscribers"] == 1
        written: list[int] = []
        # Big changes, one commit each, while the client reads nothing.
        for n in range(60):
            written += _record(1, first=n, size=256 * 1024)
            if stream.stats()["subscribers"] == 0:
                break
        _until(lambda: stream.stats()["subscribers"] == 0, what="the hub to drop the client")
        rest = list(frames)  # now read: what was on its way, then the last word
    events = [int(f.id or 0) for f in rest if f.id]
    assert events == written[: len(events)]  # no gap up to where it stopped
    last = rest[-1]
    assert last.event == "overflow" and last.id is None
    assert last.data()["last_seq_sent"] == (events[-1] if events else 0)
    _until(lambda: stream.stats() == {"subscribers": 0, "callers": 0}, what="the stream to go")


def test_a_client_that_never_reads_again_is_disconnected(
    live_gwm: LiveGwm, admin_user: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.GWM_STREAM_BUFFER_EVENTS = 5
    monkeypatch.setattr(stream_hub, "OVERFLOW_GRACE_SECONDS", 0.3)
    with _stream(live_gwm, _token(admin_user)) as (_, frames):
        assert _beat(frames) == 0
        for n in range(80):
            _record(1, first=n, size=256 * 1024)
            if stream.stats()["subscribers"] == 0:
                break
        # Its request is cancelled after the grace: nothing of it is left in the server,
        # and the connection is closed in the middle of the response.
        _until(lambda: stream.stats() == {"subscribers": 0, "callers": 0}, what="the drop")
        seen: list[Frame] = []
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            seen.extend(frames)
    assert seen and all(f.event in (None, "job.updated") for f in seen)


@pytest.fixture
def two_clusters(simulator: Any) -> tuple[Cluster, Cluster]:
    return register(simulator(nodes=1, instances=1), name="a"), register(
        simulator(nodes=1, instances=1), name="b"
    )


def _viewer_of(django_user_model: Any, cluster: Cluster) -> tuple[Any, Any]:
    user = django_user_model.objects.create_user("alice", "alice@localhost", "pw-long-enough-1")
    binding = binding_create(
        actor=None,
        role=Role.objects.get(name="viewer"),
        user=user,
        scope="cluster",
        cluster=cluster,
    )
    return user, binding


def test_a_viewer_of_one_cluster_never_gets_another_clusters_frames_and_a_deleted_binding_ends_it(
    live_gwm: LiveGwm, django_user_model: Any, two_clusters: tuple[Cluster, Cluster]
) -> None:
    a, b = two_clusters
    user, binding = _viewer_of(django_user_model, a)
    with _stream(live_gwm, _token(user)) as (_, frames):
        _beat(frames)
        hidden = _record(2, cluster=b)
        shown = _record(1, cluster=a)
        (event,) = _events(frames, 1)
        assert int(event.id or 0) == shown[0] > hidden[-1]
        assert event.data()["resource"]["cluster"] == "a"
        started = time.monotonic()
        binding_delete(binding, actor=None)
        (last,) = _events(frames, 1)
        assert time.monotonic() - started < 2.0
        assert last.event == "revoked" and last.id is None and last.data()["detail"]
        assert list(frames) == []  # the stream ended


def test_a_revoked_token_ends_its_streams(live_gwm: LiveGwm, admin_user: Any) -> None:
    plain = _token(admin_user)
    from gwm.accounts.models import ApiToken

    token = ApiToken.objects.order_by("-pk").first()
    assert token is not None
    with _stream(live_gwm, plain) as (_, frames), _stream(live_gwm, plain) as (_, other):
        _beat(frames), _beat(other)
        assert stream.stats() == {"subscribers": 2, "callers": 1}
        started = time.monotonic()
        token_revoke(token, actor=None)
        for each in (frames, other):
            (last,) = _events(each, 1)
            assert last.event == "revoked" and "revoked" in last.data()["detail"]
        assert time.monotonic() - started < 2.0
    with live_gwm.client(plain) as client:
        assert client.get(STREAM).status_code == 401


def test_a_bad_request_is_a_problem_before_the_stream_starts(
    live_gwm: LiveGwm, admin_user: Any
) -> None:
    with live_gwm.client(_token(admin_user)) as client:
        for headers, query, parameter in [
            ({"Last-Event-ID": "seven"}, "", "Last-Event-ID"),
            ({"Last-Event-ID": "-1"}, "", "Last-Event-ID"),
            ({}, "?types=nope.*", "types"),
            ({}, "?resource=planet", "resource"),
        ]:
            answer = client.get(STREAM + query, headers=headers)
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["parameter"] == parameter
    with live_gwm.client() as anonymous:
        answer = anonymous.get(STREAM)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
    assert stream.stats() == {"subscribers": 0, "callers": 0}


def test_the_document_declares_an_event_stream() -> None:
    from gwm.api import api

    operation = api.get_openapi_schema()["paths"][STREAM]["get"]
    responses = {str(code): response for code, response in operation["responses"].items()}
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    assert {"400", "401"} <= set(responses)
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["Last-Event-ID"]
    for frame in ("id: <seq>", ": seq=<N>", "event: reset", "event: overflow", "event: revoked"):
        assert frame in operation["description"]
