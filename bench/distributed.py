"""gwm in distributed mode side by side with embedded mode, in one run.

Two gwm installations run at once on this machine, each syncing a simulated
cluster of its own (bench.simhost, its own process, time scale 1; the same
seed, so the same ``--instances`` on ``--nodes`` nodes and the same names):

- *embedded*: ``gwm serve --port P`` as a user starts it (bench.gwm_serve):
  default configuration, SQLite in its data dir, its API processes, the worker
  and beat inside the ``gwm serve`` process;
- *distributed*: what scripts/dist-demo starts, with the same commands, here
  (dist-demo has no option for the simulator's time scale or for not waiting on
  a banner): PostgreSQL (database ``--database``, dropped and made again) and
  RabbitMQ (queue prefix ``--queue``, queues deleted before and after) from
  scripts/services, ``gwm migrate`` once, then ``gwm api --processes 2``,
  two ``gwm worker --name NAME`` (bench-dist-w1, -w2) and ``gwm beat``, each in
  a session of its own.

Both are up for the whole run, and every comparison alternates the two modes
round by round (the order flips each round), so the noise of a shared machine
falls on both:

1. import: the cluster registered through ``POST /api/v1/clusters`` (one mode
   after the other, ``--import-first`` first), seconds until its first full sync has every
   instance cached, and the CPU each gwm used meanwhile;
2. steady: ``--steady-seconds`` with no load, both at once: CPU of each kind of
   process (/proc), of the PostgreSQL backends of the distributed database, of
   the simulators, and the sync rounds committed;
3. reads: ``wrk`` 16 connections (bench.wrk, the loads of bench.concurrency) on
   ``GET /api/v1/instances?fields=name,status&limit=100`` and on full objects
   ``?limit=100``, ``--seconds`` each per round;
4. writes: bench.concurrency's writers (``--writers`` concurrent, ``reboot`` on
   distinct running instances, a forced full sync as they start), POST → 202,
   then how long until every job gwm made ended (from the first POST).

    python -m bench.distributed --instances 10000 --json /tmp/distributed.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bench.common import PG_ADMIN_URL, ROOT, SimHost, log, machine_info, write_result
from bench.concurrency import (
    SIM,
    SyncWatch,
    measure_writes,
    read_loads,
    running_instances,
)
from bench.gwm_serve import GWM, GwmServe, register_cluster, wait_synced
from bench.wrk import ensure_wrk, run_wrk

MODES = ("embedded", "distributed")
#: Not dist-demo's w1 and w2: Celery node names are per broker vhost, and others share it.
WORKERS = ("bench-dist-w1", "bench-dist-w2")
UNFINISHED = "PENDING,QUEUED,WAITING,RUNNING,CANCELING"
START_SECONDS = 180.0
STOP_SECONDS = 20.0


def _ticks_to_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


class EmbeddedGwm(GwmServe):
    """``gwm serve`` (bench.gwm_serve), with its CPU split by kind of process."""

    mode = "embedded"

    def role_cpu(self) -> dict[str, float]:
        """CPU seconds so far of: the ``gwm serve`` process (the embedded worker and beat,
        and uvicorn's supervisor), its API processes, anything else of its session."""
        assert self.proc is not None
        found: dict[str, float] = defaultdict(float)
        for pid, fields in self._members():
            if int(pid) == self.proc.pid:
                role = "worker"
            elif fields[2] == str(self.proc.pid) and "resource_tracker" not in _cmdline(pid):
                role = "api"
            else:
                role = "other"
            found[role] += _ticks_to_seconds(fields)
        return found


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _die_with_parent() -> None:
    """In each child, before gwm runs: SIGTERM when this benchmark dies (Linux
    PR_SET_PDEATHSIG), so no worker or API outlives a killed run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class DistributedGwm(GwmServe):
    """gwm's distributed mode as scripts/dist-demo starts it: ``gwm migrate``, then
    ``gwm api --processes 2``, two workers (WORKERS) and ``gwm beat``, each its own
    session (counted by /proc, stopped by process group)."""

    mode = "distributed"

    def __init__(self, data_dir: Path, database_url: str, broker_url: str, queue: str) -> None:
        super().__init__(data_dir, database_url)
        self.env.update(
            CELERY_BROKER_URL=broker_url,
            GWM_CELERY_QUEUE=queue,
            GWM_SECRET_KEY=secrets.token_urlsafe(50),  # one for every process
            GWM_API_PROCESSES="2",
        )
        self.started: dict[str, subprocess.Popen[bytes]] = {}
        self.log_path = data_dir / "api.log"

    def _start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (self.data_dir / f"{name}.log").open("wb") as log_file:
            process = subprocess.Popen(  # preexec_fn: no thread of ours runs yet
                [GWM, *argv],
                cwd=self.data_dir,  # beat writes its schedule file there
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.started[name] = process
        return process

    def _tail(self, name: str) -> str:
        path = self.data_dir / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def __enter__(self) -> DistributedGwm:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            if self._start("migrate", "migrate").wait(timeout=600) != 0:
                raise RuntimeError(f"gwm migrate failed:\n{self._tail('migrate')}")
            self.started.pop("migrate")
            self._start("api", "api", "--port", str(self.port), "--processes", "2")
            for name in WORKERS:
                self._start(name, "worker", "--name", name)
            self._start("beat", "beat")
            self._wait_up()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = round(time.monotonic() - started, 1)
        return self

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        waiting = {"/readyz", *WORKERS}
        while waiting:
            for name, process in self.started.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited while starting:\n{self._tail(name)}")
            if "/readyz" in waiting:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                        waiting.discard("/readyz")
            for name in WORKERS:
                if " ready." in self._tail(name):
                    waiting.discard(name)
            if time.monotonic() > deadline:
                raise RuntimeError(f"distributed gwm not up in {START_SECONDS:g} s: {waiting}")
            time.sleep(0.3)

    def stop(self) -> None:
        """SIGTERM to every group, SIGKILL to whatever is left after STOP_SECONDS."""
        if not self.started:
            return
        for process in self.started.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        late = []
        for name, process in self.started.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                late.append(name)
            while self._group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.stopped = f"SIGKILL after {STOP_SECONDS:g} s: {late}" if late else "by SIGTERM"
        self.started = {}

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _members(self) -> list[tuple[str, list[str]]]:
        sessions = {str(process.pid) for process in self.started.values()}
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                fields = _stat(entry.name)
                if fields is not None and fields[3] in sessions:
                    found.append((entry.name, fields))
        return found

    def role_cpu(self) -> dict[str, float]:
        """CPU seconds so far of: the two workers, beat, the API (supervisor and
        its processes)."""
        role_of = {str(p.pid): ("worker" if n in WORKERS else n) for n, p in self.started.items()}
        found: dict[str, float] = defaultdict(float)
        for _, fields in self._members():
            found[role_of.get(fields[3], "other")] += _ticks_to_seconds(fields)
        return found


# -- the services of distributed mode -----------------------------------------------------


def service_url(name: str) -> str:
    """scripts/services makes sure ``name`` runs and prints its URL (as dist-demo does)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "services"), name],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"scripts/services {name} failed (exit {done.returncode})")
    return done.stdout.strip().splitlines()[-1]


