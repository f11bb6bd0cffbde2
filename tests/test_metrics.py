"""/metrics: who may read it, what it lists, and its figures moving with the work they count.

Through the Django test client first (this process's registry: a request, a sync round
against the simulator, an operation run by the embedded workers, webhook deliveries);
a stream over a real server in this process; then `gwm demo` as it runs for real, where
the figures of two API processes and of the worker in the supervising one are written
to one directory (prometheus-client's multiprocess mode) and any API process serves them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections, transaction
from django.test import Client
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gwm.clusters.models import Cluster
from gwm.embedded import start_embedded_workers
from gwm.events.services import ChangeRecord, changes_record
from gwm.events.webhooks.deliver import deliver_due
from gwm.events.webhooks.fanout import fanout
from tests.clusters.helpers import full_sync, register
from tests.events.live_gwm import LiveGwm, serving
from tests.test_serve_processes import GWM, Demo, _api_processes, _free_port, _until, _wake_dir

TOKEN = "metrics-token-for-the-tests"
FINAL = {"SUCCESS", "ERROR", "CANCELED"}
#: Every figure gwm keeps or computes (docs/observability.md lists them).
FAMILIES = {
    "gwm_http_request_duration_seconds",
    "gwm_sync_round_duration_seconds",
    "gwm_sync_round_failures",
    "gwm_sync_lag_seconds",
    "gwm_sync_overdue_clusters",
    "gwm_cluster_available",
    "gwm_rapi_requests",
    "gwm_rapi_errors",
    "gwm_rapi_seconds",
    "gwm_job_queue_seconds",
    "gwm_job_ganeti_seconds",
    "gwm_job_duration_seconds",
    "gwm_jobs_unsubmitted",
    "gwm_jobs_unsubmitted_oldest_seconds",
    "gwm_jobs_tracked_open",
    "gwm_webhook_deliveries",
    "gwm_webhook_pending_overdue_seconds",
    "gwm_webhook_attempts",
    "gwm_stream_clients",
}


class Scrape:
    """One answer of /metrics, parsed: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = [sample for f in self.families.values() for sample in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` whose labels include ``labels`` (0: none)."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(s.name == name and labels.items() <= s.labels.items() for s in self.samples)


def scrape(client: Client | None = None) -> Scrape:
    answer = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain"), answer["Content-Type"]
    return Scrape(answer.content.decode())


@pytest.fixture(autouse=True)
def metrics_token(settings: Any) -> str:
    settings.GWM_METRICS_TOKEN = TOKEN
    return TOKEN


# -- access ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_configured_token_metrics_is_not_found(settings: Any) -> None:
    settings.GWM_METRICS_TOKEN = ""
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
        answer = Client().get("/metrics", headers=headers)
        assert answer.status_code == 404, answer.content
        assert answer["Content-Type"] == "application/problem+json"
        assert b"gwm_" not in answer.content


@pytest.mark.django_db
def test_a_missing_or_wrong_token_is_refused() -> None:
    for authorization in (None, "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", TOKEN):
        headers = {"Authorization": authorization} if authorization else {}
        answer = Client().get("/metrics", headers=headers)
        assert answer.status_code == 401, (authorization, answer.content)
        assert answer["WWW-Authenticate"].startswith("Bearer")
        assert b"gwm_" not in answer.content
    assert (
        Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405
    )


@pytest.mark.django_db
def test_metrics_is_outside_the_api_and_its_openapi_document(api: Client) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert not [path for path in paths if "metrics" in path]
    assert api.get("/api/v1/metrics").status_code == 404


@pytest.mark.django_db
def test_every_figure_is_listed_and_openmetrics_is_offered() -> None:
    listed = set(scrape().families)
    assert listed >= FAMILIES, FAMILIES - listed
    answer = Client().get(
        "/metrics",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/openmetrics-text"},
    )
    assert answer["Content-Type"].startswith("application/openmetrics-text")
    assert answer.content.rstrip().endswith(b"# EOF")


# -- figures moving --------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_move_the_latency_histogram_by_route_template(api: Client) -> None:
    name = "gwm_http_request_duration_seconds_count"
    clusters = {"route": "/api/v1/clusters", "method": "GET", "status": "2xx"}
    one = {"route": "/api/v1/clusters/<cluster>", "method": "GET", "status": "4xx"}
    unmatched = {"route": "(unmatched)", "method": "GET", "status": "4xx"}
    before = scrape()
    for _ in range(3):
        assert api.get("/api/v1/clusters").status_code == 200
    assert api.get("/api/v1/clusters/nope").status_code == 404
    assert api.get("/api/v1/no/such/path").status_code == 404
    after = scrape()
    assert after.value(name, **clusters) == before.value(name, **clusters) + 3
    assert after.value(name, **one) == before.value(name, **one) + 1
    assert after.value(name, **unmatched) == before.value(name, **unmatched) + 1
    # The path's values never become labels: bounded cardinality.
    assert not after.has(name, route="/api/v1/clusters/nope")
    assert after.value("gwm_http_request_duration_seconds_sum", **clusters) > before.value(
        "gwm_http_request_duration_seconds_sum", **clusters
    )


@pytest.mark.django_db
def test_a_sync_round_moves_the_cluster_figures(simulator: Callable[..., Any]) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running, name="m1", fast_interval=3600, runtime_interval=3600)
    mine = {"cluster": "m1"}
    before = scrape()
    assert full_sync(cluster) == ["slow", "runtime"]
    first = scrape()
    rounds = "gwm_sync_round_duration_seconds_count"
    for tier in ("slow", "runtime"):
        assert first.value(rounds, tier=tier, **mine) == before.value(rounds, tier=tier, **mine) + 1
    # A slow round and a runtime sweep: 5 and 2 requests, and what they took.
    requests = first.value("gwm_rapi_requests_total", **mine)
    assert requests >= before.value("gwm_rapi_requests_total", **mine) + 7
    assert first.value("gwm_rapi_seconds_total", **mine) > before.value(
        "gwm_rapi_seconds_total", **mine
    )
    assert first.value("gwm_cluster_available", **mine) == 1
    lag = first.value("gwm_sync_lag_seconds", tier="slow", **mine)
    assert first.has("gwm_sync_lag_seconds", tier="runtime", **mine) and 0 <= lag < 30
    time.sleep(0.2)
    assert scrape().value("gwm_sync_lag_seconds", tier="slow", **mine) >= lag + 0.2

    running.stop()  # the cluster stops answering
    assert full_sync(cluster) == []
    failed = scrape()
    failures = "gwm_sync_round_failures_total"
    assert failed.value(failures, **mine) == first.value(failures, **mine) + 1
    assert failed.value("gwm_rapi_errors_total", **mine) > first.value(
        "gwm_rapi_errors_total", **mine
    )
    assert failed.value("gwm_cluster_available", **mine) == 0
    # Nothing is due yet: a failed round schedules its retry.
    assert failed.value("gwm_sync_overdue_clusters") == 0


@pytest.mark.django_db(transaction=True)
def test_an_operation_moves_the_job_figures_and_the_backlog(
    simulator: Callable[..., Any], api: Client
) -> None:
    running = simulator(nodes=2, instances=4, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="ops", fast_interval=3600, runtime_interval=3600)
    full_sync(cluster)
    name = sorted(n for n, i in running.sim.state.instances.items() if i.running_on)[0]
    action = {"action": "instance.shutdown"}
    before = scrape()
    assert before.value("gwm_jobs_unsubmitted") == 0
    # No worker yet: the job waits, and the backlog says so.
    answer = api.post(
        f"/api/v1/clusters/ops/instances/{name}/actions",
        {"action": "shutdown"},
        content_type="application/json",
    )
    assert answer.status_code == 202, answer.content
    job_id = answer.json()["id"]
    time.sleep(0.05)
    waiting = scrape()
    assert waiting.value("gwm_jobs_unsubmitted") == 1
    assert waiting.value("gwm_jobs_unsubmitted_oldest_seconds") >= 0.05
    assert waiting.value("gwm_jobs_tracked_open") == 0

    workers = start_embedded_workers()
    try:
        deadline = time.monotonic() + 30
        while (job := api.get(f"/api/v1/jobs/{job_id}").json())["status"] not in FINAL:
            assert time.monotonic() < deadline, job
            api.get(f"/api/v1/jobs/{job_id}/wait?timeout=2")
    finally:
        workers.stop()
        connections.close_all()
    assert job["status"] == "SUCCESS", job
    after = scrape()
    done = {"status": "SUCCESS", **action}
    for name_, labels in (
        ("gwm_job_queue_seconds_count", action),
        ("gwm_job_ganeti_seconds_count", done),
        ("gwm_job_duration_seconds_count", done),
    ):
        assert after.value(name_, **labels) == before.value(name_, **labels) + 1, name_
    assert after.value("gwm_job_queue_seconds_sum", **action) > before.value(
        "gwm_job_queue_seconds_sum", **action
    )
    assert after.value("gwm_jobs_unsubmitted") == 0
    assert after.value("gwm_jobs_tracked_open") == 0
    # The worker's RAPI requests count under the job's cluster: the submission is a PUT.
    put = {"cluster": "ops", "method": "PUT"}
    assert (
        after.value("gwm_rapi_requests_total", **put)
        >= before.value("gwm_rapi_requests_total", **put) + 1
    )


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def _receiver(answers: list[int]) -> Iterator[str]:
    handler = type("Answers", (_Receiver,), {"answers": list(answers)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_webhook_deliveries_move_the_queue_and_the_attempts(api: Client, settings: Any) -> None:
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.GWM_WEBHOOK_RETRY_SCALE = 0.0001
    prod = Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")
    attempts = "gwm_webhook_attempts_total"
    with _receiver([500]) as url:
        answer = api.post("/api/v1/webhooks", {"url": url}, content_type="application/json")
        assert answer.status_code == 201, answer.content
        before = scrape()
        with transaction.atomic():
            changes_record(
                cluster_id=prod.pk,
                cluster_name="prod",
                records=[ChangeRecord("instance", "web1", "updated", ["status"], {"status": "X"})],
            )
        fanout()
        queued = scrape()
        pending = {"status": "pending"}
        assert queued.value("gwm_webhook_deliveries", **pending) == (
            before.value("gwm_webhook_deliveries", **pending) + 1
        )
        assert deliver_due(limit=1) == 1  # the receiver answers 500: retried later
        failed = scrape()
        assert (
            failed.value(attempts, outcome="failed") == before.value(attempts, outcome="failed") + 1
        )
        deadline = time.monotonic() + 10
        while scrape().value("gwm_webhook_deliveries", **pending) > before.value(
            "gwm_webhook_deliveries", **pending
        ):
            assert time.monotonic() < deadline, "the delivery was not retried"
            deliver_due()
            time.sleep(0.01)
    after = scrape()
    assert (
        after.value(attempts, outcome="delivered")
        == before.value(attempts, outcome="delivered") + 1
    )
    assert after.value("gwm_webhook_pending_overdue_seconds") == 0


@pytest.fixture
def live(transactional_db: None, settings: Any) -> Iterator[LiveGwm]:
    settings.GWM_STREAM_HEARTBEAT_SECONDS = 0.2  # a closed stream is noticed at once
    with serving() as running:
        yield running


def _stream(live: LiveGwm, token: str, opened: threading.Event, stop: threading.Event) -> None:
    with live.client(token) as http, http.stream("GET", "/api/v1/changes/stream") as response:
        assert response.status_code == 200
        opened.set()
        for _ in response.iter_lines():
            if stop.is_set():
                return


def test_open_streams_are_counted(live: LiveGwm, admin_user: Any) -> None:
    from gwm.accounts.services.tokens import token_create

    token = token_create(actor=None, user=admin_user, name="stream")[1]
    before = scrape().value("gwm_stream_clients")
    opened, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=_stream, args=(live, token, opened, stop), daemon=True)
    reader.start()
    try:
        assert opened.wait(10)
        _until(
            "the stream to be counted",
            lambda: scrape().value("gwm_stream_clients") == before + 1,
            10,
        )
    finally:
        stop.set()
        reader.join(10)
    _until(
        "the closed stream to be let go", lambda: scrape().value("gwm_stream_clients") == before, 10
    )


# -- `gwm demo`: several processes, one directory ---------------------------------------


@contextlib.contextmanager
def _metrics_demo(directory: Path) -> Iterator[Demo]:
    """`gwm demo` with a metrics token and JSON logs at INFO (what the tests read)."""
    data, port, sim_port = directory / "data", _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GWM_", "DATABASE_URL", "CELERY_", "DJANGO_", "PROMETHEUS_"))
    }
    env.update(
        GWM_DATA_DIR=str(data),
        GWM_LOG_LEVEL="INFO",
        GWM_LOG_FORMAT="json",
        GWM_METRICS_TOKEN=TOKEN,
        GWM_SECRET_KEY="metrics-demo-" * 5,
        GWM_API_PROCESSES="2",
    )
    log = directory / "gwm.log"
    argv = [str(GWM), "demo", "--port", str(port), "--sim-port", str(sim_port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--nodes", "2", "--instances", "6"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    demo = Demo(process, f"http://127.0.0.1:{port}", port, f"https://127.0.0.1:{sim_port}", "", log)
    try:
        _until(
            "gwm to answer",
            lambda: (
                process.poll() is None
                and httpx.get(f"{demo.base}/healthz", timeout=5).status_code == 200
            ),
            90,
        )
        demo.token = json.loads((data / "demo-credentials.json").read_text())["admin"]["token"]
        demo.run_dir = _wake_dir(_api_processes(process.pid)[0])
        yield demo
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n--- gwm's log ---\n{demo.log_text()}") from None
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with _metrics_demo(tmp_path_factory.mktemp("metrics-demo")) as running:
        yield running


def _served(demo: Demo, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{demo.base}/metrics", headers=headers, timeout=10)


def _scrape_served(demo: Demo) -> Scrape:
    answer = _served(demo)
    assert answer.status_code == 200, answer.text
    return Scrape(answer.text)


def test_served_metrics_need_the_token(demo: Demo) -> None:
    assert _served(demo, None).status_code == 401
    assert _served(demo, "wrong-token-but-long-enough").status_code == 401
    assert _served(demo).status_code == 200


def test_served_metrics_merge_the_api_processes_and_the_worker(demo: Demo) -> None:
    rounds = "gwm_sync_round_duration_seconds_count"
    # Sync rounds run in the supervising process, which serves no HTTP at all.
    first = _until(
        "a sync round of the demo cluster",
        lambda: (found := _scrape_served(demo)).value(rounds, cluster="demo") > 0 and found,
        60,
    )
    _until(
        "more sync rounds",
        lambda: (
            _scrape_served(demo).value(rounds, cluster="demo") > first.value(rounds, cluster="demo")
        ),
        30,
    )
    assert first.value("gwm_rapi_requests_total", cluster="demo") > 0
    assert demo.run_dir is not None
    metrics_dir = demo.run_dir / "metrics"
    # One file per process and kind: counter_<pid>.db, histogram_<pid>.db...
    assert (metrics_dir / f"histogram_{demo.process.pid}.db").exists(), list(metrics_dir.iterdir())

    listed = {"route": "/api/v1/instances", "method": "GET", "status": "2xx"}
    count = "gwm_http_request_duration_seconds_count"
    before = _scrape_served(demo).value(count, **listed)

    def requests() -> None:
        for _ in range(15):  # new connections: the kernel hands them to either process
            with demo.client() as api:
                assert api.get("/instances", params={"fields": "name"}).status_code == 200

    threads = [threading.Thread(target=requests) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    served = _scrape_served(demo).value(count, **listed)
    assert served == before + 60
    # What was served is the sum of the API processes' own files.
    by_process = {
        pid: _file_value(metrics_dir / f"histogram_{pid}.db", count, **listed)
        for pid in _api_processes(demo.process.pid)
    }
    assert sum(by_process.values()) == served, by_process
    assert any(by_process.values()), by_process


def _file_value(path: Path, name: str, **labels: str) -> float:
    if not path.exists():
        return 0.0
    found = MultiProcessCollector.merge([str(path)], accumulate=True)
    return sum(
        sample.value
        for family in found
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _log_lines(demo: Demo) -> list[dict[str, Any]]:
    lines = []
    for line in demo.log_text().splitlines():
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                lines.append(parsed)
    return lines


def test_an_operation_over_http_moves_the_job_figures_and_logs_its_request_id(demo: Demo) -> None:
    done = {"action": "instance.shutdown", "status": "SUCCESS"}
    before = _scrape_served(demo).value("gwm_job_duration_seconds_count", **done)
    request_id = "op-trace-0042"
    with demo.client() as api:
        instances = api.get("/instances", params={"fields": "name,status"}).json()["items"]
        name = next(item["name"] for item in instances if item["status"] == "RUNNING")
        answer = api.post(
            f"/clusters/demo/instances/{name}/actions",
            json={"action": "shutdown"},
            headers={"X-Request-ID": request_id},
        )
        assert answer.status_code == 202, answer.text
        assert answer.headers["X-Request-ID"] == request_id
        job_id = answer.json()["id"]
        _until(
            "the job to end",
            lambda: api.get(f"/jobs/{job_id}").json()["status"] in FINAL,
            30,
        )
        assert api.get(f"/jobs/{job_id}").json()["status"] == "SUCCESS"
    after = _scrape_served(demo)
    assert after.value("gwm_job_duration_seconds_count", **done) == before + 1
    # The worker's lines about the job, in the supervising process, carry the request's id.
    worker_pid = demo.process.pid

    def about_the_job() -> list[dict[str, Any]]:
        return [line for line in _log_lines(demo) if line.get("job_id") == job_id]

    lines = _until("the job's log lines", lambda: len(about_the_job()) >= 3 and about_the_job(), 10)
    assert {line["request_id"] for line in lines} == {request_id}, lines
    # The API process's line that accepted it, then the worker's (in the supervisor).
    accepted = [line for line in lines if "accepted for instance" in line["message"]]
    assert len(accepted) == 1 and accepted[0]["process"] != worker_pid, lines
    assert {line["process"] for line in lines if line not in accepted} == {worker_pid}, lines
    assert {line["cluster"] for line in lines} == {"demo"}, lines
    assert any("is Ganeti job" in line["message"] for line in lines), lines
    assert any(line["message"].endswith("ended: SUCCESS") for line in lines), lines
    every = _log_lines(demo)
    assert every and all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in every
    )


# -- the dashboard and the documentation ---------------------------------------------------


def test_the_dashboard_and_the_documentation_name_only_real_figures() -> None:
    root = Path(__file__).resolve().parents[1]
    dashboard = json.loads((root / "deploy/grafana/gwm-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"\bgwm_[a-z_]+", expr)
    }
    assert used <= FAMILIES, used - FAMILIES
    assert {"gwm_sync_lag_seconds", "gwm_job_queue_seconds", "gwm_rapi_seconds"} <= used
    documented = set(re.findall(r"`(gwm_[a-z_]+)`", (root / "docs/observability.md").read_text()))
    counters = {"gwm_sync_round_failures", "gwm_rapi_requests", "gwm_rapi_errors"}
    counters |= {"gwm_rapi_seconds", "gwm_webhook_attempts"}
    named = {f"{name}_total" if name in counters else name for name in FAMILIES}
    assert named <= documented, named - documented


def test_the_broker_queue_depths_per_kind(settings: Any) -> None:
    """A doorbell nobody takes waits in its kind's queue, and the scrape says so; a broker
    that does not answer is ``gwm_broker_up 0``, never a failed scrape."""
    from gwm.kit.enqueue import ring
    from gwm.observability.broker import BrokerCollector
    from tests.operations.distributed import broker_url, delete_queue, publishing_to

    def depths() -> dict[tuple[str, str], float]:
        return {
            (sample.name, sample.labels.get("kind", "")): sample.value
            for family in BrokerCollector().collect()
            for sample in family.samples
        }

    url, prefix = broker_url(), f"gwm-test-{os.urandom(4).hex()}"
    settings.CELERY_BROKER_URL, settings.GWM_CELERY_QUEUE = url, prefix
    settings.GWM_DOORBELL_SOCKET = ""
    try:
        before = depths()
        assert before[("gwm_broker_up", "")] == 1
        assert before[("gwm_broker_queue_messages", "operations")] == 0
        with publishing_to(url, prefix):
            ring("operations.sweep")
            ring("operations.sweep")
        after = depths()
        assert after[("gwm_broker_queue_messages", "operations")] == 2
        assert after[("gwm_broker_queue_messages", "sync")] == 0
        assert after[("gwm_broker_queue_consumers", "operations")] == 0  # no worker runs
    finally:
        delete_queue(url, prefix)
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"  # nobody listens there
    assert depths() == {("gwm_broker_up", ""): 0}
