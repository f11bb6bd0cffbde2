"""(a) The cached instance list vs RAPI's bulk list, side by side in one run.

1. A simulated cluster of ``--instances`` (calibrated cost, ``--time-scale 1``)
   in its own process; registered in gwm and imported with one full sync
   (``run_due_tiers(force=True)``, the real way), timed.
2. Rounds that interleave, so both sides see the same machine noise:
   ``GET /api/v1/instances?fields=name,status`` with ``limit=100`` and
   ``limit=1000`` (in-process with Django's test Client: server time), a walk
   of every page with the cursor, and RAPI ``GET /2/instances?bulk=1`` on the
   simulator (end to end over HTTPS, plus what the cost model charged).
3. The same list requests over real HTTP against the ASGI app served by
   uvicorn in a subprocess, like ``gwm serve`` does (end to end, keep-alive).

    python -m bench.list_api --db sqlite --instances 10000 --json out.json
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    TIMEOUT,
    SimCluster,
    SimHost,
    admin_token,
    bench_django,
    log,
    machine_info,
    register,
    server_env,
    summary,
    write_result,
)

LIST_PATH = "/api/v1/instances"


def _list_url(limit: int, cursor: str | None = None) -> str:
    params: dict[str, Any] = {"fields": "name,status", "limit": limit}
    if cursor:
        params["cursor"] = cursor
    return f"{LIST_PATH}?{urlencode(params)}"


class InProcess:
    """Django's test Client: the whole request path minus the HTTP server."""

    def __init__(self, token: str) -> None:
        from django.test import Client

        self.client = Client(headers={"Authorization": f"Bearer {token}"}, HTTP_HOST="localhost")

    def page(self, limit: int, cursor: str | None = None) -> dict[str, Any]:
        response = self.client.get(_list_url(limit, cursor))
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.content[:300]!r}")
        result: dict[str, Any] = response.json()
        return result