def pg_execute(query: Any, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as connection:
        cursor = connection.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def fresh_database(name: str) -> str:
    from psycopg import sql

    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    pg_execute(drop)
    pg_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(PG_ADMIN_URL)._replace(path=f"/{name}"))


def drop_database(name: str) -> None:
    from psycopg import sql

    with contextlib.suppress(Exception):
        pg_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def delete_queues(broker_url: str, prefix: str) -> None:
    """The queues (and their exchanges) of ``prefix`` on the broker: none left behind."""
    from kombu import Connection

    from gwm.kit.queues import task_queues

    with contextlib.suppress(Exception), Connection(broker_url, connect_timeout=5) as connection:
        channel: Any = connection.default_channel
        for queue in task_queues(prefix):
            channel.queue_delete(queue.name)
            channel.exchange_delete(queue.name)


class BackendCpu:
    """CPU of the PostgreSQL backends serving one database during a block: sampled every
    second (pg_stat_activity, /proc); a backend first seen in the block counts from zero,
    one that ends between two samples loses its last second."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.seconds = 0.0

    def _sample(self, initial: bool) -> None:
        with contextlib.suppress(Exception):
            rows = pg_execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", self.database)
            for (pid,) in rows:
                fields = _stat(pid)
                if fields is None:
                    continue
                used = _ticks_to_seconds(fields)
                self.first.setdefault(pid, used if initial else 0.0)
                self.last[pid] = used

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample(initial=False)

    def __enter__(self) -> BackendCpu:
        self._sample(initial=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample(initial=False)
        self.seconds = sum(self.last[pid] - self.first[pid] for pid in self.last)


# -- the measurements ---------------------------------------------------------------------


def order(number: int) -> tuple[str, ...]:
    """Embedded first in even rounds, distributed first in odd ones."""
    return MODES if number % 2 == 0 else MODES[::-1]


def measure_import(gwm: Any, api: httpx.Client, host: SimHost, instances: int) -> dict[str, Any]:
    sim = host.clusters[0]
    log(f"import: {gwm.mode}, {instances} instances")
    cpu_before, sim_before = gwm.cpu_seconds(), host.cpu_seconds() or 0.0
    started = time.monotonic()
    register_cluster(api, SIM, sim.url, sim.cert, ("gwm", "gwm"))
    registered = time.monotonic() - started
    wait_synced(api, SIM, instances, timeout=1200)
    seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 1),
        "registration_seconds": round(registered, 2),
        "gwm_cpu_seconds": round(gwm.cpu_seconds() - cpu_before, 1),
        "simulator_cpu_seconds": round((host.cpu_seconds() or 0.0) - sim_before, 1),
        "instances": api.get(f"/api/v1/clusters/{SIM}").json()["counts"],
    }


def measure_steady(
    gwms: dict[str, Any],
    hosts: dict[str, SimHost],
    watches: dict[str, SyncWatch],
    database: str,
    seconds: float,
) -> dict[str, Any]:
    log(f"steady: both modes idle for {seconds:g} s")
    before = {mode: gwm.role_cpu() for mode, gwm in gwms.items()}
    sims = {mode: host.cpu_seconds() or 0.0 for mode, host in hosts.items()}
    with contextlib.ExitStack() as stack:
        rounds = {mode: stack.enter_context(watch.watching()) for mode, watch in watches.items()}
        backends = stack.enter_context(BackendCpu(database))
        started = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - started
    out: dict[str, Any] = {"seconds": round(wall, 1)}
    for mode, gwm in gwms.items():
        now = gwm.role_cpu()
        used = {role: now[role] - before[mode].get(role, 0.0) for role in now}
        percent = {role: round(100 * cpu / wall, 1) for role, cpu in sorted(used.items())}
        percent["all"] = round(100 * sum(used.values()) / wall, 1)
        out[mode] = {
            "cpu_percent_of_one_core": percent,
            "simulator_cpu_percent": round(
                100 * ((hosts[mode].cpu_seconds() or 0.0) - sims[mode]) / wall, 1
            ),
            "sync_rounds_committed": rounds[mode],
        }
    out["distributed"]["postgres_backends_cpu_percent"] = round(100 * backends.seconds / wall, 1)
    return out


def measure_reads(
    wrk: str, gwms: dict[str, Any], tokens: dict[str, str], hosts: dict[str, SimHost], args: Any
) -> dict[str, Any]:
    loads = {
        mode: [
            load
            for load in read_loads(hosts[mode].clusters[0], None, tokens[mode], gwm.base)
            if load[0].startswith("gwm_")
        ]
        for mode, gwm in gwms.items()
    }
    for mode in MODES:  # warm every API process up; not counted
        for _, url, auth in loads[mode]:
            run_wrk(wrk, url, authorization=auth, connections=16, seconds=2)
    out: dict[str, Any] = {}
    for number in range(args.rounds):
        for index in range(len(loads[MODES[0]])):
            for mode in order(number):
                label, url, auth = loads[mode][index]
                log(f"reads: round {number + 1}/{args.rounds}, {mode}, {label}, wrk -c16")
                cpu_before = gwms[mode].cpu_seconds()
                started = time.monotonic()
                got = run_wrk(wrk, url, authorization=auth, connections=16, seconds=args.seconds)
                wall = time.monotonic() - started
                got["gwm_cpu_percent_of_one_core"] = round(
                    100 * (gwms[mode].cpu_seconds() - cpu_before) / wall, 1
                )
                got["url"] = url
                out.setdefault(label, {}).setdefault(mode, []).append(got)
    return out


def _jobs(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    page = api.get("/api/v1/jobs", params={"cluster": SIM, "foreign": "false", **params})
    page.raise_for_status()
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def last_job_id(api: httpx.Client) -> int:
    newest = _jobs(api, limit=1)
    return int(newest[0]["id"]) if newest else 0


def wait_jobs_ended(api: httpx.Client, timeout: float, after_id: int) -> tuple[bool, Counter[str]]:
    """Until no job gwm made on the cluster after ``after_id`` is unfinished (or
    ``timeout``); then the statuses of those jobs."""
    deadline = time.monotonic() + timeout
    ended = False
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            unfinished = _jobs(api, status=UNFINISHED, limit=1000)
            if not any(job["id"] > after_id for job in unfinished):
                ended = True
                break
        time.sleep(0.25)
    statuses: Counter[str] = Counter()
    cursor = None
    while True:  # newest first: stop at the first job of an earlier round
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/jobs", params={"cluster": SIM, "foreign": "false", **params})
        page.raise_for_status()
        body = page.json()
        mine = [job for job in body["items"] if job["id"] > after_id]
        statuses.update(job["status"] for job in mine)
        cursor = body.get("next")
        if not cursor or len(mine) < len(body["items"]):
            return ended, statuses


def measure_all_writes(
    gwms: dict[str, Any],
    tokens: dict[str, str],
    watches: dict[str, SyncWatch],
    args: Any,
) -> dict[str, Any]:
    names: dict[str, list[str]] = {}
    for mode, gwm in gwms.items():
        with gwm.client(tokens[mode]) as api:
            names[mode] = running_instances(api, SIM)
    needed = args.write_rounds * args.writes
    out: dict[str, Any] = {mode: [] for mode in MODES}
    for number in range(args.write_rounds):
        for mode in order(number):
            chosen = names[mode][number * args.writes : (number + 1) * args.writes]
            if len(chosen) < args.writes:
                raise RuntimeError(f"{mode}: fewer than {needed} running instances to reboot")
            log(f"writes: round {number + 1}/{args.write_rounds}, {mode}")
            with gwms[mode].client(tokens[mode]) as api:
                before = last_job_id(api)
                started = time.monotonic()
                got = measure_writes(gwms[mode], tokens[mode], watches[mode], chosen, args)
                posted = time.monotonic() - started
                ended, statuses = wait_jobs_ended(api, args.jobs_timeout, before)
                got["all_jobs_ended_seconds"] = round(time.monotonic() - started, 1)
                got["posting_seconds"] = round(posted, 1)
                got["jobs_ended_in_time"] = ended
                got["jobs_made"] = sum(statuses.values())
                got["job_statuses"] = dict(statuses)
            out[mode].append(got)
    return out


# -- the table ------------------------------------------------------------------------------


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 2) if values else None


def rows(result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(figure, embedded, distributed) of the summary table."""
    table: list[tuple[str, Any, Any]] = []

    def both(figure: str, pick: Any) -> None:
        values = []
        for mode in MODES:
            try:
                values.append(pick(mode))
            except (KeyError, TypeError, IndexError, ValueError):
                values.append(None)
        table.append((figure, *values))

    both("start (s; embedded migrates as it starts)", lambda m: result[m]["start_seconds"])
    imp = result.get("import", {})
    both("initial import of the cluster (s)", lambda m: imp[m]["seconds"])
    both("gwm CPU during the import (s)", lambda m: imp[m]["gwm_cpu_seconds"])
    reads = result.get("reads", {})
    for label, what in (("gwm_names_all", "name,status"), ("gwm_full_all", "full objects")):
        for key, unit in (("requests_per_second", "req/s"), ("p50_ms", "p50 ms")):
            both(
                f"reads {what}, 16 clients: {unit}",
                lambda m, k=key, lb=label: _mean([r[k] for r in reads[lb][m]]),
            )
        both(
            f"reads {what}, 16 clients: p99 ms",
            lambda m, lb=label: _mean([r["p99_ms"] for r in reads[lb][m]]),
        )
        both(
            f"reads {what}: gwm CPU (% of a core)",
            lambda m, lb=label: _mean([r["gwm_cpu_percent_of_one_core"] for r in reads[lb][m]]),
        )
    writes = result.get("writes", {})
    both(
        "writes: POST → 202 p50 ms",
        lambda m: _mean([w["latency"]["p50_ms"] for w in writes[m]]),
    )
    both(
        "writes: POST → 202 p99 ms",
        lambda m: _mean([w["latency"]["p99_ms"] for w in writes[m]]),
    )
    both("writes: accepted/s", lambda m: _mean([w["accepted_per_second"] for w in writes[m]]))
    both(
        "writes: start → all jobs ended (s)",
        lambda m: _mean([w["all_jobs_ended_seconds"] for w in writes[m]]),
    )
    both(
        "writes: answers other than 202",
        lambda m: sum(n for w in writes[m] for c, n in w["status_codes"].items() if c != "202"),
    )
    both(
        "writes: jobs unfinished when the wait ended",
        lambda m: sum(
            n for w in writes[m] for st, n in w["job_statuses"].items() if st in UNFINISHED
        ),
    )
    steady = result.get("steady", {})

    def cpu(mode: str, *roles: str) -> float:
        percent = steady[mode]["cpu_percent_of_one_core"]
        return round(sum(float(percent.get(role, 0.0)) for role in roles), 1)

    both("steady CPU, worker process(es) (% of a core)", lambda m: cpu(m, "worker"))
    both("steady CPU, workers + beat", lambda m: cpu(m, "worker", "beat"))
    both("steady CPU, all gwm processes", lambda m: steady[m]["cpu_percent_of_one_core"]["all"])
    both(
        "steady CPU, + PostgreSQL backends",
        lambda m: round(
            steady[m]["cpu_percent_of_one_core"]["all"]
            + steady[m].get("postgres_backends_cpu_percent", 0.0),
            1,
        ),
    )
    both("steady CPU, its simulator", lambda m: steady[m]["simulator_cpu_percent"])
    return table


