"""Issue 4: how fast gwm accepts writes, and how soon a job's end is visible.

(a) ``POST .../instances/{i}/actions`` → 202: server time in-process (Django
    test Client: auth, validation, row lock, job + status + change rows, commit,
    doorbell), one request after another on distinct instances (each write
    holds its instance), so the figure is what one client sees; accepted
    operations per second is the inverse of the mean.
(b) lag from Ganeti's job end (the simulator's ``end_ts`` of the job) to the
    moment gwm's ``GET /api/v1/jobs/{id}/wait`` returned SUCCESS, with gwm's
    embedded workers tracking the job; side by side with a client that polls
    RAPI directly: ``/2/jobs/ID/wait`` (Ganeti's own GenericPollJob loop,
    ``RapiClient.wait_for_job``) and ``GET /2/jobs/ID`` every second (the
    deprecated ``WaitForJobCompletion`` style, period 1 s).

The simulator runs in its own process (``bench.simhost``), time scale 1, so
jobs take as long as on the measured Ganeti 3.0 cluster (start/shutdown ≈ 0.4 s).

    python -m bench.ops --instances 1000 --accept 300 --lag 30
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import (
    SimHost,
    admin_token,
    bench_django,
    log,
    machine_info,
    register,
    summary,
    write_result,
)


def _end_ts(sim_url: str, cert: str, ganeti_job_id: int) -> float:
    import httpx

    job = httpx.get(
        f"{sim_url}/2/jobs/{ganeti_job_id}", auth=("gwm", "gwm"), verify=cert, timeout=30
    ).json()
    seconds, micros = job["end_ts"]
    return float(seconds + micros / 1e6)


def accept_latency(client: Any, cluster: str, names: list[str]) -> dict[str, Any]:
    samples = []
    for name in names:
        started = time.perf_counter()
        response = client.post(
            f"/api/v1/clusters/{cluster}/instances/{name}/actions",
            {"action": "reboot"},
            content_type="application/json",
        )
        samples.append(time.perf_counter() - started)
        assert response.status_code == 202, response.content
    result = summary(samples)
    result["accepted_per_second"] = round(len(samples) / sum(samples), 1)
    return result


def gwm_lag(client: Any, sim: Any, cluster: str, names: list[str], stopped: set[str]) -> Any:
    lags = []
    for name in names:
        action = "start" if name in stopped else "shutdown"
        job = client.post(
            f"/api/v1/clusters/{cluster}/instances/{name}/actions",
            {"action": action},
            content_type="application/json",
        ).json()
        status = job["status"]
        deadline = time.monotonic() + 60
        while status not in {"SUCCESS", "ERROR", "CANCELED"}:
            assert time.monotonic() < deadline, job
            answer = client.get(f"/api/v1/jobs/{job['id']}/wait?timeout=30&status={status}")
            job = answer.json()["job"]
            status = job["status"]
        visible = time.time()
        assert status == "SUCCESS", job
        lags.append(visible - _end_ts(sim.url, sim.cert, job["ganeti"]["job_id"]))
    return summary(lags)


def rapi_lag(sim: Any, names: list[str], stopped: set[str], *, poll: float | None) -> Any:
    from gwm.rapi import RapiClient

    lags = []
    with RapiClient(
        sim.url, username="gwm", password="gwm", ca_file=sim.cert, check_hostname=False
    ) as client:
        for name in names:
            if name in stopped:
                job_id = client.startup_instance(name)
            else:
                job_id = client.shutdown_instance(name)
            if poll is None:
                client.wait_for_job(job_id, timeout=60)
            else:
                while str(client.get_job(job_id).status) not in {"success", "error", "canceled"}:
                    time.sleep(poll)
            lags.append(time.time() - _end_ts(sim.url, sim.cert, job_id))
    return summary(lags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=25)
    parser.add_argument("--accept", type=int, default=300, help="writes timed for (a)")
    parser.add_argument("--lag", type=int, default=30, help="jobs followed per method for (b)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json")
    args = parser.parse_args()

    with bench_django(args.db) as db, SimHost(1, args.nodes, args.instances) as host:
        from django.test import Client

        from gwm.embedded import start_embedded_workers
        from gwm.operations.models import Job
        from gwm.sync.rounds import run_due_tiers

        sim = host.clusters[0]
        cluster = register("bench", sim)
        run_due_tiers(cluster.pk, force=True)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {admin_token()}", HTTP_HOST="127.0.0.1")
        items = client.get("/api/v1/instances?fields=name,status&limit=1000").json()["items"]
        names = [item["name"] for item in items]
        stopped = {item["name"] for item in items if item["status"] == "STOPPED"}

        log(f"(a) {args.accept} writes, no workers running")
        accept = accept_latency(client, "bench", names[: args.accept])
        # Those jobs were never submitted; end them so their instances are free.
        Job.objects.all().update(status="CANCELED")
        from gwm.clusters.models import Instance

        Instance.objects.update(held_by_job=None)
        run_due_tiers(cluster.pk, force=True)

        workers = start_embedded_workers()
        try:
            pool = names[args.accept :]
            log(f"(b) {args.lag} jobs through gwm /wait")
            through_gwm = gwm_lag(client, sim, "bench", pool[: args.lag], stopped)
        finally:
            workers.stop()
        rest = pool[args.lag :]
        log(f"(b) {args.lag} jobs through RAPI /2/jobs/ID/wait")
        rapi_wait = rapi_lag(sim, rest[: args.lag], stopped, poll=None)
        log(f"(b) {args.lag} jobs polling GET /2/jobs/ID every second")
        rapi_poll = rapi_lag(sim, rest[args.lag : 2 * args.lag], stopped, poll=1.0)
        write_result(
            args.json,
            "ops",
            {
                "machine": machine_info(),
                "database": db.kind,
                "instances": args.instances,
                "accept": accept,
                "lag": {"gwm_wait": through_gwm, "rapi_wait": rapi_wait, "rapi_poll_1s": rapi_poll},
            },
        )


if __name__ == "__main__":
    main()
