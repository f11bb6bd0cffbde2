"""What every benchmark shares: a throw-away database, simulators in another
process, timing statistics, machine facts and the result files.

Django reads its settings once per process, so each benchmark runs in its own
process and calls :func:`django_setup` before importing anything from gwm
that touches models.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: The checkout (for .sandbox/ and BENCHMARKS.md) even when the code runs from a snapshot.
REPO = Path(os.environ.get("GWM_BENCH_REPO", ROOT))
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("GWM_BENCH_PG_URL", "postgres://gwm:gwm@127.0.0.1:5432/gwm")
#: Every HTTP call a benchmark makes goes to loopback and is bounded.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the database --------------------------------------------------------------


@dataclass
class BenchDatabase:
    """A database of our own for one benchmark process, removed afterwards."""

    kind: str  # "sqlite" or "postgres"
    workdir: Path
    url: str = ""
    pg_name: str = ""

    def create(self) -> None:
        if self.kind == "sqlite":
            self.url = f"sqlite:///{self.workdir / 'gwm.sqlite3'}"
        elif self.kind == "postgres":
            self.pg_name = f"gwm_bench_{os.getpid()}"
            _pg_admin(f"create database {self.pg_name}")
            base = PG_ADMIN_URL.rsplit("/", 1)[0]
            self.url = f"{base}/{self.pg_name}"
        else:
            raise ValueError(f"unknown database kind {self.kind!r}")

    def drop(self) -> None:
        if self.kind == "postgres" and self.pg_name:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            _pg_admin(f"drop database if exists {self.pg_name} with (force)")

    def describe(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version} (file, WAL)"
        return f"PostgreSQL {_pg_admin('show server_version', fetch=True)} (loopback TCP)"


def _pg_admin(sql: str, fetch: bool = False) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(sql.encode())
        row = cursor.fetchone() if fetch else None
        return "" if row is None else str(row[0])


@contextlib.contextmanager
def bench_django(kind: str, *, keep: bool = False) -> Iterator[BenchDatabase]:
    """A temp data dir + database, Django set up and migrated; all removed at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="gwm-bench-"))
    db = BenchDatabase(kind, workdir)
    db.create()
    try:
        os.environ["GWM_DATA_DIR"] = str(workdir)
        os.environ["DATABASE_URL"] = db.url
        os.environ["GWM_SECRET_KEY"] = "bench-only-not-a-secret-" + "x" * 30
        os.environ["GWM_LOG_LEVEL"] = "WARNING"
        os.environ["CELERY_BROKER_URL"] = "memory://"
        os.environ["DJANGO_SETTINGS_MODULE"] = "gwm.settings"
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", "--no-input", verbosity=0)
        yield db
    finally:
        db.drop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def server_env(db: BenchDatabase) -> dict[str, str]:
    """The environment a gwm server subprocess needs to use the same database."""
    env = dict(os.environ)
    env.update(
        GWM_DATA_DIR=str(db.workdir),
        DATABASE_URL=db.url,
        DJANGO_SETTINGS_MODULE="gwm.settings",
        GWM_LOG_LEVEL="WARNING",
    )
    return env


# -- simulators in their own process -----------------------------------------------


@dataclass
class SimCluster:
    url: str
    cert: str

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "stats")
        return result

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("POST", "stats/reset")
        return result

    def admin(self, method: str, path: str) -> Any:
        """The simulator's admin API (``/__sim__/PATH``), TLS checked against its certificate."""
        response = httpx.request(
            method, f"{self.url}/__sim__/{path}", verify=self.cert, timeout=TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    def instance_names(self) -> list[str]:
        response = httpx.get(
            f"{self.url}/2/instances", auth=("gwm", "gwm"), verify=self.cert, timeout=TIMEOUT
        )
        response.raise_for_status()
        return [item["id"] for item in response.json()]


@dataclass
class SimHost:
    """``python -m bench.simhost`` as a child process, stopped on exit."""

    count: int
    nodes: int
    instances: int
    time_scale: float = 1.0
    seed: int = 1
    max_seconds: float = 1800.0
    clusters: list[SimCluster] = field(default_factory=list)
    start_seconds: float = 0.0
    _proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SimHost:
        cmd = [
            PYTHON,
            "-m",
            "bench.simhost",
            "--count",
            str(self.count),
            "--nodes",
            str(self.nodes),
            "--instances",
            str(self.instances),
            "--time-scale",
            str(self.time_scale),
            "--seed",
            str(self.seed),
            "--max-seconds",
            str(self.max_seconds),
        ]
        self._proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = _readline_bounded(self._proc, timeout=300)
        ready = json.loads(line)
        self.clusters = [SimCluster(c["url"], c["cert"]) for c in ready["clusters"]]
        self.start_seconds = ready["start_seconds"]
        return self

    def cpu_seconds(self) -> float | None:
        """User+system CPU the simulator process has used so far (Linux /proc)."""
        if self._proc is None:
            return None
        try:
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def __exit__(self, *exc: object) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _readline_bounded(proc: subprocess.Popen[str], timeout: float) -> str:
    import select

    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 1.0)
        if readable:
            line = proc.stdout.readline()
            if not line:
                break
            return line
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the simulator host did not start")


# -- registering clusters in gwm ------------------------------------------------------


def register(name: str, sim: SimCluster, **intervals: float) -> Any:
    """Register a simulated cluster the way the API does (RAPI probe included)."""
    from gwm.clusters.services import registry

    connection = registry.Connection(
        rapi_url=sim.url,
        username="gwm",
        password="gwm",
        tls_ca_pem=Path(sim.cert).read_text(),
        tls_fingerprint="",
        tls_verify=True,
    )
    return registry.cluster_create(
        actor=None, name=name, connection=connection, intervals=intervals or None
    )


def admin_token() -> str:
    from django.contrib.auth.models import User

    from gwm.accounts.services.tokens import token_create

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@localhost", "bench-password-1"
    )
    _, token = token_create(actor=None, user=user, name="bench")
    return token


# -- statistics ---------------------------------------------------------------------


def summary(samples: list[float]) -> dict[str, Any]:
    """p50/p95/min/max/mean of seconds, reported in milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    if len(ordered) == 1:
        p50 = p95 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p95 = cuts[49], cuts[94]
    return {
        "n": len(ordered),
        "p50_ms": round(p50 * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


# -- machine facts and results --------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    commit = code_version()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": os_name,
        "python": platform.python_version(),
        "commit": commit,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def code_version() -> str:
    """Which gwm code runs: the suite names its snapshot; else git HEAD of this checkout."""
    named = os.environ.get("GWM_BENCH_CODE")
    if named:
        return named
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "gwm"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"working tree at {commit}" + (" with uncommitted changes in gwm/" if dirty else "")


def write_result(path: str | None, name: str, data: dict[str, Any]) -> None:
    data = {
        "bench": name,
        "command": " ".join(["python", "-m", f"bench.{name}", *sys.argv[1:]]),
        **data,
    }
    text = json.dumps(data, indent=2, default=str)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    print(text)
