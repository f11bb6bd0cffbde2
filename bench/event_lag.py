"""Issue 10: how soon a change in Ganeti reaches a consumer, on the stream and at a webhook.

One simulated cluster (``bench.simhost``, time scale 1: jobs take as long as on
the measured Ganeti 3.0 cluster), registered in gwm; one ``gwm serve`` process
(uvicorn + embedded workers: sync scheduler, job tracking, webhook delivery, at
their default intervals); one SSE client and one webhook receiver in this
process, each noting when every event arrived. Three kinds of change:

- ``gwm job``: ``POST .../instances/{i}/actions`` start/shutdown through gwm;
  from the Ganeti job's ``end_ts`` to ``job.succeeded`` (and to the instance's
  ``instance.status_changed`` caused by that job);
- ``outside (gnt)``: the same done on the master (``/__sim__/exec``
  ``gnt-instance shutdown``/``startup``: a job gwm did not submit); from its
  ``end_ts`` to the instance's ``instance.status_changed`` (gwm learns of it
  from its sync rounds);
- ``outside (crash)``: the instance stops without any job
  (``/__sim__/instances/{i}/crash``); from that call to ``instance.status_changed``
  (``ERROR``: only the runtime sweep can see it).

Each lag is also split at the event's ``time`` (when gwm wrote the change):
before it is gwm learning of the change, after it the tracker delivering it.
The real Ganeti sandbox is not used here.

    python -m bench.event_lag --jobs 20 --outside 10 --crashes 5 --json /tmp/lag.json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.common import (
    SimCluster,
    SimHost,
    admin_token,
    bench_django,
    log,
    machine_info,
    register,
    server_env,
    summary,
    write_result,
)
from bench.sse_fanout import start_gwm, stop_gwm

Arrival = tuple[float, dict[str, Any]]  # (when it arrived here, the event)


class Seen:
    """Events as they arrive through one door, by id; waiters look for one that matches."""

    def __init__(self) -> None:
        self.events: dict[str, Arrival] = {}
        self.changed = threading.Condition()

    def add(self, event: dict[str, Any], when: float) -> None:
        with self.changed:
            self.events.setdefault(event["id"], (when, event))
            self.changed.notify_all()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> Arrival:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for arrival in self.events.values():
                    if wanted(arrival[1]):
                        return arrival
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the event did not come")
                self.changed.wait(left)


def follow_stream(base: str, token: str, seen: Seen) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(10.0, read=None)
    with (
        httpx.Client(base_url=base, headers=headers, timeout=timeout) as client,
        client.stream("GET", "/api/v1/changes/stream") as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if "seq" in event:
                    seen.add(event, time.time())


def receive_webhooks(seen: Seen) -> ThreadingHTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # http.server's name for it
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.add(json.loads(body), time.time())
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["time"]).timestamp()


def _end_ts(sim: SimCluster, job_id: int) -> float:
    job = httpx.get(
        f"{sim.url}/2/jobs/{job_id}", auth=("gwm", "gwm"), verify=sim.cert, timeout=30
    ).json()
    seconds, micros = job["end_ts"]
    return float(seconds + micros / 1e6)


def _instance_event(name: str, status: str, job: int | None = None) -> Callable[..., bool]:
    def wanted(event: dict[str, Any]) -> bool:
        return (
            event["type"] == "instance.status_changed"
            and event["resource"]["name"] == name
            and (event.get("changes", {}).get("status") or {}).get("after") == status
            and (job is None or event["cause"]["job"] == job)
        )

    return wanted


def _job_end(job_id: int) -> Callable[..., bool]:
    def wanted(event: dict[str, Any]) -> bool:
        return bool(event["type"] == "job.succeeded" and event["resource"]["name"] == str(job_id))

    return wanted


class Lags:
    def __init__(self, doors: dict[str, Seen]) -> None:
        self.doors = doors
        self.total: dict[str, list[float]] = {}
        self.after_write: dict[str, list[float]] = {}

    def note(self, what: str, since: float, wanted: Callable[..., bool]) -> None:
        for door, seen in self.doors.items():
            when, event = seen.wait_for(wanted, timeout=120)
            self.total.setdefault(f"{what} → {door}", []).append(when - since)
            self.after_write.setdefault(f"{what} → {door}", []).append(when - _stamp(event))

    def report(self) -> dict[str, Any]:
        return {
            key: {"total": summary(values), "after_gwm_wrote_it": summary(self.after_write[key])}
            for key, values in self.total.items()
        }


def run(args: argparse.Namespace, gwm: httpx.Client, sim: SimCluster, lags: Lags) -> None:
    items = gwm.get("/api/v1/instances?fields=name,status&limit=1000").json()["items"]
    pool = [item for item in items if item["status"] in ("RUNNING", "STOPPED")]
    needed = args.jobs + args.outside + args.crashes
    if len(pool) < needed:
        raise SystemExit(f"the simulator has {len(pool)} usable instances, {needed} needed")
    flip = {"RUNNING": ("shutdown", "STOPPED"), "STOPPED": ("startup", "RUNNING")}

    log(f"{args.jobs} gwm jobs")
    for item in pool[: args.jobs]:
        command, after = flip[item["status"]]
        action = "start" if command == "startup" else "shutdown"
        path = f"/api/v1/clusters/bench/instances/{item['name']}/actions"
        job = gwm.post(path, json={"action": action}).json()
        lags.doors["stream"].wait_for(_job_end(job["id"]), timeout=120)
        detail = gwm.get(f"/api/v1/jobs/{job['id']}").json()
        ended = _end_ts(sim, detail["ganeti"]["job_id"])
        lags.note(
            "gwm job end → job.succeeded",
            ended,
            _job_end(job["id"]),
        )
        lags.note(
            "gwm job end → instance.status_changed",
            ended,
            _instance_event(item["name"], after, job["id"]),
        )

    log(f"{args.outside} changes made on the master (gnt-instance)")
    for item in pool[args.jobs : args.jobs + args.outside]:
        command, after = flip[item["status"]]
        answer = httpx.post(
            f"{sim.url}/__sim__/exec",
            json={"client": "gnt-instance", "command": command, "name": item["name"]},
            verify=sim.cert,
            timeout=30,
        ).json()
        lags.doors["stream"].wait_for(_instance_event(item["name"], after), timeout=120)
        ended = _end_ts(sim, answer["job_id"])
        lags.note(
            "gnt job end → instance.status_changed", ended, _instance_event(item["name"], after)
        )

    log(f"{args.crashes} crashes (no job)")
    for item in pool[args.jobs + args.outside : needed]:
        if item["status"] != "RUNNING":
            continue
        crashed = time.time()
        sim.admin("POST", f"instances/{item['name']}/crash")
        lags.note(
            "crash → instance.status_changed", crashed, _instance_event(item["name"], "ERROR")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--outside", type=int, default=10)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()

    with (
        bench_django(args.db) as db,
        SimHost(1, args.nodes, args.instances, seed=3) as host,
    ):
        from django.db import connections

        from gwm.sync.rounds import run_due_tiers

        sim = host.clusters[0]
        run_due_tiers(register("bench", sim).pk, force=True)
        token = admin_token()
        connections.close_all()
        env = server_env(db)
        env["GWM_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
        proc, base = start_gwm(env, what_if=False)
        receiver = receive_webhooks(seen_hook := Seen())
        try:
            gwm = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            url = f"http://127.0.0.1:{receiver.server_address[1]}/gwm"
            assert gwm.post("/api/v1/webhooks", json={"url": url}).status_code == 201
            seen_stream = Seen()
            threading.Thread(
                target=follow_stream, args=(base, token, seen_stream), daemon=True
            ).start()
            time.sleep(1.0)
            lags = Lags({"stream": seen_stream, "webhook": seen_hook})
            run(args, gwm, sim, lags)
            report = lags.report()
        finally:
            stop_gwm(proc)
            receiver.shutdown()
        write_result(
            args.json,
            "event_lag",
            {
                "machine": machine_info(),
                "database": db.describe(),
                "instances": args.instances,
                "nodes": args.nodes,
                "lags": report,
            },
        )


if __name__ == "__main__":
    main()
