"""Request ids: taken from X-Request-ID when sane (else made), sent back, and carried from
the API into the worker's log lines about the operation the request created.

In this process: the Django test client, a real server (uvicorn in a thread: the API's
own middleware list, on the event loop), and the embedded workers with the log records
captured. Across processes (an API process's doorbell to the worker of `gwm demo`,
in JSON lines): tests/test_metrics.py.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery import signals
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import Client

from gwm.embedded import start_embedded_workers
from gwm.kit.enqueue import ring
from gwm.observability import context, logs, tasklog
from gwm.observability.apps import _dress
from gwm.operations.models import Job
from gwm.settings_observability import log_format
from tests.clusters.helpers import full_sync, register
from tests.events.live_gwm import LiveGwm, serving

MADE = re.compile(r"[0-9a-f]{32}")
MALFORMED = ["has spaces", "x" * 129, "semi;colon", 'quote"d', "ünïcode", "<script>"]


# -- the header ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sane_incoming_id_comes_back(api: Client) -> None:
    for given in ("abc-123", "4bf92f3577b34da6a3ce929d0e0e4736", "a.b:c/d+e=", "x" * 128):
        for path in ("/healthz", "/api/v1/clusters", "/api/v1/nothing-here"):
            answer = api.get(path, headers={"X-Request-ID": given})
            assert answer["X-Request-ID"] == given, (path, given)


@pytest.mark.django_db
def test_without_one_an_id_is_made_for_each_request(api: Client) -> None:
    made = {api.get("/api/v1/clusters")["X-Request-ID"] for _ in range(3)}
    assert len(made) == 3 and all(MADE.fullmatch(rid) for rid in made), made


@pytest.mark.django_db
def test_a_malformed_id_is_replaced_not_echoed(api: Client) -> None:
    for bad in MALFORMED:
        answer = api.get("/api/v1/clusters", headers={"X-Request-ID": bad})
        assert answer["X-Request-ID"] != bad
        assert MADE.fullmatch(answer["X-Request-ID"]), answer["X-Request-ID"]
    empty = api.get("/api/v1/clusters", headers={"X-Request-ID": ""})
    assert MADE.fullmatch(empty["X-Request-ID"])


@pytest.fixture
def live(transactional_db: None) -> Iterator[LiveGwm]:
    with serving() as running:
        yield running


def test_over_real_http_both_middleware_lists_carry_it(live: LiveGwm) -> None:
    with live.client() as http:
        for path in ("/api/v1/clusters", "/healthz"):  # the API's short list, the site's
            answer = http.get(path, headers={"X-Request-ID": "live-1"})
            assert answer.headers["X-Request-ID"] == "live-1", path
            replaced = http.get(path, headers={"X-Request-ID": "bad id"})
            assert MADE.fullmatch(replaced.headers["X-Request-ID"]), path
        made = http.get("/api/v1/clusters").headers["X-Request-ID"]
        assert MADE.fullmatch(made)


# -- into the worker -------------------------------------------------------------------


class Recorded(logging.Handler):
    """The records of the ``gwm`` loggers at INFO, with the context filter gwm's handler has."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.addFilter(context.ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    handler = Recorded()
    logger = logging.getLogger("gwm")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_the_operation_under_the_request_id(
    simulator: Callable[..., Any], api: Client, recorded: Recorded
) -> None:
    running = simulator(nodes=2, instances=4, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="rid", fast_interval=3600, runtime_interval=3600)
    full_sync(cluster)
    name = sorted(n for n, i in running.sim.state.instances.items() if i.running_on)[0]
    request_id = "trace-operation-7"
    workers = start_embedded_workers()
    try:
        answer = api.post(
            f"/api/v1/clusters/rid/instances/{name}/actions",
            {"action": "shutdown"},
            content_type="application/json",
            headers={"X-Request-ID": request_id},
        )
        assert answer.status_code == 202, answer.content
        assert answer["X-Request-ID"] == request_id
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while api.get(f"/api/v1/jobs/{job_id}").json()["status"] not in {"SUCCESS", "ERROR"}:
            assert time.monotonic() < deadline
            api.get(f"/api/v1/jobs/{job_id}/wait?timeout=2")
    finally:
        workers.stop()
        connections.close_all()
    assert Job.objects.get(pk=job_id).request_id == request_id
    mine = [r for r in recorded.records if getattr(r, "job_id", None) == job_id]
    # The API's own line, written by the request (here: the test client's thread).
    accepted = [r for r in mine if "accepted for instance" in r.getMessage()]
    assert [r.request_id for r in accepted] == [request_id]  # type: ignore[attr-defined]
    assert [r.threadName for r in accepted] == ["MainThread"]
    about = [r for r in mine if r not in accepted]
    messages = [r.getMessage() for r in about]
    assert any("sending it to Ganeti" in m for m in messages), messages
    assert any("is Ganeti job" in m for m in messages), messages
    assert any(m.endswith("ended: SUCCESS") for m in messages), messages
    # Written in the worker's threads (the submission's, then the tracker's), not here.
    assert {r.threadName for r in about} != {"MainThread"}
    assert {r.request_id for r in about} == {request_id}  # type: ignore[attr-defined]
    assert {r.cluster for r in about} == {"rid"}  # type: ignore[attr-defined]
    assert {r.task for r in about} <= tasklog.JOB_TASKS  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_re_rung_job_finds_its_request_id_on_its_row() -> None:
    """The sweeper re-rings a job without any header: the row still has the id."""
    job = Job.objects.create(
        cluster_name="c9", action="instance.start", resource_type="instance", request_id="row-id"
    )
    bare = SimpleNamespace(name="operations.track_job", request=SimpleNamespace())
    tasklog.task_started(task=bare, args=[job.pk])
    try:
        found = dict(context.current())
    finally:
        tasklog.task_ended()
    assert found == {
        "task": "operations.track_job",
        "request_id": "row-id",
        "job_id": job.pk,
        "cluster": "c9",
    }
    assert dict(context.current()) == {}
    # A header the doorbell carried loses to the row; a job without one keeps the header.
    Job.objects.filter(pk=job.pk).update(request_id="")
    headed = SimpleNamespace(
        name="operations.submit_job", request=SimpleNamespace(gwm_request_id="from-header")
    )
    tasklog.task_started(task=headed, args=[job.pk])
    assert context.request_id() == "from-header"
    tasklog.task_ended()


