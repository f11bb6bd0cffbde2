"""(c) What gwm's polling costs a cluster in steady state, under the real scheduler.

One simulated cluster per ``--size`` (calibrated cost, time scale 1), each
in its own process, registered with the default sync intervals. The real
embedded worker runs them (``gwm.embedded.start_embedded_workers``: Celery
worker threads + beat ringing ``dispatch_due_syncs`` every second, in-memory
broker), against a file SQLite database. After every cluster's first full
sync the simulators' counters are reset and the run lasts ``--seconds``;
then each simulator says how many RAPI requests gwm made and how much
simulated master time (``cost_seconds``) they cost.

``--interval-scale K`` divides the watch/fast/runtime/slow intervals by K to see
more rounds in a short run; the per-minute figures are then divided by K
too, which holds only while the budget stretch (tasks.RUNTIME_BUDGET /
FAST_BUDGET) does not kick in, so the default is 1 (no scaling).

    python -m bench.steady --size 1000:25 --size 10000:100 --seconds 240
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench import whatif
from bench.common import SimHost, bench_django, log, machine_info, register, write_result

DEFAULT_INTERVALS = {
    "watch_interval": 1.0,
    "fast_interval": 5.0,
    "runtime_interval": 15.0,
    "slow_interval": 60.0,
}
TIERS = ("watch", "fast", "runtime", "slow")


def _size(text: str) -> tuple[int, int]:
    instances, _, nodes = text.partition(":")
    return int(instances), int(nodes or max(1, int(instances) // 40))


def wait_first_sync(ids: list[int], timeout: float) -> float:
    from gwm.clusters.models import Cluster

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        done = Cluster.objects.filter(
            pk__in=ids, slow_synced_at__isnull=False, runtime_synced_at__isnull=False
        ).count()
        if done == len(ids):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the first sync did not finish within {timeout} s")


def observe(ids: list[int], seconds: float) -> dict[int, dict[str, Any]]:
    """Sample the clusters' rows twice a second: which tier ran when, and any failure."""
    from gwm.clusters.models import Cluster

    seen: dict[int, dict[str, set[Any]]] = {pk: {t: set() for t in TIERS} for pk in ids}
    errors: dict[int, set[str]] = {pk: set() for pk in ids}
    runtime_costs: dict[int, list[float]] = {pk: [] for pk in ids}
    first: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + seconds
    while True:
        rows: list[dict[str, Any]] = [
            dict(row)
            for row in Cluster.objects.filter(pk__in=ids).values(
                "pk",
                "fast_synced_at",
                "runtime_synced_at",
                "slow_synced_at",
                "error",
                "runtime_cost",
            )
        ]
        for row in rows:
            pk = row["pk"]
            if pk not in first:
                first[pk] = {t: row[f"{t}_synced_at"] for t in TIERS}
            for tier in TIERS:
                stamp = row[f"{tier}_synced_at"]
                new = stamp is not None and stamp != first[pk][tier]
                if new and stamp not in seen[pk][tier]:
                    seen[pk][tier].add(stamp)
                    if tier == "runtime":
                        runtime_costs[pk].append(row["runtime_cost"])
            if row["error"]:
                errors[pk].add(row["error"][:200])
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    result: dict[int, dict[str, Any]] = {}
    for pk in ids:
        stamps = {t: sorted(seen[pk][t]) for t in TIERS}
        gaps = {
            t: round((s[-1] - s[0]).total_seconds() / (len(s) - 1), 1) if len(s) > 1 else None
            for t, s in stamps.items()
        }
        result[pk] = {
            "rounds": {t: len(s) for t, s in stamps.items()},
            "mean_interval_seconds": gaps,
            "runtime_cost_seconds_seen": [round(c, 3) for c in runtime_costs[pk]][:20],
            "errors": sorted(errors[pk]),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steady")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", action="append", type=_size, help="INSTANCES[:NODES], repeatable")
    parser.add_argument("--seconds", type=float, default=240.0, help="measured steady state")
    parser.add_argument("--interval-scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4, help="embedded worker threads")
    parser.add_argument(
        "--what-if",
        default="",
        help=f"comma-separated proposed changes to apply in this process: {whatif.PATCHES}",
    )
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    sizes = args.size or [(1000, 25), (10_000, 100)]
    if not 10 <= args.seconds <= 1800 or not 1 <= len(sizes) <= 4:
        parser.error("--seconds 10..1800, 1..4 sizes")
    intervals = {k: v / args.interval_scale for k, v in DEFAULT_INTERVALS.items()}

    result: dict[str, Any] = {
        "machine": machine_info(),
        "seconds": args.seconds,
        "interval_scale": args.interval_scale,
        "intervals": intervals,
        "concurrency": args.concurrency,
    }
    hosts = [
        SimHost(1, nodes, instances, time_scale=1.0, max_seconds=args.seconds + 900)
        for instances, nodes in sizes
    ]
    with bench_django(args.db) as db:
        result["database"] = db.describe()
        result["what_if"] = whatif.apply([p for p in args.what_if.split(",") if p])
        for host in hosts:
            host.__enter__()
        workers = None
        try:
            from gwm.embedded import start_embedded_workers

            sims = [host.clusters[0] for host in hosts]
            ids = [
                register(f"steady-{instances}", sim, **intervals).pk
                for (instances, _), sim in zip(sizes, sims, strict=True)
            ]
            workers = start_embedded_workers(concurrency=args.concurrency)
            log(f"waiting for the first full sync of {len(ids)} clusters")
            result["first_sync_seconds"] = round(wait_first_sync(ids, timeout=300), 1)
            for sim in sims:
                sim.reset()
            log(f"steady state for {args.seconds:.0f} s")
            started = time.monotonic()
            observed = observe(ids, args.seconds)
            stats = [sim.stats() for sim in sims]
            elapsed = time.monotonic() - started
            result["clusters"] = [
                _cluster_result(instances, nodes, st, obs, elapsed, args.interval_scale)
                for (instances, nodes), st, obs in zip(
                    sizes, stats, (observed[pk] for pk in ids), strict=True
                )
            ]
        finally:
            if workers is not None:
                workers.stop()
            for host in hosts:
                host.__exit__(None, None, None)
            from django.db import connections

            connections.close_all()
    write_result(args.json, "steady", result)
    return 0


def _cluster_result(
    instances: int,
    nodes: int,
    stats: dict[str, Any],
    observed: dict[str, Any],
    elapsed: float,
    scale: float,
) -> dict[str, Any]:
    minutes = elapsed / 60 * scale  # a run with intervals / K stands for K times longer
    total = stats["total"]
    per_route = {
        route: {"count": c["count"], "cost_seconds": c["cost_seconds"]}
        for route, c in stats["requests"].items()
    }
    return {
        "instances": instances,
        "nodes": nodes,
        "elapsed_seconds": round(elapsed, 1),
        "rapi_requests": total["count"],
        "requests_per_minute": round(total["count"] / minutes, 1),
        "requests_per_second": round(total["count"] / minutes / 60, 3),
        "cost_seconds": total["cost_seconds"],
        "cost_seconds_per_minute": round(total["cost_seconds"] / minutes, 2),
        "master_core_percent": round(100 * total["cost_seconds"] / (minutes * 60), 2),
        "by_status": stats["by_status"],
        "routes": per_route,
        **observed,
    }


if __name__ == "__main__":
    raise SystemExit(main())
