"""wrk, the HTTP load generator, as bench.concurrency drives it.

wrk runs in its own process (its C event loop does not share a core's worth
of Python with what it measures) with ``bench/wrk_report.lua``, which adds
the Authorization header and prints one JSON line with the counts and the
latency percentiles at the end of the run.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import log

LUA_SCRIPT = Path(__file__).with_name("wrk_report.lua")


def ensure_wrk() -> str:
    """The path of ``wrk``, installing the Debian package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is not installed; the concurrency part needs it: running `apt-get install -y wrk`")
    subprocess.run(
        ["apt-get", "install", "-y", "wrk"],
        stdout=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "wrk is missing and `apt-get install -y wrk` did not install it: "
            "install wrk (https://github.com/wg/wrk) and run again"
        )
    return found


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def run_wrk(
    wrk: str, url: str, *, authorization: str, connections: int, seconds: float
) -> dict[str, Any]:
    """One wrk run against ``url``: good responses per second, latency percentiles, errors.

    Two threads (one per core) when there are at least two connections; a
    response with a status of 400 or more is an error, not a good response.
    """
    threads = 2 if connections >= 2 else 1
    command = [
        wrk,
        f"-c{connections}",
        f"-t{threads}",
        f"-d{seconds:g}s",
        "--timeout",
        "120s",  # RAPI bulk on 10,000 instances under 16 clients takes most of a minute
        "-s",
        str(LUA_SCRIPT),
        url,
    ]
    done = subprocess.run(
        command,
        env=dict(os.environ, WRK_AUTHORIZATION=authorization),
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")]
    if not lines:
        raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stderr[-500:]}")
    raw = json.loads(lines[-1].removeprefix("WRK_JSON "))
    errors = raw["errors"]
    good = raw["requests"] - errors["status"]
    seconds_run = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(seconds_run, 2),
        "requests": raw["requests"],
        "requests_per_second": round(good / seconds_run, 1),
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p90_ms": round(latency["p90"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "mean_ms": round(latency["mean"] / 1000, 2),
        "megabytes_per_second": round(raw["bytes"] / seconds_run / 1e6, 2),
        "errors": {k: v for k, v in errors.items() if v},
    }
