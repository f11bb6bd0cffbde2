"""Target 3 of issue 11: one worker process keeps 100 clusters x 1,000 instances on time.

``--clusters`` simulated clusters of ``--instances`` each (calibrated cost,
time scale 1) are served by ``--sim-processes`` separate ``bench.simhost``
processes. One more process is the gwm worker: gwm's real scheduler, the
embedded Celery worker (``GWM_WORKER_THREADS`` threads, default 16) and beat
ringing ``dispatch_due_syncs`` every second, as ``gwm serve`` runs them. This
process only registers the clusters and watches their rows.

Measured, on ``--db sqlite`` or ``--db postgres``:

- the initial import: from the worker's start until every cluster has had
  its first slow round and runtime sweep, and how many first syncs failed
  (a cluster whose ``error`` was set on the way);
- for ``--minutes`` of steady state, per tier, the share of rounds that
  started on time: a round is late when it came more than its configured
  interval + 1 s after the previous one (a slow round also counts as a fast
  round: it reads everything the fast one does, and runs instead of it);
  the same against gwm's own schedule (``next_<tier>_at``, which the RAPI
  budget may stretch beyond the configured interval) is reported beside it;
- the worker process's CPU share of one core (``/proc/<pid>/stat``).

    python -m bench.sync_scale --db sqlite --minutes 10
    python -m bench.sync_scale --db postgres --minutes 10 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    ROOT,
    SimHost,
    bench_django,
    log,
    machine_info,
    register,
    server_env,
    summary,
    write_result,
)

#: Tiers whose stamps are watched; ``watch`` where gwm has it (it replaces the fast round
#: while Ganeti's job list is watched).
ROUND_TIERS = ("fast", "watch", "runtime", "slow")
TARGET_TIERS = ("fast", "runtime", "slow")
INTERVALS = {"fast_interval": 5.0, "runtime_interval": 15.0, "slow_interval": 60.0}
#: A round may start this much later than one interval after the previous one.
GRACE_SECONDS = 1.0
#: gwm's default, not set at registration: reported, not a target.
WATCH_INTERVAL = 1.0
IMPORT_TARGET_SECONDS = 60.0
CPU_TARGET_PERCENT = 50.0


def worker_child() -> int:
    """The worker process: gwm's embedded worker and beat until stdin closes."""
    import django

    django.setup()
    from celery.signals import task_failure, task_retry

    from gwm.embedded import start_embedded_workers

    def said(outcome: str, task: Any, error: object) -> None:
        # Celery logs retries at INFO only, beside a line per task that succeeded.
        if getattr(task, "name", "") == "sync.sync_cluster":
            cause = getattr(error, "exc", None) or error  # a Retry carries what raised
            # One write per line: the worker's threads share stderr.
            sys.stderr.write(f"bench: sync.sync_cluster {outcome}: {cause!r}\n")
            sys.stderr.flush()

    task_retry.connect(
        lambda sender=None, reason=None, **_: said("retried", sender, reason), weak=False
    )
    task_failure.connect(
        lambda sender=None, exception=None, **_: said("failed", sender, exception), weak=False
    )
    workers = start_embedded_workers()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()  # the parent closes it to stop us
    finally:
        workers.stop()
    return 0


#: What the worker child writes when a sync task raised: retried (autoretry_for), or failed.
TASK_RETRIED = re.compile(r"^bench: sync\.sync_cluster retried: (.*)")
TASK_FAILED = re.compile(r"^bench: sync\.sync_cluster failed: (.*)")


