"""Render a run's JSON results as one Markdown section for BENCHMARKS.md.

python -m bench.report RUN_DIR --command "bench/run" [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TARGET_LIST_P50_MS = 20.0
TARGET_RATIO = 100.0
TARGET_FAST_ROUND_S = 5.0
TARGET_REQ_PER_S = 1.0
TARGET_CORE_PERCENT = 5.0


def _ok(passed: bool) -> str:
    return "**met**" if passed else "**MISSED**"


def _ms(part: dict[str, Any] | None) -> str:
    if not part or not part.get("n"):
        return "-"
    return f"{part['p50_ms']:g} / {part['p95_ms']:g}"


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"


def list_section(results: list[dict[str, Any]]) -> list[str]:
    first = results[0]
    lines = [
        f"### (a) `GET /api/v1/instances?fields=name,status` vs RAPI `/2/instances?bulk=1`, "
        f"{first['instances']:,} instances ({first['nodes']} nodes)",
        "",
        "gwm: server time in-process (Django test Client: middleware, auth, query, JSON, "
        "ETag) and end to end over HTTP (uvicorn serving `gwm.asgi`, as `gwm serve` does, "
        "httpx keep-alive). RAPI: the simulator at the same size, time scale 1, end to end "
        "over HTTPS to the last byte; *cost model* is the master time the simulator charged. "
        "gwm and RAPI requests interleave in every round. Milliseconds, p50 / p95.",
        "",
    ]
    header = "| request |"
    rule = "|---|"
    for r in results:
        header += f" {r['db_label']} in-process | {r['db_label']} over HTTP |"
        rule += "---|---|"
    lines += [header, rule]
    rows = [
        ("`limit=100` (one page)", "limit_100"),
        ("`limit=1000` (one page)", "limit_1000"),
        ("walk all with the cursor, `limit=1000` (10 pages)", "walk_1000"),
        ("walk all with the cursor, `limit=100` (100 pages)", "walk_100"),
        ("RAPI `GET /2/instances?bulk=1`, end to end", "rapi_bulk"),
        ("RAPI bulk, cost model charge", "rapi_bulk_cost_model"),
    ]
    for label, key in rows:
        line = f"| {label} |"
        for r in results:
            line += f" {_ms(r.get('in_process', {}).get(key))} |"
            line += f" {_ms(r.get('over_http', {}).get(key))} |"
        lines.append(line)
    line = "| RAPI bulk p50 ÷ gwm `limit=100` p50 |"
    for r in results:
        ratios = r.get("ratios", {})
        line += f" {ratios.get('in_process.limit_100', '-')}x | {ratios.get('over_http.limit_100', '-')}x |"  # noqa: E501
    lines.append(line)
    line = "| RAPI bulk p50 ÷ gwm walk of all (`limit=1000`) p50 |"
    for r in results:
        ratios = r.get("ratios", {})
        line += f" {ratios.get('in_process.walk_1000', '-')}x | {ratios.get('over_http.walk_1000', '-')}x |"  # noqa: E501
    lines.append(line)
    lines.append("")
    for r in results:
        imp = r["initial_import"]
        q = r.get("queries_per_page", {})
        rapi = r["in_process"].get("rapi_bulk", {})
        lines.append(
            f"- {r['db_label']} ({r['database']}): initial import of {imp['instances']:,} "
            f"instances (`run_due_tiers(force=True)`: {' + '.join(imp['tiers'])}) took "
            f"**{imp['seconds']} s**, of which RAPI {imp['rapi_wall_seconds']:.2f} s wall "
            f"({imp['rapi_requests']} requests, {imp['rapi_cost_seconds']:.2f} s cost model); "
            f"SQL queries per list request: {q.get('limit_100', '?')} (`limit=100`), "
            f"{q.get('limit_1000', '?')} (`limit=1000`); RAPI bulk body "
            f"{rapi.get('bytes', 0) / 1e6:.1f} MB; {r['in_process']['rounds']} + "
            f"{r.get('over_http', {}).get('rounds', 0)} interleaved rounds."
        )
    lines.append("")
    for r in results:
        p50 = r["in_process"]["limit_100"]["p50_ms"]
        p50_1000 = r["in_process"]["limit_1000"]["p50_ms"]
        ratio = r.get("ratios", {}).get("in_process.limit_100", 0)
        lines.append(
            f"- Targets, {r['db_label']}: list ≤ {TARGET_LIST_P50_MS:g} ms p50 server time: "
            f"{_ok(p50 <= TARGET_LIST_P50_MS)} ({p50:g} ms at `limit=100`, {p50_1000:g} ms at "
            f"`limit=1000`, {_ok(p50_1000 <= TARGET_LIST_P50_MS)}); ≥ {TARGET_RATIO:g}x faster "
            f"than RAPI bulk at equal size: {_ok(ratio >= TARGET_RATIO)} ({ratio}x for a "
            f"`limit=100` page; a walk over all {r['instances']:,} is "
            f"{r.get('ratios', {}).get('in_process.walk_1000', '?')}x)."
        )
    lines.append("")
    return lines


def sandbox_section(r: dict[str, Any]) -> list[str]:
    lines = ["### (a) against the real Ganeti 3.0 sandbox", ""]
    if r.get("skipped"):
        return [*lines, f"Skipped: {r['skipped']}", ""]
    lines += [
        f"The sandbox (1 node, fake hypervisor) held {r['instances']} instances when gwm "
        f"synced it ({r['sync_seconds']} s), {len(r.get('created', []))} of them diskless ones "
        f"the bench created through RAPI ({r.get('create_seconds')} s) and deleted afterwards "
        f"(left behind: {r.get('left_behind') or 'none'}); any others belong to other users "
        "of the shared sandbox. Milliseconds, p50 / p95:",
        "",
        "| request | p50 / p95 |",
        "|---|---|",
        f"| gwm `GET /api/v1/instances?fields=name,status` (in-process, {r['gwm_items']} items) "
        f"| {_ms(r['gwm_list_in_process'])} |",
        f"| real RAPI `GET /2/instances?bulk=1` ({r['rapi_items']} instances, through the "
        f"loopback bridge) | {_ms(r['real_rapi_bulk'])} |",
        f"| simulator RAPI bulk, same size, 1 node, time scale 1 | "
        f"{_ms(r['simulator_rapi_bulk_same_size'])} |",
        "",
        f"Real RAPI bulk ÷ gwm: **{r['ratio_real_rapi_to_gwm_p50']}x** at this size (RAPI's "
        "fixed ≈ 95 ms runtime-query cost dominates small clusters; it grows by ≈ 0.08 ms per "
        "instance). The simulator's cost model matches the real cluster within "
        f"{abs(r['simulator_rapi_bulk_same_size']['p50_ms'] - r['real_rapi_bulk']['p50_ms']):.0f} ms "  # noqa: E501
        "here.",
        "",
    ]
    return lines


def fast_section(r: dict[str, Any]) -> list[str]:
    full = r["initial_full_sync"]
    compare = r.get("compare")
    title = (
        f"### (b) One worker, {r['clusters']} simulated clusters x "
        f"{r['instances_per_cluster']:,} instances ({r['nodes_per_cluster']} nodes each), "
        f"{r['threads']} threads, {r['db_label']}"
    )
    if r.get("what_if") and not compare:
        title += f", WHAT-IF: {', '.join(r['what_if'])} (bench/whatif.py)"
    lines = [
        title,
        "",
        f"{r['clusters']} simulators (time scale 1) in one separate process; this process "
        f"runs the real task body `sync_cluster` on a pool of {r['threads']} threads, as one "
        "Celery worker with a thread pool would. A round makes one tier due on every cluster "
        "and runs them all; its time is from the first task started to the last one done.",
    ]
    if compare:
        lines.append(
            "Every measured round runs twice, alternating: *stock* (gwm as it is) and "
            f"*what-if* (with {', '.join(r['what_if'])} from `bench/whatif.py`, the proposed "
            "changes, applied in this process only). The initial sync is stock."
            + (
                f" Already in gwm, so not patched: {', '.join(r['what_if_adopted_by_gwm'])}."
                if r.get("what_if_adopted_by_gwm")
                else ""
            )
        )
    lines += [
        "",
        "| round | wall | per cluster p50 / p95 (ms) | worker CPU | simulators' CPU "
        "| RAPI requests per cluster | RAPI cost per cluster | failed tasks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    retry = full.get("retry")
    failed = str(full.get("failed_tasks", 0))
    if retry:
        failed += (
            f" ({', '.join(full['task_errors'])}; retried one at a time: "
            f"{retry['wall_seconds']} s more, {retry['failed_tasks']} failed)"
        )
    named = [("initial full sync (slow + runtime, forced)", full, False)]
    rounds = r["fast_rounds"]
    runtime_rounds = r.get("runtime_rounds") or (
        [r["runtime_round"]] if r.get("runtime_round") else []
    )
    for number, rnd in enumerate(rounds):
        label = f"fast round {number // (2 if compare else 1) + 1}"
        named.append((label + (f" ({rnd['variant']})" if compare else ""), rnd, True))
    for rnd in runtime_rounds:
        label = "runtime sweep of every cluster"
        named.append((label + (f" ({rnd['variant']})" if compare else ""), rnd, False))
    for label, rnd, bold in named:
        wall = f"**{rnd['wall_seconds']} s**" if bold else f"{rnd['wall_seconds']} s"
        sim_cpu = rnd.get("simulator_cpu_seconds")
        fails = failed if rnd is full else str(rnd.get("failed_tasks", 0))
        lines.append(
            f"| {label} | {wall} | {_ms(rnd['per_cluster'])} | {rnd['worker_cpu_seconds']} s | "
            f"{'-' if sim_cpu is None else f'{sim_cpu} s'} | {rnd['rapi_requests_per_cluster']} | "
            f"{rnd['rapi_cost_seconds_per_cluster']} s | {fails} |"
        )
    medians = r["fast_round_seconds_median"]
    if not isinstance(medians, dict):
        medians = {"stock": medians}
    all_synced = all(x["synced"] == r["clusters"] for x in rounds)
    lines.append("")
    for variant, median in medians.items():
        lines.append(
            f"- Target: fast round ≤ {TARGET_FAST_ROUND_S:g} s, {variant}: "
            f"{_ok(median <= TARGET_FAST_ROUND_S)} (median {median} s)."
        )
    lines += [
        f"- Every cluster synced in every fast round: {all_synced}. "
        f"{full['instances_cached']:,} instances cached; registering {r['clusters']} "
        f"clusters (one RAPI probe each) took {r['register_seconds']} s; the simulators "
        f"started in {r['simulators_start_seconds']} s.",
        "",
    ]
    return lines


def steady_section(r: dict[str, Any]) -> list[str]:
    scale = r["interval_scale"]
    iv = r["intervals"]
    lines = [
        f"### (c) Steady-state RAPI load per cluster, real scheduler, {r['db_label']}"
        + (f", WHAT-IF: {', '.join(r['what_if'])} (bench/whatif.py)" if r.get("what_if") else ""),
        "",
        f"The embedded worker (`start_embedded_workers`, {r['concurrency']} threads, beat "
        f"ringing `dispatch_due_syncs` every second) ran every cluster for "
        f"{r['seconds']:.0f} s after its first full sync (which took {r['first_sync_seconds']} s "
        f"for all); intervals fast {iv['fast_interval']:g} s / runtime ≥ "
        f"{iv['runtime_interval']:g} s / slow {iv['slow_interval']:g} s"
        + (
            f" (defaults ÷ {scale:g}; per-minute figures scaled back)"
            if scale != 1
            else " (the defaults; nothing scaled)"
        )
        + ". One simulator per cluster, time scale 1; its counters give requests and cost.",
        "",
        "| instances (nodes) | RAPI req/min | req/s | cost s/min | % of one master core "
        "| rounds fast / runtime / slow | mean interval fast / runtime / slow (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in r["clusters"]:
        rounds = c["rounds"]
        gaps = c["mean_interval_seconds"]
        lines.append(
            f"| {c['instances']:,} ({c['nodes']}) | {c['requests_per_minute']} | "
            f"{c['requests_per_second']} | {c['cost_seconds_per_minute']} | "
            f"**{c['master_core_percent']} %** | {rounds['fast']} / {rounds['runtime']} / "
            f"{rounds['slow']} | {gaps['fast'] or '-'} / {gaps['runtime'] or '-'} / "
            f"{gaps['slow'] or '-'} |"
        )
    lines.append("")
    for c in r["clusters"]:
        routes = ", ".join(
            f"`{k}` {v['count']} ({v['cost_seconds']:.2f} s)" for k, v in c["routes"].items()
        )
        costs = c.get("runtime_cost_seconds_seen") or []
        lines.append(
            f"- {c['instances']:,} instances: {routes}; statuses {c['by_status']}; "
            f"runtime sweep time gwm measured (`Cluster.runtime_cost`): "
            f"{', '.join(f'{x:g}' for x in costs[:6]) or '-'} s"
            + (f"; errors: {c['errors']}" if c["errors"] else "")
            + "."
        )
    ok_req = all(c["requests_per_second"] <= TARGET_REQ_PER_S for c in r["clusters"])
    ok_cost = all(c["master_core_percent"] <= TARGET_CORE_PERCENT for c in r["clusters"])
    lines += [
        "",
        f"- Targets: ≤ {TARGET_REQ_PER_S:g} RAPI request/s per cluster: {_ok(ok_req)}; "
        f"≤ {TARGET_CORE_PERCENT:g} % of the cluster's RAPI time: {_ok(ok_cost)}.",
        "",
    ]
    return lines


def apply_section(results: list[dict[str, Any]]) -> list[str]:
    first = results[0]
    lines = [
        f"### Where a sync round's time goes: {first['instances']:,} instances, "
        f"{first['db_label']}, cost model off",
        "",
        "`bench.sync_apply`: the real `sync.read_*` functions against a simulator at time "
        "scale 0 (so only gwm's and the simulator's own work counts), then "
        "`gwm.clusters.services.cache.round_write` (changed rows written with one "
        "`UPDATE … WHERE id = %s` sent with `executemany`). Seconds.",
        "",
    ]
    header = "| phase | changes |"
    rule = "|---|---|"
    for r in results:
        header += (
            " read | apply |"
            if len(results) == 1
            else f" read ({r['variant']}) | apply ({r['variant']}) |"
        )
        rule += "---|---|"
    lines += [header, rule]
    for index, phase in enumerate(first["phases"]):
        line = f"| {phase['phase']} | {phase['changes']:,} |"
        for r in results:
            other = r["phases"][index]
            line += f" {other['read_seconds']} | **{other['apply_seconds']}** |"
        lines.append(line)
    lines.append("")
    return lines


READ_LABELS = {
    "gwm_names_all": "gwm `GET /api/v1/instances?fields=name,status&limit=100` (all clusters)",
    "gwm_full_all": "gwm `GET /api/v1/instances?limit=100` (full objects, all clusters)",
    "gwm_names_sandbox": (
        "gwm `GET /api/v1/clusters/sandbox/instances?fields=name,status&limit=100`"
    ),
    "rapi_real_bulk": "real RAPI `GET /2/instances?bulk=1` (sandbox)",
    "rapi_sim_bulk": "RAPI `GET /2/instances?bulk=1` (simulator)",
}


def _rounds(committed: dict[str, Any]) -> str:
    """``sim: any 3, runtime 1`` (tiers with rounds only)."""
    shown = []
    for name, tiers in sorted(committed.items()):
        counted = ", ".join(f"{tier} {n}" for tier, n in sorted(tiers.items()) if n)
        shown.append(f"{name}: {counted or 'none'}")
    return "; ".join(shown)


def concurrency_section(r: dict[str, Any]) -> list[str]:
    s = r.get("sqlite", {})
    title = (
        f"### Under concurrent load: `gwm serve` vs RAPI, {r['instances']:,} simulated "
        f"instances ({r['nodes']} nodes) + the real sandbox"
    )
    if "reads" not in s:
        why = s.get("failed") or "not asked for (`--db postgres`)"
        return [title, "", f"Reads on SQLite: {why}.", "", *_writes_lines(r)]
    processes = "; ".join(f"`{p['command']}` ({p['threads']} threads)" for p in s["processes"])
    sandbox = s.get("sandbox_instances")
    lines = [
        title,
        "",
        f"gwm as a user starts it (`gwm serve --port P`, default configuration, {s['database']}, "
        f"started and migrated in {s['serve_start_seconds']} s, stopped "
        f"{s.get('serve_stopped') or '?'}); its process tree: {processes}. "
        f"Registered through its API: the simulator (time scale 1, its own process; first "
        f"sync {s['sim_first_sync_seconds']} s) and "
        + (
            f"the real sandbox ({sandbox['instances']} instances on {sandbox['nodes']} nodes at "
            f"the time; first sync {s['sandbox_first_sync_seconds']} s)"
            if sandbox
            else f"no sandbox ({r.get('sandbox_skipped', 'left out')})"
        )
        + f", both syncing at the default intervals. `wrk` (2 threads; 1 for 1 client, "
        f"`bench/wrk_report.lua`) for {r['seconds_per_load']:g} s per load; *req/s* counts "
        "good responses only. *gwm CPU* is the whole `gwm serve` process tree's "
        "user + system time over the load's wall time (/proc). *Rounds* are the sync rounds "
        "gwm committed during the load, per cluster and tier (`any`: the cluster's "
        "`synced_at` moved).",
        "",
        "| load | clients | req/s | p50 ms | p99 ms | gwm CPU (% of a core) | rounds | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for clients in ("c16", "c1"):
        for label, x in s["reads"][clients].items():
            lines.append(
                f"| {READ_LABELS.get(label, label)} | {x['connections']} | "
                f"**{x['requests_per_second']:g}** | {x['p50_ms']:g} | {x['p99_ms']:g} | "
                f"{x['gwm_cpu_percent_of_one_core']:g} % | {_rounds(x['sync_rounds_committed'])} "
                f"| {x['errors'] or '-'} |"
            )
    lines.append("")
    targets = s["reads"]["targets"]
    for label in ("gwm_names_all", "gwm_names_sandbox"):
        t = targets.get(label)
        if not t:
            continue
        lines.append(
            f"- Target 1, {READ_LABELS[label]}, 16 clients: ≥ 50x real RAPI bulk's saturated "
            f"rate: {_ok(t['ratio_met'])} ({t['ratio_to_real_rapi_bulk']}x); ≥ 800 req/s: "
            f"{_ok(t['rate_met'])} ({t['requests_per_second']:g}); p99 ≤ 50 ms: "
            f"{_ok(t['p99_met'])} ({t['p99_ms']:g} ms)."
        )
    full = targets["gwm_full_all"]
    lines += [
        f"- Target 1, full objects, 16 clients: ≥ 300 req/s: {_ok(full['rate_met'])} "
        f"({full['requests_per_second']:g}).",
        "",
    ]
    if "all_at_once" in s:
        lines += _all_at_once_lines(s["all_at_once"], r["instances"])
    lines += _writes_lines(r)
    if s.get("failed"):
        lines += [f"SQLite part failed: {s['failed']}.", ""]
    return lines


def _all_at_once_lines(a: dict[str, Any], instances: int) -> list[str]:
    t = a["targets"]
    refused = "; ".join(
        f"`limit={k}` → {v.split(' ', 1)[0]}" for k, v in a["limits_refused"].items()
    )
    timing = (
        "server time from gwm's `Server-Timing` header"
        if a["server_timing_header"]
        else "gwm sends no `Server-Timing` header: time to the last byte"
    )
    lines = [
        f"Everything at once ({timing}, one keep-alive client, rounds interleaved with RAPI "
        f"bulk on the {instances:,}-instance simulator), ms p50 / p95:",
        "",
        "| request | p50 / p95 |",
        "|---|---|",
        f"| one request, `fields=name,status&limit={a['limit_used']}` | "
        f"{_ms(a['one_request_names_server_timing'] or a['one_request_names'])} |",
        f"| cursor walk of all, `fields=name,status&limit={a['limit_used']}` "
        f"({a['walk_names']['pages']} pages) | {_ms(a['walk_names'])} |",
        f"| cursor walk of all, all fields, `limit={a['walk_full']['limit']}` "
        f"({a['walk_full']['pages']} pages) | {_ms(a['walk_full'])} |",
        f"| RAPI `GET /2/instances?bulk=1` on the simulator | {_ms(a['rapi_sim_bulk'])} |",
        "",
    ]
    if t["all_in_one_request"]:
        one = f"{_ok(t['one_request_met'])} ({t['one_request_p50_ms']:g} ms p50)"
    else:
        one = (
            f"**not measurable**: gwm refuses a page of all {instances:,} ({refused}); the "
            f"largest page it accepts, {a['limit_used']}, takes {t['one_request_p50_ms']:g} ms"
        )
    lines += [
        f"- Target 2, all `name,status` in one request ≤ 50 ms: {one}.",
        f"- Target 2, a cursor walk with all fields ≥ 100x faster than RAPI bulk: "
        f"{_ok(t['walk_full_met'])} ({t['walk_full_ratio_to_rapi_bulk']}x).",
        "",
    ]
    return lines


def _writes_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        "Writes under load: concurrent writers (asyncio httpx, one keep-alive connection each) "
        'POST `{"action": "reboot"}` to `/api/v1/clusters/sim/instances/<name>/actions`, '
        "each on instances of its own, while gwm syncs (a `POST /api/v1/clusters/sim/sync` "
        "as they start makes a full round of the simulator meet them); POST → response, ms:",
        "",
        "| database | writes | writers | accepted/s | p50 | p95 | p99 | status codes "
        "| gwm CPU (% of a core) | rounds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for kind in ("sqlite", "postgres"):
        part = r.get(kind)
        if not part:
            continue
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        w = part.get("writes")
        if not w:
            lines.append(f"| {label} | failed: {part.get('failed', '?')} ||||||||")
            verdicts.append(f"{label} **not measured**")
            continue
        x = w["latency"]
        lines.append(
            f"| {label} | {w['writes']} | {w['writers']} | {w['accepted_per_second']:g} | "
            f"{x['p50_ms']:g} | {x['p95_ms']:g} | **{x['p99_ms']:g}** | {w['status_codes']} | "
            f"{w['gwm_cpu_percent_of_one_core']:g} % | {_rounds(w['sync_rounds_committed'])} |"
        )
        verdicts.append(f"{label} {_ok(w['target_p99_met'])} ({x['p99_ms']:g} ms)")
    lines += ["", f"- Target 5, POST → 202 p99 ≤ 50 ms: {'; '.join(verdicts)}.", ""]
    return lines


#: Benches that print their own met/missed lines (``verdicts``): section titles.
VERDICT_BENCHES = {
    "freshness": "Freshness at the same Ganeti cost (`bench.freshness`, issue 11 target 4)",
    "sync_scale": "One worker, many clusters (`bench.sync_scale`, issue 11 target 3)",
    "failover": "Failover of a dead worker (`bench.failover`, docs/deployment.md)",
}


def render(run_dir: Path, command: str, source: str) -> str:
    results = [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]
    if not results:
        return ""
    machine = results[0]["machine"]
    dbs = sorted({r["database"] for r in results if r.get("database")})
    lines = [
        f"## {machine['date']} — `{command}`",
        "",
        f"- Command (from the repository root): `{command}`; each part's own command is "
        "listed at the end.",
        f"- Code: {source}.",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
        f"{machine['os']}, Python {machine['python']}; load average before: "
        f"{machine['load_before']}.",
        f"- Databases: {'; '.join(dbs)}.",
        "",
    ]
    by_bench: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        r["db_label"] = "PostgreSQL" if "PostgreSQL" in r.get("database", "") else "SQLite"
        by_bench.setdefault(r["bench"], []).append(r)
    if "list_api" in by_bench:
        lines += list_section(by_bench["list_api"])
    for r in by_bench.get("sandbox", []):
        lines += sandbox_section(r)
    for r in by_bench.get("fast_round", []):
        lines += fast_section(r)
    for r in by_bench.get("steady", []):
        lines += steady_section(r)
    for r in by_bench.get("concurrency", []):
        lines += concurrency_section(r)
    if "sync_apply" in by_bench:
        variants = sorted(by_bench["sync_apply"], key=lambda r: r.get("variant") != "stock")
        lines += apply_section(variants)
    for name, title in VERDICT_BENCHES.items():
        for r in by_bench.get(name, []):
            lines += [f"### {title}", "", *[f"- {line}" for line in r.get("verdicts", [])], ""]
    lines += ["Commands of the parts:", ""]
    lines += [f"- `{r['command']}`" for r in results]
    lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--command", default="bench/run")
    parser.add_argument("--source", default="the working tree")
    parser.add_argument("--append", type=Path, help="append to this file (else print)")
    args = parser.parse_args(argv)
    text = render(args.run_dir, args.command, args.source)
    if args.append:
        with args.append.open("a") as fh:
            fh.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
