"""Distributed mode as an operator runs it, for tests/operations/test_distributed_ha.py.

`gwm migrate`, two `gwm api` (A and B, on two ports), two `gwm worker` (w1, w2) and one
`gwm beat`, each its own process with its own log, on the private PostgreSQL and
RabbitMQ of tests/operations/private_services.py and a simulated cluster.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from gwm.simulator.server import Running
from tests.clusters.helpers import registration_body
from tests.operations.distributed import ROOT, until
from tests.operations.private_services import (
    PrivatePostgres,
    PrivateRabbit,
    free_port,
    guard,
    log_tail,
    private_postgres,
    private_rabbit,
)

GWM = Path(sys.executable).with_name("gwm")
FINAL = frozenset({"SUCCESS", "ERROR", "CANCELED"})
MARK = "gwm:op:"
METRICS_TOKEN = "metrics-" + "0123456789abcdef"
CLUSTER = "sim"
#: How long a job's claim lasts (a dead worker's job is taken over after it).
LEASE_SECONDS = 10
#: Instances in the simulated cluster: every test takes its own (the chaos test 100).
INSTANCES = 120
#: An administrator and a token, made as tests/conftest.py's ``api`` fixture makes them
#: (gwm.accounts.services.tokens.token_create), but in gwm's database: `gwm manage shell`.
MAKE_TOKEN = """
from django.contrib.auth.models import User
from gwm.accounts.services.tokens import token_create
user = User.objects.create_superuser("admin", "admin@localhost", "pw-admin-12345")
print(token_create(actor=None, user=user, name="distributed-ha")[1])
"""


# -- gwm's processes -------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would; waits until it is gone."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.alive:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (rc={self.process.poll()})\n{log_tail(self.log, lines)}"


@dataclass
class Harness:
    """gwm in distributed mode on the private services, and what the tests share."""

    pg: PrivatePostgres
    mq: PrivateRabbit
    sim: Running
    work: Path
    env: dict[str, str]
    token: str = ""
    api_ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    retired: list[Proc] = field(default_factory=list)
    free_instances: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _starts: Counter[str] = field(default_factory=Counter)

    # processes

    def run(self, *argv: str, timeout: float = 180, **extra: str) -> str:
        done = subprocess.run(
            [str(GWM), *argv],
            env={**self.env, **extra},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"gwm {' '.join(argv)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def spawn(self, name: str, *argv: str, cwd: Path | None = None) -> Proc:
        self._starts[name] += 1
        log = self.work / f"{name}.{self._starts[name]}.log"
        command = [*guard(), str(GWM), *argv]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=self.env,
                cwd=cwd or ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, command, process, log)
        old = self.procs.get(name)
        if old is not None:
            self.retired.append(old)
        self.procs[name] = proc
        return proc

    def start_api(self, name: str) -> Proc:
        port = self.api_ports.setdefault(name, free_port())
        return self.spawn(
            name, "api", "--host", "127.0.0.1", "--port", str(port), "--processes", "1"
        )

    def start_worker(self, name: str) -> Proc:
        return self.spawn(name, "worker", "--name", name, "--concurrency", "6")

    def start_beat(self, name: str = "beat") -> Proc:
        # Each beat keeps its schedule file in its own directory (celerybeat-schedule).
        directory = self.work / name
        directory.mkdir(exist_ok=True)
        return self.spawn(name, "beat", cwd=directory)

    def wait_worker_ready(self, name: str, timeout: float = 60) -> None:
        proc = self.procs[name]

        def ready() -> bool:
            assert proc.alive, f"worker {name} exited:\n{proc.tail()}"
            return " ready." in proc.log.read_text(errors="replace")

        until(ready, timeout=timeout, interval=0.2, what=f"worker {name} to be ready")

    def wait_api_ready(self, name: str, timeout: float = 60) -> None:
        proc = self.procs[name]

        def ready() -> bool:
            assert proc.alive, f"{name} exited:\n{proc.tail()}"
            try:
                return httpx.get(f"{self.url(name)}/readyz", timeout=3).status_code == 200
            except httpx.HTTPError:
                return False

        until(ready, timeout=timeout, interval=0.2, what=f"{name} to answer /readyz")

    def all_alive(self) -> dict[str, bool]:
        return {name: proc.alive for name, proc in self.procs.items()}

    def logs(self, *names: str, lines: int = 30) -> str:
        chosen = names or tuple(self.procs)
        return "\n".join(self.procs[n].tail(lines) for n in chosen if n in self.procs)

    def grep_logs(self, *needles: str, of: tuple[str, ...] = ()) -> list[str]:
        """Lines of every run's log (of the processes named ``of``) holding a needle."""
        found = []
        for proc in [*self.retired, *self.procs.values()]:
            if of and proc.name not in of:
                continue
            for line in log_tail(proc.log, 100000).splitlines():
                if any(needle in line for needle in needles):
                    found.append(f"{proc.log.name}: {line[:400]}")
        return found

    # HTTP

    def url(self, api: str) -> str:
        return f"http://127.0.0.1:{self.api_ports[api]}"

    def client(self, api: str, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.url(api),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def instance(self, api: str, name: str) -> dict[str, Any]:
        with self.client(api) as client:
            answer = client.get(f"/api/v1/clusters/{CLUSTER}/instances/{name}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def job(self, api: str, job_id: int) -> dict[str, Any]:
        with self.client(api) as client:
            answer = client.get(f"/api/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def post_action(
        self, api: str, name: str, action: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        with self.client(api) as client:
            return client.post(
                f"/api/v1/clusters/{CLUSTER}/instances/{name}/actions",
                json={"action": action},
                headers=headers,
            )

    def wait_final(self, api: str, job_id: int, timeout: float) -> dict[str, Any]:
        """Follow a job through ``/wait`` on ``api`` until it ends."""
        deadline = time.monotonic() + timeout
        with self.client(api, timeout=60) as client:
            job = client.get(f"/api/v1/jobs/{job_id}").json()
            while job["status"] not in FINAL:
                left = deadline - time.monotonic()
                assert left > 0, f"job {job_id} did not end: {job}\n{self.logs()}"
                answer = client.get(
                    f"/api/v1/jobs/{job_id}/wait",
                    params={"timeout": min(20, max(1, int(left))), "status": job["status"]},
                )
                assert answer.status_code == 200, answer.text
                job = answer.json()["job"]
        return dict(job)

    # the simulated cluster

    def take(self, count: int, *, running: bool | None = None) -> list[str]:
        """Instances no other test has used; ``running``: only those Ganeti runs (or not)."""
        states = self.sim.sim.state.instances
        chosen = [
            name
            for name in self.free_instances
            if running is None or (states[name].running_on is not None) == running
        ][:count]
        assert len(chosen) == count, f"the simulated cluster has too few instances left: {count}"
        for name in chosen:
            self.free_instances.remove(name)
        return chosen

    def toggle(self, name: str) -> tuple[str, str]:
        """The action that changes the instance's power state, and the status it leaves."""
        if self.sim.sim.state.instances[name].running_on is not None:
            return "shutdown", "STOPPED"
        return "start", "RUNNING"

    def reasons(self) -> Counter[int]:
        """gwm job id → how many Ganeti jobs carry ``gwm:op:<id>`` in their reason trail."""
        counts: Counter[int] = Counter()
        for job in list(self.sim.sim.queue.jobs.values()):
            ids = {
                int(str(entry[1])[len(MARK) :])
                for op in job.ops
                for entry in op.input.get("reason", [])
                if str(entry[1]).startswith(MARK)
            }
            counts.update(ids)
        return counts

    def ganeti_job_of(self, job_id: int) -> list[Any]:
        marker = f"{MARK}{job_id}"
        return [
            job
            for job in list(self.sim.sim.queue.jobs.values())
            if any(str(e[1]) == marker for op in job.ops for e in op.input.get("reason", []))
        ]

    def assert_once_in_ganeti(self, jobs: dict[int, dict[str, Any]]) -> None:
        """Each gwm job reached Ganeti exactly once, as the job it recorded."""
        reasons = self.reasons()
        twice = {pk: reasons[pk] for pk in jobs if reasons[pk] != 1}
        assert twice == {}, f"gwm jobs not sent to Ganeti exactly once: {twice}"
        recorded = [job["ganeti"]["job_id"] for job in jobs.values()]
        assert len(set(recorded)) == len(recorded), f"a Ganeti job id recorded twice: {recorded}"
        for pk, job in jobs.items():
            (ganeti_job,) = self.ganeti_job_of(pk)
            assert job["ganeti"]["job_id"] == ganeti_job.id, (pk, job["ganeti"], ganeti_job.id)


def _base_env(work: Path, pg: PrivatePostgres, mq: PrivateRabbit) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GWM_", "PYTEST_", "PROMETHEUS_", "CELERY_", "RABBITMQ_"))
        and k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    metrics = work / "metrics"
    metrics.mkdir()
    env.update(
        DJANGO_SETTINGS_MODULE="gwm.settings",
        DATABASE_URL=pg.url,
        CELERY_BROKER_URL=mq.url,
        GWM_SECRET_KEY=secrets.token_urlsafe(50),
        GWM_CELERY_QUEUE=f"gwm-ha-{uuid.uuid4().hex[:8]}",
        GWM_DATA_DIR=str(work / "data"),
        GWM_METRICS_TOKEN=METRICS_TOKEN,
        GWM_METRICS_DIR=str(metrics),
        GWM_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        GWM_HTTP_TIMEOUT_SECONDS="5",
        GWM_API_PROCESSES="1",
        GWM_DB_POOL_SIZE="8",
        # Distributed mode's default, said here: the request-id test parses the lines.
        GWM_LOG_FORMAT="json",
        # The webhook receiver is on loopback, which a target may not be otherwise.
        GWM_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        GWM_VALIDATE_RESPONSES="1",
        GWM_VALIDATE_EVENTS="1",
        GWM_TOKEN_CACHE_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def harness_running(simulated: Running, work: Path) -> Iterator[Harness]:
    """Services, migrate, both APIs, both workers, beat, a token and the cluster registered."""
    began = time.monotonic()
    with private_postgres() as pg, private_rabbit() as mq:
        services = time.monotonic() - began
        harness = Harness(pg, mq, simulated, work, _base_env(work, pg, mq))
        harness.timings["services_start"] = services
        harness.timings["rabbitmq_first_start"] = mq.starts[0]
        try:
            t = time.monotonic()
            harness.run("migrate")
            harness.timings["migrate"] = time.monotonic() - t
            t = time.monotonic()
            for name in ("api_a", "api_b"):
                harness.start_api(name)
            for name in ("w1", "w2"):
                harness.start_worker(name)
            harness.start_beat()
            made = harness.run("manage", "shell", "--no-imports", "-c", MAKE_TOKEN)
            harness.token = made.strip().splitlines()[-1]
            for name in ("api_a", "api_b"):
                harness.wait_api_ready(name)
            for name in ("w1", "w2"):
                harness.wait_worker_ready(name)
            harness.timings["processes_ready"] = time.monotonic() - t
            _register(harness)
            harness.timings["setup_total"] = time.monotonic() - began
            print(f"\ndistributed-ha setup: {harness.timings}")
            yield harness
        finally:
            for proc in harness.procs.values():
                proc.stop()
            print(f"\ndistributed-ha timings: {harness.timings}")


def _register(harness: Harness) -> None:
    body = registration_body(harness.sim, name=CLUSTER, fast_interval=5.0, runtime_interval=15.0)
    with harness.client("api_a") as client:
        answer = client.post("/api/v1/clusters", json=body)
        assert answer.status_code in {201, 202}, answer.text

        def available() -> bool:
            seen = client.get(f"/api/v1/clusters/{CLUSTER}").json()
            return seen["status"] == "AVAILABLE" and seen["counts"].get("instances") == INSTANCES

        until(available, timeout=60, interval=0.3, what="the cluster's first sync")

        # And its first runtime round: before it an instance Ganeti runs reads UNKNOWN
        # (gwm.ganeti.fields.instance_status: "no runtime answer yet").
        def runtime_read() -> bool:
            page = client.get(f"/api/v1/clusters/{CLUSTER}/instances", params={"limit": 1000})
            items = page.json()["items"]
            return len(items) == INSTANCES and all(i["runtime_synced_at"] for i in items)

        until(runtime_read, timeout=60, interval=0.5, what="the cluster's first runtime round")
    harness.free_instances = sorted(harness.sim.sim.state.instances)
    random.Random(5).shuffle(harness.free_instances)


def iso_stamp(text: str | None) -> float:
    assert text, "no timestamp"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