class WorkerProcess:
    """The worker child process, with its CPU time from /proc and its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self._proc = subprocess.Popen(
            [PYTHON, "-m", "bench.sync_scale", "--worker-child"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the worker process did not start")
        self.pid = self._proc.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def task_errors(self) -> dict[str, dict[str, int]]:
        """Sync tasks that raised so far, by outcome and error (first 120 characters)."""
        self._log.flush()
        counts: dict[str, dict[str, int]] = {"retried": {}, "failed": {}}
        for line in self.log_path.read_text(errors="replace").splitlines():
            for outcome, pattern in (("retried", TASK_RETRIED), ("failed", TASK_FAILED)):
                match = pattern.search(line)
                if match:
                    error = match.group(1)[:120]
                    counts[outcome][error] = counts[outcome].get(error, 0) + 1
        return counts

    def stop(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


def _tiers() -> tuple[str, ...]:
    from gwm.clusters.models import Cluster

    columns = {f.name for f in Cluster._meta.concrete_fields}
    return tuple(t for t in ROUND_TIERS if f"{t}_synced_at" in columns)


def _rows(ids: list[int]) -> list[dict[str, Any]]:
    from gwm.clusters.models import Cluster

    tiers = _tiers()
    return list(
        Cluster.objects.filter(pk__in=ids).values(
            "pk",
            "error",
            "error_at",
            *(f"{tier}_synced_at" for tier in tiers),
            *(f"next_{tier}_at" for tier in tiers),
        )
    )


def wait_import(ids: list[int], timeout: float) -> dict[str, Any]:
    """Until every cluster had its first slow round and runtime sweep; failures seen."""
    started = time.monotonic()
    failed: dict[int, str] = {}
    done = 0
    while time.monotonic() - started < timeout:
        rows = _rows(ids)
        for row in rows:
            if row["error_at"] is not None and row["pk"] not in failed:
                failed[row["pk"]] = (row["error"] or "")[:200]
        done = sum(1 for r in rows if r["slow_synced_at"] and r["runtime_synced_at"])
        if done == len(ids):
            break
        time.sleep(0.5)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "imported": done,
        "failed_first_syncs": len(failed),
        "failures": sorted(set(failed.values()))[:10],
    }


class Stamps:
    """Every round each cluster's row showed, with the due time gwm had set before it."""

    def __init__(self, ids: list[int]) -> None:
        self.tiers = _tiers()
        self.rounds: dict[tuple[int, str], list[tuple[datetime, datetime | None]]] = {
            (pk, tier): [] for pk in ids for tier in self.tiers
        }
        self._due: dict[tuple[int, str], datetime | None] = {}
        self.errors = 0

    def sample(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            for tier in self.tiers:
                key = (row["pk"], tier)
                stamp = row[f"{tier}_synced_at"]
                seen = self.rounds[key]
                if stamp is not None and (not seen or seen[-1][0] != stamp):
                    seen.append((stamp, self._due.get(key)))
                self._due[key] = row[f"next_{tier}_at"]
            if row["error"]:
                self.errors += 1

    def on_time(self, tier: str, interval: float) -> dict[str, Any]:
        """Gaps between consecutive rounds of ``tier``; for ``fast``, between rounds that
        read what a fast round reads (a fast round, a watch, or a slow round)."""
        gaps: list[float] = []
        late = late_to_schedule = 0
        for (pk, name), seen in self.rounds.items():
            if name != tier:
                continue
            rounds = seen
            if tier == "fast":
                # A watch or a slow round stands for the fast one; their due times are not
                # the fast tier's.
                others = [
                    (stamp, None)
                    for other in ("watch", "slow")
                    if other in self.tiers
                    for stamp, _ in self.rounds[(pk, other)]
                ]
                rounds = sorted([*seen, *others], key=lambda r: r[0])
            # The first stamp is from before the measurement started.
            for (previous, _), (stamp, due) in itertools.pairwise(rounds):
                gap = (stamp - previous).total_seconds()
                gaps.append(gap)
                late += gap > interval + GRACE_SECONDS
                allowed = interval
                if due is not None and due > previous:
                    allowed = max(interval, (due - previous).total_seconds())
                late_to_schedule += gap > allowed + GRACE_SECONDS
        count = len(gaps)
        return {
            "interval_seconds": interval,
            "rounds": count,
            "on_time_percent": round(100 * (count - late) / count, 1) if count else None,
            "on_time_to_schedule_percent": (
                round(100 * (count - late_to_schedule) / count, 1) if count else None
            ),
            "gap_seconds": summary(gaps) if gaps else None,
        }


def observe(ids: list[int], seconds: float, worker: WorkerProcess) -> dict[str, Any]:
    stamps = Stamps(ids)
    stamps.sample(_rows(ids))
    cpu_before = worker.cpu_seconds()
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        stamps.sample(_rows(ids))
    elapsed = time.monotonic() - started
    cpu = worker.cpu_seconds() - cpu_before
    intervals = {**INTERVALS, "watch_interval": WATCH_INTERVAL}
    tiers = {tier: stamps.on_time(tier, intervals[f"{tier}_interval"]) for tier in stamps.tiers}
    return {
        "seconds": round(elapsed, 1),
        "worker_cpu_seconds": round(cpu, 1),
        "worker_cpu_percent": round(100 * cpu / elapsed, 1),
        "error_samples": stamps.errors,
        "tiers": tiers,
    }


def _minus(
    total: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    return {
        outcome: {
            error: count - before[outcome].get(error, 0)
            for error, count in errors.items()
            if count > before[outcome].get(error, 0)
        }
        for outcome, errors in total.items()
    }


def verdicts(result: dict[str, Any]) -> list[str]:
    lines = []

    def verdict(name: str, met: bool, measured: str, gap: str) -> None:
        lines.append(f"{name}: {'met' if met else 'MISSED'} ({measured}{'' if met else gap})")

    imported = result["initial_import"]
    verdict(
        f"initial import <= {IMPORT_TARGET_SECONDS:.0f} s",
        imported["seconds"] <= IMPORT_TARGET_SECONDS and imported["imported"] == result["clusters"],
        f"{imported['seconds']} s, {imported['imported']}/{result['clusters']} imported",
        f"; {imported['seconds'] / IMPORT_TARGET_SECONDS:.1f}x the target",
    )
    failed = imported["failed_first_syncs"]
    errors = imported["sync_task_errors"]
    retried = sum(errors["retried"].values())
    gave_up = sum(errors["failed"].values())
    verdict(
        "no failed first sync",
        failed == 0 and retried == 0 and gave_up == 0,
        f"{failed} clusters recorded an error; sync tasks retried {retried} times, "
        f"given up {gave_up} times: {sorted({**errors['retried'], **errors['failed']})[:3]}",
        "",
    )
    steady = result["steady"]
    for tier in TARGET_TIERS:
        measured = steady["tiers"][tier]
        share = measured["on_time_percent"]
        verdict(
            f"{tier} rounds on time (every {measured['interval_seconds']:.0f} s + 1 s)",
            share == 100.0,
            f"{share} % of {measured['rounds']} rounds on time, "
            f"{measured['on_time_to_schedule_percent']} % to gwm's own schedule",
            f"; gap p50 {(measured['gap_seconds'] or {}).get('p50_ms', 0) / 1000:.1f} s, "
            f"max {(measured['gap_seconds'] or {}).get('max_ms', 0) / 1000:.1f} s",
        )
    cpu = steady["worker_cpu_percent"]
    verdict(
        f"worker CPU <= {CPU_TARGET_PERCENT:.0f} % of one core",
        cpu <= CPU_TARGET_PERCENT,
        f"{cpu} %",
        f"; {cpu / CPU_TARGET_PERCENT:.2f}x the target",
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_scale")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=25)
    parser.add_argument("--sim-processes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0, help="measured steady state")
    parser.add_argument("--import-timeout", type=float, default=900.0)
    parser.add_argument("--worker-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.worker_child:
        return worker_child()
    if not 1 <= args.sim_processes <= args.clusters <= 200 or not 0.5 <= args.minutes <= 30:
        parser.error("--sim-processes 1..--clusters, --clusters ..200, --minutes 0.5..30")

    result: dict[str, Any] = {
        "machine": machine_info(),
        "clusters": args.clusters,
        "instances_per_cluster": args.instances,
        "nodes_per_cluster": args.nodes,
        "sim_processes": args.sim_processes,
        "intervals": INTERVALS,
        "minutes": args.minutes,
    }
    per_host = -(-args.clusters // args.sim_processes)
    counts = [min(per_host, args.clusters - start) for start in range(0, args.clusters, per_host)]
    lifetime = args.import_timeout + args.minutes * 60 + 300
    hosts = [
        SimHost(
            count,
            args.nodes,
            args.instances,
            time_scale=1.0,
            seed=1 + index * per_host,
            max_seconds=lifetime,
        )
        for index, count in enumerate(counts)
    ]
    with bench_django(args.db) as db:
        result["database"] = db.describe()
        worker = None
        try:
            for host in hosts:
                host.__enter__()
            sims = [sim for host in hosts for sim in host.clusters]
            ids = [register(f"s{index:03d}", sim, **INTERVALS).pk for index, sim in enumerate(sims)]
            from django.db import connections

            connections.close_all()
            env = server_env(db)
            worker = WorkerProcess(env, db.workdir / "worker.log")
            result["worker_threads"] = int(env.get("GWM_WORKER_THREADS", "16"))
            log(f"worker {worker.pid} started; importing {len(ids)} clusters")
            cpu_before = worker.cpu_seconds()
            result["initial_import"] = wait_import(ids, args.import_timeout)
            result["initial_import"]["worker_cpu_seconds"] = round(
                worker.cpu_seconds() - cpu_before, 1
            )
            result["initial_import"]["sync_task_errors"] = import_errors = worker.task_errors()
            log(f"initial import: {result['initial_import']}")
            log(f"steady state for {args.minutes} min")
            result["steady"] = observe(ids, args.minutes * 60, worker)
            result["steady"]["sync_task_errors"] = _minus(worker.task_errors(), import_errors)
        finally:
            if worker is not None:
                worker.stop()
            for host in hosts:
                host.__exit__(None, None, None)
            from django.db import connections

            connections.close_all()
    result["verdicts"] = verdicts(result)
    for line in result["verdicts"]:
        log(line)
    write_result(args.json, "sync_scale", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
