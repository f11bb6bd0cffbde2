"""Issue 10: how many webhook deliveries one worker sends per second, signed, to a loopback
receiver.

One worker is this process running gwm's own pipeline
(gwm.events.webhooks.fanout.fanout, then gwm.events.webhooks.deliver.deliver_due: its
pool of sender threads sharing one keep-alive client), as the
``events.deliver_webhooks`` task does. The receiver is another process (stdlib
``ThreadingHTTPServer``, HTTP/1.1 keep-alive, 204), which checks every
Standard Webhooks signature with its own HMAC code (``--no-verify`` to skip)
and counts what it got.

Each case writes ``--events`` changes in one transaction (instances spread
over ``resources`` names, so the per-resource ordering allows that many
deliveries in flight), then measures:

- fan-out: deliveries queued per second (the log read once, matched, rendered,
  inserted with the cursors moved);
- delivery: deliveries per second from the first claim to the last recorded
  outcome (claim, sign, POST, answer, record);
- round: both together from the commit, as the task runs them (deliver_round).

Target: ≥ 500 deliveries per second from one worker.

    python -m bench.webhook_throughput --events 5000 --json /tmp/webhooks.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, bench_django, log, machine_info, write_result

RECEIVER = r"""
import base64, hashlib, hmac, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

keys = [base64.b64decode(s.removeprefix("whsec_")) for s in sys.argv[1].split()]
verify = sys.argv[2] == "verify"
counts = {"ok": 0, "bad": 0}
lock = threading.Lock()

class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        good = True
        if verify:
            signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode()
            offered = [e.partition(",")[2] for e in self.headers["webhook-signature"].split()]
            digests = [base64.b64encode(hmac.new(k, signed + body, hashlib.sha256).digest())
                       .decode() for k in keys]
            good = any(hmac.compare_digest(o, d) for o in offered for d in digests)
        with lock:
            counts["ok" if good else "bad"] += 1
        self.send_response(204 if good else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
print(counts["ok"], counts["bad"], flush=True)
"""


class Receiver:
    def __init__(self, secrets: list[str], verify: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RECEIVER, " ".join(secrets), "verify" if verify else "no"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().strip()}/gwm"

    def stop(self) -> tuple[int, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        ok, bad = (int(x) for x in self.proc.stdout.readline().split())
        self.proc.wait(timeout=10)
        return ok, bad


def _changes(cluster: Any, events: int, resources: int) -> None:
    from django.db import transaction

    from gwm.events.services import ChangeRecord, changes_record

    with transaction.atomic():
        changes_record(
            cluster_id=cluster.pk,
            cluster_name=cluster.name,
            records=[
                ChangeRecord(
                    "instance", f"vm{n % resources}", "updated", ["status"], {"status": "STOPPED"}
                )
                for n in range(events)
            ],
        )


def one_case(
    owner: Any, cluster: Any, *, events: int, resources: int, verify: bool, webhooks: int
) -> dict[str, Any]:
    from gwm.events.models import Delivery, Webhook
    from gwm.events.webhooks import services
    from gwm.events.webhooks.deliver import deliver_due
    from gwm.events.webhooks.fanout import fanout
    from gwm.events.webhooks.rounds import deliver_round

    Webhook.objects.all().delete()
    made = [
        services.webhook_create(actor=owner, url="http://127.0.0.1:9/", description=f"bench {i}")
        for i in range(webhooks)
    ]
    receiver = Receiver([hook.secrets[0]["secret"] for hook in made], verify)
    try:
        Webhook.objects.update(url=receiver.url)
        total = events * webhooks
        _changes(cluster, events, resources)
        started = time.perf_counter()
        while fanout():
            pass
        fan_seconds = time.perf_counter() - started
        assert Delivery.objects.filter(status="pending").count() == total
        started = time.perf_counter()
        sent = 0
        while sent < total:
            sent += deliver_due()
        deliver_seconds = time.perf_counter() - started
        delivered = Delivery.objects.filter(status="delivered").count()

        # The same again as the task runs it: fan-out and delivery interleaved from the commit.
        Delivery.objects.all().delete()
        _changes(cluster, events, resources)
        started = time.perf_counter()
        while Delivery.objects.filter(status="delivered").count() < total:
            deliver_round(budget=30.0)
        round_seconds = time.perf_counter() - started
    finally:
        ok, bad = receiver.stop()
    return {
        "events": events,
        "webhooks": webhooks,
        "resources": resources,
        "receiver_verifies": verify,
        "deliveries": total,
        "delivered": delivered,
        "receiver_ok": ok,
        "receiver_bad_signatures": bad,
        "fanout_per_second": round(total / fan_seconds),
        "deliveries_per_second": round(total / deliver_seconds),
        "round_per_second": round(total / round_seconds),
        "seconds": {
            "fanout": round(fan_seconds, 2),
            "deliver": round(deliver_seconds, 2),
            "round": round(round_seconds, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--no-verify", action="store_true", help="the receiver checks nothing")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ["GWM_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"
    os.chdir(ROOT)

    with bench_django(args.db) as db:
        from django.contrib.auth.models import User

        from gwm.clusters.models import Cluster

        owner = User.objects.create_superuser("bench", "bench@localhost", "bench-password-1")
        cluster = Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")
        verify = not args.no_verify
        cases = [
            {"resources": 1000, "webhooks": 1},
            {"resources": 10, "webhooks": 1},
            {"resources": 1000, "webhooks": 10, "events": max(args.events // 10, 1)},
        ]
        results = []
        for case in cases:
            events = int(case.pop("events", args.events))
            log(f"{events} events x {case['webhooks']} webhooks over {case['resources']} resources")
            results.append(one_case(owner, cluster, events=events, verify=verify, **case))
            log(str(results[-1]))
        write_result(
            args.json,
            "webhook_throughput",
            {"machine": machine_info(), "database": db.describe(), "cases": results},
        )


if __name__ == "__main__":
    main()
