"""gwm against the real two-node Ganeti 3.0 sandbox: moves, node states, outside changes.

The sandbox (``scripts/ganeti-sandbox``) has two nodes, node1 (the master)
and node2, sharing ``/srv/ganeti/shared-file-storage``, so ``sharedfile``
instances really migrate, fail over and are evacuated. Every operation goes
through gwm's HTTP API with gwm's workers in-process and is followed with
``/api/v1/jobs/{id}/wait``; after each one gwm's cache, read through gwm's
API, must say what ``gnt-instance list`` / ``gnt-node list`` say. Every step
starts from a state the operation changes (the instance is on node1 before
it migrates, RUNNING before it shuts down, the node ONLINE before it drains).

Node states are put back (online, undrained, master candidate) when a test
ends, whatever happened. Changes made with ``gnt-*`` behind gwm's back arrive
through gwm's fast sync rounds, which its CPU budget stretches (up to
``ARRIVAL``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.embedded import start_embedded_workers
from gwm.operations.models import Job
from gwm.rapi import RapiClient
from tests.operations.test_sandbox_operations import (  # noqa: F401  (sandbox: a fixture)
    STATUS,
    Sandbox,
    _fake_started,
    _gnt,
    _rapi_client,
    _remove,
    sandbox,
)
from tests.sandbox import sandbox_env

pytestmark = [
    pytest.mark.ganeti,
    pytest.mark.xdist_group("ganeti"),
    pytest.mark.django_db(transaction=True),
]

MOVED = "gwm-2n-move.ganeti.test"
MOVED_RENAMED = "gwm-2n-moved.ganeti.test"
EVACUEE = "gwm-2n-evac.ganeti.test"
OUTSIDE = ("gwm-2n-out-1.ganeti.test", "gwm-2n-out-2.ganeti.test")
IMPORTED = ("gwm-2n-imp-1.ganeti.test", "gwm-2n-imp-2.ganeti.test")
REFUSED = "gwm-2n-refused.ganeti.test"
RENAMED = ("gwm-2n-ren-1.ganeti.test", "gwm-2n-ren-2.ganeti.test")
STRANDED = "gwm-2n-stranded.ganeti.test"
#: gwm's status for what gnt-instance list shows (docs/status-model.md)
GWM_STATUS = {**STATUS, "ERROR_nodeoffline": "ERROR", "ERROR_nodedown": "ERROR"}
#: How long a change made with gnt-* on the master may take to reach gwm: fast rounds
#: (fast_interval 2 s) are stretched to cost ≤ 1 % CPU, 10-20 s apart on a loaded machine.
ARRIVAL = 60.0


# ---- what Ganeti says ------------------------------------------------------------------


def gnt_instances(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``names`` as ``gnt-instance list`` sees them (other suites share the sandbox)."""
    out = _gnt(
        "gnt-instance",
        "list",
        "--no-headers",
        "--separator=|",
        "-o",
        "name,status,pnode,oper_state,be/maxmem,disk_template",
    )
    listed: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        name, status, pnode, oper_state, memory, template = line.split("|")
        if name in names:
            listed[name] = {
                "status": status,
                "pnode": pnode,
                # "?": Ganeti cannot know (the node is offline or does not answer)
                "oper_state": {"Y": True, "N": False, "?": None}.get(oper_state, oper_state),
                "memory": int(memory),
                "disk_template": template,
            }
    return listed


def gnt_nodes() -> dict[str, dict[str, Any]]:
    """Every node as ``gnt-node list`` sees it."""
    out = _gnt(
        "gnt-node",
        "list",
        "--no-headers",
        "--separator=|",
        "-o",
        "name,drained,offline,role,master_candidate,pip,pinst_list",
    )
    nodes: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        name, drained, offline, role, candidate, pip, pinst = line.split("|")
        nodes[name] = {
            "drained": drained == "Y",
            "offline": offline == "Y",
            "role": role,
            "master_candidate": candidate == "Y",
            "pip": pip,
            "pinst": sorted(i for i in pinst.split(",") if i),
        }
    return nodes


def node_status(node: dict[str, Any]) -> str:
    """gwm's status for a node as gnt-node lists it (docs/status-model.md)."""
    if node["offline"]:
        return "OFFLINE"
    return "DRAINED" if node["drained"] else "ONLINE"


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = ARRIVAL) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - started


