"""Transient RAPI failures while gwm follows a job: it still ends right, and only once in Ganeti.

The job is in Ganeti and running when RAPI starts answering 502 or 503 (the
simulator's fault injection) or stops accepting connections (a TCP relay in
front of the simulator is closed: connection refused, while Ganeti itself runs
on). Ganeti finishes the job during the outage; gwm must still see how it
ended once RAPI is back, without submitting it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.clusters.services import registry
from gwm.embedded import start_embedded_workers
from gwm.simulator.server import Running
from tests.clusters.helpers import connection_for, full_sync
from tests.conftest import sim_admin
from tests.operations.conftest import Live
from tests.operations.distributed import until

pytestmark = pytest.mark.django_db(transaction=True)

MARK = "gwm:op:"


class Relay:
    """A TCP relay to the simulator that can refuse connections (down) and accept again (up)."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Nothing listens any more (connection refused); open connections are cut."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            self._close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._close(client)
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@dataclasses.dataclass
class Tracked(Live):
    relay: Relay | None = None


@pytest.fixture
def tracked(simulator: Any, api: Client) -> Iterator[Tracked]:
    """A cluster reached through the relay, synced once; only the job's tracker talks to RAPI."""
    running: Running = simulator(nodes=3, instances=12, time_scale=0.05, wait_timeout=1.0)
    relay = Relay(int(running.url.rsplit(":", 1)[1]))
    connection = dataclasses.replace(
        connection_for(running), rapi_url=f"https://127.0.0.1:{relay.port}"
    )
    cluster = registry.cluster_create(
        actor=None,
        name="sim",
        connection=connection,
        intervals={"fast_interval": 600.0, "runtime_interval": 600.0, "slow_interval": 600.0},
    )
    full_sync(cluster)
    cluster.refresh_from_db()
    workers = start_embedded_workers()
    try:
        yield Tracked(running=running, cluster=cluster, api=api, workers=workers, relay=relay)
    finally:
        workers.stop()
        relay.down()
        connections.close_all()


def _ganeti_jobs_for(running: Running, job_id: int) -> list[Any]:
    marker = f"{MARK}{job_id}"
    return [
        job
        for job in list(running.sim.queue.jobs.values())
        if any(str(entry[1]) == marker for op in job.ops for entry in op.input.get("reason", []))
    ]


def _job(live: Any, job_id: int) -> dict[str, Any]:
    return dict(live.api.get(f"/api/v1/jobs/{job_id}").json())


def _start_running_job(live: Tracked, *, fail: bool) -> tuple[str, dict[str, Any], int]:
    name = live.stopped_names()[0]
    # 100 s of Ganeti time: 5 s here, so the outage begins while it runs.
    sim_admin(live.running, "PUT", "config", {"op_seconds": {"OP_INSTANCE_STARTUP": 100}})
    if fail:
        sim_admin(
            live.running,
            "POST",
            "job-failures",
            {"opcode": "OP_INSTANCE_STARTUP", "message": "Could not start instance: boom"},
        )
    response = live.action(name, "start")
    assert response.status_code == 202, response.content
    job = response.json()
    current = until(
        lambda: (j := _job(live, job["id"]))["ganeti"]["status"] == "running" and j,
        timeout=20,
        what="gwm to see the job running",
    )
    return name, current, int(current["ganeti"]["job_id"])


@pytest.mark.parametrize("fault", ["502", "503", "refused"])
@pytest.mark.parametrize("fail", [False, True], ids=["succeeds", "fails-in-ganeti"])
def test_rapi_outage_while_tracking_still_ends_right_once(
    tracked: Tracked, fault: str, fail: bool
) -> None:
    name, job, gid = _start_running_job(tracked, fail=fail)
    sim = tracked.running.sim
    assert tracked.relay is not None
    errors_before = sum(sim.stats.by_status.get(code, 0) for code in (502, 503))

    if fault == "refused":
        tracked.relay.down()
    else:
        sim_admin(
            tracked.running, "PUT", "faults", {"force_status": int(fault), "force_count": None}
        )
        until(
            lambda: sim.stats.by_status.get(int(fault), 0) > errors_before,
            timeout=15,
            what=f"the tracker to meet a {fault}",
        )
    try:
        # Ganeti finishes the job while gwm cannot hear it.
        until(lambda: sim.queue.jobs[gid].finalized, timeout=20, what="Ganeti to end the job")
        assert _job(tracked, job["id"])["status"] == "RUNNING"
    finally:
        if fault == "refused":
            tracked.relay.up()
        else:
            sim_admin(tracked.running, "DELETE", "faults")

    done = tracked.wait_done(job, timeout=60)

    expected = "ERROR" if fail else "SUCCESS"
    assert sim.queue.jobs[gid].status == expected.lower()
    assert done["status"] == expected, done
    assert done["ganeti"]["job_id"] == gid
    assert done["attempts"] == 1  # submitted once; only following it failed
    assert len(_ganeti_jobs_for(tracked.running, job["id"])) == 1
    if fail:
        assert "boom" in done["error"]["message"]
        assert tracked.instance(name)["status"] == "STOPPED"
    else:
        assert done["error"] is None
        assert tracked.instance(name)["status"] == "RUNNING"
