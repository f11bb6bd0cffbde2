"""Issue 11, targets 1, 2 and 5: gwm under concurrent load vs real RAPI, side by side.

gwm runs as a user starts it: ``gwm serve --port P`` (bench.gwm_serve), the
default configuration, its scheduler syncing two clusters registered through
its API: a simulated cluster of ``--instances`` on ``--nodes`` nodes
(bench.simhost, time scale 1, its own process) and the real Ganeti sandbox
(read-only: nothing is created or deleted there).

1. Concurrent reads (target 1): ``wrk`` (bench.wrk) with 16 connections and
   then 1, ``--seconds`` each, on gwm's instance lists, on real RAPI bulk on
   the sandbox and on RAPI bulk on the simulator; good responses per second,
   p50/p99, and the CPU of gwm's whole process tree during each load.
2. Everything at once (target 2): all instances' ``name,status`` in one
   request (the largest ``limit`` gwm accepts), and a cursor walk of all
   with all fields, against RAPI bulk on the simulator, interleaved rounds
   with one keep-alive client each; server time from ``Server-Timing`` when
   gwm sends it, else time to the last byte.
3. Writes under load (target 5): ``--writers`` concurrent writers (asyncio
   httpx) POSTing ``reboot`` each on distinct instances of the simulator
   while its sync rounds commit; POST → 202 latency; on SQLite, then on
   PostgreSQL (a database of its own, dropped at the end).

    python -m bench.concurrency --seconds 30 --json /tmp/concurrency.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.common import (
    TIMEOUT,
    BenchDatabase,
    SimCluster,
    SimHost,
    log,
    machine_info,
    summary,
    write_result,
)
from bench.gwm_serve import GwmServe, register_cluster, wait_synced
from bench.report import concurrency_section
from bench.sandbox import sandbox_env
from bench.wrk import basic, ensure_wrk, run_wrk

SIM = "sim"
SANDBOX = "sandbox"
NAMES = "fields=name,status&limit=100"
#: Target 1: gwm ≥ 50x real RAPI bulk's saturated rate and ≥ 800 req/s, p99 ≤ 50 ms.
TARGET_RATIO_READS = 50.0
TARGET_RATE_NAMES = 800.0
TARGET_RATE_FULL = 300.0
TARGET_P99_MS = 50.0
#: Target 2: all name,status in one request ≤ 50 ms server time; a walk ≥ 100x RAPI bulk.
TARGET_ALL_MS = 50.0
TARGET_RATIO_WALK = 100.0
LIMITS_TRIED = (10000, 5000, 2000, 1000)


class SyncWatch:
    """Counts the sync rounds gwm commits (per cluster and tier) while a load runs.

    A tier is any ``<tier>_synced_at`` gwm shows in a cluster's ``sync`` (the set of
    tiers is changing); ``any`` is the cluster's ``synced_at``.
    """

    def __init__(self, api_base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=api_base, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )
        self.seen: dict[tuple[str, str], set[str]] = {}
        self.statuses: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _poll(self) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            for cluster in self.client.get("/api/v1/clusters").json()["items"]:
                self.statuses.setdefault(cluster["name"], set()).add(cluster["status"])
                stamps = {"any": cluster.get("synced_at")}
                for key, value in cluster["sync"].items():
                    if key.endswith("_synced_at"):
                        stamps[key.removesuffix("_synced_at")] = value
                for tier, stamp in stamps.items():
                    if stamp:
                        self.seen.setdefault((cluster["name"], tier), set()).add(stamp)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._poll()

    @contextlib.contextmanager
    def watching(self) -> Iterator[dict[str, Any]]:
        """Yields a dict filled, at the end of the block, with the rounds committed in it."""
        self._poll()
        before = {key: set(stamps) for key, stamps in self.seen.items()}
        found: dict[str, Any] = {}
        yield found
        self._poll()
        for (name, tier), stamps in sorted(self.seen.items()):
            found.setdefault(name, {})[tier] = len(stamps - before.get((name, tier), set()))

    def __enter__(self) -> SyncWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()


# -- 1. concurrent reads ------------------------------------------------------------


def read_loads(sim: SimCluster, sandbox: dict[str, str] | None, token: str, base: str) -> Any:
    """(label, url, Authorization) of each load of target 1."""
    bearer = f"Bearer {token}"
    loads = [
        ("gwm_names_all", f"{base}/api/v1/instances?{NAMES}", bearer),
        ("gwm_full_all", f"{base}/api/v1/instances?limit=100", bearer),
    ]
    if sandbox:
        loads.append(
            ("gwm_names_sandbox", f"{base}/api/v1/clusters/{SANDBOX}/instances?{NAMES}", bearer)
        )
        read_auth = basic(sandbox["GWM_SANDBOX_READ_USER"], sandbox["GWM_SANDBOX_READ_PASSWORD"])
        loads.append(
            ("rapi_real_bulk", f"{sandbox['GWM_SANDBOX_RAPI_URL']}/2/instances?bulk=1", read_auth)
        )
    loads.append(("rapi_sim_bulk", f"{sim.url}/2/instances?bulk=1", basic("gwm", "gwm")))
    return loads


def measure_reads(
    wrk: str, gwm: GwmServe, host: SimHost, watch: SyncWatch, loads: Any, args: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, url, auth in loads:  # warm every gwm process up; not counted
        if label.startswith("gwm"):
            run_wrk(wrk, url, authorization=auth, connections=16, seconds=2)
    for connections in (16, 1):
        for label, url, auth in loads:
            seconds = args.seconds
            if label == "rapi_sim_bulk" and connections > 1:
                # One bulk answer of the 10,000-instance simulator takes seconds of its one
                # interpreter, so the first answers to 16 clients come after ~16 of them.
                seconds = max(seconds, args.sim_bulk_seconds)
            log(f"reads: {label}, wrk -c{connections} for {seconds:g} s")
            cpu_before, sim_before = gwm.cpu_seconds(), host.cpu_seconds() or 0.0
            with watch.watching() as rounds:
                result = run_wrk(
                    wrk, url, authorization=auth, connections=connections, seconds=seconds
                )
            result["gwm_cpu_percent_of_one_core"] = round(
                100 * (gwm.cpu_seconds() - cpu_before) / result["seconds"], 1
            )
            result["simulator_cpu_percent_of_one_core"] = round(
                100 * ((host.cpu_seconds() or 0.0) - sim_before) / result["seconds"], 1
            )
            result["sync_rounds_committed"] = rounds
            out.setdefault(f"c{connections}", {})[label] = result
    return out


def read_targets(reads: dict[str, Any]) -> dict[str, Any]:
    loads = reads["c16"]
    real = loads.get("rapi_real_bulk", {}).get("requests_per_second")
    targets: dict[str, Any] = {}
    for label in ("gwm_names_all", "gwm_names_sandbox"):
        if label not in loads:
            continue
        got = loads[label]
        ratio = round(got["requests_per_second"] / real, 1) if real else None
        targets[label] = {
            "requests_per_second": got["requests_per_second"],
            "ratio_to_real_rapi_bulk": ratio,
            "ratio_met": ratio is not None and ratio >= TARGET_RATIO_READS,
            "rate_met": got["requests_per_second"] >= TARGET_RATE_NAMES,
            "p99_ms": got["p99_ms"],
            "p99_met": got["p99_ms"] <= TARGET_P99_MS,
            "no_errors": not got["errors"],
        }
    full = loads["gwm_full_all"]
    targets["gwm_full_all"] = {
        "requests_per_second": full["requests_per_second"],
        "rate_met": full["requests_per_second"] >= TARGET_RATE_FULL,
        "no_errors": not full["errors"],
    }
    return targets


# -- 2. everything at once --------------------------------------------------------------


def _timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(url)
    _ = response.content
    return time.perf_counter() - started, response


def _server_ms(response: httpx.Response) -> float | None:
    """The ``dur=`` of a ``Server-Timing`` header, when gwm sends one."""
    header = response.headers.get("server-timing", "")
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "dur":
            with contextlib.suppress(ValueError):
                return float(value)
    return None


def largest_limit(api: httpx.Client) -> tuple[int, dict[int, str]]:
    """The largest of LIMITS_TRIED that gwm accepts, and why larger ones were refused."""
    refused: dict[int, str] = {}
    for limit in LIMITS_TRIED:
        response = api.get(f"/api/v1/instances?fields=name,status&limit={limit}")
        if response.status_code == 200:
            return limit, refused
        refused[limit] = f"{response.status_code} {response.text[:200]}"
    raise RuntimeError(f"gwm accepted none of the limits {LIMITS_TRIED}: {refused}")


def walk(api: httpx.Client, url: str, expected: int) -> tuple[float, int]:
    """(seconds, pages) to follow the cursor over every instance: at least ``expected``
    (the simulator's), plus what the shared sandbox holds at the time."""
    started = time.perf_counter()
    pages = seen = 0
    cursor = None
    while True:
        response = api.get(f"{url}&{urlencode({'cursor': cursor})}" if cursor else url)
        response.raise_for_status()
        page = response.json()
        pages += 1
        seen += len(page["items"])
        cursor = page.get("next")
        if not cursor:
            break
    if seen < expected:
        raise RuntimeError(f"the walk saw {seen} instances, expected at least {expected}")
    return time.perf_counter() - started, pages


def measure_all_at_once(
    api: httpx.Client, sim: SimCluster, instances: int, rounds: int
) -> dict[str, Any]:
    limit, refused = largest_limit(api)
    names_url = f"/api/v1/instances?fields=name,status&limit={limit}"
    full_url = f"/api/v1/instances?limit={min(limit, 1000)}"
    rapi = httpx.Client(verify=sim.cert, auth=("gwm", "gwm"), timeout=TIMEOUT)
    one: list[float] = []
    one_server: list[float] = []
    names_walk: list[float] = []
    full_walk: list[float] = []
    bulk: list[float] = []
    pages = {}
    try:
        for _ in range(2):  # warm up
            _timed_get(api, names_url)
        for number in range(rounds):
            log(f"everything at once: round {number + 1}/{rounds}")
            elapsed, response = _timed_get(api, names_url)
            response.raise_for_status()
            one.append(elapsed)
            server = _server_ms(response)
            if server is not None:
                one_server.append(server / 1000)
            elapsed, pages["names"] = walk(api, names_url, instances)
            names_walk.append(elapsed)
            elapsed, pages["full"] = walk(api, full_url, instances)
            full_walk.append(elapsed)
            elapsed, response = _timed_get(rapi, f"{sim.url}/2/instances?bulk=1")
            response.raise_for_status()
            bulk.append(elapsed)
    finally:
        rapi.close()
    out: dict[str, Any] = {
        "limit_used": limit,
        "limits_refused": refused,
        "server_timing_header": bool(one_server),
        "one_request_names": summary(one),
        "one_request_names_server_timing": summary(one_server) if one_server else None,
        "walk_names": {**summary(names_walk), "pages": pages["names"], "limit": limit},
        "walk_full": {**summary(full_walk), "pages": pages["full"], "limit": min(limit, 1000)},
        "rapi_sim_bulk": summary(bulk),
    }
    one_ms = (out["one_request_names_server_timing"] or out["one_request_names"])["p50_ms"]
    ratio = round(out["rapi_sim_bulk"]["p50_ms"] / out["walk_full"]["p50_ms"], 1)
    out["targets"] = {
        "all_in_one_request": limit >= instances,
        "one_request_p50_ms": one_ms,
        "one_request_met": limit >= instances and one_ms <= TARGET_ALL_MS,
        "walk_full_ratio_to_rapi_bulk": ratio,
        "walk_full_met": ratio >= TARGET_RATIO_WALK,
    }
    return out


# -- 3. writes under load -------------------------------------------------------------------


def running_instances(api: httpx.Client, cluster: str) -> list[str]:
    names = []
    cursor = None
    while True:
        params: dict[str, Any] = {"fields": "name,status", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/api/v1/clusters/{cluster}/instances", params=params).json()
        names += [item["name"] for item in page["items"] if item["status"] == "RUNNING"]
        cursor = page.get("next")
        if not cursor:
            return names


async def _write_all(base: str, token: str, batches: list[list[str]], seconds: float) -> Any:
    """Every writer POSTs its batch, one after another, until done or ``seconds`` passed."""
    samples: list[float] = []
    codes: Counter[str] = Counter()
    problems: list[str] = []
    limits = httpx.Limits(max_connections=len(batches), max_keepalive_connections=len(batches))
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
        limits=limits,
    ) as client:

        async def writer(names: list[str]) -> None:
            for name in names:
                if time.perf_counter() > deadline:
                    codes["not sent (time bound)"] += 1
                    continue
                started = time.perf_counter()
                try:
                    response = await client.post(
                        f"/api/v1/clusters/{SIM}/instances/{name}/actions",
                        json={"action": "reboot"},
                    )
                except httpx.TimeoutException:  # counted at the timeout: a miss, not a crash
                    samples.append(time.perf_counter() - started)
                    codes["timeout"] += 1
                    continue
                samples.append(time.perf_counter() - started)
                codes[str(response.status_code)] += 1
                if response.status_code != 202 and len(problems) < 5:
                    problems.append(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(writer(batch) for batch in batches))
        return samples, codes, problems, time.perf_counter() - started


def measure_writes(
    gwm: GwmServe, token: str, watch: SyncWatch, names: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    writers = args.writers
    batches = [names[i::writers] for i in range(writers)]
    log(f"writes: {len(names)} reboots by {writers} concurrent writers")
    cpu_before = gwm.cpu_seconds()
    with watch.watching() as rounds, gwm.client(token) as api:
        # A full sync of the simulator (every tier, all 10,000 instances) as the writes
        # start, so that its commits surely meet them, whatever the schedule says.
        forced = api.post(f"/api/v1/clusters/{SIM}/sync").status_code
        samples, codes, problems, wall = asyncio.run(
            _write_all(gwm.base, token, batches, args.write_seconds)
        )
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000
    return {
        "writes": len(samples),
        "writers": writers,
        "wall_seconds": round(wall, 2),
        "accepted_per_second": round(codes["202"] / wall, 1),
        "latency": {**summary(samples), "p99_ms": round(p99, 2)},
        "status_codes": dict(codes),
        "problems": problems,
        "gwm_cpu_percent_of_one_core": round(100 * (gwm.cpu_seconds() - cpu_before) / wall, 1),
        "forced_sync_status": forced,
        "sync_rounds_committed": rounds,
        "target_p99_met": p99 <= TARGET_P99_MS and set(codes) == {"202"},
    }


# -- the run ----------------------------------------------------------------------------------


def serve_and_measure(
    args: argparse.Namespace,
    host: SimHost,
    sandbox: dict[str, str] | None,
    database: BenchDatabase,
    names: slice,
    wrk: str | None,
    out: dict[str, Any],
) -> None:
    """One ``gwm serve`` on ``database``: reads (when ``wrk`` is given), then writes; the
    results go into ``out`` as they come, so a failure keeps what was measured before it."""
    out["database"] = database.describe()
    gwm = GwmServe(database.workdir / "data", database.url if database.kind != "sqlite" else "")
    try:
        with gwm:
            _serve_and_measure(args, gwm, host, sandbox, names, wrk, out)
    finally:
        out["serve_stopped"] = gwm.stopped


def _serve_and_measure(
    args: argparse.Namespace,
    gwm: GwmServe,
    host: SimHost,
    sandbox: dict[str, str] | None,
    names: slice,
    wrk: str | None,
    out: dict[str, Any],
) -> None:
    sim = host.clusters[0]
    out["serve_start_seconds"] = gwm.start_seconds
    token = gwm.admin_token()
    api = gwm.client(token)
    register_cluster(api, SIM, sim.url, sim.cert, ("gwm", "gwm"))
    if sandbox and wrk:
        register_cluster(
            api,
            SANDBOX,
            sandbox["GWM_SANDBOX_RAPI_URL"],
            sandbox["GWM_SANDBOX_CA_FILE"],
            (sandbox["GWM_SANDBOX_READ_USER"], sandbox["GWM_SANDBOX_READ_PASSWORD"]),
        )
        out["sandbox_first_sync_seconds"] = wait_synced(api, SANDBOX, None, timeout=300)
        out["sandbox_instances"] = api.get(f"/api/v1/clusters/{SANDBOX}").json()["counts"]
    out["sim_first_sync_seconds"] = wait_synced(api, SIM, args.instances, timeout=600)
    out["processes"] = gwm.processes()
    with SyncWatch(gwm.base, token) as watch:
        if wrk:
            loads = read_loads(sim, sandbox, token, gwm.base)
            out["reads"] = measure_reads(wrk, gwm, host, watch, loads, args)
            out["reads"]["targets"] = read_targets(out["reads"])
            out["all_at_once"] = measure_all_at_once(api, sim, args.instances, args.rounds)
        chosen = running_instances(api, SIM)[names]
        if len(chosen) < args.writes:
            raise RuntimeError(f"only {len(chosen)} running instances left for the writes")
        out["writes"] = measure_writes(gwm, token, watch, chosen, args)
    api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency")
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="each wrk load")
    parser.add_argument(
        "--sim-bulk-seconds",
        type=float,
        default=120.0,
        help="at least this long for 16 clients of RAPI bulk on the simulator",
    )
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 'everything at once'")
    parser.add_argument("--writes", type=int, default=800, help="writes per database (≥ 500)")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument(
        "--write-seconds",
        type=float,
        default=240.0,
        help="stop sending writes after this long (a stalled gwm must not stall the run)",
    )
    parser.add_argument(
        "--db", default="sqlite,postgres", help="reads and writes on sqlite; writes on postgres"
    )
    parser.add_argument("--no-sandbox", action="store_true", help="leave the real sandbox out")
    parser.add_argument("--writes-only", action="store_true", help="no reads on sqlite either")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if not kinds or not set(kinds) <= {"sqlite", "postgres"}:
        parser.error("--db: sqlite (reads and writes), postgres (writes), or both")
    if args.writes * len(kinds) > args.instances // 3:
        parser.error("--writes: too many for the simulator's running instances")

    wrk = ensure_wrk()
    sandbox = None if args.no_sandbox else sandbox_env()
    result: dict[str, Any] = {
        "machine": machine_info(),
        "database": "",
        "instances": args.instances,
        "nodes": args.nodes,
        "seconds_per_load": args.seconds,
        "sandbox": bool(sandbox),
    }
    if not args.no_sandbox and not sandbox:
        result["sandbox_skipped"] = "no .sandbox/ganeti.env: run scripts/ganeti-sandbox up"
    workdir = Path(tempfile.mkdtemp(prefix="gwm-bench-conc-"))
    try:
        with SimHost(1, args.nodes, args.instances, max_seconds=3600) as host:
            result["simulator_start_seconds"] = host.start_seconds
            for number, kind in enumerate(kinds):
                database = BenchDatabase(kind, workdir / kind)
                database.workdir.mkdir(parents=True)
                # Distinct instances for each database's writes: the jobs of one
                # still run on the simulator while the next writes.
                names = slice(number * args.writes, (number + 1) * args.writes)
                result[kind] = out = {"database": kind}
                try:
                    database.create()
                    serve_and_measure(
                        args,
                        host,
                        sandbox,
                        database,
                        names,
                        wrk if kind == "sqlite" and not args.writes_only else None,
                        out,
                    )
                except Exception as exc:  # keep what was measured
                    log(f"{kind}: failed: {exc!r}")
                    out["failed"] = repr(exc)
                finally:
                    database.drop()
        result["database"] = "; ".join(result[k]["database"] for k in kinds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_result(args.json, "concurrency", result)
    print("\n".join(concurrency_section(result)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
