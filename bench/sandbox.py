"""(a, real Ganeti) The cached list vs the real sandbox's RAPI bulk list.

The sandbox (``scripts/ganeti-sandbox up``, ``.sandbox/ganeti.env``) is a
real single-node Ganeti 3.0 cluster. This creates up to ``--create``
diskless instances ``gwm-bench-N.ganeti.test`` through RAPI (the bench's own
names, so that other users' instances are never touched), measures RAPI
``GET /2/instances?bulk=1`` interleaved with gwm's in-process
``GET /api/v1/instances?fields=name,status`` after a real sync of the
sandbox, then deletes what it created. A simulator of the same size (one
node) is measured beside it, as a check of the simulator's cost model.

    python -m bench.sandbox --create 5 --rounds 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    REPO,
    TIMEOUT,
    SimHost,
    admin_token,
    bench_django,
    log,
    machine_info,
    summary,
    write_result,
)
from bench.list_api import InProcess

ENV_FILE = REPO / ".sandbox" / "ganeti.env"
PREFIX = "gwm-bench-"


def sandbox_env() -> dict[str, str] | None:
    if not ENV_FILE.exists():
        return None
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("GWM_SANDBOX_"):
            values[key] = value.strip()
    return values


def bulk_timer(url: str, ca: str, auth: tuple[str, str]) -> tuple[httpx.Client, Any]:
    client = httpx.Client(verify=ca, auth=auth, timeout=TIMEOUT)

    def fetch() -> tuple[float, int]:
        started = time.perf_counter()
        response = client.get(f"{url}/2/instances", params={"bulk": 1})
        _ = response.content
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        return elapsed, len(response.json())

    return client, fetch


def create_instances(client: Any, names: list[str], node: str) -> list[str]:
    created = []
    jobs = []
    for name in names:
        job = client.create_instance(
            name,
            disk_template="diskless",
            disks=[],
            nics=[],
            os_type="noop",
            pnode=node,
            beparams={"memory": 32},
            name_check=False,
            ip_check=False,
            start=True,
            reason="gwm bench",
        )
        jobs.append((name, job))
    for name, job in jobs:
        if client.wait_for_job(job, timeout=120).status == "success":
            created.append(name)
    return created


def delete_instances(client: Any, names: list[str]) -> list[str]:
    jobs = [(name, client.delete_instance(name, reason="gwm bench")) for name in names]
    left = []
    for name, job in jobs:
        if client.wait_for_job(job, timeout=120).status != "success":
            left.append(name)
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox")
    parser.add_argument("--create", type=int, default=5, help="instances to create (≤ 5)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if not 0 <= args.create <= 5 or not 1 <= args.rounds <= 100:
        parser.error("--create 0..5, --rounds 1..100")

    result: dict[str, Any] = {"machine": machine_info()}
    env = sandbox_env()
    if env is None:
        result["skipped"] = f"no {ENV_FILE}: run scripts/ganeti-sandbox up"
        write_result(args.json, "sandbox", result)
        return 0
    from gwm.rapi import RapiClient

    url = env["GWM_SANDBOX_RAPI_URL"]
    ca = env["GWM_SANDBOX_CA_FILE"]
    read_auth = (env["GWM_SANDBOX_READ_USER"], env["GWM_SANDBOX_READ_PASSWORD"])
    writer = RapiClient(
        url,
        username=env["GWM_SANDBOX_WRITE_USER"],
        password=env["GWM_SANDBOX_WRITE_PASSWORD"],
        ca_file=ca,
        check_hostname=False,
    )
    try:
        existing = set(writer.list_instances())
    except Exception as exc:  # the sandbox is down: say so instead of failing the suite
        result["skipped"] = f"sandbox RAPI at {url} does not answer: {exc}"
        write_result(args.json, "sandbox", result)
        return 0
    wanted = [f"{PREFIX}{n}.ganeti.test" for n in range(1, args.create + 1)]
    wanted = [name for name in wanted if name not in existing]
    created: list[str] = []
    try:
        started = time.perf_counter()
        created = create_instances(writer, wanted, env["GWM_SANDBOX_NODE"])
        result["create_seconds"] = round(time.perf_counter() - started, 1)
        result["created"] = created
        with bench_django("sqlite") as db:
            result["database"] = db.describe()
            result.update(_measure(url, ca, read_auth, args.rounds))
    finally:
        if created:
            log(f"deleting {len(created)} bench instances from the sandbox")
            result["left_behind"] = delete_instances(writer, created)
        writer.close()
    write_result(args.json, "sandbox", result)
    return 0


def _measure(url: str, ca: str, auth: tuple[str, str], rounds: int) -> dict[str, Any]:
    from gwm.clusters import services
    from gwm.clusters.models import Instance
    from gwm.sync.rounds import run_due_tiers

    out: dict[str, Any] = {}
    cluster = services.cluster_create(
        name="sandbox",
        connection=services.Connection(
            rapi_url=url,
            username=auth[0],
            password=auth[1],
            tls_ca_pem=Path(ca).read_text(),
            tls_fingerprint="",
            tls_verify=True,
        ),
    )
    started = time.perf_counter()
    out["sync_tiers"] = run_due_tiers(cluster.pk, force=True)
    out["sync_seconds"] = round(time.perf_counter() - started, 2)
    instances = Instance.objects.count()
    out["instances"] = instances
    api = InProcess(admin_token())
    real_client, real_bulk = bulk_timer(url, ca, auth)
    with SimHost(1, 1, max(instances, 1), time_scale=1.0, max_seconds=600) as host:
        sim = host.clusters[0]
        sim_client, sim_bulk = bulk_timer(sim.url, sim.cert, ("gwm", "gwm"))
        for _ in range(3):
            api.page(100)
        gwm_samples: list[float] = []
        real_samples: list[float] = []
        sim_samples: list[float] = []
        for _ in range(rounds):
            for _ in range(3):
                begin = time.perf_counter()
                page = api.page(100)
                gwm_samples.append(time.perf_counter() - begin)
            elapsed, count = real_bulk()
            real_samples.append(elapsed)
            sim_elapsed, _ = sim_bulk()
            sim_samples.append(sim_elapsed)
        out["gwm_items"] = len(page["items"])
        out["rapi_items"] = count
        out["gwm_list_in_process"] = summary(gwm_samples)
        out["real_rapi_bulk"] = summary(real_samples)
        out["simulator_rapi_bulk_same_size"] = summary(sim_samples)
        sim_client.close()
    real_client.close()
    out["ratio_real_rapi_to_gwm_p50"] = round(
        out["real_rapi_bulk"]["p50_ms"] / out["gwm_list_in_process"]["p50_ms"], 1
    )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
