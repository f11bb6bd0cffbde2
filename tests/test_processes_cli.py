"""The distributed-mode commands as an operator runs them: `gwm api`, `gwm worker`, `gwm migrate`.

Each runs the installed command in its own process with its own data directory and
SQLite file; the queues are checked on the real RabbitMQ the durability tests use.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gwm.kit import queues
from gwm.kit.enqueue import ring
from tests.operations.distributed import broker_url, delete_queue, publishing_to, require_broker

GWM = Path(sys.executable).with_name("gwm")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "GWM_CELERY_QUEUE"}
        and not k.startswith(("PYTEST_", "GWM_FAILPOINTS"))
    }
    env.update(
        GWM_DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'gwm.sqlite3'}",
        GWM_SECRET_KEY="x" * 50,
        **extra,
    )
    return env


def _run(env: dict[str, str], *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GWM), *argv], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _applied(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "gwm.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM django_migrations").fetchone()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(env: dict[str, str], *argv: str, path: str = "/healthz") -> Iterator[str]:
    """``gwm <argv> --port <free>`` in its own session until the block ends; yields
    ``http://127.0.0.1:<port>`` once ``path`` answers (a worker: its --metrics-port)."""
    port = _free_port()
    port_flag = "--metrics-port" if argv[0] in {"worker", "beat"} else "--port"
    process = subprocess.Popen(
        [str(GWM), *argv, port_flag, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            alive = process.poll() is None
            assert alive, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"{base}{path}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"gwm {argv[0]} did not answer {path}"
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_gwm_api_refuses_embedded_mode(tmp_path: Path) -> None:
    done = _run(_env(tmp_path), "api", "--port", str(_free_port()))
    assert done.returncode == 2, done.stderr
    assert "CELERY_BROKER_URL is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_gwm_api_refuses_an_unmigrated_database_and_never_migrates(tmp_path: Path) -> None:
    env = _env(tmp_path, CELERY_BROKER_URL=broker_url())
    done = _run(env, "api", "--port", str(_free_port()))
    assert done.returncode == 1, done.stderr
    assert "run `gwm migrate` once" in done.stderr
    assert "Traceback" not in done.stderr
    # It did not migrate on its own: the database has no applied migration.
    with sqlite3.connect(tmp_path / "gwm.sqlite3") as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE name='django_migrations'")
        assert tables.fetchone() is None or _applied(tmp_path) == 0


def test_two_migrates_at_once_take_turns_then_gwm_api_serves(tmp_path: Path) -> None:
    env = _env(tmp_path, CELERY_BROKER_URL=broker_url())
    both = [
        subprocess.Popen(
            [str(GWM), "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read().decode() if p.stderr else "") for p in both]
    assert [code for code, _ in results] == [0, 0], results
    assert _applied(tmp_path) > 0

    with serving(env, "api", "--processes", "1") as base:
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_gwm_worker_names_an_unknown_queue(tmp_path: Path) -> None:
    done = _run(_env(tmp_path), "worker", "--queues", "sync,bogus")
    assert done.returncode == 2
    assert "unknown queue bogus" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db
def test_each_kind_of_work_goes_to_its_own_queue() -> None:
    from kombu import Connection

    url = broker_url()
    require_broker(url)
    prefix = f"gwm-test-{uuid.uuid4().hex[:12]}"
    try:
        with publishing_to(url, prefix):
            from gwm.celery import app

            with app.connection_for_write() as connection:
                for declared in queues.task_queues(prefix):
                    declared.bind(connection.default_channel).declare()
            ring("sync.sync_cluster", 0)
            ring("sync.sync_cluster", 1)
            ring("operations.sweep")
            ring("events.deliver_webhooks")
        with Connection(url, connect_timeout=3) as connection:
            channel = connection.default_channel
            depth = {
                kind: channel.queue_declare(
                    queue=queues.queue_name(prefix, kind), passive=True
                ).message_count
                for kind in queues.KINDS
            }
        assert depth == {"sync": 2, "operations": 1, "deliveries": 1}
    finally:
        delete_queue(url, prefix)


def test_a_worker_serves_its_own_figures_on_its_metrics_port(tmp_path: Path) -> None:
    env = _env(tmp_path, CELERY_BROKER_URL=broker_url())
    require_broker(broker_url())
    assert _run(env, "migrate").returncode == 0
    prefix = f"gwm-test-{uuid.uuid4().hex[:8]}"
    name = f"m-{uuid.uuid4().hex[:6]}"
    try:
        with serving({**env, "GWM_CELERY_QUEUE": prefix}, "worker", "--name", name,
                     path="/metrics") as base:  # fmt: skip
            answer = httpx.get(f"{base}/metrics", timeout=5)
            assert answer.status_code == 200
            assert "# HELP gwm_sync_round_duration_seconds" in answer.text
            assert "# HELP gwm_rapi_requests_total" in answer.text
            # The database's figures are an API process's to serve, not each worker's.
            assert "gwm_jobs_unsubmitted" not in answer.text
            # A second process on the same port says why it cannot, with no traceback.
            port = base.rsplit(":", 1)[1]
            taken = _run(env, "beat", "--metrics-port", port, timeout=60)
            assert taken.returncode == 1, taken.stderr
            assert f"cannot serve metrics on 127.0.0.1:{port}" in taken.stderr
            assert "Traceback" not in taken.stderr
    finally:
        delete_queue(broker_url(), prefix)