# ---- gwm's side --------------------------------------------------------------------------


class TwoNodes:
    """The ``sandbox`` fixture's handle, with nodes and instance memory compared too."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.api = box.api
        self.node1 = box.env["GWM_SANDBOX_NODE"]
        self.node2 = box.env["GWM_SANDBOX_NODE2"]

    def url(self, path: str = "") -> str:
        return self.box.url(path)

    def instance(self, name: str) -> Any:
        return self.box.instance(name)

    def ganeti_of(self, name: str) -> dict[str, Any]:
        """Ganeti's raw fields of an instance, as gwm's API shows them."""
        answer = self.instance(name)
        assert answer.status_code == 200, (name, answer.content)
        return dict(answer.json()["ganeti"])

    def node(self, name: str) -> dict[str, Any]:
        answer = self.api.get(self.url(f"/nodes/{name}"))
        assert answer.status_code == 200, (name, answer.content)
        return dict(answer.json())

    def act(self, name: str, action: str, **params: Any) -> dict[str, Any]:
        """An instance action through gwm's API, followed to SUCCESS."""
        response = self.box.post(f"/instances/{name}/actions", {"action": action, **params})
        job = self.box.run(action, response)
        assert job["action"] == f"instance.{action}"
        assert f"gwm:op:{job['id']}" in self.box.reasons(job)
        return job

    def node_act(self, name: str, action: str, expect: str = "SUCCESS", **params: Any) -> Any:
        response = self.box.post(f"/nodes/{name}/actions", {"action": action, **params})
        return self.box.run(f"node-{action}", response, expect=expect)

    def assert_instances_are_ganeti(self, *, oper_state: bool = True) -> dict[str, dict[str, Any]]:
        """gwm's cache says, right now, what ``gnt-instance list`` says about our names.

        ``oper_state=False`` leaves Ganeti's raw ``oper_state`` out of the comparison.
        """
        listed = gnt_instances(self.box.names)
        for name in self.box.names:
            answer = self.instance(name)
            if name not in listed:
                assert answer.status_code == 404, (name, answer.json())
                continue
            assert answer.status_code == 200, (name, answer.content)
            cached, real = answer.json(), listed[name]
            seen = {
                "status": cached["status"],
                "ganeti_status": cached["ganeti"]["status"],
                "oper_state": cached["ganeti"]["oper_state"],
                "pnode": cached["primary_node"],
                "memory": cached["memory"],
                "disk_template": cached["disk_template"],
            }
            assert seen == {
                "status": GWM_STATUS[real["status"]],
                "ganeti_status": real["status"],
                "oper_state": real["oper_state"],
                "pnode": real["pnode"],
                "memory": real["memory"],
                "disk_template": real["disk_template"],
            } | ({} if oper_state else {"oper_state": seen["oper_state"]}), name
        return listed

    def assert_nodes_are_ganeti(self, *, instances: bool = True) -> dict[str, dict[str, Any]]:
        """gwm's nodes (status, role, address, which of our instances they hold) are what
        ``gnt-node list`` says, right now (``instances=False``: not the instance lists)."""
        ours = set(self.box.names) if instances else set()
        real = gnt_nodes()
        answer = self.api.get(self.url("/nodes"))
        assert answer.status_code == 200, answer.content
        cached = {n["name"]: n for n in answer.json()["items"]}
        assert set(cached) == set(real) == {self.node1, self.node2}
        for name, node in real.items():
            seen = {
                "status": cached[name]["status"],
                "role": cached[name]["role"],
                "primary_ip": cached[name]["primary_ip"],
                "primary_instances": sorted(set(cached[name]["primary_instances"] or []) & ours),
            }
            assert seen == {
                "status": node_status(node),
                "role": node["role"],
                "primary_ip": node["pip"],
                "primary_instances": sorted(set(node["pinst"]) & ours),
            }, name
        return real

    def assert_cache_is_ganeti(self, *, node_instances: bool = True) -> dict[str, dict[str, Any]]:
        self.assert_nodes_are_ganeti(instances=node_instances)
        return self.assert_instances_are_ganeti()


