"""A process that serves simulated clusters (one port each) for a benchmark.

Simulators live in their own process so that their Python work does not
share a GIL with the gwm code being measured. The parent reads one JSON line
``{"clusters": [{"url": ..., "cert": ...}, ...]}`` from stdout, then closes
stdin (or kills this process) to stop it. The process also stops by itself
after ``--max-seconds``.

    python -m bench.simhost --count 2 --nodes 4 --instances 100
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import time

from gwm.simulator import SimConfig, Simulator, generate_cluster, serve_in_thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simhost")
    parser.add_argument("--count", type=int, default=1, help="simulated clusters")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="stop after this long")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 200:
        parser.error("--count must be 1..200")

    running = []
    started = time.monotonic()
    try:
        for index in range(args.count):
            state = generate_cluster(
                nodes=args.nodes,
                instances=args.instances,
                seed=args.seed + index,
                cluster_name=f"c{index:03d}.example.test",
            )
            sim = Simulator(state, SimConfig(time_scale=args.time_scale))
            running.append(serve_in_thread(sim, host="127.0.0.1"))
        ready = {
            "clusters": [{"url": r.url, "cert": str(r.cert_path)} for r in running],
            "start_seconds": round(time.monotonic() - started, 3),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        deadline = started + args.max_seconds
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sys.stdin], [], [], 1.0)
            if readable and not sys.stdin.readline():
                break  # the parent closed our stdin: stop
    finally:
        for r in running:
            r.stop(timeout=2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
