"""Registering simulated clusters and running sync rounds the way the worker does."""

from __future__ import annotations

import time
from typing import Any

from gwm.clusters.models import Cluster
from gwm.clusters.services import registry
from gwm.simulator.server import Running
from gwm.sync.rounds import run_due_tiers


def connection_for(running: Running, *, password: str = "gwm") -> registry.Connection:
    assert running.cert_path is not None
    return registry.Connection(
        rapi_url=running.url,
        username="gwm",
        password=password,
        tls_ca_pem=running.cert_path.read_text(),
        tls_fingerprint="",
        tls_verify=True,
    )


def registration_body(running: Running, **overrides: Any) -> dict[str, Any]:
    """A POST /api/v1/clusters body for a simulated cluster, with ``overrides``."""
    assert running.cert_path is not None
    body: dict[str, Any] = {
        "name": "c1",
        "rapi_url": running.url,
        "username": "gwm",
        "password": "gwm",
        "tls_ca_pem": running.cert_path.read_text(),
    }
    body.update(overrides)
    return body


def register(running: Running, name: str = "sim", **intervals: Any) -> Cluster:
    return registry.cluster_create(
        actor=None, name=name, connection=connection_for(running), intervals=intervals or None
    )


def full_sync(cluster: Cluster) -> list[str]:
    """Every tier now, as a forced sync does."""
    return run_due_tiers(cluster.pk, force=True)


def fast_round(cluster: Cluster) -> list[str]:
    """Only the fast tier: make it due and the others not."""
    from django.utils import timezone

    later = timezone.now() + timezone.timedelta(hours=1)
    Cluster.objects.filter(pk=cluster.pk).update(
        next_fast_at=None, next_slow_at=later, next_runtime_at=later
    )
    return run_due_tiers(cluster.pk)


def runtime_sweep(cluster: Cluster) -> list[str]:
    from django.utils import timezone

    now = timezone.now()
    later = now + timezone.timedelta(hours=1)
    Cluster.objects.filter(pk=cluster.pk).update(
        next_fast_at=later, next_slow_at=later, next_runtime_at=now
    )
    return run_due_tiers(cluster.pk)


def wait_for_jobs(running: Running, timeout: float = 10.0) -> None:
    """Until the simulator's job queue has nothing pending or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(job.finalized for job in running.sim.queue.jobs.values()):
            return
        time.sleep(0.02)
    raise AssertionError("simulated jobs did not finish")


def gnt(running: Running, client: str, command: str, name: str, **params: Any) -> int:
    """Run a command "outside gwm", as gnt-* on the master would, and wait for its job."""
    from tests.conftest import sim_admin

    body: dict[str, Any] = {"client": client, "command": command, "name": name}
    if params:
        body["params"] = params
    job_id = sim_admin(running, "POST", "exec", body)["job_id"]
    wait_for_jobs(running)
    return int(job_id)
