"""Simulators served over real HTTPS for the tests (one per test, fast knobs)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gwm.simulator import Running, SimConfig, Simulator, generate_cluster, serve_in_thread

WRITER = ("gwm", "gwm")
READER = ("reader", "reader")


class Sim:
    """A running simulator plus clients for it."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.sim = running.sim
        verify: ssl.SSLContext | bool = False
        if running.cert_path is not None:
            # pin the simulator's own certificate, as gwm pins a cluster's
            verify = ssl.create_default_context(cafile=str(running.cert_path))
        self.client = httpx.Client(base_url=running.url, verify=verify, auth=WRITER, timeout=30)
        self.reader = httpx.Client(base_url=running.url, verify=verify, auth=READER, timeout=30)
        self.anon = httpx.Client(base_url=running.url, verify=verify, timeout=30)

    def close(self) -> None:
        for c in (self.client, self.reader, self.anon):
            c.close()
        self.running.stop()

    # ---- helpers -------------------------------------------------------
    def wait_job(self, job_id: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/2/jobs/{job_id}").json()
            if job["status"] in ("success", "error", "canceled"):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']}")
            time.sleep(0.01)

    def run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Submit a job through RAPI and wait for its end."""
        response = self.client.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        return self.wait_job(response.json())

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/__sim__{path}", **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def instance(self, name: str) -> dict[str, Any]:
        return self.client.get(f"/2/instances/{name}").json()

    def first_instance(self, status: str = "running") -> str:
        rows = self.client.put(
            "/2/query/instance", json={"fields": ["name", "status"], "qfilter": None}
        ).json()["data"]
        return next(row[0][1] for row in rows if row[1][1] == status)


def make_sim(
    *,
    nodes: int = 3,
    instances: int = 12,
    tls: bool = True,
    seed: int = 1,
    **config: Any,
) -> Sim:
    settings: dict[str, Any] = {"time_scale": 0.02, "wait_timeout": 1.0}
    settings.update(config)
    state = generate_cluster(nodes=nodes, instances=instances, seed=seed)
    running = serve_in_thread(Simulator(state, SimConfig(**settings)), tls=tls)
    return Sim(running)


@pytest.fixture
def sim() -> Iterator[Sim]:
    s = make_sim()
    yield s
    s.close()


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., Sim]]:
    made: list[Sim] = []

    def factory(**kwargs: Any) -> Sim:
        s = make_sim(**kwargs)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()
