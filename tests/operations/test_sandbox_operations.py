"""Operations through gwm's API against the real Ganeti 3.0 sandbox.

The sandbox is registered with its write user (operations, and Ganeti's
``/2/jobs/ID/wait`` that the tracker uses, need it), gwm's workers run
in-process, and every step goes through the HTTP API: create a diskless
instance, start, reboot, shutdown, rename, delete, each followed with
``/api/v1/jobs/{id}/wait`` until it ends. After each step gwm's cache must
already say what ``gnt-instance list`` says: the job's end re-reads what it
touched in the same transaction that marks it SUCCESS.

Each operation's lag from Ganeti's job end (``ganeti.ended_at``) to the
moment ``/wait`` answered SUCCESS is printed (``-s`` shows it), not bounded:
timing belongs in ``bench/`` (``bench/ops.py`` measures it side by side).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.clusters.services import registry
from gwm.embedded import EmbeddedWorkers, start_embedded_workers
from gwm.operations.models import Job
from gwm.rapi import RapiClient
from tests.sandbox import sandbox_env

pytestmark = [
    pytest.mark.ganeti,
    pytest.mark.xdist_group("ganeti"),
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "gwm-ops-1.ganeti.test"
RENAMED = "gwm-ops-2.ganeti.test"
DUPLICATE = "gwm-ops-3.ganeti.test"
STATUS = {"running": "RUNNING", "ADMIN_down": "STOPPED"}
FINAL = {"SUCCESS", "ERROR", "CANCELED"}


def _gnt(*argv: str) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "ganeti-sandbox"), "exec", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _gnt_instances(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``names`` as ``gnt-instance list`` sees them (others share the sandbox)."""
    out = _gnt(
        "gnt-instance",
        "list",
        "--no-headers",
        "--separator=|",
        "-o",
        "name,status,pnode,oper_state",
    )
    listed: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        name, status, pnode, oper_state = line.split("|")
        if name in names:
            listed[name] = {
                "status": status,
                "pnode": pnode,
                "oper_state": {"Y": True, "N": False}.get(oper_state, oper_state),
            }
    return listed


def _fake_started(name: str, exec_cmd: str = "exec") -> str:
    """When the fake hypervisor (re)started ``name``: the mtime of its file on the node.

    ``exec`` looks on node1, ``exec2`` on node2. A hard reboot rewrites the file.
    """
    return _gnt_on(exec_cmd, "stat", "-c", "%y", f"/run/ganeti/fake-hypervisor/{name}").strip()


