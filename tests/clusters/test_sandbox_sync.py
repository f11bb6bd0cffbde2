"""gwm mirrors the real Ganeti 3.0 sandbox and follows changes made with gnt-instance."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from gwm.clusters.models import Cluster, Instance, Node
from gwm.clusters.services import registry
from gwm.embedded import start_embedded_workers
from gwm.rapi import RapiClient
from tests.sandbox import sandbox_env

pytestmark = [
    pytest.mark.ganeti,
    pytest.mark.xdist_group("ganeti"),
    pytest.mark.django_db(transaction=True),
]

INSTANCE = "gwm-sync-1.ganeti.test"
REPO = Path(__file__).resolve().parents[2]


def _gnt(*argv: str) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "ganeti-sandbox"), "exec", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def _wait(predicate, timeout: float, step: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture
def sandbox_instance():
    env = sandbox_env()
    client = RapiClient(
        env["GWM_SANDBOX_RAPI_URL"],
        username=env["GWM_SANDBOX_WRITE_USER"],
        password=env["GWM_SANDBOX_WRITE_PASSWORD"],
        ca_file=env["GWM_SANDBOX_CA_FILE"],
    )
    if INSTANCE in client.list_instances():
        client.wait_for_job(client.delete_instance(INSTANCE), timeout=60)
    job = client.create_instance(
        INSTANCE,
        disk_template="diskless",
        disks=[],
        nics=[],
        os_type="noop",
        pnode=env["GWM_SANDBOX_NODE"],
        beparams={"memory": 32},
        name_check=False,
        ip_check=False,
        start=True,
    )
    assert client.wait_for_job(job, timeout=60).status == "success"
    yield env
    client.wait_for_job(client.delete_instance(INSTANCE), timeout=60)
    client.close()


def test_sandbox_is_mirrored_and_gnt_instance_stop_arrives(sandbox_instance) -> None:
    env = sandbox_instance
    fast_interval = 2.0
    cluster = registry.cluster_create(
        actor=None,
        name="sandbox",
        connection=registry.Connection(
            rapi_url=env["GWM_SANDBOX_RAPI_URL"],
            username=env["GWM_SANDBOX_READ_USER"],
            password=env["GWM_SANDBOX_READ_PASSWORD"],
            tls_ca_pem=Path(env["GWM_SANDBOX_CA_FILE"]).read_text(),
            tls_fingerprint="",
            tls_verify=True,
        ),
        intervals={"fast_interval": fast_interval, "runtime_interval": 30.0},
    )
    workers = start_embedded_workers()
    try:
        # The first forced sync: the full read, then the runtime sweep.
        _wait(lambda: Cluster.objects.get(pk=cluster.pk).runtime_synced_at is not None, 60)
        cluster.refresh_from_db()
        assert cluster.status == "AVAILABLE"
        assert cluster.ganeti_name == env["GWM_SANDBOX_CLUSTER_NAME"]
        assert cluster.software_version.startswith("3.0")
        nodes = {n.name: n for n in Node.objects.filter(cluster=cluster)}
        assert set(nodes) == {env["GWM_SANDBOX_NODE"], env["GWM_SANDBOX_NODE2"]}
        node = nodes[env["GWM_SANDBOX_NODE"]]
        assert node.role == "M"
        assert nodes[env["GWM_SANDBOX_NODE2"]].role == "C"
        for each in nodes.values():
            assert each.status == "ONLINE", each.name
            assert each.memory_total, each.name
        instance = Instance.objects.get(cluster=cluster, name=INSTANCE)
        assert instance.status == "RUNNING"
        assert instance.ganeti_status == "running"
        assert instance.os == "noop"
        assert instance.disk_template == "diskless"
        assert instance.primary_node == node.name

        _gnt("gnt-instance", "stop", INSTANCE)
        stopped_at = time.monotonic()
        _wait(
            lambda: Instance.objects.get(cluster=cluster, name=INSTANCE).status == "STOPPED",
            fast_interval + 15,
        )
        lag = time.monotonic() - stopped_at
        instance.refresh_from_db()
        assert instance.ganeti_status == "ADMIN_down"
        assert instance.admin_state == "down"
        # The watch reads the job list every second; room left for a loaded CI machine.
        assert lag <= fast_interval + 3.0, f"gwm followed gnt-instance stop after {lag:.2f} s"
    finally:
        workers.stop()
