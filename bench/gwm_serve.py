"""``gwm serve`` as a user starts it, for benchmarks that load it over HTTP.

The real console command (``.venv/bin/gwm serve --port P``) in a data dir of
its own, with the default configuration: the inherited environment loses
every ``GWM_*``, ``DATABASE_URL`` and ``CELERY_*`` variable, so SQLite in the
data dir, the embedded scheduler and workers, and migrations at start; only
``DATABASE_URL`` may be given (PostgreSQL). Whatever processes ``gwm serve``
starts (API processes, a worker process), they stay in its session, so the
whole tree is counted (CPU from /proc) and stopped as one process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, ROOT, TIMEOUT, log

GWM = str(Path(PYTHON).parent / "gwm")
BENCH_USER = "bench"
_EMAIL = "--email=bench@localhost"
_DROPPED = ("GWM_", "DATABASE_URL", "CELERY_", "DJANGO_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


class GwmServe:
    """One ``gwm serve`` process tree; a context manager that always kills its group."""

    def __init__(self, data_dir: Path, database_url: str = "") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
        self.env["GWM_DATA_DIR"] = str(data_dir)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.log_path = data_dir / "gwm-serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0
        self.stopped = ""

    def __enter__(self) -> GwmServe:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                [GWM, "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own session and process group: counted and killed as a whole.
                start_new_session=True,
            )
        try:
            self._wait_healthy(timeout=180)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = round(time.monotonic() - started, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"gwm serve did not become healthy; its log ends:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after 20 s."""
        if self.proc is None:
            return
        group = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        started = time.monotonic()
        try:
            self.proc.wait(timeout=20)
            self.stopped = f"by SIGTERM in {time.monotonic() - started:.1f} s"
        except subprocess.TimeoutExpired:
            log("gwm serve did not stop within 20 s of SIGTERM: killing its process group")
            self.stopped = "by SIGKILL: still running 20 s after SIGTERM"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None

    # -- what the tree is doing ----------------------------------------------------

    def _members(self) -> list[tuple[str, list[str]]]:
        """(pid, stat fields) of every live process in gwm serve's session."""
        assert self.proc is not None
        session = str(self.proc.pid)
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat_fields(entry.name)
                if fields is not None and fields[3] == session:
                    found.append((entry.name, fields))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process of the tree so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        return sum(int(f[11]) + int(f[12]) for _, f in self._members()) / ticks

    def processes(self) -> list[dict[str, Any]]:
        """What the tree is made of (command lines), so a report says what was measured."""
        shown = []
        for pid, fields in self._members():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            command = " ".join(a.decode(errors="replace") for a in argv if a)
            shown.append({"pid": int(pid), "threads": int(fields[17]), "command": command[:160]})
        return shown

    # -- as an operator sets it up ---------------------------------------------------

    def admin_token(self) -> str:
        """A superuser and a token for it, made with gwm's own commands."""
        env = dict(self.env, DJANGO_SUPERUSER_PASSWORD="bench-password-1")
        subprocess.run(
            [GWM, "manage", "createsuperuser", "--noinput", f"--username={BENCH_USER}", _EMAIL],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        made = subprocess.run(
            [GWM, "token", "create", BENCH_USER, "--description", "bench", "--days", "1"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return made.stdout.strip().splitlines()[-1]

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )


def register_cluster(
    api: httpx.Client, name: str, url: str, ca_file: str, auth: tuple[str, str]
) -> None:
    """``POST /api/v1/clusters`` with the default intervals (the scheduler syncs it)."""
    response = api.post(
        "/api/v1/clusters",
        json={
            "name": name,
            "rapi_url": url,
            "username": auth[0],
            "password": auth[1],
            "tls_ca_pem": Path(ca_file).read_text(),
        },
    )
    if response.status_code != 201:
        raise RuntimeError(f"registering {name}: {response.status_code} {response.text[:500]}")


def wait_synced(api: httpx.Client, name: str, instances: int | None, timeout: float) -> float:
    """Seconds until ``name`` had its first full sync (and ``instances`` cached, if given)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        cluster = api.get(f"/api/v1/clusters/{name}").json()
        sync = cluster.get("sync", {})
        count = cluster.get("counts", {}).get("instances", 0)
        if (
            sync.get("slow_synced_at")
            and sync.get("runtime_synced_at")
            and (instances is None or count >= instances)
        ):
            return round(time.monotonic() - started, 1)
        time.sleep(1.0)
    raise RuntimeError(f"cluster {name} was not synced within {timeout:g} s: {cluster}")
