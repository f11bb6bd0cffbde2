"""Issue 9: what permission filtering costs the instance list.

10,000 cached instances over 10 clusters, inserted directly (``bulk_create``,
no simulator: only the read path is measured), and six callers, from no filter
at all to a filter of 1,000 role bindings:

  (a) a superuser and (b) a global viewer: no filter;
  (c) a viewer of 3 clusters: ``cluster_id IN (…)``;
  (d) a user with 1,000 instance bindings (100 per cluster, instances chosen at
      random over the whole name order): ``cluster_id = … AND name IN (…)`` per cluster;
  (e) a user in a group holding 950 instance and 50 tag bindings: the same, plus
      one ``tag_index LIKE`` per tag;
  (f) a global viewer's token limited to 2 clusters: ``cluster_id IN (…)``.

For each, ``GET /api/v1/instances?limit=100`` (full objects) and
``?fields=name,status&limit=100`` through Django's test Client in-process
(server time: middleware, bearer-token auth, grants, selector, SQL, JSON,
ETag), round-robin over every caller and URL so all see the same machine noise;
SQL queries per request; a walk of every page checks that each caller sees
exactly the instances their bindings name. The slowest caller's request is
then profiled (cProfile) and its page query explained.

``--analyze`` refreshes the planner's statistics after loading, as gwm does after
a round that imports many instances (``gwm.kit.db.planner_statistics_refresh``);
``--what-if`` also measures a patched ``Grants._load`` (``lean_load`` below, the
proposal since adopted by gwm), alternating with gwm as it is round by round.

    python -m bench.permissions                      # SQLite and PostgreSQL, each in a process
    python -m bench.permissions --db sqlite --json /tmp/p.json
    python -m bench.permissions --what-if --analyze --markdown /tmp/section.md
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, bench_django, log, machine_info, summary, write_result

URLS = {
    "full": "/api/v1/instances?limit=100",
    "name,status": "/api/v1/instances?fields=name%2Cstatus&limit=100",
}
CASES = {
    "a": "superuser",
    "b": "global viewer",
    "c": "viewer of 3 clusters",
    "d": "1,000 instance bindings",
    "e": "group: 950 instance + 50 tag bindings",
    "f": "token limited to 2 clusters",
}
TAGS = 200  # team-000 … team-199; instance i carries team-(i % 200) and an env tag
TARGET_MS = 20.0


@dataclass
class Caller:
    key: str
    token: str
    sees: set[tuple[int, str]]  # (cluster id, name) the bindings name, computed here


def populate(clusters: int, instances: int) -> tuple[list[int], list[tuple[int, str, list[str]]]]:
    """Clusters (fresh: not stale for a day) and instances with real-sized columns."""
    from django.utils import timezone

    from gwm.clusters.models import Cluster, ClusterStatus, Instance, InstanceStatus
    from gwm.simulator.data import KVM_HVPARAMS

    now = timezone.now()
    made = Cluster.objects.bulk_create(
        Cluster(
            name=f"c{n:02}",
            rapi_url=f"https://c{n:02}.example.org:5080",
            status=ClusterStatus.AVAILABLE,
            synced_at=now,
            stale_after=86400.0,  # the run outlasts the default 180 s; keep the query the same
        )
        for n in range(clusters)
    )
    ids = [c.pk for c in made]
    rows = []
    for i in range(instances):
        cluster_id = ids[i % clusters]
        tags = [f"team-{i % TAGS:03}", "env-prod" if i % 3 else "env-dev"]
        rows.append((cluster_id, f"vm{i:05}.example.org", tags))
    Instance.objects.bulk_create(
        (
            Instance(
                cluster_id=cluster_id,
                name=name,
                uuid=f"00000000-0000-4000-8000-{i:012}",
                tags=tags,
                tag_index="\n" + "\n".join(tags) + "\n",
                serial_no=3,
                ctime=1.7e9 + i,
                mtime=1.7e9 + i,
                synced_at=now,
                status=InstanceStatus.RUNNING if i % 5 else InstanceStatus.STOPPED,
                ganeti_status="running" if i % 5 else "ADMIN_down",
                admin_state="up" if i % 5 else "down",
                oper_state=bool(i % 5),
                oper_ram=4096,
                oper_vcpus=2,
                os="debootstrap+default",
                primary_node=f"node{i % 100:03}.example.org",
                secondary_nodes=[f"node{(i + 1) % 100:03}.example.org"],
                disk_template="drbd",
                memory=4096,
                vcpus=2,
                disks=[{"size": 20480, "mode": "rw", "name": None, "uuid": f"d-{i}"}],
                nics=[
                    {
                        "mac": f"aa:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                        "ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                        "mode": "bridged",
                        "link": "br-prod",
                        "network": "prod",
                    }
                ],
                disk_usage=20608,
                network_port=11000 + i,
                beparams={"maxmem": 4096, "minmem": 4096, "vcpus": 2, "auto_balance": True},
                hvparams=dict(KVM_HVPARAMS),
                osparams={},
                runtime_synced_at=now,
            )
            for i, (cluster_id, name, tags) in enumerate(rows)
        ),
        batch_size=500,
    )
    return ids, rows


def make_callers(ids: list[int], rows: list[tuple[int, str, list[str]]]) -> list[Caller]:
    """The six callers, each with a token and the set of instances it should see."""
    from django.contrib.auth.models import Group, User

    from gwm.accounts.models import Role, RoleBinding, Scope
    from gwm.accounts.models.builtin_roles import sync_builtin_roles
    from gwm.accounts.services.tokens import token_create

    sync_builtin_roles()
    viewer = Role.objects.get(name="viewer")
    everything = {(c, n) for c, n, _ in rows}
    rng = random.Random(9)
    by_cluster: dict[int, list[str]] = {}
    for c, n, _ in rows:
        by_cluster.setdefault(c, []).append(n)

    def token(user: User, clusters: Sequence[str] = ()) -> str:
        return token_create(actor=None, user=user, name="bench", clusters=clusters)[1]

    callers = []
    root = User.objects.create_superuser("bench-root", password=None)
    callers.append(Caller("a", token(root), everything))

    glob = User.objects.create_user("bench-global")
    RoleBinding.objects.create(user=glob, role=viewer, scope=Scope.GLOBAL)
    callers.append(Caller("b", token(glob), everything))

    three = User.objects.create_user("bench-three")
    RoleBinding.objects.bulk_create(
        RoleBinding(user=three, role=viewer, scope=Scope.CLUSTER, cluster_id=c) for c in ids[:3]
    )
    callers.append(Caller("c", token(three), {(c, n) for c, n in everything if c in ids[:3]}))

    def instance_bindings(per_cluster: int) -> list[tuple[int, str]]:
        return [(c, n) for c in ids for n in rng.sample(by_cluster[c], per_cluster)]

    many = User.objects.create_user("bench-many")
    named = instance_bindings(1000 // len(ids))
    RoleBinding.objects.bulk_create(
        RoleBinding(user=many, role=viewer, scope=Scope.INSTANCE, cluster_id=c, instance=n)
        for c, n in named
    )
    callers.append(Caller("d", token(many), set(named)))

    member = User.objects.create_user("bench-member")
    group = Group.objects.create(name="bench-team")
    member.groups.add(group)
    named = instance_bindings(950 // len(ids))
    # team-k lives on cluster k % 10 only (10 divides 200), so each tag binding names the
    # cluster that holds it: 50 tags x 50 instances each.
    tags = [(ids[k % len(ids)], f"team-{k:03}") for k in rng.sample(range(TAGS), 50)]
    RoleBinding.objects.bulk_create(
        [
            *(
                RoleBinding(
                    group=group, role=viewer, scope=Scope.INSTANCE, cluster_id=c, instance=n
                )
                for c, n in named
            ),
            *(
                RoleBinding(group=group, role=viewer, scope=Scope.TAG, cluster_id=c, tag=t)
                for c, t in tags
            ),
        ]
    )
    tagged = {(c, n) for c, n, carried in rows for tc, t in tags if tc == c and t in carried}
    callers.append(Caller("e", token(member), set(named) | tagged))

    two = {ids[0], ids[1]}
    callers.append(
        Caller("f", token(glob, ["c00", "c01"]), {(c, n) for c, n in everything if c in two})
    )
    return callers


class Api:
    def __init__(self, token: str) -> None:
        from django.test import Client

        self.client = Client(headers={"Authorization": f"Bearer {token}"}, HTTP_HOST="localhost")

    def get(self, url: str) -> dict[str, Any]:
        response = self.client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.content[:300]!r}")
        result: dict[str, Any] = response.json()
        return result


def check_visible(api: Api, caller: Caller, names: dict[str, int]) -> int:
    """Walk every page (limit=1000): exactly the instances the bindings name, none else."""
    seen: set[tuple[int, str]] = set()
    url: str | None = "/api/v1/instances?fields=name,cluster&limit=1000"
    while url:
        page = api.get(url)
        seen |= {(names[item["cluster"]], item["name"]) for item in page["items"]}
        url = f"/api/v1/instances?fields=name,cluster&limit=1000&cursor={page['next']}"
        url = url if page["next"] else None
    if seen != caller.sees:
        raise RuntimeError(
            f"caller {caller.key} sees {len(seen)} instances, its bindings name {len(caller.sees)}"
        )
    return len(seen)


def query_count(api: Api, url: str) -> tuple[int, int]:
    """(queries, characters of SQL) of one request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        api.get(url)
    return len(captured), sum(len(q["sql"]) for q in captured.captured_queries)


