"""Failover of distributed gwm: how fast a cluster's sync (and a job) recovers from a dead worker.

gwm as an operator runs it in distributed mode, started the way ``scripts/dist-demo``
starts it: a database of its own on the local PostgreSQL, a queue prefix of its own
on the local RabbitMQ, ``gwm migrate`` once, then separate processes ``gwm worker
--name w1``, ``gwm worker --name w2``, ``gwm beat``, a simulated cluster (``gwm
simulator``, HTTPS, time scale 1) and, for scenario (c), ``gwm api``. This process
registers the cluster and watches its row (``lease_owner``, ``lease_until``,
``synced_at`` of ``clusters_cluster``); it syncs nothing itself.

The simulator answers every RAPI request ``--latency`` s late (``PUT
/__sim__/faults``), so a sync round lasts seconds and a worker can be caught in
the middle of one. Scenarios, each ``--kills`` times:

(a) *lost worker*: once a worker holds the cluster's lease (a round is running),
    wait a random fraction of a second, SIGKILL it, and leave it dead until the
    cluster's ``synced_at`` moves past the kill (the other worker completed a
    round): kill → that round. Then start the killed worker again under its name.
    docs/deployment.md promises ≤ 30 s.
(b) *restarted worker*: the same kill, then ``gwm worker --name <same>`` again at
    once: kill → the next completed round (the design: a worker restarted under
    its name takes its leases back at once), and kill → the new process ready.
(c) *job tracked* (``--job-kills`` times): ``POST .../instances/NAME/actions``
    (shutdown, then start, alternately; the simulator runs each opcode for
    ``--op-seconds``), SIGKILL the worker holding the job's lease while it follows
    the Ganeti job, leave it dead until the job ends as seen through
    ``GET /api/v1/jobs/ID``: kill → that. Ganeti's own job count for the instance
    is compared with gwm's jobs (a job sent twice would show there).

Everything on 127.0.0.1; the database and the queues are dropped at the end.

    nice .venv/bin/python -m bench.failover                  # 10 + 10 kills, 5 job kills
    nice .venv/bin/python -m bench.failover --kills 3 --job-kills 0 --json /tmp/f.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.common import PG_ADMIN_URL, ROOT, log, machine_info, write_result

HOST = "127.0.0.1"
GWM = str(Path(sys.executable).with_name("gwm"))
BROKER_URL = os.environ.get("GWM_BENCH_BROKER_URL", "amqp://gwm:gwm@127.0.0.1:5672/gwm")
WORKERS = ("w1", "w2")
CLUSTER = "failover"
#: The demo's intervals (gwm.demo): a round is due every 2 s at the latest.
INTERVALS = {"fast_interval": 2.0, "runtime_interval": 5.0, "slow_interval": 30.0}
#: docs/deployment.md, "Failover": a dead worker's cluster is synced by another within 30 s.
TAKEOVER_BOUND_SECONDS = 30.0
START_SECONDS = 180.0
#: Longest wait for a recovery before the repetition counts as "never completed".
RECOVERY_TIMEOUT = 120.0
POLL_SECONDS = 0.05
FINAL_JOB = {"SUCCESS", "ERROR", "CANCELED"}
TRACKED_JOB = {"QUEUED", "WAITING", "RUNNING", "CANCELING"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# -- PostgreSQL and RabbitMQ ----------------------------------------------------------


def _database(name: str, *, create: bool) -> None:
    """Drop ``name`` (FORCE: a process of an interrupted run may still be connected),
    then create it afresh if asked."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        named = sql.Identifier(name)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(named))
        if create:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(named))


def fresh_database(name: str) -> str:
    _database(name, create=True)
    return urlunsplit(urlsplit(PG_ADMIN_URL)._replace(path=f"/{name}"))


def delete_queues(prefix: str) -> None:
    from kombu import Connection

    from gwm.kit.queues import task_queues

    with contextlib.suppress(Exception), Connection(BROKER_URL, connect_timeout=5) as connection:
        channel: Any = connection.default_channel
        for queue in task_queues(prefix):
            channel.queue_delete(queue.name)
            channel.exchange_delete(queue.name)


