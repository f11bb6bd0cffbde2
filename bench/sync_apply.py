"""Where a sync round's time goes at one cluster size: reading RAPI vs writing the cache.

A simulator with the cost model switched off (time scale 0: only gwm's own
work is measured) and one cluster; each phase reads a round with the real
``reads.read_*`` functions and writes it with ``sync.apply_round``:

1. first import: slow round (every object created), then the first runtime
   sweep (every instance's runtime fields change);
2. steady state with nothing changed: runtime sweep, slow round, fast round;
3. a runtime sweep after 1 % of the instances crashed outside gwm.

The cache writes changed rows with ``executemany`` (each row its own changed
columns) and swept rows with one UPDATE; the ``--variant executemany`` what-if
that measured this before it was made is gone.

    python -m bench.sync_apply --instances 10000 --nodes 100
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import SimHost, bench_django, log, machine_info, register, write_result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_apply")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "machine": machine_info(),
        "instances": args.instances,
        "nodes": args.nodes,
    }
    with (
        bench_django(args.db) as db,
        SimHost(1, args.nodes, args.instances, time_scale=0.0, max_seconds=900) as host,
    ):
        from django.utils import timezone

        from gwm.clusters.models import Cluster
        from gwm.clusters.services import cache
        from gwm.ganeti import reads
        from gwm.ganeti.connect import client_for

        result["database"] = db.describe()
        sim = host.clusters[0]
        cluster = register("apply", sim)
        phases: list[dict[str, Any]] = []

        def phase(name: str, tier: str, read_round: Any) -> None:
            reader = reads.TimedReader(
                reads.RapiReader(client_for(Cluster.objects.get(pk=cluster.pk)))
            )
            started = time.perf_counter()
            read = read_round(reader)
            read_seconds = time.perf_counter() - started
            started = time.perf_counter()
            changes = cache.round_write(cluster.pk, read, now=timezone.now(), tier=tier)
            apply_seconds = time.perf_counter() - started
            phases.append(
                {
                    "phase": name,
                    "read_seconds": round(read_seconds, 3),
                    "apply_seconds": round(apply_seconds, 3),
                    "changes": changes,
                    "requests": reader.requests,
                }
            )
            log(
                f"{name}: read {read_seconds:.3f} s, apply {apply_seconds:.3f} s, {changes} changes"
            )

        def fast(reader: Any) -> Any:
            row = Cluster.objects.get(pk=cluster.pk)
            fingerprints: dict[str, tuple[Any, ...]] = {
                values[0]: tuple(values[1:])
                for values in row.instances.values_list(
                    "name", "serial_no", "mtime", "admin_state", "primary_node"
                )
            }
            return reads.read_fast_round(
                reader,
                known_fingerprints=fingerprints,
                last_job_id=row.last_job_id,
                open_job_ids=list(row.open_job_ids),
            )

        phase("first import: slow round (creates)", "slow", reads.read_slow_round)
        phase("first import: runtime sweep", "runtime", reads.read_runtime_sweep)
        phase("steady: runtime sweep, nothing changed", "runtime", reads.read_runtime_sweep)
        phase("steady: slow round, nothing changed", "slow", reads.read_slow_round)
        phase("steady: fast round, nothing changed", "fast", fast)
        names = sorted(sim.instance_names())[::100]
        for name in names:
            sim.admin("POST", f"instances/{name}/crash")
        phase(
            f"runtime sweep after {len(names)} crashes (1 %)", "runtime", reads.read_runtime_sweep
        )
        result["phases"] = phases
        from django.db import connections

        connections.close_all()
    write_result(args.json, "sync_apply", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