class OverHttp:
    """httpx with keep-alive against the ASGI app served by uvicorn."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )

    def page(self, limit: int, cursor: str | None = None) -> dict[str, Any]:
        response = self.client.get(_list_url(limit, cursor))
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def walk(api: InProcess | OverHttp, limit: int, expected: int) -> int:
    """Every page with the cursor; returns the number of instances seen."""
    seen = 0
    cursor = None
    for _ in range(expected // limit + 2):
        page = api.page(limit, cursor)
        seen += len(page["items"])
        cursor = page["next"]
        if not cursor:
            break
    if seen != expected:
        raise RuntimeError(f"the walk saw {seen} instances, expected {expected}")
    return seen


class RapiBulk:
    def __init__(self, sim_url: str, ca: str, auth: tuple[str, str]) -> None:
        self.url = sim_url
        self.client = httpx.Client(verify=ca, auth=auth, timeout=TIMEOUT)

    def fetch(self) -> tuple[float, int, int]:
        """(seconds to the last byte, instances, bytes)."""
        started = time.perf_counter()
        response = self.client.get(f"{self.url}/2/instances", params={"bulk": 1})
        body = response.content
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, len(response.json()), len(body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The ASGI app as ``gwm serve`` runs it (uvicorn, lifespan off), without the workers."""
    port = _free_port()
    cmd = [
        PYTHON,
        "-m",
        "uvicorn",
        "gwm.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "off",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code < 500:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the gwm server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def initial_import(sim: SimCluster) -> dict[str, Any]:
    from gwm.clusters.models import Cluster, Instance
    from gwm.sync.rounds import run_due_tiers

    cluster = register("bench-list", sim)
    sim.reset()
    started = time.perf_counter()
    ran = run_due_tiers(cluster.pk, force=True)
    seconds = time.perf_counter() - started
    stats = sim.stats()["total"]
    status = Cluster.objects.get(pk=cluster.pk).status
    return {
        "tiers": ran,
        "seconds": round(seconds, 2),
        "instances": Instance.objects.count(),
        "cluster_status": status,
        "rapi_requests": stats["count"],
        "rapi_cost_seconds": stats["cost_seconds"],
        "rapi_wall_seconds": stats["wall_seconds"],
    }


def query_count(api: InProcess, limit: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        api.page(limit)
    return len(captured.captured_queries)


def measure(
    api: InProcess | OverHttp,
    rapi: RapiBulk | None,
    sim: SimCluster | None,
    *,
    instances: int,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """Interleaved rounds: 5 x limit=100, 2 x limit=1000, 1 walk, 1 RAPI bulk."""
    samples: dict[str, list[float]] = {"limit_100": [], "limit_1000": [], "walk_1000": []}
    rapi_samples: list[float] = []
    rapi_cost: list[float] = []
    rapi_bytes = 0
    for _ in range(3):  # warm up caches, connections, the query planner
        api.page(100)
        api.page(1000)
    deadline = time.monotonic() + seconds
    done = 0
    for _ in range(rounds):
        done += 1
        for _ in range(5):
            started = time.perf_counter()
            api.page(100)
            samples["limit_100"].append(time.perf_counter() - started)
        for _ in range(2):
            started = time.perf_counter()
            api.page(1000)
            samples["limit_1000"].append(time.perf_counter() - started)
        started = time.perf_counter()
        walk(api, 1000, instances)
        samples["walk_1000"].append(time.perf_counter() - started)
        if rapi is not None and sim is not None:
            before = sim.stats()["total"]["cost_seconds"]
            elapsed, count, rapi_bytes = rapi.fetch()
            if count != instances:
                raise RuntimeError(f"RAPI listed {count} instances, expected {instances}")
            rapi_samples.append(elapsed)
            rapi_cost.append(sim.stats()["total"]["cost_seconds"] - before)
        if time.monotonic() > deadline:
            break
    walk_100: list[float] = []
    for _ in range(min(3, done)):
        started = time.perf_counter()
        walk(api, 100, instances)
        walk_100.append(time.perf_counter() - started)
    result: dict[str, Any] = {"rounds": done, **{k: summary(v) for k, v in samples.items()}}
    result["walk_100"] = summary(walk_100)
    if rapi_samples:
        result["rapi_bulk"] = {**summary(rapi_samples), "bytes": rapi_bytes}
        result["rapi_bulk_cost_model"] = summary(rapi_cost)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_api")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (max)")
    parser.add_argument("--seconds", type=float, default=90.0, help="time cap for the rounds")
    parser.add_argument("--no-http", action="store_true", help="skip the over-HTTP part")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="what-if: override CONN_MAX_AGE in this process (in-process part only)",
    )
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "machine": machine_info(),
        "instances": args.instances,
        "nodes": args.nodes,
    }
    with (
        bench_django(args.db) as db,
        SimHost(1, args.nodes, args.instances, time_scale=1.0, max_seconds=1200) as host,
    ):
        result["database"] = db.describe()
        if args.conn_max_age is not None:
            from django.db import connection

            connection.close()
            connection.settings_dict["CONN_MAX_AGE"] = args.conn_max_age
            result["conn_max_age_override"] = args.conn_max_age
        sim = host.clusters[0]
        log(f"importing {args.instances} instances ({args.db})")
        result["initial_import"] = initial_import(sim)
        log(f"import: {result['initial_import']}")
        token = admin_token()
        api = InProcess(token)
        rapi = RapiBulk(sim.url, sim.cert, ("gwm", "gwm"))
        result["queries_per_page"] = {
            "limit_100": query_count(api, 100),
            "limit_1000": query_count(api, 1000),
        }
        log("in-process rounds, interleaved with RAPI bulk")
        result["in_process"] = measure(
            api, rapi, sim, instances=args.instances, rounds=args.rounds, seconds=args.seconds
        )
        log(f"in-process: {result['in_process']}")
        if not args.no_http:
            from django.db import connections

            connections.close_all()
            proc, base = start_server(server_env(db))
            try:
                log(f"over HTTP ({base}), interleaved with RAPI bulk")
                result["over_http"] = measure(
                    OverHttp(base, token),
                    rapi,
                    sim,
                    instances=args.instances,
                    rounds=max(3, args.rounds // 2),
                    seconds=args.seconds / 2,
                )
                log(f"over HTTP: {result['over_http']}")
            finally:
                stop_server(proc)
    result["ratios"] = _ratios(result)
    write_result(args.json, "list_api", result)
    return 0


def _ratios(result: dict[str, Any]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    for mode in ("in_process", "over_http"):
        part = result.get(mode)
        if not part or "rapi_bulk" not in part:
            continue
        rapi = part["rapi_bulk"]["p50_ms"]
        for key in ("limit_100", "limit_1000", "walk_1000", "walk_100"):
            if part[key].get("p50_ms"):
                ratios[f"{mode}.{key}"] = round(rapi / part[key]["p50_ms"], 1)
    return ratios


if __name__ == "__main__":
    raise SystemExit(main())