# -- gwm's processes ------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Processes:
    """The gwm processes of this run, each in a session of its own; a worker may have
    several lives (one log each)."""

    run_dir: Path
    env: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)
    lives: dict[str, int] = field(default_factory=dict)
    finished: list[Proc] = field(default_factory=list)

    def start(self, name: str, *argv: str) -> Proc:
        life = self.lives.get(name, 0) + 1
        self.lives[name] = life
        log_path = self.run_dir / f"{name}.{life}.log"
        # If this process dies without its cleanup, gwm's processes die with it.
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [*guard, GWM, *argv],
                cwd=self.env["GWM_DATA_DIR"],  # beat writes its schedule file there
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path, time.monotonic())
        if name in self.procs:
            self.finished.append(self.procs[name])
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str) -> Proc:
        return self.start(name, "worker", "--name", name)

    def kill(self, name: str) -> None:
        """SIGKILL, as a lost host or the OOM killer would; returns once it is gone."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=30)

    def check_alive(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            proc = self.procs[name]
            if proc.name != "migrate" and not proc.alive:
                tail = "\n".join(proc.text().splitlines()[-20:])
                raise RuntimeError(f"{name} exited ({proc.popen.returncode}):\n{tail}")

    def stop_all(self) -> None:
        """SIGTERM every group, SIGKILL what is left after 15 s."""
        running = [p for p in self.procs.values() if p.alive]
        for proc in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=30)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            result = check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def worker_ready(proc: Proc) -> bool:
    return " ready." in proc.text()


# -- the cluster's row and its lease ---------------------------------------------------------


def now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def cluster_row(pk: int) -> dict[str, Any]:
    from gwm.clusters.models import Cluster

    return dict(
        Cluster.objects.values("lease_owner", "lease_until", "synced_at", "error").get(pk=pk)
    )


def holder_of(owner: str) -> str | None:
    """The worker named in a lease owner (``w1@host/boot/thread:nonce``), or None."""
    node = owner.split("/", 1)[0]
    name = node.split("@", 1)[0] if "@" in node else ""
    return name if name in WORKERS else None


def life_of(owner: str) -> str:
    """``w1@host/boot``: one process of one worker."""
    return "/".join(owner.split("/")[:2])


def wait_mid_round(pk: int, rng: random.Random, timeout: float = 60.0) -> tuple[str, str]:
    """Until a worker holds the cluster's lease, a random 0-1 s into its hold: (name, owner)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner = cluster_row(pk)["lease_owner"]
        name = holder_of(owner)
        if name is None:
            time.sleep(POLL_SECONDS)
            continue
        time.sleep(rng.uniform(0.0, 1.0))
        if cluster_row(pk)["lease_owner"] == owner:
            return name, owner
    raise RuntimeError("no worker held the cluster's lease")