def render(result: dict[str, Any]) -> str:
    lines = [
        "| figure | embedded (`gwm serve`, SQLite) | distributed (PostgreSQL, "
        "2 API processes, 2 workers) | distributed / embedded |",
        "|---|---|---|---|",
    ]
    for figure, embedded, distributed in rows(result):
        ratio = (
            f"{distributed / embedded:.2f}"
            if isinstance(embedded, int | float)
            and isinstance(distributed, int | float)
            and embedded
            else "-"
        )
        shown = ["-" if v is None else f"{v:g}" for v in (embedded, distributed)]
        lines.append(f"| {figure} | {shown[0]} | {shown[1]} | {ratio} |")
    return "\n".join(lines)


# -- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.distributed")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="each wrk load")
    parser.add_argument("--rounds", type=int, default=2, help="read rounds per mode")
    parser.add_argument("--writes", type=int, default=400, help="writes per mode and round")
    parser.add_argument("--write-rounds", type=int, default=2)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument(
        "--write-seconds", type=float, default=240.0, help="stop sending writes after this long"
    )
    parser.add_argument(
        "--jobs-timeout", type=float, default=600.0, help="wait at most this for the jobs"
    )
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument(
        "--import-first",
        choices=MODES,
        default=MODES[0],
        help="which mode imports its cluster first (the other then imports beside its rounds)",
    )
    parser.add_argument("--database", default="gwm_bench_dist")
    parser.add_argument("--queue", default="gwm-bench-dist")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.write_rounds * args.writes > args.instances // 3:
        parser.error("--writes times --write-rounds: too many for the running instances")

    signal.signal(signal.SIGTERM, _interrupted)
    wrk = ensure_wrk()
    result: dict[str, Any] = {
        "machine": machine_info(),
        "instances": args.instances,
        "nodes": args.nodes,
        "seconds_per_load": args.seconds,
        "read_rounds": args.rounds,
        "import_first": args.import_first,
        "queue": args.queue,
    }
    database_url = fresh_database(args.database)
    broker_url = service_url("rabbitmq")
    delete_queues(broker_url, args.queue)
    result["database"] = (
        f"SQLite {sqlite3.sqlite_version} (file, WAL; embedded); PostgreSQL "
        f"{pg_execute('SHOW server_version')[0][0]} (loopback TCP; distributed, database "
        f"{args.database})"
    )
    workdir = Path(tempfile.mkdtemp(prefix="gwm-bench-dist-"))
    try:
        with contextlib.ExitStack() as stack:
            hosts = {}
            for mode in MODES:
                hosts[mode] = stack.enter_context(
                    SimHost(1, args.nodes, args.instances, max_seconds=7200)
                )
            log("starting gwm serve (embedded) and the distributed processes")
            gwms: dict[str, Any] = {
                "embedded": stack.enter_context(EmbeddedGwm(workdir / "embedded")),
                "distributed": stack.enter_context(
                    DistributedGwm(workdir / "distributed", database_url, broker_url, args.queue)
                ),
            }
            tokens = {mode: gwm.admin_token() for mode, gwm in gwms.items()}
            for mode, gwm in gwms.items():
                result[mode] = {
                    "start_seconds": gwm.start_seconds,
                    "processes": gwm.processes(),
                }
            run(args, wrk, gwms, tokens, hosts, result)
            for mode, gwm in gwms.items():
                gwm.stop()
                result[mode]["stopped"] = gwm.stopped
    finally:
        drop_database(args.database)
        delete_queues(broker_url, args.queue)
        shutil.rmtree(workdir, ignore_errors=True)
    result["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write_result(args.json, "distributed", result)
    print(render(result), file=sys.stderr)
    return 1 if "failed" in result else 0


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: stop what was started, write what was measured."""
    raise KeyboardInterrupt


def run(
    args: Any,
    wrk: str,
    gwms: dict[str, Any],
    tokens: dict[str, str],
    hosts: dict[str, SimHost],
    result: dict[str, Any],
) -> None:
    """Every part, the results into ``result`` as they come (a failure keeps the rest)."""
    try:
        result["import"] = {}
        for mode in MODES if args.import_first == MODES[0] else MODES[::-1]:
            with gwms[mode].client(tokens[mode]) as api:
                result["import"][mode] = measure_import(
                    gwms[mode], api, hosts[mode], args.instances
                )
        with contextlib.ExitStack() as stack:
            watches = {
                mode: stack.enter_context(SyncWatch(gwm.base, tokens[mode]))
                for mode, gwm in gwms.items()
            }
            time.sleep(5)  # the last import's commits settle
            result["steady"] = measure_steady(
                gwms, hosts, watches, args.database, args.steady_seconds
            )
            result["reads"] = measure_reads(wrk, gwms, tokens, hosts, args)
            result["writes"] = measure_all_writes(gwms, tokens, watches, args)
    except (Exception, KeyboardInterrupt) as exc:  # keep what was measured (SIGINT, SIGTERM)
        log(f"failed: {exc!r}")
        result["failed"] = repr(exc)


if __name__ == "__main__":
    raise SystemExit(main())
