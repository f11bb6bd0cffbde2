"""Run every benchmark, each in its own process, and append the results to BENCHMARKS.md.

    bench/run                      # the whole suite (≈ 30 min), appended to BENCHMARKS.md
    bench/run --quick              # small sizes, a couple of minutes, printed only
    bench/run --parts list,fast    # some parts: list, pg, sandbox, fast, steady, apply, concurrency
    bench/run --source head        # benchmark git HEAD instead of the working tree

The code is copied to a temporary directory when the run starts (the
working tree's ``gwm/`` by default, or ``git archive HEAD gwm`` with
``--source head``; ``bench/`` always from the working tree) and every part
runs from that copy, so that edits made in the checkout while a run goes on
cannot break it or mix two versions into one section.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, code_version, log
from bench.report import render

PARTS = ("list", "pg", "sandbox", "fast", "steady", "apply", "concurrency", "freshness", "scale")
#: Parts run only when asked for (--parts): (b) without the A/B what-if rounds.
EXTRA_PARTS = ("fast-plain", "failover", "distributed")
WHAT_IF = "client-cache"
HEADER = """# gwm benchmarks

Written by `bench/run` (see `bench/README.md`); every run appends one section
with its date, the machine, the code it ran and the exact command. These
machines have 2 cores and are shared, so compare numbers within one section.

