"""Issue 10: N live streams (GET /api/v1/changes/stream) on ONE gwm API process.

One ``gwm serve`` process (uvicorn, embedded workers, SQLite or PostgreSQL)
serves every stream. The clients are other processes (``--procs``), each
holding its share of the connections with asyncio and raw sockets (HTTP/1.1,
chunked), so the clients' own Python work stays out of the measured process.
Clients use ``--tokens`` distinct viewer tokens (users with a global viewer
binding), round-robin, so the server's per-caller state is not one shared
object.

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
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
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

STREAM_PATH = "/api/v1/changes/stream?types=cluster.updated"
#: Connections a client process opens at once while ramping up.
CONNECT_AT_ONCE = 64


def raise_fd_limit() -> int:
    """``ulimit -n`` up to the hard limit (children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- the clients (python -m bench.sse_fanout --client ...) -------------------------------


class Client:
    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.latencies: list[float] = []
        self.seqs: list[int] = []
        self.control: list[str] = []
        self.error = ""


def _frame(client: Client, frame: bytes, now: float) -> None:
    if frame.startswith(b":"):
        client.connected.set()
        return
    if frame.startswith(b"event:"):  # a control event (no id): overflow, revoked, ...
        client.control.append(frame.split(b"\n", 1)[0][6:].strip().decode())
        return
    if not frame.startswith(b"id:"):
        return
    start = frame.find(b'"time":"') + 8
    stamp = frame[start : frame.find(b'"', start)].decode()
    client.latencies.append(now - datetime.fromisoformat(stamp).timestamp())
    client.seqs.append(int(frame[3 : frame.find(b"\n")]))


async def _follow(
    client: Client, host: str, port: int, token: str, gate: asyncio.Semaphore
) -> None:
    request = (
        f"GET {STREAM_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    async with gate:
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            client.error = f"connect: {type(exc).__name__}: {exc}"
            client.connected.set()
            return
        if b" 200 " not in head.split(b"\r\n", 1)[0] or b"chunked" not in head.lower():
            client.error = head.split(b"\r\n", 1)[0].decode()
            client.connected.set()
            return
        buffer = b""
        try:
            while not client.connected.is_set():
                buffer = await _chunk(client, reader, buffer)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            client.error = f"before the first heartbeat: {exc!r}"
            client.connected.set()
            return
    try:
        while True:
            buffer = await _chunk(client, reader, buffer)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        client.error = client.error or f"stream ended: {type(exc).__name__}"
    finally:
        writer.close()


async def _chunk(client: Client, reader: asyncio.StreamReader, buffer: bytes) -> bytes:
    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
    if size == 0:
        raise ValueError("the server ended the stream")
    data = await reader.readexactly(size + 2)
    now = time.time()
    buffer += data[:-2]
    while b"\n\n" in buffer:
        frame, buffer = buffer.split(b"\n\n", 1)
        _frame(client, frame, now)
    return buffer


async def client_main(url: str, count: int, tokens: list[str], offset: int) -> None:
    host, port = url.removeprefix("http://").split(":")
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    clients = [Client() for _ in range(count)]
    tasks = [
        asyncio.ensure_future(
            _follow(client, host, int(port), tokens[(offset + index) % len(tokens)], gate)
        )
        for index, client in enumerate(clients)
    ]
    await asyncio.gather(*(client.connected.wait() for client in clients))
    print(json.dumps({"ready": sum(not c.error for c in clients)}), flush=True)
    # Until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()
    errors = Counter(client.error.split(":")[0] for client in clients if client.error)
    result = {
        "latencies": [round(x, 5) for c in clients for x in c.latencies],
        "events_per_client": Counter(len(c.seqs) for c in clients),
        "out_of_order": sum(c.seqs != sorted(c.seqs) for c in clients),
        "control": Counter(name for c in clients for name in c.control),
        "errors": errors,
        "first_error": next((c.error for c in clients if c.error), ""),
    }
    print(json.dumps(result), flush=True)


# -- the parent --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gwm(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``gwm serve`` (uvicorn + embedded workers), as an operator runs it."""
    port = _free_port()
    gwm = str(Path(PYTHON).parent / "gwm")
    proc = subprocess.Popen(
        [gwm, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
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


def run_size(args: argparse.Namespace, env: dict[str, str], tokens_file: str, n: int) -> Any:
    proc, base = start_gwm(env)
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
                    "bench.sse_fanout",
                    "--client",
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
            n, ready, connect_seconds, idle, open_memory, after, write_ms, results, args
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _summary(
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
        "clients": n,
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
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        raise_fd_limit()
        url, count, tokens_file, offset = sys.argv[2:6]
        tokens = json.loads(Path(tokens_file).read_text())
        asyncio.run(client_main(url, int(count), tokens, int(offset)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, action="append", help="repeatable; 1000, 10000")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the last one")
    parser.add_argument("--tokens", type=int, default=100, help="distinct viewer tokens")
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    parser.add_argument("--json")
    args = parser.parse_args()
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
                log(f"{n} streams on one gwm serve process ({db.kind})")
                runs.append(run_size(args, env, handle.name, n))
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