def _gnt_on(exec_cmd: str, *argv: str) -> str:
    result = subprocess.run(
        [str(REPO / "scripts" / "ganeti-sandbox"), exec_cmd, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _rapi_client(env: dict[str, str]) -> RapiClient:
    return RapiClient(
        env["GWM_SANDBOX_RAPI_URL"],
        username=env["GWM_SANDBOX_WRITE_USER"],
        password=env["GWM_SANDBOX_WRITE_PASSWORD"],
        ca_file=env["GWM_SANDBOX_CA_FILE"],
    )


def _remove(client: RapiClient, names: tuple[str, ...]) -> None:
    """Delete those of ``names`` that Ganeti has, straight through RAPI."""
    for name in sorted(set(client.list_instances()) & set(names)):
        job = client.delete_instance(name, shutdown_timeout=0)
        final = client.wait_for_job(job, timeout=60)
        assert str(final.status) == "success", f"cleanup of {name}: {final}"


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@dataclass
class Step:
    name: str
    job: dict[str, Any]
    #: Ganeti's job end → /wait answered the final state (seconds).
    lag: float
    #: POST → /wait answered the final state (seconds).
    total: float


@dataclass
class Sandbox:
    env: dict[str, str]
    #: The instance names this test may create (and checks and removes).
    names: tuple[str, ...]
    cluster: Cluster
    api: Client
    rapi: RapiClient
    workers: EmbeddedWorkers
    steps: list[Step]

    def url(self, path: str = "") -> str:
        return f"/api/v1/clusters/{self.cluster.name}{path}"

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.post(self.url(path), body, content_type="application/json")

    def instance(self, name: str) -> Any:
        return self.api.get(self.url(f"/instances/{name}"))

    def run(self, name: str, response: Any, *, expect: str = "SUCCESS") -> dict[str, Any]:
        """A 202 answer's job, followed with /wait until it ends; its lag is recorded."""
        posted = time.monotonic()
        assert response.status_code == 202, response.content
        job = response.json()
        assert response["Location"] == f"/api/v1/jobs/{job['id']}"
        deadline = posted + 60
        while job["status"] not in FINAL:
            assert time.monotonic() < deadline, f"{name}: job did not end: {job}"
            answer = self.api.get(f"/api/v1/jobs/{job['id']}/wait?timeout=10")
            assert answer.status_code == 200, answer.content
            job = answer.json()["job"]
        seen_at, seen_mono = time.time(), time.monotonic()
        assert job["status"] == expect, (name, job["error"], job["last_error"])
        ganeti = job["ganeti"]
        assert ganeti["job_id"] and ganeti["ended_at"], job
        lag = seen_at - _seconds(ganeti["ended_at"])
        self.steps.append(Step(name, job, lag, seen_mono - posted))
        return job

    def reasons(self, job: dict[str, Any]) -> list[str]:
        ganeti_job = self.rapi.get_job(job["ganeti"]["job_id"])
        return [str(entry[1]) for op in ganeti_job.ops or [] for entry in op.get("reason") or []]

    def ganeti_op(self, job: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """The Ganeti job's summary and its first opcode, as Ganeti stored them."""
        ganeti_job = self.rapi.get_job(job["ganeti"]["job_id"])
        return list(ganeti_job.summary or []), dict((ganeti_job.ops or [{}])[0])

    def assert_cache_is_ganeti(self) -> dict[str, dict[str, Any]]:
        """gwm's cache says, right now, what ``gnt-instance list`` says about our names."""
        listed = _gnt_instances(self.names)
        for name in self.names:
            answer = self.instance(name)
            if name not in listed:
                assert answer.status_code == 404, (name, answer.json())
                continue
            assert answer.status_code == 200, (name, answer.content)
            cached, real = answer.json(), listed[name]
            assert cached["status"] == STATUS[real["status"]], (name, cached, real)
            assert cached["ganeti"]["status"] == real["status"], (name, cached, real)
            assert cached["ganeti"]["oper_state"] == real["oper_state"], (name, cached, real)
            assert cached["primary_node"] == real["pnode"], (name, cached, real)
        return listed


def _register(env: dict[str, str], fast_interval: float) -> Cluster:
    return registry.cluster_create(
        actor=None,
        name="sandbox",
        connection=registry.Connection(
            rapi_url=env["GWM_SANDBOX_RAPI_URL"],
            username=env["GWM_SANDBOX_WRITE_USER"],
            password=env["GWM_SANDBOX_WRITE_PASSWORD"],
            tls_ca_pem=Path(env["GWM_SANDBOX_CA_FILE"]).read_text(),
            tls_fingerprint="",
            tls_verify=True,
        ),
        # A long interval means gwm does not look meanwhile: the watch is off then too.
        intervals={
            "fast_interval": fast_interval,
            "runtime_interval": fast_interval,
            "watch_interval": 1.0 if fast_interval < 10 else 0.0,
        },
    )


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, api: Client) -> Iterator[Sandbox]:
    """The sandbox registered and synced, gwm's workers running; the test's instances removed.

    Parametrized indirectly with ``(instance names, sync interval in seconds)``. Tests
    use names of their own: under plain ``-n`` (no ``--dist loadgroup``) they run at once.
    """
    names, interval = request.param
    env = sandbox_env()
    rapi = _rapi_client(env)
    _remove(rapi, names)  # what an interrupted earlier run may have left

    def cleanup() -> None:
        try:
            _remove(rapi, names)
        finally:
            rapi.close()

    request.addfinalizer(cleanup)
    cluster = _register(env, interval)
    workers = start_embedded_workers()
    try:
        # The forced first sync (slow and runtime tiers); with a short interval also the
        # first watch of the job list, which takes in the whole Ganeti job queue as
        # foreign history: timings are then those of a cluster gwm already follows.
        tiers = ["runtime_synced_at", "watch_synced_at"] if interval < 10 else ["runtime_synced_at"]
        deadline = time.monotonic() + 60
        while None in Cluster.objects.filter(pk=cluster.pk).values_list(*tiers).get():
            assert time.monotonic() < deadline, "the first sync of the sandbox did not finish"
            time.sleep(0.05)
        cluster.refresh_from_db()
        assert cluster.status == "AVAILABLE", cluster.status
        sandbox = Sandbox(env, names, cluster, api, rapi, workers, [])
        yield sandbox
        if sandbox.steps:
            print(f"\n{request.node.name}: Ganeti job end → gwm /wait answers the end")
            for step in sandbox.steps:
                print(
                    f"  {step.name:<10} ganeti job {step.job['ganeti']['job_id']:>5}  "
                    f"lag {step.lag * 1000:6.0f} ms  POST→done {step.total * 1000:6.0f} ms"
                )
    finally:
        workers.stop()
        connections.close_all()


@pytest.mark.parametrize("sandbox", [((INSTANCE, RENAMED), 2.0)], ids=["ops"], indirect=True)
def test_instance_lifecycle_through_gwm(sandbox: Sandbox) -> None:
    node = sandbox.env["GWM_SANDBOX_NODE"]
    assert sandbox.assert_cache_is_ganeti() == {}

    created = sandbox.post(
        "/instances",
        {
            "name": INSTANCE,
            "disk_template": "diskless",
            "disks": [],
            "nics": [],
            "os": "noop",
            "pnode": node,
            "beparams": {"memory": 32},
            "name_check": False,
            "ip_check": False,
            "start": False,
        },
    )
    assert sandbox.instance(INSTANCE).json()["status"] in {"PROVISIONING", "STOPPED"}
    job = sandbox.run("create", created)
    assert f"gwm:op:{job['id']}" in sandbox.reasons(job)
    listed = sandbox.assert_cache_is_ganeti()
    assert listed[INSTANCE] == {"status": "ADMIN_down", "pnode": node, "oper_state": False}
    cached = sandbox.instance(INSTANCE).json()
    assert cached["os"] == "noop"
    assert cached["disk_template"] == "diskless"

    # each starts from the state before it: stopped, running, running
    for action, params, opcode, stored, before, ganeti_status in (
        ("start", {}, "INSTANCE_STARTUP", {}, "ADMIN_down", "running"),
        (
            "reboot",
            {"type": "hard"},
            "INSTANCE_REBOOT",
            {"reboot_type": "hard"},
            "running",
            "running",
        ),
        ("shutdown", {"timeout": 0}, "INSTANCE_SHUTDOWN", {"timeout": 0}, "running", "ADMIN_down"),
    ):
        assert sandbox.assert_cache_is_ganeti()[INSTANCE]["status"] == before, action
        started = _fake_started(INSTANCE) if action == "reboot" else None
        response = sandbox.post(f"/instances/{INSTANCE}/actions", {"action": action, **params})
        job = sandbox.run(action, response)
        assert job["action"] == f"instance.{action}"
        assert f"gwm:op:{job['id']}" in sandbox.reasons(job)
        # Ganeti ran the opcode gwm meant, with gwm's parameters (a reboot changes no state)
        summary, op = sandbox.ganeti_op(job)
        assert summary == [f"{opcode}({INSTANCE})"], action
        assert {key: op.get(key) for key in stored} == stored, (action, op)
        assert sandbox.assert_cache_is_ganeti()[INSTANCE]["status"] == ganeti_status
        if started is not None:  # the hard reboot really stopped and started it again
            assert _fake_started(INSTANCE) != started

    # Ganeti renames only a stopped instance; the names resolve nowhere.
    response = sandbox.post(
        f"/instances/{INSTANCE}/actions",
        {"action": "rename", "new_name": RENAMED, "name_check": False, "ip_check": False},
    )
    job = sandbox.run("rename", response)
    assert f"gwm:op:{job['id']}" in sandbox.reasons(job)
    listed = sandbox.assert_cache_is_ganeti()
    assert set(listed) == {RENAMED}
    assert listed[RENAMED]["status"] == "ADMIN_down"

    job = sandbox.run("delete", sandbox.api.delete(sandbox.url(f"/instances/{RENAMED}")))
    assert f"gwm:op:{job['id']}" in sandbox.reasons(job)
    assert sandbox.assert_cache_is_ganeti() == {}

    # gwm's own Ganeti jobs are in its history once each, never again as foreign.
    ganeti_ids = [step.job["ganeti"]["job_id"] for step in sandbox.steps]
    rows = Job.objects.filter(cluster=sandbox.cluster, ganeti_job_id__in=ganeti_ids)
    assert sorted(rows.values_list("ganeti_job_id", flat=True)) == sorted(ganeti_ids)
    assert not rows.filter(foreign=True).exists()


@pytest.mark.parametrize("sandbox", [((DUPLICATE,), 120.0)], ids=["slow-sync"], indirect=True)
def test_a_ganeti_side_failure_is_reported(sandbox: Sandbox) -> None:
    """Ganeti refuses a create whose name it already has: the job ends ERROR with its code."""
    node = sandbox.env["GWM_SANDBOX_NODE"]
    # Made behind gwm's back; its next sync round is far away, so gwm does not know yet.
    made = sandbox.rapi.create_instance(
        DUPLICATE,
        disk_template="diskless",
        disks=[],
        nics=[],
        os_type="noop",
        pnode=node,
        beparams={"memory": 32},
        name_check=False,
        ip_check=False,
        start=False,
    )
    assert str(sandbox.rapi.wait_for_job(made, timeout=60).status) == "success"
    assert sandbox.instance(DUPLICATE).status_code == 404

    body = {
        "name": DUPLICATE,
        "disk_template": "diskless",
        "disks": [],
        "nics": [],
        "os": "noop",
        "pnode": node,
        "beparams": {"memory": 32},
        "name_check": False,
        "ip_check": False,
        "start": True,
    }
    job = sandbox.run("create-dup", sandbox.post("/instances", body), expect="ERROR")
    assert job["error"]["code"] == "already_exists", job["error"]
    assert DUPLICATE in job["error"]["message"]
    assert job["ganeti"]["status"] == "error"
    assert f"gwm:op:{job['id']}" in sandbox.reasons(job)
    # The failed job's end re-read the name: gwm now shows Ganeti's (stopped) instance.
    listed = sandbox.assert_cache_is_ganeti()
    assert listed == {DUPLICATE: {"status": "ADMIN_down", "pnode": node, "oper_state": False}}

    # Now that gwm knows the name, it refuses the create itself.
    again = sandbox.post("/instances", body)
    assert again.status_code == 409, again.content
    assert again.json()["code"] == "name_taken"
    assert Job.objects.filter(resource_name=DUPLICATE, foreign=False).count() == 1