def restore_nodes(env: dict[str, str]) -> None:
    """node2 back online, undrained and master candidate (as the sandbox made it)."""
    node2 = env["GWM_SANDBOX_NODE2"]
    state = gnt_nodes()[node2]
    if state["offline"]:
        _gnt("gnt-node", "modify", "--force", "--offline=no", node2)  # no prompt
    if gnt_nodes()[node2]["drained"]:
        _gnt("gnt-node", "modify", "--drained=no", node2)
    if not gnt_nodes()[node2]["master_candidate"]:
        _gnt("gnt-node", "modify", "--master-candidate=yes", node2)


@pytest.fixture
def two(sandbox: Sandbox) -> Iterator[TwoNodes]:  # noqa: F811  (the imported fixture)
    restore_nodes(sandbox.env)  # an interrupted earlier run may have left node2 drained
    try:
        yield TwoNodes(sandbox)
    finally:
        restore_nodes(sandbox.env)


def create_body(name: str, pnode: str, *, start: bool, template: str = "sharedfile") -> dict:
    disks = [] if template == "diskless" else [{"size": 16}]
    return {
        "name": name,
        "disk_template": template,
        "disks": disks,
        "nics": [],
        "os": "noop",
        "pnode": pnode,
        "beparams": {"memory": 32},
        "name_check": False,
        "ip_check": False,
        "start": start,
    }


def rapi_create(rapi: RapiClient, name: str, pnode: str, *, start: bool) -> None:
    """An instance made behind gwm's back, straight through RAPI."""
    job = rapi.create_instance(
        name,
        disk_template="sharedfile",
        disks=[{"size": 16}],
        nics=[],
        os_type="noop",
        pnode=pnode,
        beparams={"memory": 32},
        name_check=False,
        ip_check=False,
        start=start,
    )
    final = rapi.wait_for_job(job, timeout=60)
    assert str(final.status) == "success", final


# ---- the tests -----------------------------------------------------------------------------