def wait_round_after(
    pk: int, since: datetime, timeout: float, on_poll: Callable[[], None] | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """Until ``synced_at`` passes ``since``: the row then (None on timeout) and the
    distinct lease owners seen meanwhile, in order."""
    owners: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = cluster_row(pk)
        if row["lease_owner"] and (not owners or owners[-1] != row["lease_owner"]):
            owners.append(row["lease_owner"])
        if row["synced_at"] is not None and row["synced_at"] > since:
            return row, owners
        if on_poll is not None:
            on_poll()
        time.sleep(POLL_SECONDS)
    return None, owners


# -- the scenarios ------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    procs: Processes
    cluster_pk: int
    sim_url: str
    cert: str
    rng: random.Random
    api_base: str = ""
    token: str = ""

    def sim_admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, f"{self.sim_url}/__sim__/{path}", json=body, verify=self.cert, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def settle(self, timeout: float = 60.0) -> None:
        """Both workers ready, and one more round completed after that."""
        for name in WORKERS:
            proc = self.procs.procs[name]
            wait_for(f"worker {name} ready", partial(worker_ready, proc), timeout)
        row, _ = wait_round_after(self.cluster_pk, now(), timeout)
        if row is None:
            raise RuntimeError("no sync round completed with both workers up")

    def sync_kill(self, number: int, restart_at_once: bool) -> dict[str, Any]:
        """One repetition of (a) (``restart_at_once`` False) or (b)."""
        self.procs.check_alive(*WORKERS, "beat", "simulator")
        name, owner = wait_mid_round(self.cluster_pk, self.rng)
        before = cluster_row(self.cluster_pk)
        killed_at = now()
        started = time.monotonic()
        self.procs.kill(name)
        killed_in = time.monotonic() - started
        lease_left = (before["lease_until"] - killed_at).total_seconds()
        restarted: dict[str, float | None] = {"ready": None}
        if restart_at_once:
            proc = self.procs.start_worker(name)

            def note_ready() -> None:
                if restarted["ready"] is None and worker_ready(proc):
                    restarted["ready"] = time.monotonic() - started

            on_poll: Callable[[], None] | None = note_ready
        else:
            on_poll = None
        row, owners = wait_round_after(self.cluster_pk, killed_at, RECOVERY_TIMEOUT, on_poll)
        seen = time.monotonic() - started
        others = [o for o in owners if life_of(o) != life_of(owner) and holder_of(o)]
        by = others[-1] if others else ""
        result: dict[str, Any] = {
            "repetition": number,
            "killed": name,
            "killed_owner": owner,
            "sigkill_to_exit_seconds": round(killed_in, 3),
            "lease_left_at_kill_seconds": round(lease_left, 2),
            "completed": row is not None,
            "seconds": round(seen, 2) if row is not None else None,
            "synced_at_minus_kill_seconds": (
                round((row["synced_at"] - killed_at).total_seconds(), 2) if row else None
            ),
            "completed_by": (holder_of(by) or "?") if by else "?",
            "completed_by_restarted": bool(by) and restart_at_once and holder_of(by) == name,
            "owners_seen": owners,
            "error_after": (row or {}).get("error") or "",
        }
        if restart_at_once:
            proc = self.procs.procs[name]
            wait_for(f"worker {name} ready again", lambda: worker_ready(proc), START_SECONDS)
            if restarted["ready"] is None:  # it became ready after the round
                restarted["ready"] = time.monotonic() - started
            result["restart_ready_seconds"] = round(restarted["ready"] or 0.0, 2)
        else:
            proc = self.procs.start_worker(name)
            wait_for(f"worker {name} ready again", lambda: worker_ready(proc), START_SECONDS)
        self.settle()
        log(
            f"{'(b)' if restart_at_once else '(a)'} #{number}: killed {name} "
            f"(lease left {lease_left:.1f} s) -> round by {result['completed_by']} "
            f"after {result['seconds']} s"
        )
        if restart_at_once:
            log(f"    restarted {name} ready {result['restart_ready_seconds']} s after the kill")
        return result

    # -- (c) --------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method,
            f"{self.api_base}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def instance_status(self, instance: str) -> str:
        body = self.api("GET", f"/api/v1/clusters/{CLUSTER}/instances/{instance}")
        return str(body["status"])

    def ganeti_jobs(self, instance: str) -> dict[str, int]:
        """Ganeti's jobs on ``instance`` by summary (the simulator's queue and archive)."""
        response = httpx.get(
            f"{self.sim_url}/2/jobs",
            params={"bulk": "1"},
            auth=("gwm", "gwm"),
            verify=self.cert,
            timeout=30,
        )
        response.raise_for_status()
        counts: dict[str, int] = {}
        for job in response.json():
            for summary in job.get("summary") or []:
                if f"({instance})" in str(summary):
                    counts[str(summary)] = counts.get(str(summary), 0) + 1
        return counts

    def job_kill(self, number: int, instance: str, action: str) -> dict[str, Any]:
        from gwm.operations.models import Job

        self.procs.check_alive(*WORKERS, "beat", "simulator", "api")
        posted = self.api(
            "POST", f"/api/v1/clusters/{CLUSTER}/instances/{instance}/actions", {"action": action}
        )
        job_id = int(posted["id"])

        def tracked() -> tuple[str, str] | None:
            row = Job.objects.values("status", "ganeti_job_id", "lease_owner").get(pk=job_id)
            name = holder_of(row["lease_owner"])
            if row["ganeti_job_id"] is None or row["status"] not in TRACKED_JOB or name is None:
                return None
            return name, str(row["lease_owner"])

        name, owner = wait_for(f"job {job_id} tracked", tracked, 60, every=POLL_SECONDS)
        time.sleep(self.rng.uniform(0.0, 1.0))
        held = Job.objects.values("lease_owner", "lease_until", "status").get(pk=job_id)
        killed_at = now()
        started = time.monotonic()
        self.procs.kill(name)
        status_at_kill = held["status"]
        still_held = held["lease_owner"] == owner
        lease_left = (held["lease_until"] - killed_at).total_seconds() if held["lease_until"] else 0
        final: dict[str, Any] | None = None
        owners: list[str] = [owner]
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            body = self.api("GET", f"/api/v1/jobs/{job_id}")
            if body["status"] in FINAL_JOB:
                final = body
                break
            holding = Job.objects.values_list("lease_owner", flat=True).get(pk=job_id)
            if holding and holding != owners[-1]:
                owners.append(holding)
            time.sleep(0.2)
        seen = time.monotonic() - started
        ganeti_end = _ganeti_end(final)
        result: dict[str, Any] = {
            "repetition": number,
            "action": action,
            "job": job_id,
            "killed": name,
            "killed_owner": owner,
            "still_held_at_kill": still_held,
            "status_at_kill": status_at_kill,
            "lease_left_at_kill_seconds": round(lease_left, 2),
            "ended": final is not None,
            "seconds": round(seen, 2) if final is not None else None,
            "final_status": (final or {}).get("status"),
            "owners_seen": owners,
            "ended_by": next((holder_of(o) for o in reversed(owners[1:]) if holder_of(o)), "?"),
            "ganeti_end_minus_kill_seconds": (
                round(ganeti_end - killed_at.timestamp(), 2) if ganeti_end else None
            ),
        }
        proc = self.procs.start_worker(name)
        wait_for(f"worker {name} ready again", lambda: worker_ready(proc), START_SECONDS)
        want = "STOPPED" if action == "shutdown" else "RUNNING"
        result["instance_status_after"] = wait_for(
            f"{instance} {want}",
            lambda: (status := self.instance_status(instance)) == want and status,
            60,
        )
        self.settle()
        log(
            f"(c) #{number}: {action} job {job_id}, killed {name} while {status_at_kill} "
            f"(lease left {lease_left:.1f} s) -> {result['final_status']} "
            f"after {result['seconds']} s"
            f" (Ganeti ended {result['ganeti_end_minus_kill_seconds']} s after the kill)"
        )
        return result


def _ganeti_end(job: dict[str, Any] | None) -> float | None:
    """When Ganeti ended the job, as the API shows it (``ganeti.ended_at``, RFC 3339)."""
    end = ((job or {}).get("ganeti") or {}).get("ended_at")
    return datetime.fromisoformat(end).timestamp() if end else None


# -- statistics and verdicts ------------------------------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (inclusive)."""
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stats(samples: list[dict[str, Any]], key: str = "seconds") -> dict[str, Any]:
    values = sorted(float(s[key]) for s in samples if s.get(key) is not None)
    missing = sum(1 for s in samples if s.get(key) is None)
    if not values:
        return {"n": 0, "missing": missing}
    return {
        "n": len(values),
        "missing": missing,
        "p50": round(percentile(values, 0.5), 2),
        "p90": round(percentile(values, 0.9), 2),
        "max": round(values[-1], 2),
        "min": round(values[0], 2),
        "mean": round(statistics.fmean(values), 2),
    }


def table(result: dict[str, Any]) -> list[str]:
    rows = [
        "| scenario | n | p50 s | p90 s | max s | min s | bound |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {
        "lost_worker": ("(a) lost worker: kill → next completed round", "≤ 30 s"),
        "restarted_worker": ("(b) restarted at once: kill → next completed round", "at once"),
        "restarted_ready": ("(b) kill → restarted worker ready", "—"),
        "job_tracked": ("(c) job tracked: kill → job end via API", "—"),
    }
    for key, (label, bound) in labels.items():
        s = result.get("summary", {}).get(key)
        if not s:
            continue
        if not s["n"]:
            rows.append(f"| {label} | 0 (+{s['missing']} never) | | | | | {bound} |")
            continue
        n = f"{s['n']}" + (f" (+{s['missing']} never)" if s["missing"] else "")
        rows.append(
            f"| {label} | {n} | {s['p50']} | {s['p90']} | {s['max']} | {s['min']} | {bound} |"
        )
    return rows


def verdicts(result: dict[str, Any]) -> list[str]:
    lines = []
    summary = result["summary"]
    lost = summary.get("lost_worker")
    if lost is not None:
        met = lost["n"] > 0 and not lost["missing"] and lost["max"] <= TAKEOVER_BOUND_SECONDS
        lines.append(
            f"(a) a dead worker's cluster synced by the other within "
            f"{TAKEOVER_BOUND_SECONDS:.0f} s: {'met' if met else 'MISSED'} "
            f"(p50 {lost.get('p50')} s, p90 {lost.get('p90')} s, max {lost.get('max')} s over "
            f"{lost['n']} kills, {lost['missing']} never completed)"
        )
    again = summary.get("restarted_worker")
    if again is not None:
        takes = result["restarted_worker_rounds_by_restarted"]
        lines.append(
            f"(b) restarted under its name: p50 {again.get('p50')} s, max {again.get('max')} s "
            f"to the next round; the restarted worker did {takes} of {again['n']} of those rounds; "
            f"ready p50 {summary['restarted_ready'].get('p50')} s after the kill"
        )
    job = summary.get("job_tracked")
    if job is not None:
        lines.append(
            f"(c) job tracked by a killed worker: ended through the API after p50 "
            f"{job.get('p50')} s, max {job.get('max')} s ({job['missing']} never ended); "
            f"Ganeti jobs per gwm job: {result.get('ganeti_jobs_per_gwm_job')}"
        )
    return lines


# -- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="gwm-bench-failover-"))
    data_dir = run_dir / "data"
    data_dir.mkdir()
    result: dict[str, Any] = {
        "machine": machine_info(),
        "database": "",
        "kills": args.kills,
        "job_kills": args.job_kills,
        "latency_seconds": args.latency,
        "intervals": INTERVALS,
        "run_dir": str(run_dir),
    }
    log(f"database {args.database}, queues {args.queue}.*, logs in {run_dir}")
    database_url = fresh_database(args.database)
    delete_queues(args.queue)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GWM_", "DATABASE_URL", "CELERY_", "DJANGO_"))
    }
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=BROKER_URL,
        GWM_CELERY_QUEUE=args.queue,
        GWM_DATA_DIR=str(data_dir),
        GWM_SECRET_KEY="bench-failover-only-not-a-secret-" + "x" * 30,
        GWM_API_PROCESSES="1",
    )
    os.environ.clear()  # this process (Django, the registration) uses the same settings
    os.environ.update(env)
    procs = Processes(run_dir, env)
    ok = False
    try:
        migrate = procs.start("migrate", "migrate")
        if migrate.popen.wait(timeout=300) != 0:
            raise RuntimeError(f"gwm migrate failed:\n{migrate.text()[-2000:]}")
        sim_port = args.sim_port or free_port()
        cert = data_dir / "simulator.pem"
        procs.start(
            "simulator", "simulator", "--host", HOST, "--port", str(sim_port),
            "--nodes", "3", "--instances", "40", "--seed", "1", "--time-scale", "1",
            "--cluster-name", "failover.example.test", "--cert-out", str(cert),
        )  # fmt: skip
        sim_url = f"https://{HOST}:{sim_port}"

        def simulator_answers() -> bool:
            httpx.get(f"{sim_url}/version", verify=ssl.create_default_context(cafile=str(cert)))
            return True

        wait_for("the simulator", simulator_answers, START_SECONDS)
        from gwm.startup import django_setup

        django_setup()
        from bench.common import SimCluster, admin_token, register

        result["database"] = _describe_pg()
        cluster = register(CLUSTER, SimCluster(sim_url, str(cert)), **INTERVALS)
        bench = Bench(args, procs, cluster.pk, sim_url, str(cert), random.Random(args.seed))
        if args.job_kills:
            bench.token = admin_token()
            api_port = args.port or free_port()
            bench.api_base = f"http://{HOST}:{api_port}"
            procs.start("api", "api", "--host", HOST, "--port", str(api_port), "--processes", "1")
        for name in WORKERS:
            procs.start_worker(name)
        procs.start("beat", "beat")
        for name in WORKERS:
            proc = procs.procs[name]
            wait_for(f"worker {name}", partial(worker_ready, proc), START_SECONDS)
        wait_for(
            "the first full sync",
            lambda: cluster_row(cluster.pk)["synced_at"] is not None,
            START_SECONDS,
        )
        if args.job_kills:
            wait_for(
                "/readyz",
                lambda: httpx.get(f"{bench.api_base}/readyz", timeout=5).status_code == 200,
                START_SECONDS,
            )
        bench.sim_admin("PUT", "faults", {"latency": args.latency})
        bench.settle()
        log(f"up: simulator {sim_url}, latency {args.latency} s; cluster pk {cluster.pk}")

        lost = [bench.sync_kill(i + 1, restart_at_once=False) for i in range(args.kills)]
        again = [bench.sync_kill(i + 1, restart_at_once=True) for i in range(args.kills)]
        result["lost_worker"] = lost
        result["restarted_worker"] = again
        summary: dict[str, Any] = {
            "lost_worker": stats(lost),
            "restarted_worker": stats(again),
            "restarted_ready": stats(again, "restart_ready_seconds"),
        }
        result["restarted_worker_rounds_by_restarted"] = sum(
            1 for r in again if r["completed_by_restarted"]
        )
        if args.job_kills:
            jobs = run_jobs(bench, args)
            result.update(jobs)
            summary["job_tracked"] = stats(jobs["job_tracked"])
        result["summary"] = summary
        result["sim_stats_totals"] = bench.sim_admin("GET", "stats").get("total")
        ok = True
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        _database(args.database, create=False)
        delete_queues(args.queue)
        if ok and not args.keep_logs:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            log(f"logs kept in {run_dir}")
    return result


