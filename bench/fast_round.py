"""(b) One sync worker over many simulated clusters: how long one fast round takes.

``--clusters`` simulated clusters of ``--instances`` each (calibrated cost,
time scale 1) are served from one separate process. This process plays one
worker: a pool of ``--threads`` threads running the real task body
(``gwm.sync.dispatch.sync_cluster``, lease included), as Celery's thread
pool would. After a forced full sync of every cluster (timed: the initial
import), each measured round makes only the fast tier due on every cluster
and runs them all; the round's time is from the first task started to the
last one done. A runtime sweep of every cluster is timed the same way once,
because in steady state the worker has to fit those in as well.

    python -m bench.fast_round --clusters 100 --instances 1000 --threads 8
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bench import whatif
from bench.common import (
    SimCluster,
    SimHost,
    bench_django,
    log,
    machine_info,
    register,
    summary,
    write_result,
)


def _run_one(cluster_id: int, force: bool) -> tuple[float, str | None]:
    """Run the task body as a worker thread would; a failure is recorded, not raised."""
    from gwm.sync.dispatch import sync_cluster

    started = time.perf_counter()
    error = None
    try:
        sync_cluster(cluster_id, force=force)
    except Exception as exc:  # what a Celery worker would log as a failed task
        error = f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - started, error


def run_round(pool: ThreadPoolExecutor, ids: list[int], *, force: bool = False) -> dict[str, Any]:
    cpu_before = time.process_time()
    started = time.perf_counter()
    outcomes = list(pool.map(lambda pk: _run_one(pk, force), ids))
    wall = time.perf_counter() - started
    errors: dict[str, int] = {}
    for _, error in outcomes:
        if error:
            errors[error] = errors.get(error, 0) + 1
    return {
        "wall_seconds": round(wall, 3),
        "per_cluster": summary([duration for duration, _ in outcomes]),
        "worker_cpu_seconds": round(time.process_time() - cpu_before, 2),
        "failed_tasks": sum(errors.values()),
        "task_errors": errors,
        "failed_ids": [pk for pk, (_, error) in zip(ids, outcomes, strict=True) if error],
    }


def make_due(ids: list[int], tier: str) -> None:
    """Only ``tier`` due on every cluster (as the scheduler finds them when it is)."""
    from django.utils import timezone

    from gwm.clusters.models import Cluster

    now = timezone.now()
    later = now + timedelta(hours=1)
    due: dict[str, Any] = {"next_fast_at": later, "next_runtime_at": later, "next_slow_at": later}
    due[f"next_{tier}_at"] = None if tier == "fast" else now
    Cluster.objects.filter(pk__in=ids).update(lease_owner="", lease_until=None, **due)


def check_round(ids: list[int], column: str, since: Any) -> dict[str, int]:
    from gwm.clusters.models import Cluster

    clusters = Cluster.objects.filter(pk__in=ids)
    return {
        "synced": clusters.filter(**{f"{column}__gte": since}).count(),
        "available": clusters.filter(status="AVAILABLE").count(),
    }


def sim_totals(sims: list[SimCluster]) -> dict[str, Any]:
    count = 0
    cost = 0.0
    routes: dict[str, int] = {}
    for sim in sims:
        stats = sim.stats()
        count += stats["total"]["count"]
        cost += stats["total"]["cost_seconds"]
        for route, counter in stats["requests"].items():
            routes[route] = routes.get(route, 0) + counter["count"]
    return {
        "rapi_requests": count,
        "rapi_requests_per_cluster": round(count / len(sims), 2),
        "rapi_cost_seconds_per_cluster": round(cost / len(sims), 4),
        "routes": routes,
    }


def reset_all(sims: list[SimCluster]) -> None:
    for sim in sims:
        sim.reset()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def fast_round(pool: ThreadPoolExecutor, host: SimHost, ids: list[int]) -> dict[str, Any]:
    """Only the fast tier due on every cluster, all of them run; with RAPI and CPU counts."""
    from django.utils import timezone

    make_due(ids, "fast")
    reset_all(host.clusters)
    since = timezone.now()
    host_cpu = host.cpu_seconds()
    measured = run_round(pool, ids)
    measured.update(check_round(ids, "fast_synced_at", since))
    measured.update(sim_totals(host.clusters))
    if host_cpu is not None:
        measured["simulator_cpu_seconds"] = round((host.cpu_seconds() or 0) - host_cpu, 2)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fast_round")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=25)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="fast rounds measured")
    parser.add_argument("--no-runtime-round", action="store_true")
    parser.add_argument(
        "--what-if",
        default="",
        help=f"comma-separated proposed changes to apply in this process: {whatif.PATCHES}",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="with --what-if: the initial sync as is, then every measured round twice, as is "
        "and with the patches, alternating (A/B in one process, same load)",
    )
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.clusters <= 200 or not 1 <= args.rounds <= 20:
        parser.error("--clusters 1..200, --rounds 1..20")

    result: dict[str, Any] = {
        "machine": machine_info(),
        "clusters": args.clusters,
        "instances_per_cluster": args.instances,
        "nodes_per_cluster": args.nodes,
        "threads": args.threads,
    }
    with (
        bench_django(args.db) as db,
        SimHost(
            args.clusters, args.nodes, args.instances, time_scale=1.0, max_seconds=1500
        ) as host,
        ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="worker") as pool,
    ):
        from django.utils import timezone

        from gwm.clusters.models import Instance

        result["database"] = db.describe()
        asked = whatif.Patched([p for p in args.what_if.split(",") if p])
        patches = asked.names
        result["what_if"] = patches
        result["compare"] = bool(args.compare and patches)
        variants = (
            ["stock", "what-if"] if result["compare"] else ["what-if" if patches else "stock"]
        )
        if patches and not result["compare"]:
            whatif.apply(patches)
        result["simulators_start_seconds"] = host.start_seconds
        sims = host.clusters
        started = time.perf_counter()
        ids = [register(f"c{index:03d}", sim).pk for index, sim in enumerate(sims)]
        result["register_seconds"] = round(time.perf_counter() - started, 2)

        log(f"initial full sync of {len(ids)} clusters x {args.instances} instances")
        reset_all(sims)
        since = timezone.now()
        full = run_round(pool, ids, force=True)
        if full["failed_ids"]:
            # Tasks that failed (e.g. SQLite's busy timeout) are retried one at a time,
            # as the scheduler would re-dispatch them, so that every cluster is imported.
            log(f"{len(full['failed_ids'])} tasks failed: {full['task_errors']}; retrying")
            from gwm.clusters.models import Cluster

            Cluster.objects.filter(pk__in=full["failed_ids"]).update(
                lease_owner="", lease_until=None
            )
            with ThreadPoolExecutor(max_workers=1) as single:
                retry = run_round(single, full["failed_ids"], force=True)
            full["retry"] = {k: retry[k] for k in ("wall_seconds", "failed_tasks", "task_errors")}
        full.update(check_round(ids, "slow_synced_at", since))
        full["instances_cached"] = Instance.objects.count()
        full.update(sim_totals(sims))
        result["initial_full_sync"] = full
        log(f"full sync: {full['wall_seconds']} s")

        rounds = []
        runtime_rounds = []
        for number in range(args.rounds):
            order = variants if number % 2 == 0 else variants[::-1]
            for variant in order:
                with whatif.Patched(patches if result["compare"] and variant == "what-if" else []):
                    measured = fast_round(pool, host, ids)
                measured["variant"] = variant
                rounds.append(measured)
                log(f"fast round {number + 1} ({variant}): {measured['wall_seconds']} s")
        result["fast_rounds"] = rounds
        result["fast_round_seconds_median"] = {
            variant: _median([r["wall_seconds"] for r in rounds if r["variant"] == variant])
            for variant in variants
        }
        if not args.no_runtime_round:
            for variant in variants:
                with whatif.Patched(patches if result["compare"] and variant == "what-if" else []):
                    make_due(ids, "runtime")
                    reset_all(sims)
                    since = timezone.now()
                    measured = run_round(pool, ids)
                    measured.update(check_round(ids, "runtime_synced_at", since))
                    measured.update(sim_totals(sims))
                measured["variant"] = variant
                runtime_rounds.append(measured)
                log(f"runtime round ({variant}): {measured['wall_seconds']} s")
        result["runtime_rounds"] = runtime_rounds
        from django.db import connections

        connections.close_all()
    write_result(args.json, "fast_round", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
