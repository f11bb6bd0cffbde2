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

    python -m bench.permissions                      # SQLite and PostgreSQL, each in a process
    python -m bench.permissions --db sqlite --json /tmp/p.json
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


def measure(apis: dict[str, Api], requests: int) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {k: {u: [] for u in URLS} for k in apis}
    for _ in range(5):  # warm up: connections, caches, the token's last_used_at write
        for api in apis.values():
            for url in URLS.values():
                api.get(url)
    for _ in range(requests):
        for key, api in apis.items():
            for label, url in URLS.items():
                started = time.perf_counter()
                page = api.get(url)
                samples[key][label].append(time.perf_counter() - started)
                if len(page["items"]) != 100:
                    raise RuntimeError(f"{key} {label}: {len(page['items'])} items")
    return samples


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
    from django.contrib.auth.models import User

    from gwm.accounts.permissions import readable_objects
    from gwm.clusters.selectors.cache import InstanceFilters, _instance_queryset, cluster_refs

    user = User.objects.get(username=username)
    refs = cluster_refs(user)
    queryset = readable_objects(user, _instance_queryset(InstanceFilters(), refs, None))
    page = queryset.order_by("name", "id").values("id", "name", "effective_status")[:101]
    from django.db import connection

    options = {"analyze": True} if connection.vendor == "postgresql" else {}
    plan = page.explain(**options)
    return plan if len(plan) < 4000 else plan[:4000] + " …"


def run_one(kind: str, clusters: int, instances: int, requests: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine_info(),
        "clusters": clusters,
        "instances": instances,
    }
    with bench_django(kind) as db:
        result["database"] = db.describe()
        started = time.perf_counter()
        ids, rows = populate(clusters, instances)
        callers = make_callers(ids, rows)
        result["setup_seconds"] = round(time.perf_counter() - started, 2)
        from gwm.accounts.models import RoleBinding
        from gwm.clusters.models import Cluster

        result["bindings"] = RoleBinding.objects.count()
        names = dict(Cluster.objects.values_list("name", "pk"))
        apis = {c.key: Api(c.token) for c in callers}
        result["visible"] = {c.key: check_visible(apis[c.key], c, names) for c in callers}
        log(f"{kind}: visible {result['visible']}")
        result["queries"] = {
            k: {label: query_count(api, url) for label, url in URLS.items()}
            for k, api in apis.items()
        }
        log(f"{kind}: {requests} rounds of {len(apis) * len(URLS)} requests")
        samples = measure(apis, requests)
        result["server_ms"] = {
            k: {u: summary(s) for u, s in per.items()} for k, per in samples.items()
        }
        slowest = max(samples, key=lambda k: result["server_ms"][k]["full"]["p50_ms"])
        result["profiled"] = slowest
        result["profile"] = {
            f"{key} {label}": profile(apis[key], url)
            for key in dict.fromkeys([slowest, "a"])
            for label, url in URLS.items()
        }
        result["explain"] = {
            key: explain(user) for key, user in (("d", "bench-many"), ("e", "bench-member"))
        }
    return result


def render_markdown(results: list[dict[str, Any]], command: str) -> str:
    """The BENCHMARKS.md section of a run (one or two databases)."""
    first = results[0]
    m = first["machine"]
    dbs = [r["database"].split(" (")[0] for r in results]
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
        f"{first['bindings']:,} role bindings in all; every caller uses a bearer token.",
        "",
        "Server time in-process (Django test Client: middleware, token auth, grants, selector, "
        "SQL, JSON, ETag) of `GET /api/v1/instances?limit=100` (*full*) and "
        "`?fields=name,status&limit=100`, round-robin over every caller and both URLs, "
        f"{first['server_ms']['a']['full']['n']} requests each after 5 warm-up rounds. "
        "Milliseconds, p50 / p95; *q* = SQL queries per request.",
        "",
    ]
    head = "| caller | sees |"
    rule = "|---|---|"
    for db in dbs:
        for label in URLS:
            head += f" {db} {label} |"
            rule += "---|"
        head += f" {db} q |"
        rule += "---|"
    out += [head, rule]
    for key, name in CASES.items():
        line = f"| ({key}) {name} | {first['visible'][key]:,} |"
        for r in results:
            for label in URLS:
                s = r["server_ms"][key][label]
                line += f" {s['p50_ms']} / {s['p95_ms']} |"
            line += " " + " / ".join(str(r["queries"][key][u][0]) for u in URLS) + " |"
        out.append(line)
    out.append("")
    for r in results:
        db = r["database"].split(" (")[0]
        worst = max(CASES, key=lambda k: r["server_ms"][k]["full"]["p50_ms"])
        d = r["server_ms"]["d"]["full"]["p50_ms"]
        e = r["server_ms"]["e"]["full"]["p50_ms"]
        verdict = "met" if max(d, e) <= TARGET_MS else "MISSED"
        out.append(
            f"- Target ≤ {TARGET_MS:g} ms p50 at {first['instances']:,} instances with 1,000 "
            f"bindings, {db}: **{verdict}** ((d) {d} ms, (e) {e} ms, full objects; slowest "
            f"caller ({worst}))."
        )
    out.append("")
    for r in results:
        db = r["database"].split(" (")[0]
        for name, prof in r["profile"].items():
            parts = ", ".join(f"{k.strip()} {v}" for k, v in prof["breakdown"].items())
            out.append(
                f"- Profile, {db}, caller ({name}): {prof['total_ms']} ms per request under "
                f"cProfile; cumulative ms: {parts}."
            )
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.permissions")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="per caller and URL")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--markdown", help="write the BENCHMARKS.md section here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if len(kinds) == 1:
        result = run_one(kinds[0], args.clusters, args.instances, args.requests)
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