def run_jobs(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Scenario (c) on one instance, shutdown and start alternately."""
    bench.sim_admin("PUT", "faults", {"latency": 0})
    ops = {"OP_INSTANCE_SHUTDOWN": args.op_seconds, "OP_INSTANCE_STARTUP": args.op_seconds}
    bench.sim_admin("PUT", "config", {"op_seconds": ops})
    page = bench.api(
        "GET", "/api/v1/instances?fields=name,status&status=RUNNING&ordering=name&limit=1"
    )
    instance = str(page["items"][0]["name"])
    before = bench.ganeti_jobs(instance)
    runs = []
    for number in range(1, args.job_kills + 1):
        action = "shutdown" if number % 2 else "start"
        runs.append(bench.job_kill(number, instance, action))
    after = bench.ganeti_jobs(instance)
    sent = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    asked = {
        "shutdown": sum(1 for r in runs if r["action"] == "shutdown"),
        "start": sum(1 for r in runs if r["action"] == "start"),
    }
    ganeti = {
        "shutdown": sum(n for key, n in sent.items() if key.startswith("INSTANCE_SHUTDOWN")),
        "start": sum(n for key, n in sent.items() if key.startswith("INSTANCE_STARTUP")),
    }
    per_job = {k: f"{ganeti[k]}/{asked[k]}" for k in asked if asked[k]}
    return {
        "job_instance": instance,
        "job_op_seconds": args.op_seconds,
        "job_tracked": runs,
        "ganeti_jobs_by_summary": sent,
        "ganeti_jobs_per_gwm_job": per_job,
        "job_sent_twice": any(ganeti[k] > asked[k] for k in asked),
    }


def _describe_pg() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("show server_version")
        version = cursor.fetchone()
    return f"PostgreSQL {version[0] if version else '?'} (loopback TCP), RabbitMQ (loopback)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover")
    parser.add_argument("--kills", type=int, default=10, help="repetitions of (a) and of (b)")
    parser.add_argument("--job-kills", type=int, default=5, help="repetitions of (c); 0: skip")
    parser.add_argument("--latency", type=float, default=0.5, help="simulator RAPI latency, s")
    parser.add_argument("--op-seconds", type=float, default=8.0, help="(c): Ganeti job length")
    parser.add_argument("--database", default="gwm_bench_failover")
    parser.add_argument("--queue", default="gwm-bench-failover")
    parser.add_argument("--port", type=int, default=0, help="gwm api's port (0: a free one)")
    parser.add_argument("--sim-port", type=int, default=0, help="simulator port (0: a free one)")
    parser.add_argument("--seed", type=int, default=1, help="of the random kill moments")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.kills <= 100 or not 0 <= args.job_kills <= 100:
        parser.error("--kills 1..100, --job-kills 0..100")
    os.chdir(ROOT)
    result = run(args)
    result["verdicts"] = verdicts(result)
    for line in table(result):
        log(line)
    for line in result["verdicts"]:
        log(line)
    write_result(args.json, "failover", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
