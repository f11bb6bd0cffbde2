"""(target 4) Freshness at the same Ganeti cost: how soon a change made outside gwm arrives.

The real embedded worker (Celery threads + beat, in-memory broker, file
SQLite) syncs two clusters with the default intervals: the real sandbox
(``--sandbox-instances`` diskless instances ``gwm-fresh-N.ganeti.test``,
created and removed here through RAPI) and a simulator of ``--sim-size``
instances (calibrated cost, time scale 1, its own process). After the first
full sync:

1. steady: nobody changes anything for ``--steady-fraction`` of the run;
   gwm's RAPI requests per second to each cluster (counted in gwm's RAPI
   client), and the master's CPU: on the sandbox the CPU that the master's
   daemons (ganeti-rapi, -luxid, -wconfd and the master's noded) used, from
   /proc (children included); on the simulator what its cost model charged.
2. changes: on both clusters at once, ``gnt-instance stop`` / ``start`` one of
   the instances, again and again at a random phase (on the sandbox, the
   command line in the sandbox's namespace; on the simulator, its admin API's
   ``exec``, a job with a ``gnt:client:gnt-instance`` trail). The lag is
   from the Ganeti job's ``end_ts`` (and from the command's start) to gwm's
   database showing the new status, polled every 20 ms.

Each target is printed as met/missed with the gap.

    python -m bench.freshness --minutes 10
    python -m bench.freshness --minutes 2 --skip-sandbox   # quick, simulator only
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO,
    SimCluster,
    SimHost,
    bench_django,
    log,
    machine_info,
    register,
    summary,
    write_result,
)
from bench.sandbox import create_instances, delete_instances, sandbox_env

PREFIX = "gwm-fresh-"
LAG_P95_TARGET = 2.0
REQUESTS_TARGET = 1.0
CORE_PERCENT_TARGET = 5.0
#: Daemons that run on the Ganeti master (3.0 has no masterd: luxid and wconfd).
MASTER_DAEMONS = ("ganeti-rapi", "ganeti-luxid", "ganeti-wconfd")
POLL_SECONDS = 0.02
SEEN_TIMEOUT = 30.0


# -- what gwm asks of each cluster ------------------------------------------------


class RequestCounter:
    """Counts every request gwm's RAPI clients send, by cluster URL (in this process)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self) -> None:
        from gwm.rapi import RapiClient

        original = RapiClient.send
        counter = self

        def counted(client: Any, call: Any) -> Any:
            with counter._lock:
                counter.counts[client.base_url.rstrip("/")] += 1
            return original(client, call)

        RapiClient.send = counted  # type: ignore[method-assign]

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


# -- the sandbox's master CPU --------------------------------------------------------