@pytest.mark.django_db
def test_a_task_takes_a_sane_header_only() -> None:
    for header, expected in (("hdr-1", "hdr-1"), ("bad header", None), (None, None)):
        task = SimpleNamespace(name="events.deliver_webhooks", request=SimpleNamespace())
        if header is not None:
            task.request.gwm_request_id = header
        tasklog.task_started(task=task, args=[])
        assert context.request_id() == expected, header
        tasklog.task_ended()


@pytest.mark.django_db(transaction=True)
def test_a_doorbell_carries_the_request_id_to_the_task() -> None:
    seen: list[dict[str, Any]] = []

    def after_gwm(task: Any = None, **_: Any) -> None:  # connected after gwm's own
        if getattr(task, "name", "") == "operations.sweep":
            seen.append(dict(context.current()))

    signals.task_prerun.connect(after_gwm, weak=False)
    workers = start_embedded_workers()
    try:
        with context.bound(request_id="rung-by-42"):
            ring("operations.sweep")
        deadline = time.monotonic() + 10
        while not seen:
            assert time.monotonic() < deadline, "the sweep did not run"
            time.sleep(0.02)
    finally:
        signals.task_prerun.disconnect(after_gwm)
        workers.stop()
        connections.close_all()
    assert seen[0]["request_id"] == "rung-by-42"
    assert seen[0]["task"] == "operations.sweep"


def test_a_job_written_outside_a_request_has_no_request_id() -> None:
    assert context.job_request_id() == ""
    with context.bound(request_id="from-a-header"):  # a task's context, not a request's
        assert context.job_request_id() == ""
    rid, token = context.request_started("in-a-request")
    try:
        assert (rid, context.job_request_id()) == ("in-a-request", "in-a-request")
    finally:
        context.restore(token)


# -- the formats -----------------------------------------------------------------------


def _logged(formatter: logging.Formatter, **fields: Any) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(context.ContextFilter())
    logger = logging.getLogger("tests.request_ids")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with context.bound(**fields):
            logger.warning("job %s did a thing", 5)
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return out.getvalue()


def test_json_lines_carry_the_context() -> None:
    first, second = (
        json.loads(line)
        for line in _logged(
            logs.json_formatter(), request_id="r-1", job_id=5, cluster="c1"
        ).splitlines()
    )
    assert first["message"] == "job 5 did a thing" and first["level"] == "WARNING"
    assert (first["request_id"], first["job_id"], first["cluster"]) == ("r-1", 5, "c1")
    assert first["logger"] == "tests.request_ids" and first["time"].endswith("+00:00")
    assert "context" not in first
    assert (second["request_id"], second["job_id"], second["cluster"]) == (None, None, None)


def test_plain_lines_carry_the_context() -> None:
    first, second = _logged(logs.plain_formatter(), request_id="r-1", cluster="c1").splitlines()
    assert first.endswith("WARNING tests.request_ids [r-1 cluster=c1]: job 5 did a thing")
    assert second.endswith("WARNING tests.request_ids [-]: outside")


def test_the_log_format_by_mode_and_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GWM_LOG_FORMAT", raising=False)
    assert log_format(embedded=True) == "plain"
    assert log_format(embedded=False) == "json"
    monkeypatch.setenv("GWM_LOG_FORMAT", "JSON")
    assert log_format(embedded=True) == "json"
    monkeypatch.setenv("GWM_LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured):
        log_format(embedded=True)


def test_a_celery_command_s_handlers_get_gwm_s_format(settings: Any) -> None:
    settings.GWM_LOG_FORMAT = "json"
    logger = logging.getLogger("tests.celery_made")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        _dress(logger=logger)
        _dress(logger=logger)  # twice: still one filter
    finally:
        logger.removeHandler(handler)
    assert type(handler.formatter).__name__ == "JsonFormatter"
    assert sum(isinstance(f, context.ContextFilter) for f in handler.filters) == 1