"""


def plan(args: argparse.Namespace, out: Path) -> list[tuple[str, list[str], float]]:
    """(name, argv, timeout seconds) of each part."""
    quick = args.quick
    list_args = ["--instances", "2000", "--nodes", "20", "--rounds", "4", "--seconds", "20"]
    if not quick:
        list_args = ["--instances", "10000", "--nodes", "100", "--rounds", "15", "--seconds", "90"]
    fast_args = [
        "--clusters",
        "10" if quick else "100",
        "--instances",
        "1000",
        "--nodes",
        "25",
        "--threads",
        "8",
        "--rounds",
        "2" if quick else "3",
    ]
    steady_seconds = 30 if quick else args.steady_seconds
    sizes = (
        ["--size", "200:4", "--size", "2000:20"]
        if quick
        else ["--size", "1000:25", "--size", "10000:100"]
    )
    concurrency_args = ["--instances", "10000", "--nodes", "100"]
    concurrency_args += ["--seconds", str(args.load_seconds)]
    if quick:
        concurrency_args = ["--instances", "2000", "--nodes", "20", "--seconds", "5"]
        concurrency_args += ["--rounds", "3", "--writes", "200", "--sim-bulk-seconds", "30"]
    freshness_args = ["--minutes", "2", "--skip-sandbox"] if quick else ["--minutes", "10"]
    scale_args = (
        ["--clusters", "10", "--instances", "200", "--nodes", "5", "--minutes", "1"]
        if quick
        else ["--minutes", "10"]
    )
    parts = {
        "freshness": ("freshness", freshness_args, 1800.0),
        "distributed": (
            "distributed",
            [
                *("--instances", "2000", "--nodes", "20", "--seconds", "5", "--rounds", "1"),
                *("--writes", "100", "--steady-seconds", "20"),
            ]
            if quick
            else [],
            1800.0,
        ),
        "failover": (
            "failover",
            ["--kills", "2" if quick else "10", "--job-kills", "1" if quick else "5"],
            1800.0,
        ),
        "scale": ("sync_scale", scale_args, 2700.0),
        "list": ("list_api", [*list_args, "--db", "sqlite"], 900.0),
        "concurrency": ("concurrency", concurrency_args, 1800.0 + 10 * args.load_seconds),
        "pg": ("list_api", [*list_args, "--db", "postgres"], 900.0),
        "sandbox": ("sandbox", ["--create", "5", "--rounds", "20"], 300.0),
        "fast": (
            "fast_round",
            [*fast_args, "--db", "sqlite", "--what-if", WHAT_IF, "--compare"],
            1200.0,
        ),
        "fast-plain": ("fast_round", [*fast_args, "--db", "sqlite"], 1200.0),
        "steady": (
            "steady",
            [*sizes, "--seconds", str(steady_seconds), "--db", "sqlite"],
            steady_seconds + 900.0,
        ),
    }
    apply_size = (
        ["--instances", "2000", "--nodes", "20"]
        if quick
        else ["--instances", "10000", "--nodes", "100"]
    )
    chosen = []
    for number, part in enumerate(args.parts):
        if part == "apply":  # the cache's write of one round, at the size of the run
            target = out / f"{number:02d}-apply.json"
            argv = [PYTHON, "-m", "bench.sync_apply", *apply_size, "--json", str(target)]
            chosen.append(("apply", argv, 600.0))
            continue
        module, argv, timeout = parts[part]
        target = out / f"{number:02d}-{part}.json"
        chosen.append(
            (part, [PYTHON, "-m", f"bench.{module}", *argv, "--json", str(target)], timeout)
        )
    return chosen


def snapshot(source: str) -> tuple[Path, str]:
    """``gwm/`` (working tree or git HEAD) plus this checkout's ``bench/``, in a temp dir."""
    described = code_version()
    target = Path(tempfile.mkdtemp(prefix="gwm-bench-src-"))
    ignore = shutil.ignore_patterns("__pycache__")
    if source == "head":
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "archive", "HEAD", "gwm"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
        described = f"git HEAD {commit}"
    else:
        shutil.copytree(ROOT / "gwm", target / "gwm", ignore=ignore)
    shutil.copytree(ROOT / "bench", target / "bench", ignore=ignore)
    return target, f"{described} (copied when the run started)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run")
    parser.add_argument("--quick", action="store_true", help="small sizes; not written by default")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, from {','.join(PARTS + EXTRA_PARTS)}",
    )
    parser.add_argument("--source", choices=["worktree", "head"], default="worktree")
    parser.add_argument("--steady-seconds", type=float, default=240.0)
    parser.add_argument(
        "--load-seconds", type=float, default=30.0, help="each wrk load of the concurrency part"
    )
    parser.add_argument("--write", dest="write", action="store_true", default=None)
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS + EXTRA_PARTS]
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PARTS + EXTRA_PARTS}")
    write = args.write if args.write is not None else not args.quick
    command = "bench/run" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))

    out = Path(tempfile.mkdtemp(prefix="gwm-bench-run-"))
    env = dict(os.environ, GWM_BENCH_REPO=str(ROOT))
    source_dir, described = snapshot(args.source)
    cwd = source_dir
    env["GWM_BENCH_CODE"] = described
    env["PYTHONPATH"] = str(cwd)
    failures = []
    started = time.monotonic()
    try:
        for part, cmd, timeout in plan(args, out):
            log(f"part {part}: {' '.join(cmd[1:])}")
            part_started = time.monotonic()
            try:
                done = subprocess.run(
                    cmd, cwd=cwd, env=env, timeout=timeout, stdout=subprocess.DEVNULL
                )
                code = str(done.returncode)
            except subprocess.TimeoutExpired:
                code = "timeout"
            log(f"part {part}: exit {code} after {time.monotonic() - part_started:.0f} s")
            if code != "0":
                failures.append(f"{part} (exit {code})")
        text = render(out, command, env["GWM_BENCH_CODE"])
        if failures:
            text += f"Parts that failed in this run: {', '.join(failures)}.\n\n"
        text += f"Whole run: {time.monotonic() - started:.0f} s.\n\n"
        print(text)
        if write:
            target = ROOT / "BENCHMARKS.md"
            if not target.exists():
                target.write_text(HEADER)
            with target.open("a") as fh:
                fh.write(text)
            log(f"appended to {target}; raw results in {out}")
    finally:
        shutil.rmtree(source_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
