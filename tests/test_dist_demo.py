"""`make dist-demo` really runs: scripts/dist-demo brings distributed mode up, serves, and
stops every process it started on SIGTERM.

The script runs as `make dist-demo` runs it, in a subprocess, with free ports, a database,
a queue prefix and a run directory of this test's own (so it neither meets a demo someone
runs by hand nor other tests). Everything is checked from outside, over HTTP: the API
through the printed URL and token, the simulated cluster through its own RAPI.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.operations.distributed import broker_url, delete_queue, require_broker

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "dist-demo"
POSTGRES_ENV = "GWM_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgres://gwm:gwm@127.0.0.1:5432/gwm"
START_SECONDS = 240.0  # the script's own limit is 180 s, after PostgreSQL and RabbitMQ
STOP_SECONDS = 60.0

# `postgres`: it needs PostgreSQL and RabbitMQ, so the SQLite pass leaves it out and the
# PostgreSQL pass runs it (the test never touches the test database: the demo makes its own).
pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_url() -> str:
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL


def require_postgres(url: str) -> None:
    """A missing service fails the test, it is never skipped (docs/testing.md)."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({type(exc).__name__}: {exc}). The dist-demo "
            f"test needs it: start it with `scripts/services postgres` (which prints its URL) "
            f"and pass it in {POSTGRES_ENV}.",
            pytrace=False,
        )


def drop_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        connection.execute(drop)


# -- processes, read from /proc: (pid, start time) names one process even if pids wrap -----


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid``, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(root: int) -> dict[tuple[int, int], str]:
    """Every process under ``root`` (children, grandchildren...), with its command line."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found: dict[tuple[int, int], str] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        stat = _stat(pid)
        if stat is None:
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            found[(pid, stat[2])] = argv.decode(errors="replace").strip()
        todo.extend(parents.get(pid, []))
    return found


def still_there(processes: dict[tuple[int, int], str]) -> dict[tuple[int, int], str]:
    """Those of ``processes`` that still run (a zombie has ended: it only awaits its reaper)."""
    left = {}
    for (pid, started), argv in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == started and stat[1] != "Z":
            left[(pid, started)] = argv
    return left


@dataclass
class Demo:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def read(self) -> None:  # in a thread: the script's stdout, as it comes
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for_banner(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while "stop: Ctrl-C" not in self.output:
            if self.process.poll() is not None:
                time.sleep(0.5)  # the last lines
                pytest.fail(f"dist-demo exited ({self.process.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"dist-demo printed no banner in {timeout:.0f} s:\n{self.output}")
            time.sleep(0.2)
        found = {
            "url": re.search(r"^  API +(http://127\.0\.0\.1:\d+)/api/v1/", self.output, re.M),
            "token": re.search(r"^  admin token +(\S+)$", self.output, re.M),
        }
        missing = [key for key, match in found.items() if match is None]
        assert not missing, f"no {missing} in:\n{self.output}"
        return {key: match.group(1) for key, match in found.items() if match is not None}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Demo, Path, int]]:
    pg_url, mq_url = postgres_url(), broker_url()
    require_postgres(pg_url)
    require_broker(mq_url)
    suffix = uuid.uuid4().hex[:10]
    database, queue = f"gwm_dist_demo_test_{suffix}", f"gwm-dist-demo-test-{suffix}"
    run_dir, sim_port = tmp_path / "run", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    argv = [sys.executable, str(SCRIPT), "--port", str(free_port()), "--sim-port", str(sim_port)]
    argv += ["--database", database, "--queue", queue, "--run-dir", str(run_dir)]
    argv += ["--nodes", "2", "--instances", "6"]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Demo(process)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        yield running, run_dir, sim_port
    finally:
        if process.poll() is None:
            # Failed midway: SIGKILL; its children have SIGTERM as their parent-death signal.
            process.kill()
            process.wait()
        drop_database(pg_url, database)
        delete_queue(mq_url, queue)


def test_dist_demo_serves_operates_and_stops_every_process(demo: tuple[Demo, Path, int]) -> None:
    running, run_dir, sim_port = demo
    printed = running.wait_for_banner(START_SECONDS)
    base, auth = printed["url"], {"Authorization": f"Bearer {printed['token']}"}

    children = descendants(running.process.pid)
    commands = " | ".join(children.values())
    for command in ("simulator", " api ", "worker --name w1", "worker --name w2", " beat"):
        assert command in commands, commands
    assert len(children) >= 7, commands  # and the 2 API processes under `gwm api`
    for name in ("migrate", "api", "w1", "w2", "beat", "simulator"):
        assert (run_dir / f"{name}.log").stat().st_size > 0, name

    api = httpx.Client(base_url=base, headers=auth, timeout=30)
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200

    # The simulated cluster's own RAPI, over its pinned certificate, says what it has.
    pinned = ssl.create_default_context(cafile=str(run_dir / "data" / "simulator.pem"))
    rapi = httpx.Client(
        base_url=f"https://127.0.0.1:{sim_port}", auth=("gwm", "gwm"), verify=pinned, timeout=10
    )
    in_ganeti = {item["name"]: item for item in rapi.get("/2/instances?bulk=1").json()}
    assert len(in_ganeti) == 6

    listed = api.get("/api/v1/clusters/demo/instances", params={"fields": "name,status"})
    assert listed.status_code == 200, listed.text
    in_gwm = {item["name"]: item["status"] for item in listed.json()["items"]}
    assert set(in_gwm) == set(in_ganeti)

    name = next(n for n, status in sorted(in_gwm.items()) if status == "RUNNING")
    assert in_ganeti[name]["status"] == "running"

    # Stop it: the API writes the job, a worker submits and tracks it.
    answer = api.post(
        f"/api/v1/clusters/demo/instances/{name}/actions", json={"action": "shutdown"}
    )
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    deadline = time.monotonic() + 90
    while job["status"] not in ("SUCCESS", "ERROR", "CANCELED"):
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        waited = api.get(f"/api/v1/jobs/{job['id']}/wait", params={"timeout": 20})
        assert waited.status_code == 200, waited.text
        job = waited.json()["job"]
    assert job["status"] == "SUCCESS", job
    assert rapi.get(f"/2/instances/{name}").json()["status"] == "ADMIN_down"
    shown = api.get(f"/api/v1/clusters/demo/instances/{name}")
    assert shown.json()["status"] == "STOPPED", shown.text

    # The printed scrape: RAPI is only called by the workers, so its figures in an API
    # process's answer are the workers' own, merged through the shared directory.
    scrape = re.search(r'Authorization: Bearer ([^"]+)" (\S+/metrics)', running.output)
    assert scrape is not None, running.output
    figures = httpx.get(
        scrape[2], headers={"Authorization": f"Bearer {scrape[1]}"}, timeout=10
    ).text
    sent = re.search(
        r'^gwm_rapi_requests_total\{cluster="demo",method="GET"\} (\S+)$', figures, re.M
    )
    assert sent is not None and float(sent[1]) > 0, figures[:3000]
    assert re.search(r'^gwm_job_duration_seconds_count\{action="instance.shutdown"', figures, re.M)

    # SIGTERM: the script stops everything it started, then exits.
    running.process.send_signal(signal.SIGTERM)
    try:
        code = running.process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dist-demo still running {STOP_SECONDS:.0f} s after SIGTERM")
    assert code == 0, running.output
    deadline = time.monotonic() + 10  # the API processes are reaped by init, a moment later
    while (left := still_there(children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, _ in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"left running after SIGTERM: {left}"
    assert "stopped; logs in" in running.output, running.output
