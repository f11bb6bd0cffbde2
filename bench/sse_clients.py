"""The clients of bench.sse_fanout: one process holding COUNT streams of gwm's change feed.

    python -m bench.sse_clients URL COUNT TOKENS_FILE OFFSET

asyncio and raw sockets (HTTP/1.1, chunked), so that thousands of streams cost
a client process little. Stream ``i`` uses token ``(OFFSET + i) % len(tokens)``.
Prints ``{"ready": n}`` once every stream has its first heartbeat; then, when
its stdin is closed, one JSON line: every event's latency (arrival here minus
the event's ``time``), events per stream, control events, errors.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

STREAM_PATH = "/api/v1/changes/stream?types=cluster.updated"
#: Connections a client process opens at once while ramping up.
CONNECT_AT_ONCE = 64


def raise_fd_limit() -> int:
    """``ulimit -n`` up to the hard limit (children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


def main() -> None:
    raise_fd_limit()
    url, count, tokens_file, offset = sys.argv[1:5]
    tokens = json.loads(Path(tokens_file).read_text())
    asyncio.run(client_main(url, int(count), tokens, int(offset)))


if __name__ == "__main__":
    main()