def _cmdline(pid: str) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def master_pids(master_ip: str) -> dict[str, list[str]]:
    """The master's daemons, and the node daemon bound to the master's address."""
    found: dict[str, list[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm in MASTER_DAEMONS or (comm == "ganeti-noded" and master_ip in _cmdline(pid)):
                found.setdefault(comm, []).append(pid)
        except OSError:
            continue
    return found


def cpu_seconds(pids: dict[str, list[str]]) -> dict[str, float]:
    """utime+stime+cutime+cstime (ganeti-rapi forks per connection) of each daemon."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for comm, group in pids.items():
        total = 0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(x) for x in fields[11:15])
        out[comm] = total / ticks
    return out


# -- one cluster under test -----------------------------------------------------------


class Target:
    """A registered cluster, how to change it outside gwm, and what it costs."""

    name: str
    url: str
    cluster_id: int
    instances: list[str]

    def run_command(self, command: str, instance: str) -> Callable[[], int | None]:
        """Start ``gnt-instance COMMAND INSTANCE``; returns a wait giving its job id."""
        raise NotImplementedError

    def job_end(self, job_id: int | None, instance: str, after: int) -> float | None:
        raise NotImplementedError

    def last_job_id(self) -> int:
        raise NotImplementedError

    def cost_start(self) -> None:
        raise NotImplementedError

    def cost(self, seconds: float) -> dict[str, Any]:
        raise NotImplementedError


def _end_seconds(end_ts: Any) -> float | None:
    if not end_ts:
        return None
    return float(end_ts[0]) + float(end_ts[1]) / 1e6


class SandboxTarget(Target):
    def __init__(self, env: dict[str, str], cluster_id: int, instances: list[str]) -> None:
        self.name = "sandbox"
        self.url = env["GWM_SANDBOX_RAPI_URL"].rstrip("/")
        self.cluster_id = cluster_id
        self.instances = instances
        self._http = httpx.Client(
            verify=env["GWM_SANDBOX_CA_FILE"],
            auth=(env["GWM_SANDBOX_READ_USER"], env["GWM_SANDBOX_READ_PASSWORD"]),
            timeout=30,
        )
        self._pids: dict[str, list[str]] = {}
        self._cpu: dict[str, float] = {}

    def find_master(self) -> None:
        from gwm.clusters.models import Cluster, Node

        cluster = Cluster.objects.get(pk=self.cluster_id)
        master = Node.objects.get(cluster_id=self.cluster_id, name=cluster.master)
        self._pids = master_pids(master.primary_ip)

    def run_command(self, command: str, instance: str) -> Callable[[], int | None]:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "ganeti-sandbox"), "exec", "gnt-instance", command, instance],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def wait() -> int | None:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"gnt-instance {command} {instance}: {out.strip()}")
            return None

        return wait

    def _jobs_after(self, after: int) -> list[list[Any]]:
        response = self._http.put(
            f"{self.url}/2/query/job",
            json={"fields": ["id", "summary", "end_ts"], "qfilter": [">", "id", after]},
        )
        response.raise_for_status()
        rows: list[list[Any]] = response.json()["data"]
        return rows

    def last_job_id(self) -> int:
        response = self._http.get(f"{self.url}/2/jobs")
        response.raise_for_status()
        ids = [int(job["id"]) for job in response.json()]
        return max(ids, default=0)

    def job_end(self, job_id: int | None, instance: str, after: int) -> float | None:
        for row in self._jobs_after(after):
            summary_cell = row[1][1] or []
            if any(instance in op for op in summary_cell):
                return _end_seconds(row[2][1])
        return None

    def cost_start(self) -> None:
        self._cpu = cpu_seconds(self._pids)

    def cost(self, seconds: float) -> dict[str, Any]:
        now = cpu_seconds(self._pids)
        used = {comm: round(now[comm] - self._cpu.get(comm, 0.0), 2) for comm in now}
        total = sum(used.values())
        return {
            "cpu_seconds_by_daemon": used,
            "master_core_percent": round(100 * total / seconds, 2),
            "measured_from": "/proc utime+stime+cutime+cstime",
        }


class SimulatorTarget(Target):
    def __init__(self, sim: SimCluster, cluster_id: int, instances: list[str]) -> None:
        self.name = "simulator"
        self.sim = sim
        self.url = sim.url.rstrip("/")
        self.cluster_id = cluster_id
        self.instances = instances
        self._http = httpx.Client(verify=sim.cert, auth=("gwm", "gwm"), timeout=30)

    def run_command(self, command: str, instance: str) -> Callable[[], int | None]:
        response = self._http.post(
            f"{self.url}/__sim__/exec",
            json={"client": "gnt-instance", "command": command, "name": instance},
        )
        response.raise_for_status()
        job_id = int(response.json()["job_id"])
        return lambda: job_id

    def last_job_id(self) -> int:
        return 0  # the simulator's admin API names the job

    def job_end(self, job_id: int | None, instance: str, after: int) -> float | None:
        response = self._http.get(f"{self.url}/2/jobs/{job_id}")
        response.raise_for_status()
        return _end_seconds(response.json().get("end_ts"))

    def cost_start(self) -> None:
        self.sim.reset()

    def cost(self, seconds: float) -> dict[str, Any]:
        stats = self.sim.stats()
        # The bench's own look-ups of a job's end are not gwm's load.
        own = stats["requests"].get("GET /2/jobs/{name}") or stats["requests"].get(
            "GET /2/jobs/{id}", {"count": 0, "cost_seconds": 0.0}
        )
        charged = stats["total"]["cost_seconds"] - own["cost_seconds"]
        return {
            "simulator_requests": stats["total"]["count"] - own["count"],
            "cost_seconds": round(charged, 3),
            "master_core_percent": round(100 * charged / seconds, 2),
            "measured_from": "the simulator's cost model",
            "routes": {r: c["count"] for r, c in stats["requests"].items()},
        }


# -- measuring ------------------------------------------------------------------------


def _status(cluster_id: int, instance: str) -> str:
    from gwm.clusters.models import Instance

    return str(
        Instance.objects.filter(cluster_id=cluster_id, name=instance)
        .values_list("status", flat=True)
        .first()
    )


def change_loop(target: Target, deadline: float, out: dict[str, Any]) -> None:
    """Stop/start an instance of ``target`` until ``deadline``; lags into ``out``."""
    from django.db import connections

    rng = random.Random(target.name)
    from_end: list[float] = []
    from_command: list[float] = []
    misses: list[str] = []
    instance = target.instances[0]
    try:
        while time.monotonic() < deadline:
            before = _status(target.cluster_id, instance)
            command, wanted = ("stop", "STOPPED") if before == "RUNNING" else ("start", "RUNNING")
            after = target.last_job_id()
            started = time.time()
            wait = target.run_command(command, instance)
            seen_at = None
            while time.time() - started < SEEN_TIMEOUT:
                if _status(target.cluster_id, instance) == wanted:
                    seen_at = time.time()
                    break
                time.sleep(POLL_SECONDS)
            job_id = wait()
            if seen_at is None:
                misses.append(f"{command} not seen within {SEEN_TIMEOUT} s")
                continue
            end = target.job_end(job_id, instance, after)
            from_command.append(seen_at - started)
            if end is not None:
                from_end.append(max(0.0, seen_at - end))
            # A random phase against the watch's ticks.
            time.sleep(rng.uniform(1.0, 4.0))
    except Exception as exc:  # report what was measured, and why it stopped
        misses.append(f"stopped: {exc}")
    finally:
        connections.close_all()
    out["lag_from_job_end"] = summary(from_end)
    out["lag_from_command_start"] = summary(from_command)
    out["changes"] = len(from_command)
    out["misses"] = misses


def wait_first_sync(ids: list[int], timeout: float) -> None:
    from gwm.clusters.models import Cluster

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Cluster.objects.filter(
            pk__in=ids, slow_synced_at__isnull=False, runtime_synced_at__isnull=False
        ).count()
        if done == len(ids):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the first sync did not finish within {timeout} s")


def schedule(cluster_id: int) -> dict[str, Any]:
    """The cluster's tiers as the scheduler now sees them (crashes: the runtime sweep)."""
    from gwm.clusters.models import Cluster
    from gwm.sync import rounds

    cluster = Cluster.objects.get(pk=cluster_id)
    return {
        "watch_every_seconds": round(rounds.watch_every(cluster, watch_seconds=0.0), 2),
        "runtime_sweep_every_seconds": round(rounds.runtime_every(cluster), 2),
        "runtime_cost_seconds": round(cluster.runtime_cost, 3),
        "slow_every_seconds": cluster.slow_interval,
        "status": cluster.status,
        "error": cluster.error[:200],
    }


def verdicts(name: str, result: dict[str, Any]) -> list[str]:
    lines = []
    p95 = result.get("changes_phase", {}).get("lag_from_job_end", {}).get("p95_ms")
    checks = [
        ("lag p95 from job end (s)", None if p95 is None else p95 / 1000, LAG_P95_TARGET),
        ("steady RAPI requests/s", result["steady"].get("requests_per_second"), REQUESTS_TARGET),
        (
            "steady master core %",
            result["steady"].get("master_core_percent"),
            CORE_PERCENT_TARGET,
        ),
    ]
    for label, value, limit in checks:
        if value is None:
            lines.append(f"{name}: {label}: not measured")
            continue
        met = value <= limit
        gap = f"{value - limit:+.3f}"
        lines.append(
            f"{name}: {label} = {value:.3f} (target <= {limit}): "
            + ("MET" if met else "MISSED")
            + f", gap {gap}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--steady-fraction", type=float, default=0.3)
    parser.add_argument("--sim-size", default="1000:25", help="INSTANCES:NODES")
    parser.add_argument("--sandbox-instances", type=int, default=2)
    parser.add_argument("--skip-sandbox", action="store_true")
    parser.add_argument("--concurrency", type=int, default=4, help="embedded worker threads")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 30 or not 1 <= args.sandbox_instances <= 5:
        parser.error("--minutes 1..30, --sandbox-instances 1..5")
    total = args.minutes * 60
    steady_seconds = max(30.0, total * args.steady_fraction)

    result: dict[str, Any] = {"machine": machine_info(), "minutes": args.minutes}
    env = None if args.skip_sandbox else sandbox_env()
    writer = None
    created: list[str] = []
    if env is not None:
        from gwm.rapi import RapiClient

        writer = RapiClient(
            env["GWM_SANDBOX_RAPI_URL"],
            username=env["GWM_SANDBOX_WRITE_USER"],
            password=env["GWM_SANDBOX_WRITE_PASSWORD"],
            ca_file=env["GWM_SANDBOX_CA_FILE"],
            check_hostname=False,
        )
        existing = set(writer.list_instances())
        wanted = [f"{PREFIX}{n}.ganeti.test" for n in range(1, args.sandbox_instances + 1)]
        log(f"creating {len(wanted)} instances on the sandbox")
        created = create_instances(
            writer, [n for n in wanted if n not in existing], env["GWM_SANDBOX_NODE"]
        )
    counter = RequestCounter()
    counter.install()
    try:
        with bench_django("sqlite") as db:
            result["database"] = db.describe()
            _measure(args, env, counter, result, total, steady_seconds)
    finally:
        if writer is not None:
            if created:
                log(f"deleting {len(created)} bench instances from the sandbox")
                result["left_behind"] = delete_instances(writer, created)
            writer.close()
    result["verdicts"] = [
        line
        for name in ("sandbox", "simulator")
        if name in result
        for line in verdicts(name, result[name])
    ]
    write_result(args.json, "freshness", result)
    for line in result["verdicts"]:
        print(line)
    return 0


def _measure(
    args: argparse.Namespace,
    env: dict[str, str] | None,
    counter: RequestCounter,
    result: dict[str, Any],
    total: float,
    steady_seconds: float,
) -> None:
    from gwm.embedded import start_embedded_workers

    sim_instances, _, sim_nodes = args.sim_size.partition(":")
    with SimHost(1, int(sim_nodes or 25), int(sim_instances), time_scale=1.0) as host:
        sim = host.clusters[0]
        sim_cluster = register("fresh-sim", sim)
        targets: list[Target] = [SimulatorTarget(sim, sim_cluster.pk, sorted(sim.instance_names()))]
        sandbox: SandboxTarget | None = None
        if env is not None:
            sandbox = SandboxTarget(env, _register_sandbox(env), [f"{PREFIX}1.ganeti.test"])
            targets.append(sandbox)
        workers = start_embedded_workers(concurrency=args.concurrency)
        try:
            log("waiting for the first full sync")
            wait_first_sync([t.cluster_id for t in targets], timeout=300)
            if sandbox is not None:
                sandbox.find_master()
            time.sleep(5)  # the first watch reads the jobs from before gwm came
            log(f"steady state for {steady_seconds:.0f} s")
            for target, phase in _phase(targets, counter, steady_seconds, changes=False).items():
                result[target.name] = {"steady": phase}
            log(f"stop/start outside gwm for {total - steady_seconds:.0f} s")
            changed = _phase(targets, counter, total - steady_seconds, changes=True)
            for target, phase in changed.items():
                phase["note"] = "CPU here includes the jobs themselves and the bench's look-ups"
                result[target.name]["changes_phase"] = phase
                result[target.name]["schedule"] = schedule(target.cluster_id)
        finally:
            workers.stop()
            from django.db import connections

            connections.close_all()


def _phase(
    targets: list[Target], counter: RequestCounter, seconds: float, *, changes: bool
) -> dict[Target, dict[str, Any]]:
    """``seconds`` of steady state, or of changes on every target at once; their cost."""
    for target in targets:
        target.cost_start()
    before = counter.snapshot()
    began = time.monotonic()
    phases: dict[Target, dict[str, Any]] = {target: {} for target in targets}
    if changes:
        threads = [
            threading.Thread(target=change_loop, args=(t, began + seconds, phases[t]))
            for t in targets
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        time.sleep(seconds)
    elapsed = time.monotonic() - began
    after = counter.snapshot()
    for target, phase in phases.items():
        requests = after[target.url] - before[target.url]
        phase["seconds"] = round(elapsed, 1)
        phase["gwm_requests"] = requests
        phase["requests_per_second"] = round(requests / elapsed, 3)
        phase.update(target.cost(elapsed))
    return phases


def _register_sandbox(env: dict[str, str]) -> int:
    from gwm.clusters.services import registry

    connection = registry.Connection(
        rapi_url=env["GWM_SANDBOX_RAPI_URL"],
        username=env["GWM_SANDBOX_READ_USER"],
        password=env["GWM_SANDBOX_READ_PASSWORD"],
        tls_ca_pem=Path(env["GWM_SANDBOX_CA_FILE"]).read_text(),
        tls_fingerprint="",
        tls_verify=True,
    )
    cluster = registry.cluster_create(actor=None, name="fresh-real", connection=connection)
    return int(cluster.pk)


if __name__ == "__main__":
    raise SystemExit(main())
