"""Issue 10: N live streams (GET /api/v1/changes/stream) on ONE gwm API process.

One ``gwm serve`` process (uvicorn, embedded workers, SQLite or PostgreSQL)
serves every stream. The clients are other processes (``--procs``), each
holding its share of the connections with asyncio and raw sockets (HTTP/1.1,
chunked), so the clients' own Python work stays out of the measured process.
Clients use ``--tokens`` distinct viewer tokens (users with a global viewer
binding), round-robin, so the server's per-caller state is not one shared
object.

Options: ``--variant what-if`` serves with a proposed change (:func:`serve_what_if`).

Once every client has its first heartbeat, gwm makes ``--events`` changes,
``--interval`` seconds apart (``PATCH /api/v1/clusters/{c}`` of the
description: a ``cluster.updated`` event each, written in the API process
like every write; the cluster is a small simulator in its own process, so
the embedded sync finds nothing else to report). Measured:

- latency of every (client, event): its arrival at the client minus the
  event's ``time`` (when gwm wrote the change, in the transaction that
  committed it; one clock, one machine): p50, p99, max;
- events each client got (a missed one shows as fewer than ``--events``);
- the API process's RSS (``/proc/PID/status`` VmRSS) idle, with every stream
  open, and its peak (VmHWM) after the events.

Targets: 10,000 clients on one process, RSS ≤ 1 GiB, p99 ≤ 200 ms.

    python -m bench.sse_fanout --clients 1000 --clients 10000 --json /tmp/sse.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    SimHost,
    admin_token,
    bench_django,
    log,
    machine_info,
    register,
    server_env,
    write_result,
)
from bench.sse_clients import raise_fd_limit


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gwm(env: dict[str, str], what_if: bool) -> tuple[subprocess.Popen[bytes], str]:
    """``gwm serve`` (uvicorn + embedded workers), as an operator runs it; with ``what_if``
    the same command run by :func:`serve_what_if`."""
    port = _free_port()
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]
    if what_if:
        command = [PYTHON, "-m", "bench.sse_fanout", "--serve-what-if", *serve]
    else:
        command = [str(Path(PYTHON).parent / "gwm"), *serve]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gwm serve did not start")


def stop_gwm(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM; uvicorn waits for open streams to end, so SIGKILL after a while."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def serve_what_if(argv: list[str]) -> None:
    """``gwm serve`` with the proposed change of gwm.events.stream: a stream gives back the
    thread Django's ASGI handler keeps for each request.

    Django runs every request in an asgiref ``ThreadSensitiveContext``, and the first
    thread-sensitive call in it (the middleware, authentication) makes a one-thread
    executor that lives until the request ends: for a stream, for hours, one OS thread
    per open stream. Once the stream has made its last thread-sensitive call (its
    first frame: gwm.events.stream.session closes the request's DB connection before
    it), the executor is dropped; a later thread-sensitive call would make a new one.
    """
    from gwm.startup import django_setup

    django_setup()
    from asgiref.sync import SyncToAsync

    import gwm.events.stream as stream
    from gwm.server_cli import app

    original = stream.stream_of  # type: ignore[attr-defined]

    async def stream_of(*args: Any) -> Any:
        released = False
        async for chunk in original(*args):
            yield chunk
            if not released:
                released = True
                context = SyncToAsync.thread_sensitive_context.get(None)
                executor = SyncToAsync.context_to_thread_executor.pop(context, None)  # type: ignore[arg-type]
                if executor is not None:
                    executor.shutdown(wait=False)

    stream.stream_of = stream_of  # type: ignore[attr-defined,assignment]
    app(argv)


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of a process, MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def viewer_tokens(count: int) -> list[str]:
    from django.contrib.auth.models import User

    from gwm.accounts.models import Role, RoleBinding
    from gwm.accounts.services.tokens import token_create

    viewer = Role.objects.get(name="viewer")
    tokens = []
    for index in range(count):
        user = User.objects.create_user(f"streamer{index}", password="bench-password-1")
        RoleBinding.objects.create(role=viewer, user=user, scope="global")
        tokens.append(token_create(actor=None, user=user, name="bench")[1])
    return tokens


def run_size(
    args: argparse.Namespace, env: dict[str, str], tokens_file: str, n: int, what_if: bool
) -> Any:
    proc, base = start_gwm(env, what_if)
    try:
        idle = memory_of(proc.pid)
        procs = max(1, min(args.procs, n // 50 or 1))
        share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        started = time.monotonic()
        clients = [
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "bench.sse_clients",
                    base,
                    str(count),
                    tokens_file,
                    str(sum(share[:i])),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, count in enumerate(share)
        ]
        ready = sum(json.loads(c.stdout.readline() or '{"ready": 0}')["ready"] for c in clients)  # type: ignore[union-attr]
        connect_seconds = time.monotonic() - started
        log(f"{n} clients: {ready} streams open after {connect_seconds:.1f} s")
        time.sleep(2.0)  # let the connection storm settle before measuring
        open_memory = memory_of(proc.pid)
        threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        admin = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {args.admin_token}"}, timeout=60
        )
        write_ms = []
        for index in range(args.events):
            t0 = time.perf_counter()
            answer = admin.patch(
                "/api/v1/clusters/bench", json={"description": f"bench {n} {index}"}
            )
            write_ms.append((time.perf_counter() - t0) * 1000)
            answer.raise_for_status()
            time.sleep(args.interval)
        time.sleep(args.settle)
        after = memory_of(proc.pid)
        results = []
        for client in clients:
            client.stdin.close()  # type: ignore[union-attr]
            results.append(json.loads(client.stdout.readline()))  # type: ignore[union-attr]
            client.wait(timeout=60)
        return _summary(
            what_if, threads, n, ready, connect_seconds, idle, open_memory, after, write_ms,
            results, args,
        )  # fmt: skip
    finally:
        stop_gwm(proc)


def _summary(
    what_if: bool,
    threads: int,
    n: int, ready: int, connect: float, idle: dict[str, float], opened: dict[str, float],
    after: dict[str, float], write_ms: list[float], results: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    latencies = sorted(x for r in results for x in r["latencies"])
    per_client: Counter[str] = Counter()
    for r in results:
        per_client.update(r["events_per_client"])
    expected = n * args.events
    return {
        "variant": "what-if" if what_if else "stock",
        "clients": n,
        "server_threads": threads,
        "streams_open": ready,
        "connect_seconds": round(connect, 1),
        "rss_mib": {"idle": idle["VmRSS"], "open": opened["VmRSS"], "peak": after["VmHWM"]},
        "rss_per_stream_kib": round((opened["VmRSS"] - idle["VmRSS"]) * 1024 / max(ready, 1), 1),
        "received": len(latencies),
        "expected": expected,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
            "max": round(latencies[-1] * 1000, 1) if latencies else None,
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "write_ms_p50": round(statistics.median(write_ms), 1),
        "events_per_client": dict(sorted(per_client.items())),
        "out_of_order_clients": sum(r["out_of_order"] for r in results),
        "control_events": dict(sum((Counter(r["control"]) for r in results), Counter())),
        "errors": dict(sum((Counter(r["errors"]) for r in results), Counter())),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), ""),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-what-if":
        serve_what_if(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, action="append", help="repeatable; 1000, 10000")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the last one")
    parser.add_argument("--tokens", type=int, default=100, help="distinct viewer tokens")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument(
        "--variant",
        choices=["stock", "what-if", "both"],
        default="stock",
        help="what-if: a stream gives back its request's thread (serve_what_if)",
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    variants = {"stock": [False], "what-if": [True], "both": [False, True]}[args.variant]
    sizes = args.clients or [1000]
    limit = raise_fd_limit()
    if max(sizes) + 1000 > limit:
        parser.error(f"ulimit -n is {limit} (hard): too few for {max(sizes)} streams")

    with bench_django(args.db) as db, SimHost(1, 2, 10) as host:
        from gwm.sync.rounds import run_due_tiers

        run_due_tiers(register("bench", host.clusters[0]).pk, force=True)
        args.admin_token = admin_token()
        tokens = viewer_tokens(args.tokens)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(tokens, handle)
        env = server_env(db)
        env["GWM_WEBHOOK_ALLOWED_NETWORKS"] = ""
        from django.db import connections

        connections.close_all()
        runs = []
        try:
            for n in sizes:
                for what_if in variants:
                    log(f"{n} streams on one gwm serve process ({db.kind}, what-if={what_if})")
                    runs.append(run_size(args, env, handle.name, n, what_if))
                    log(json.dumps(runs[-1]))
        finally:
            os.unlink(handle.name)
        write_result(
            args.json,
            "sse_fanout",
            {
                "machine": machine_info(),
                "database": db.describe(),
                "fd_limit": limit,
                "events": args.events,
                "interval_s": args.interval,
                "tokens": args.tokens,
                "client_processes": args.procs,
                "runs": runs,
            },
        )


if __name__ == "__main__":
    main()
