"""A simulated cluster, registered and synced, with gwm's workers running in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.embedded import EmbeddedWorkers, start_embedded_workers
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, register


@dataclass
class Live:
    running: Running
    cluster: Cluster
    api: Client
    workers: EmbeddedWorkers

    def url(self, path: str) -> str:
        return f"/api/v1/clusters/{self.cluster.name}{path}"

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self.api.post(
            self.url(path),
            body if body is not None else {},
            content_type="application/json",
            headers=headers or None,
        )

    def action(self, instance: str, action: str, **params: Any) -> Any:
        return self.post(f"/instances/{instance}/actions", {"action": action, **params})

    def wait_done(self, job: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
        """Follow a job through /wait until it ends; returns its last state."""
        deadline = time.monotonic() + timeout
        current = job
        while current["status"] not in {"SUCCESS", "ERROR", "CANCELED"}:
            assert time.monotonic() < deadline, f"job did not end: {current}"
            answer = self.api.get(f"/api/v1/jobs/{job['id']}/wait?timeout=5")
            assert answer.status_code == 200, answer.content
            current = answer.json()["job"]
        return current

    def instance(self, name: str) -> dict[str, Any]:
        return self.api.get(self.url(f"/instances/{name}")).json()

    def sim_instance(self, name: str) -> Any:
        return self.running.sim.state.instances.get(name)

    def quiet(self) -> None:
        """No sync round from the workers' beat for an hour: what the cache shows
        afterwards was written by a job's end or by a round the test ran itself."""
        from datetime import timedelta

        from django.utils import timezone

        later = timezone.now() + timedelta(hours=1)
        Cluster.objects.filter(pk=self.cluster.pk).update(
            watch_interval=0,
            fast_interval=3600,
            runtime_interval=3600,
            slow_interval=3600,
            next_fast_at=later,
            next_runtime_at=later,
            next_slow_at=later,
        )
        # A round the beat started just before may still be reading Ganeti (and
        # would write what it read mid-test): wait until none holds the cluster.
        deadline = time.monotonic() + 30
        held = Cluster.objects.filter(pk=self.cluster.pk, lease_until__gt=timezone.now())
        while held.exclude(lease_owner="").exists():
            assert time.monotonic() < deadline, "a sync round kept running after quiet()"
            time.sleep(0.05)

    def running_names(self) -> list[str]:
        return sorted(n for n, i in self.running.sim.state.instances.items() if i.running_on)

    def stopped_names(self) -> list[str]:
        return sorted(n for n, i in self.running.sim.state.instances.items() if not i.running_on)


@pytest.fixture
def live(simulator, api: Client) -> Iterator[Live]:
    running = simulator(nodes=3, instances=12, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="sim", fast_interval=1.0, runtime_interval=2.0)
    full_sync(cluster)
    cluster.refresh_from_db()
    workers = start_embedded_workers()
    try:
        yield Live(running=running, cluster=cluster, api=api, workers=workers)
    finally:
        workers.stop()
        connections.close_all()