def columns_of(whatif: WhatIf | None) -> list[str]:
    """The measured columns: each URL, stock, and with the what-if patches when asked."""
    return [*URLS, *(f"{u} what-if" for u in URLS)] if whatif else list(URLS)


def measure(
    apis: dict[str, Api], requests: int, whatif: WhatIf | None
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """(wall, CPU) seconds per request, round-robin over callers and URLs; with ``whatif``,
    stock and patched rounds alternate (and which goes first), so both see the same noise."""
    cols = columns_of(whatif)
    samples: dict[str, dict[str, list[float]]] = {k: {c: [] for c in cols} for k in apis}
    cpu_samples: dict[str, dict[str, list[float]]] = {k: {c: [] for c in cols} for k in apis}
    for _ in range(5):  # warm up: connections, caches, the token's last_used_at write
        for api in apis.values():
            for url in URLS.values():
                api.get(url)
    for n in range(requests):
        variants = [False, True] if whatif else [False]
        for patched in variants if n % 2 == 0 else variants[::-1]:
            if whatif:
                whatif.set(patched)
            for key, api in apis.items():
                for label, url in URLS.items():
                    col = f"{label} what-if" if patched else label
                    started, cpu = time.perf_counter(), time.process_time()
                    page = api.get(url)
                    samples[key][col].append(time.perf_counter() - started)
                    cpu_samples[key][col].append(time.process_time() - cpu)
                    if len(page["items"]) != 100:
                        raise RuntimeError(f"{key} {label}: {len(page['items'])} items")
    if whatif:
        whatif.set(False)
    return samples, cpu_samples


#: gwm's and Django's functions whose cumulative time the profile breakdown reports.
WATCH = {
    "token auth (TokenAuth.authenticate)": ("gwm/accounts/auth.py", "authenticate"),
    "grants: load bindings (Grants._load)": ("gwm/accounts/grants.py", "_load"),
    "grants -> filter (_instances_q)": ("gwm/accounts/permissions.py", "_instances_q"),
    "clusters' freshness (cluster_refs)": ("gwm/clusters/selectors/cache.py", "cluster_refs"),
    "page (paginate)": ("gwm/kit/pagination.py", "paginate"),
    "  SQL compile (SQLCompiler.as_sql)": ("django/db/models/sql/compiler.py", "as_sql"),
    "  SQL execute (CursorWrapper._execute)": ("django/db/backends/utils.py", "_execute"),
    "render rows (render)": ("gwm/clusters/selectors/fields.py", "render"),
    "JSON + ETag (json_with_etag)": ("gwm/kit/http.py", "json_with_etag"),
}


def profile(api: Api, url: str, repeat: int = 20) -> dict[str, Any]:
    """cProfile ``repeat`` requests; per-request cumulative ms of the WATCH functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        api.get(url)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    found: dict[str, float] = {}
    for label, (path, func) in WATCH.items():
        cumulative = [
            ct
            for (file, _, name), (_, _, _, ct, _) in raw.items()
            if name == func and file.endswith(path)
        ]
        found[label] = round(max(cumulative, default=0.0) / repeat * 1000, 2)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    top = [line for line in text.getvalue().splitlines() if line.strip()][-16:]
    return {
        "requests": repeat,
        "total_ms": round(total / repeat * 1000, 2),
        "breakdown": found,
        "top_tottime": top,
    }


def explain(username: str) -> str:
    """The page query of ``username``'s instance list, as the database plans it."""
    from django.db import connection

    page = _page_query(username, ["id", "name", "effective_status"])
    options = {"analyze": True} if connection.vendor == "postgresql" else {}
    plan: str = page.explain(**options)
    return plan if len(plan) < 4000 else plan[:4000] + " …"


def _page_query(username: str, columns: list[str]) -> Any:
    """The selector's page queryset for ``username`` (first page, by name), unevaluated."""
    from django.contrib.auth.models import User

    from gwm.accounts.permissions import readable_objects
    from gwm.clusters.selectors.cache import InstanceFilters, _instance_queryset, cluster_refs

    user = User.objects.get(username=username)
    refs = cluster_refs(user)
    queryset = readable_objects(user, _instance_queryset(InstanceFilters(), refs, None))
    return queryset.order_by("name", "id").values(*columns)[:101]


def sql_only(username: str, repeat: int = 30) -> dict[str, Any]:
    """The page query alone, run by the database driver with its compiled SQL (no Django
    ORM around it): median ms for full-object columns and for name,status."""
    from django.db import connection

    from gwm.clusters.selectors.fields import INSTANCES, columns

    out: dict[str, Any] = {}
    for label, chosen in (("full", list(INSTANCES.fields)), ("name,status", ["name", "status"])):
        cols = list(dict.fromkeys([*columns(chosen, INSTANCES.fields), "id", "name"]))
        sql, params = _page_query(username, cols).query.sql_with_params()
        times = []
        with connection.cursor() as cursor:
            for _ in range(repeat):
                started = time.perf_counter()
                cursor.execute(sql, params)
                cursor.fetchall()
                times.append(time.perf_counter() - started)
        out[label] = {"p50_ms": summary(times)["p50_ms"], "params": len(params)}
    return out


# -- what-if: proposed changes to gwm, patched into this process only --------------------


def lean_load(cls: Any, user: Any) -> Any:
    """``gwm.accounts.grants.Grants._load`` reading the bindings as tuples (``values_list``)
    instead of a RoleBinding + Role + Group model instance per binding; otherwise the same."""
    from django.db.models import Q

    from gwm.accounts.grants import Grant, token_of
    from gwm.accounts.models import RoleBinding
    from gwm.clusters.models import Cluster

    token = token_of(user)
    token_clusters = None
    if token is not None and token.clusters:
        token_clusters = frozenset(
            Cluster.objects.filter(name__in=token.clusters).values_list("pk", flat=True)
        )
    read_only = token is not None and token.read_only
    if not user.is_active:
        return cls(user, [], read_only=read_only, token_clusters=frozenset())
    if user.is_superuser:
        return cls(user, [], superuser=True, read_only=read_only, token_clusters=token_clusters)
    rows = (
        RoleBinding.objects.filter(Q(user=user) | Q(group__user=user))
        .values_list(
            "pk",
            "role__name",
            "role__verbs",
            "scope",
            "cluster_id",
            "instance",
            "tag",
            "group__name",
        )
        .distinct()
    )
    verbs: dict[str, frozenset[str]] = {}  # one frozenset per role, shared by its bindings
    grants = [
        Grant(
            pk,
            role,
            verbs.setdefault(role, frozenset(role_verbs)),
            scope,
            cluster_id,
            instance,
            tag,
            group or "",
        )
        for pk, role, role_verbs, scope, cluster_id, instance, tag, group in rows
    ]
    return cls(user, grants, read_only=read_only, token_clusters=token_clusters)


class WhatIf:
    """Switches the proposed changes on and off between requests."""

    def __init__(self) -> None:
        from gwm.accounts.grants import Grants

        self.grants = Grants
        self.stock = Grants.__dict__["_load"]

    def set(self, on: bool) -> None:
        self.grants._load = classmethod(lean_load) if on else self.stock  # type: ignore[method-assign,assignment]


def run_one(
    kind: str, clusters: int, instances: int, requests: int, what_if: bool, analyze: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine_info(),
        "clusters": clusters,
        "instances": instances,
        "what_if": ["lean-grants"] if what_if else [],
        "analyzed": analyze,
    }
    with bench_django(kind) as db:
        result["database"] = db.describe()
        started = time.perf_counter()
        ids, rows = populate(clusters, instances)
        callers = make_callers(ids, rows)
        if analyze:
            # What gwm does after a round that imports or removes many instances
            # (gwm.kit.db): the rows here are bulk-inserted, not synced.
            from gwm.kit.db import planner_statistics_refresh

            planner_statistics_refresh("clusters_instance")
        result["setup_seconds"] = round(time.perf_counter() - started, 2)
        from gwm.accounts.models import RoleBinding
        from gwm.clusters.models import Cluster

        result["bindings"] = RoleBinding.objects.count()
        names = dict(Cluster.objects.values_list("name", "pk"))
        apis = {c.key: Api(c.token) for c in callers}
        whatif = WhatIf() if what_if else None
        for patched in [False, True] if whatif else [False]:
            if whatif:
                whatif.set(patched)
            result["visible"] = {c.key: check_visible(apis[c.key], c, names) for c in callers}
        if whatif:
            whatif.set(False)
        log(f"{kind}: visible {result['visible']}")
        result["queries"] = {
            k: {label: query_count(api, url) for label, url in URLS.items()}
            for k, api in apis.items()
        }
        log(f"{kind}: {requests} rounds of {len(apis) * len(columns_of(whatif))} requests")
        samples, cpu = measure(apis, requests, whatif)
        result["server_ms"] = {
            k: {c: summary(s) for c, s in per.items()} for k, per in samples.items()
        }
        result["cpu_ms"] = {k: {c: summary(s) for c, s in per.items()} for k, per in cpu.items()}
        log(f"{kind}: p50 {[(k, v['full']['p50_ms']) for k, v in result['server_ms'].items()]}")
        slowest = max(samples, key=lambda k: result["server_ms"][k]["full"]["p50_ms"])
        result["profiled"] = slowest
        result["profile"] = {
            f"{key} {label}": profile(apis[key], url)
            for key in dict.fromkeys([slowest, "a"])
            for label, url in URLS.items()
        }
        result["sql_only"] = {
            key: sql_only(user)
            for key, user in (("b", "bench-global"), ("d", "bench-many"), ("e", "bench-member"))
        }
        result["explain"] = {
            key: explain(user) for key, user in (("d", "bench-many"), ("e", "bench-member"))
        }
    return result


def _db(result: dict[str, Any]) -> str:
    return str(result["database"]).split(" (")[0]


def render_markdown(results: list[dict[str, Any]], command: str) -> str:
    """The BENCHMARKS.md section of a run (one or two databases)."""
    first = results[0]
    m = first["machine"]
    out = [
        f"## {m['date']} — permission filtering on the instance list (issue 9): "
        "`python -m bench.permissions`",
        "",
        f"- Command (from the repository root): `{command}`",
        f"- Code: {m['commit']}. Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, "
        f"Python {m['python']}; load average before: {m['load_before']}.",
        f"- Databases: {'; '.join(r['database'] for r in results)}.",
        f"- Data: {first['instances']:,} cached instances over {first['clusters']} clusters, "
        "inserted with `bulk_create` (real-sized JSON columns: KVM hvparams, one disk, one NIC); "
        f"{first['bindings']:,} role bindings in all; every caller uses a bearer token; "
        + (
            "`ANALYZE` run after loading (planner statistics)."
            if first.get("analyzed")
            else "no `ANALYZE` after loading (no planner statistics on SQLite, as gwm runs it)."
        ),
        "",
        "Server time in-process (Django test Client: middleware, token auth, grants, selector, "
        "SQL, JSON, ETag) of `GET /api/v1/instances?limit=100` (*full* objects) and "
        "`?fields=name,status&limit=100`, round-robin over every caller and both URLs, "
        f"{first['server_ms']['a']['full']['n']} requests each after 5 warm-up rounds. "
        "Milliseconds, p50 / p95; *CPU* is this process's CPU time per request, p50 (less "
        "sensitive to other load on the machine; on PostgreSQL it leaves out the server's "
        "work); *q* = SQL queries per request (both URLs); *sees* = instances the caller "
        "may read (checked against the bindings by walking every page).",
        "",
    ]
    for r in results:
        cols = list(r["server_ms"]["a"])
        head = "| caller | sees | " + " | ".join(cols) + " | CPU " + " / ".join(cols) + " | q |"
        out += [f"{_db(r)}:", "", head, "|---" * (len(cols) + 4) + "|"]
        for key, name in CASES.items():
            wall = [r["server_ms"][key][c] for c in cols]
            cpu = " / ".join(str(r["cpu_ms"][key][c]["p50_ms"]) for c in cols)
            queries = " / ".join(str(r["queries"][key][u][0]) for u in URLS)
            out.append(
                f"| ({key}) {name} | {r['visible'][key]:,} | "
                + " | ".join(f"{w['p50_ms']} / {w['p95_ms']}" for w in wall)
                + f" | {cpu} | {queries} |"
            )
        out.append("")
    for r in results:
        d = r["server_ms"]["d"]["full"]["p50_ms"]
        e = r["server_ms"]["e"]["full"]["p50_ms"]
        verdict = "met" if max(d, e) <= TARGET_MS else "MISSED"
        out.append(
            f"- Target ≤ {TARGET_MS:g} ms p50 at {first['instances']:,} instances with 1,000 "
            f"bindings, {_db(r)}, stock: **{verdict}** ((d) {d} ms, (e) {e} ms, full objects)."
        )
    out.append("")
    for r in results:
        for name, prof in r["profile"].items():
            parts = ", ".join(f"{k.strip()} {v}" for k, v in prof["breakdown"].items())
            out.append(
                f"- Profile, {_db(r)}, caller ({name}), stock: {prof['total_ms']} ms per request "
                f"under cProfile (inflated by it); cumulative ms: {parts}."
            )
        sql = "; ".join(
            f"({k}) full {v['full']['p50_ms']} ms, name,status {v['name,status']['p50_ms']} ms "
            f"({v['full']['params']} parameters)"
            for k, v in r["sql_only"].items()
        )
        out.append(f"- The page query alone through the driver, {_db(r)}, p50: {sql}.")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.permissions")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="per caller and URL")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also measure the proposed change (lean-grants), alternating round by round",
    )
    parser.add_argument(
        "--analyze", action="store_true", help="run the database's ANALYZE before measuring"
    )
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--markdown", help="write the BENCHMARKS.md section here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if len(kinds) == 1:
        result = run_one(
            kinds[0], args.clusters, args.instances, args.requests, args.what_if, args.analyze
        )
        write_result(args.json, "permissions", result)
        results = [result]
    else:
        # Django reads its settings (the database) once per process: one process each.
        results = []
        with tempfile.TemporaryDirectory(prefix="gwm-bench-perm-") as tmp:
            for kind in kinds:
                out = Path(tmp) / f"{kind}.json"
                cmd = [PYTHON, "-m", "bench.permissions", "--db", kind, "--json", str(out)]
                cmd += ["--clusters", str(args.clusters), "--instances", str(args.instances)]
                cmd += ["--requests", str(args.requests)]
                cmd += ["--what-if"] if args.what_if else []
                cmd += ["--analyze"] if args.analyze else []
                subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=1800)
                results.append(json.loads(out.read_text()))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    command = " ".join([".venv/bin/python", "-m", "bench.permissions", *sys.argv[1:]])
    text = render_markdown(results, command)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(text, file=sys.stderr if len(kinds) == 1 else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
