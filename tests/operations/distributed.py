"""Distributed mode for durability tests: real worker processes on a real RabbitMQ.

The test process and every worker share the test database (the file or the
``test_`` database pytest-django made) and one broker queue named for this
test alone, so parallel runs never take each other's doorbells. Workers are
``celery -A gwm worker`` subprocesses that can be SIGKILLed at any instant
and started again; a failpoint (``GWM_FAILPOINTS``) makes one kill itself
at the worst moment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn

from gwm.kit import queues
from gwm.simulator.server import Running

ROOT = Path(__file__).resolve().parents[2]
BROKER_ENV = "GWM_TEST_BROKER_URL"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
WORKER_START_SECONDS = 30.0


def broker_url() -> str:
    return os.environ.get(BROKER_ENV) or DEFAULT_BROKER_URL


def require_broker(url: str) -> None:
    """A suite whose real service is missing fails; it is not skipped (docs/testing.md)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {url} ({type(exc).__name__}: {exc}). The durability "
            f"tests need a real broker: start one with `scripts/services rabbitmq` (which prints "
            f"its URL) and pass it in {BROKER_ENV}.",
            pytrace=False,
        )


def delete_queue(url: str, queue: str) -> None:
    """Drop the test's queues and their exchanges (celery declares them durable)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(url, connect_timeout=3) as connection:
        channel = connection.default_channel
        for declared in queues.task_queues(queue):
            channel.queue_delete(declared.name)
            channel.exchange_delete(declared.name)


def database_url() -> str:
    """The database this test runs on, as a URL another process can open."""
    from django.db import connection

    config = connection.settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(config['NAME']).resolve()}"
    if config["ENGINE"] == "django.db.backends.postgresql":
        user = quote(config.get("USER") or "", safe="")
        password = quote(config.get("PASSWORD") or "", safe="")
        host = config.get("HOST") or "127.0.0.1"
        port = config.get("PORT") or 5432
        return f"postgres://{user}:{password}@{host}:{port}/{config['NAME']}"
    raise AssertionError(f"no URL for database engine {config['ENGINE']}")


@contextlib.contextmanager
def publishing_to(url: str, queue: str) -> Iterator[None]:
    """Make this process ring doorbells on ``url`` and the queues named after ``queue``
    (``GWM_CELERY_QUEUE``), as a `gwm api` would."""
    from gwm.celery import app

    conf = app.conf
    saved = (conf.broker_url, conf.task_default_queue, conf.task_queues, conf.task_routes)

    def reset_pools() -> None:
        # Forget the connection pool (kombu keeps one per broker URL for the whole
        # process: the next test on this broker gets the same one back) and the AMQP
        # helper, which caches queues, exchange and router built from the default
        # queue of the moment: an embedded worker in a later test would consume ours.
        app._pool = None
        app.__dict__.pop("amqp", None)

    conf.broker_url, conf.task_default_queue = url, queues.queue_name(queue, "operations")
    conf.task_queues, conf.task_routes = queues.task_queues(queue), queues.task_routes(queue)
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        conf.broker_url, conf.task_default_queue, conf.task_queues, conf.task_routes = saved


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    failpoints: str

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a pulled plug would; waits until it is gone."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Distributed:
    """gwm in distributed mode around the test: N worker processes on one broker queue."""

    broker: str
    queue: str
    database: str
    lease_seconds: int
    logs: Path
    workers: list[Worker] = field(default_factory=list)
    _counter: int = 0

    def start_worker(
        self,
        *,
        failpoints: str = "",
        concurrency: int = 4,
        wait: bool = True,
        name: str | None = None,
    ) -> Worker:
        """Start `celery -A gwm worker` (what `gwm worker` runs); ``wait``: until it consumes.
        ``name``: an earlier worker's, as a restarted one would have."""
        self._counter += 1
        name = name or f"w{self._counter}{'-fp' if failpoints else ''}"
        env = dict(os.environ)
        for variable in ("GWM_FAILPOINTS", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST"):
            env.pop(variable, None)
        env.update(
            DJANGO_SETTINGS_MODULE="gwm.settings",
            DATABASE_URL=self.database,
            CELERY_BROKER_URL=self.broker,
            GWM_CELERY_QUEUE=self.queue,
            GWM_JOB_LEASE_SECONDS=str(self.lease_seconds),
            GWM_LOG_LEVEL="WARNING",
        )
        if failpoints:
            env["GWM_FAILPOINTS"] = failpoints
        log_path = self.logs / f"{name}.log"
        # If this test process dies without its finalizers, its workers die with it.
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        argv = [
            *guard,
            sys.executable,
            "-m",
            "celery",
            "-A",
            "gwm",
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            # Remote control, mingle and gossip would talk to other test runs' workers.
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname={self.node(name)}",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        worker = Worker(name, process, log_path, failpoints)
        self.workers.append(worker)
        if not wait:
            return worker
        deadline = time.monotonic() + WORKER_START_SECONDS
        while " ready." not in log_path.read_text(errors="replace"):
            if not worker.alive:
                # A failpoint may fire on a redelivered message before "ready" is logged.
                if failpoints and worker.process.returncode == -signal.SIGKILL:
                    return worker
                raise AssertionError(f"worker {name} exited at start:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                worker.kill()
                raise AssertionError(f"worker {name} not ready in time:\n{worker.log_tail()}")
            time.sleep(0.05)
        return worker

    def node(self, name: str) -> str:
        """The Celery node name of worker ``name``: the start of its lease owners."""
        return f"{name}-{self.queue}@{socket.gethostname()}"

    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive]

    def kill_all(self) -> None:
        for worker in self.workers:
            worker.kill()

    def logs_tail(self) -> str:
        return "\n".join(
            f"--- {w.name} (rc={w.process.poll()})\n{w.log_tail()}" for w in self.workers
        )


def distributed_mode(*, logs: Path, lease_seconds: int) -> Iterator[Distributed]:
    """The generator behind the ``distributed`` fixture (see test_durability.py)."""
    url = broker_url()
    require_broker(url)
    queue = f"gwm-test-{uuid.uuid4().hex[:12]}"
    harness = Distributed(url, queue, database_url(), lease_seconds, logs)
    try:
        with publishing_to(url, queue):
            yield harness
    finally:
        harness.kill_all()
        delete_queue(url, queue)


# -- the simulator going away entirely (connection refused) and coming back -------------


def stop_simulator(running: Running) -> None:
    running.stop()
    assert not running.thread.is_alive(), "the simulator did not stop"


def restart_simulator(running: Running, timeout: float = 10.0) -> Running:
    """Serve the same simulated cluster again on the same port with the same certificate."""
    from gwm.simulator.asgi import build_app

    assert running.cert_path is not None
    port = int(running.url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        build_app(running.sim),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
        ssl_certfile=str(running.cert_path),
        ssl_keyfile=str(running.cert_path.with_name(running.cert_path.name + ".key")),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: _serve(server), name=f"sim-again-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError(f"the simulator did not start again on port {port}")
        time.sleep(0.01)
    return Running(running.url, running.cert_path, running.sim, server, thread)


def _serve(server: uvicorn.Server) -> None:
    import asyncio

    asyncio.run(server.serve())


def until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until ``predicate`` is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