def test_sandbox_has_two_nodes_sharing_storage() -> None:
    """The sandbox itself: two online nodes, each at its own address, node1 the master."""
    env = sandbox_env()
    nodes = gnt_nodes()
    assert set(nodes) == {env["GWM_SANDBOX_NODE"], env["GWM_SANDBOX_NODE2"]}
    assert nodes[env["GWM_SANDBOX_NODE"]]["role"] == "M"
    assert nodes[env["GWM_SANDBOX_NODE2"]]["role"] in {"C", "R"}
    assert nodes[env["GWM_SANDBOX_NODE"]]["pip"] == "198.51.100.10"
    assert nodes[env["GWM_SANDBOX_NODE2"]]["pip"] == "198.51.100.12"
    assert not any(n["drained"] or n["offline"] for n in nodes.values())
    # node2 runs in its own UTS and mount namespace
    script = str(Path(__file__).resolve().parents[2] / "scripts" / "ganeti-sandbox")

    def node2(*argv: str) -> str:
        done = subprocess.run(
            [script, "exec2", *argv], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.strip()

    assert node2("hostname") == env["GWM_SANDBOX_NODE2"]
    assert node2("cat", "/var/lib/ganeti/ssconf_master_node") == env["GWM_SANDBOX_NODE"]
    assert "-b 198.51.100.12" in node2("cat", "/etc/default/ganeti")


def test_import_shows_both_nodes_and_where_instances_run(api: Client) -> None:
    """Registered through gwm's API, the cluster's nodes and instances arrive as Ganeti has them."""
    env = sandbox_env()
    node1, node2 = env["GWM_SANDBOX_NODE"], env["GWM_SANDBOX_NODE2"]
    rapi = _rapi_client(env)
    _remove(rapi, IMPORTED)
    workers = None
    try:
        rapi_create(rapi, IMPORTED[0], node1, start=True)
        rapi_create(rapi, IMPORTED[1], node2, start=False)
        answer = api.post(
            "/api/v1/clusters",
            {
                "name": "sandbox",
                "rapi_url": env["GWM_SANDBOX_RAPI_URL"],
                "username": env["GWM_SANDBOX_READ_USER"],
                "password": env["GWM_SANDBOX_READ_PASSWORD"],
                "tls_ca_pem": Path(env["GWM_SANDBOX_CA_FILE"]).read_text(),
                "fast_interval": 2.0,
                "runtime_interval": 2.0,
            },
            content_type="application/json",
        )
        assert answer.status_code == 201, answer.content
        assert answer.json()["status"] == "PROVISIONING"
        workers = start_embedded_workers()
        wait_until(
            "the first sync",
            lambda: Cluster.objects.get(name="sandbox").runtime_synced_at is not None,
            60,
        )
        cluster = api.get("/api/v1/clusters/sandbox").json()
        assert cluster["status"] == "AVAILABLE", cluster
        assert cluster["counts"]["nodes"] == 2, cluster["counts"]

        box = Sandbox(env, IMPORTED, Cluster.objects.get(name="sandbox"), api, rapi, None, [])  # type: ignore[arg-type]
        two = TwoNodes(box)
        listed = two.assert_cache_is_ganeti()
        assert {n: (i["pnode"], i["status"]) for n, i in listed.items()} == {
            IMPORTED[0]: (node1, "running"),
            IMPORTED[1]: (node2, "ADMIN_down"),
        }
        nodes = {n["name"]: n for n in api.get(two.url("/nodes")).json()["items"]}
        assert nodes[node1]["role"] == "M" and nodes[node1]["status"] == "ONLINE"
        assert nodes[node2]["status"] == "ONLINE"
        assert nodes[node1]["memory_total"] and nodes[node2]["memory_total"]
        assert IMPORTED[0] in (nodes[node1]["primary_instances"] or [])
        assert IMPORTED[1] in (nodes[node2]["primary_instances"] or [])
    finally:
        if workers is not None:
            workers.stop()
        connections.close_all()
        try:
            _remove(rapi, IMPORTED)
        finally:
            rapi.close()


@pytest.mark.parametrize("sandbox", [((MOVED, MOVED_RENAMED), 2.0)], ids=["moves"], indirect=True)
def test_sharedfile_lifecycle_with_migrate_and_failover_through_gwm(two: TwoNodes) -> None:
    node1, node2 = two.node1, two.node2
    assert two.assert_cache_is_ganeti() == {}

    job = two.box.run("create", two.box.post("/instances", create_body(MOVED, node1, start=False)))
    assert f"gwm:op:{job['id']}" in two.box.reasons(job)
    listed = two.assert_cache_is_ganeti()
    assert (listed[MOVED]["status"], listed[MOVED]["pnode"]) == ("ADMIN_down", node1)
    assert listed[MOVED]["disk_template"] == "sharedfile"

    two.act(MOVED, "start")
    assert two.assert_cache_is_ganeti()[MOVED]["status"] == "running"

    started = _fake_started(MOVED)
    two.act(MOVED, "reboot", type="hard")
    assert two.assert_cache_is_ganeti()[MOVED]["status"] == "running"
    assert _fake_started(MOVED) != started  # stopped and started again on node1

    assert gnt_instances((MOVED,))[MOVED]["pnode"] == node1
    two.act(MOVED, "migrate")  # no target: hail picks the only other node
    listed = two.assert_cache_is_ganeti()
    assert (listed[MOVED]["pnode"], listed[MOVED]["status"]) == (node2, "running")
    assert _fake_started(MOVED, "exec2")  # the fake hypervisor runs it on node2 now

    two.act(MOVED, "failover", target_node=node1, shutdown_timeout=0)
    listed = two.assert_cache_is_ganeti()
    assert (listed[MOVED]["pnode"], listed[MOVED]["status"]) == (node1, "running")

    two.act(MOVED, "migrate", target_node=node2, mode="non-live")
    assert two.assert_cache_is_ganeti()[MOVED]["pnode"] == node2

    two.act(MOVED, "shutdown", timeout=0)
    assert two.assert_cache_is_ganeti()[MOVED]["status"] == "ADMIN_down"

    # a stopped instance fails over too (nothing to stop on the source)
    two.act(MOVED, "failover", shutdown_timeout=0)
    listed = two.assert_cache_is_ganeti()
    assert (listed[MOVED]["pnode"], listed[MOVED]["status"]) == (node1, "ADMIN_down")

    assert listed[MOVED]["memory"] == 32
    response = two.api.patch(
        two.url(f"/instances/{MOVED}"),
        {"beparams": {"maxmem": 64, "minmem": 64}},
        content_type="application/json",
    )
    job = two.box.run("modify", response)
    assert job["action"] == "instance.modify"
    assert f"gwm:op:{job['id']}" in two.box.reasons(job)
    assert two.assert_cache_is_ganeti()[MOVED]["memory"] == 64

    two.act(MOVED, "rename", new_name=MOVED_RENAMED, name_check=False, ip_check=False)
    # (the node's instance list after a rename: test_rename_through_gwm_updates_its_node)
    assert set(two.assert_cache_is_ganeti(node_instances=False)) == {MOVED_RENAMED}

    job = two.box.run("delete", two.api.delete(two.url(f"/instances/{MOVED_RENAMED}")))
    assert f"gwm:op:{job['id']}" in two.box.reasons(job)
    assert two.assert_cache_is_ganeti() == {}

    ganeti_ids = [step.job["ganeti"]["job_id"] for step in two.box.steps]
    rows = Job.objects.filter(cluster=two.box.cluster, ganeti_job_id__in=ganeti_ids)
    assert sorted(rows.values_list("ganeti_job_id", flat=True)) == sorted(ganeti_ids)
    assert not rows.filter(foreign=True).exists()


@pytest.mark.parametrize("sandbox", [((EVACUEE,), 2.0)], ids=["nodes"], indirect=True)
def test_node_drained_and_offline_through_gwm_and_back(two: TwoNodes) -> None:
    node2 = two.node2
    assert two.assert_nodes_are_ganeti()[node2] | {"pip": None} == {
        "drained": False,
        "offline": False,
        "role": "C",
        "master_candidate": True,
        "pip": None,
        "pinst": [],
    }

    two.node_act(node2, "drain")
    real = two.assert_nodes_are_ganeti()
    assert real[node2]["drained"] and two.node(node2)["status"] == "DRAINED"

    # hail places nothing on a drained node: a create without pnode lands on node1
    body = create_body(EVACUEE, two.node1, start=True, template="diskless")
    del body["pnode"]
    two.box.run("create", two.box.post("/instances", body))
    assert two.assert_instances_are_ganeti()[EVACUEE]["pnode"] == two.node1
    two.box.run("delete", two.api.delete(two.url(f"/instances/{EVACUEE}")))

    two.node_act(node2, "undrain")
    real = two.assert_nodes_are_ganeti()
    assert not real[node2]["drained"] and two.node(node2)["status"] == "ONLINE"

    two.node_act(node2, "offline")
    real = two.assert_nodes_are_ganeti()
    assert real[node2]["offline"] and real[node2]["role"] == "O"
    assert two.node(node2)["status"] == "OFFLINE"

    two.node_act(node2, "online")
    real = two.assert_nodes_are_ganeti()
    assert not real[node2]["offline"] and two.node(node2)["status"] == "ONLINE"


@pytest.mark.parametrize("sandbox", [((EVACUEE,), 2.0)], ids=["sandbox"], indirect=True)
@pytest.mark.parametrize(
    ("action", "params"),
    [("evacuate", {"mode": "primary-only"}), ("migrate", {})],
    ids=["evacuate", "migrate"],
)
def test_node_evacuate_through_gwm_ends_when_its_instances_have_moved(
    two: TwoNodes, action: str, params: dict[str, Any]
) -> None:
    """OP_NODE_EVACUATE / OP_NODE_MIGRATE only submit one child job per instance.

    Their result is ``{"jobs": [[true, id]]}``. gwm's job must not say SUCCESS
    before those have ended: until then nothing has moved, and a child that
    fails would leave the instance where it was.
    """
    node1, node2 = two.node1, two.node2
    two.box.run("create", two.box.post("/instances", create_body(EVACUEE, node2, start=True)))
    listed = two.assert_cache_is_ganeti()
    assert (listed[EVACUEE]["pnode"], listed[EVACUEE]["status"]) == (node2, "running")
    assert EVACUEE in (two.node(node2)["primary_instances"] or [])

    job = two.node_act(node2, action, **params)
    # what Ganeti says at the moment gwm's /wait answered SUCCESS
    at_success = gnt_instances((EVACUEE,))[EVACUEE]["pnode"]
    parent = two.box.rapi.get_job(job["ganeti"]["job_id"])
    (result,) = parent.opresult or [None]
    children = [child for ok, child in result["jobs"] if ok]
    assert len(children) == 1, result
    child_status = str(two.box.rapi.get_job(children[0]).status)
    assert job["action"] == f"node.{action}"

    # Ganeti's child job does move it, and gwm follows (through its fast sync round)
    wait_until("the evacuation", lambda: gnt_instances((EVACUEE,))[EVACUEE]["pnode"] == node1)
    assert str(two.box.rapi.wait_for_job(children[0], timeout=60).status) == "success"
    wait_until(
        "gwm following the evacuation",
        lambda: two.instance(EVACUEE).json()["primary_node"] == node1,
    )
    listed = two.assert_cache_is_ganeti()
    assert (listed[EVACUEE]["pnode"], listed[EVACUEE]["status"]) == (node1, "running")

    # gwm must not have said SUCCESS while Ganeti's child job was still running
    assert (at_success, child_status) == (node1, "success"), (
        f"gwm's node.{action} job ended SUCCESS when Ganeti's child job {children[0]} was"
        f" {child_status!r} and {EVACUEE} still on {at_success}"
    )


@pytest.mark.parametrize("sandbox", [(OUTSIDE, 2.0)], ids=["outside"], indirect=True)
def test_changes_made_with_gnt_commands_arrive_in_gwm(two: TwoNodes) -> None:
    """gnt-instance / gnt-node on the master, behind gwm's back, reach gwm's API.

    Changes go in batches: gwm's fast rounds are stretched to stay in their CPU
    budget (1 %, gwm/sync/rounds.py), so on this loaded machine a round
    comes every 10-20 s rather than every fast_interval.
    """
    node1, node2 = two.node1, two.node2
    first, second = OUTSIDE
    rapi_create(two.box.rapi, first, node1, start=True)
    rapi_create(two.box.rapi, second, node2, start=False)
    wait_until("the instances made outside gwm", lambda: two.instance(second).status_code == 200)
    listed = two.assert_cache_is_ganeti()
    assert (listed[first]["pnode"], listed[first]["status"]) == (node1, "running")
    assert (listed[second]["pnode"], listed[second]["status"]) == (node2, "ADMIN_down")
    assert listed[second]["memory"] == 32

    def gwm_has(name: str, **want: Any) -> Callable[[], bool]:
        def check() -> bool:
            answer = two.instance(name)
            if answer.status_code != 200:
                return False
            body = answer.json()
            return all(body[key] == value for key, value in want.items())

        return check

    def node_is(status: str) -> Callable[[], bool]:
        return lambda: two.node(node2)["status"] == status

    # a migration, a start and a memory change
    _gnt("gnt-instance", "migrate", "-f", first)
    _gnt("gnt-instance", "startup", second)
    _gnt("gnt-instance", "modify", "-B", "maxmem=48,minmem=48", second)
    wait_until("gnt-instance migrate", gwm_has(first, primary_node=node2))
    wait_until("gnt-instance startup", gwm_has(second, status="RUNNING"))
    wait_until("gnt-instance modify", gwm_has(second, memory=48))
    listed = two.assert_cache_is_ganeti()
    assert (listed[first]["pnode"], listed[second]["status"]) == (node2, "running")

    # a failover, a shutdown and node2 drained
    _gnt("gnt-instance", "failover", "-f", "--shutdown-timeout=0", first)
    _gnt("gnt-instance", "shutdown", "--timeout=0", second)
    _gnt("gnt-node", "modify", "--drained=yes", node2)
    wait_until("gnt-instance failover", gwm_has(first, primary_node=node1))
    wait_until("gnt-instance shutdown", gwm_has(second, status="STOPPED"))
    wait_until("gnt-node modify --drained=yes", node_is("DRAINED"))
    listed = two.assert_cache_is_ganeti()
    assert (listed[first]["pnode"], listed[second]["status"]) == (node1, "ADMIN_down")

    # node2 undrained, an instance removed
    _gnt("gnt-node", "modify", "--drained=no", node2)
    _gnt("gnt-instance", "remove", "-f", "--shutdown-timeout=0", first)
    wait_until("gnt-node modify --drained=no", node_is("ONLINE"))
    wait_until("gnt-instance remove", lambda: two.instance(first).status_code == 404)
    assert set(two.assert_cache_is_ganeti()) == {second}


@pytest.mark.parametrize("sandbox", [((STRANDED,), 2.0)], ids=["node-lost"], indirect=True)
def test_an_instance_on_an_offlined_node_fails_over_through_gwm(two: TwoNodes) -> None:
    """node2 "dies": set offline through gwm, its instance shows ERROR, then fails over."""
    node1, node2 = two.node1, two.node2
    two.box.run("create", two.box.post("/instances", create_body(STRANDED, node2, start=True)))
    listed = two.assert_cache_is_ganeti()
    assert (listed[STRANDED]["pnode"], listed[STRANDED]["status"]) == (node2, "running")

    two.node_act(node2, "offline")
    two.assert_nodes_are_ganeti()
    # oper_state is checked at the end, after the rest of the flow
    listed = two.assert_instances_are_ganeti(oper_state=False)
    assert listed[STRANDED]["status"] == "ERROR_nodeoffline"
    offline_oper_state = (listed[STRANDED]["oper_state"], two.ganeti_of(STRANDED)["oper_state"])
    assert two.instance(STRANDED).json()["status"] == "ERROR"
    assert two.node(node2)["status"] == "OFFLINE"

    # the source node is gone: only a failover that ignores its disks' consistency works
    two.act(STRANDED, "failover", ignore_consistency=True, shutdown_timeout=0)
    listed = two.assert_cache_is_ganeti()
    assert (listed[STRANDED]["pnode"], listed[STRANDED]["status"]) == (node1, "running")
    assert two.instance(STRANDED).json()["status"] == "RUNNING"

    two.node_act(node2, "online")
    assert two.assert_nodes_are_ganeti()[node2]["offline"] is False
    assert two.node(node2)["status"] == "ONLINE"

    # While node2 was offline Ganeti did not know whether the instance ran ("?", null
    # through RAPI); gwm's raw ganeti.oper_state must not keep saying it did.
    assert offline_oper_state == (None, None), offline_oper_state


@pytest.mark.parametrize("sandbox", [(RENAMED, 120.0)], ids=["rename"], indirect=True)
def test_rename_through_gwm_updates_its_node(two: TwoNodes) -> None:
    """After a rename's job ends, the node's instance list has the new name, not the old.

    (A slow sync interval, so that no sync round fixes it up in between.)
    """
    old, new = RENAMED
    two.box.run("create", two.box.post("/instances", create_body(old, two.node1, start=False)))
    two.assert_cache_is_ganeti()
    assert old in (two.node(two.node1)["primary_instances"] or [])

    two.act(old, "rename", new_name=new, name_check=False, ip_check=False)
    assert set(two.assert_instances_are_ganeti()) == {new}
    assert gnt_nodes()[two.node1]["pinst"].count(new) == 1
    listed = two.node(two.node1)["primary_instances"] or []
    assert (old in listed, new in listed) == (False, True), listed


@pytest.mark.parametrize("sandbox", [((REFUSED,), 2.0)], ids=["refused"], indirect=True)
def test_a_failed_ganeti_job_is_reported_with_ganetis_message(two: TwoNodes) -> None:
    """A migration Ganeti refuses (the target is drained): ERROR, Ganeti's own words."""
    node1, node2 = two.node1, two.node2
    two.box.run("create", two.box.post("/instances", create_body(REFUSED, node1, start=True)))
    assert two.assert_cache_is_ganeti()[REFUSED]["pnode"] == node1
    two.node_act(node2, "drain")

    response = two.box.post(
        f"/instances/{REFUSED}/actions", {"action": "migrate", "target_node": node2}
    )
    job = two.box.run("migrate", response, expect="ERROR")
    ganeti_job = two.box.rapi.get_job(job["ganeti"]["job_id"])
    assert str(ganeti_job.status) == "error"
    assert ganeti_job.error is not None
    assert job["ganeti"]["status"] == "error"
    assert job["error"]["message"] == ganeti_job.error.message, (job["error"], ganeti_job.error)
    assert job["error"]["code"] == ganeti_job.error.code
    assert node2 in job["error"]["message"]
    # nothing moved, and gwm says so
    listed = two.assert_cache_is_ganeti()
    assert (listed[REFUSED]["pnode"], listed[REFUSED]["status"]) == (node1, "running")
    assert two.instance(REFUSED).json()["status"] == "RUNNING"
