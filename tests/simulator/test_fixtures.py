"""The simulator answers like the real Ganeti 3.0 sandbox did.

tests/fixtures/rapi/ganeti-3.0/*.json hold real responses. Here the same
calls are replayed against a simulator set up like the sandbox (one node,
fake hypervisor, inst1 and net1): error answers must match exactly, other
answers must have the same keys and value types.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwm.simulator import SimConfig, Simulator, generate_cluster, serve_in_thread
from tests.simulator.conftest import Sim

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rapi" / "ganeti-3.0"


def fixture(name: str) -> dict[str, Any]:
    """A recording; a missing one fails (never skips): the real answer must be checked."""
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(
            f"{path} is not recorded (scripts/record-rapi-fixtures records it)", pytrace=False
        )
    return json.loads(path.read_text())


CREATE = {
    "__version__": 1,
    "mode": "create",
    "instance_name": "inst1.ganeti.test",
    "disk_template": "diskless",
    "os_type": "noop",
    "disks": [],
    "nics": [],
    "beparams": {"memory": 32},
    "name_check": False,
    "ip_check": False,
    "start": True,
}


class Sandbox:
    """A simulator shaped like the recorded sandbox, with the jobs it ran."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.jobs: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    state = generate_cluster(
        nodes=1,
        instances=0,
        cluster_name="cluster.ganeti.test",
        domain="ganeti.test",
        hypervisor="fake",
    )
    node = state.nodes.pop("node001.ganeti.test")
    node.name = "node1.ganeti.test"
    state.nodes[node.name] = node
    for net in list(state.networks):
        del state.networks[net]
    for group in state.groups.values():
        group.networks.clear()
    state.info["nicparams"]["default"] = {"mode": "routed", "link": "lo", "vlan": ""}
    state.os_list = [o for o in state.os_list if o["name"] == "noop"]
    state.reindex()
    running = serve_in_thread(Simulator(state, SimConfig(time_scale=0.01, wait_timeout=0.2)))
    sim = Sim(running)
    box = Sandbox(sim)
    box.jobs["network-add"] = sim.run(
        "POST",
        "/2/networks",
        json={
            "network_name": "net1",
            "network": "198.51.100.128/28",
            "gateway": "198.51.100.129",
            "tags": ["gwm-fixture"],
        },
    )
    sim.run(
        "PUT",
        "/2/networks/net1/connect",
        json={"group_name": "default", "network_mode": "routed", "network_link": "lo"},
    )
    box.jobs["create"] = sim.run("POST", "/2/instances", json=CREATE)
    box.jobs["info"] = sim.wait_job(sim.client.get("/2/instances/inst1.ganeti.test/info").json())
    yield box
    sim.close()


# ---- exact error answers ---------------------------------------------------

# none recorded: one case that fails in fixture() (an empty parameter set would skip)
ERRORS = sorted(p.name for p in FIXTURES.glob("error-*.json")) or ["error-*.json"]


def _replay(box: Sandbox, rec: dict[str, Any], name: str) -> httpx.Response:
    sim = box.sim
    req = rec["request"]
    path = req["path"].replace("/2/jobs/25/", f"/2/jobs/{box.jobs['create']['id']}/")
    client = {"gwm-write": sim.client, "gwm-read": sim.reader, None: sim.anon}[req["auth"]]
    kwargs: dict[str, Any] = {"params": req["query"]}
    if name == "error-401-bad-password.json":
        kwargs["auth"] = ("gwm", "wrong")
    body = req["body"]
    if isinstance(body, str):
        ctype = {"error-415-text-plain.json": "text/plain", "error-415-no-content-type.json": ""}
        kwargs["content"] = body
        kwargs["headers"] = {"content-type": ctype.get(name, "application/json")}
    elif body is not None:
        kwargs["json"] = body
    return client.request(req["method"], path, **kwargs)


@pytest.mark.parametrize("name", ERRORS)
def test_error_answers_match_exactly(sandbox: Sandbox, name: str) -> None:
    rec = fixture(name)
    if name == "error-503-console-not-running.json":
        sandbox.sim.run("PUT", "/2/instances/inst1.ganeti.test/shutdown")
    try:
        response = _replay(sandbox, rec, name)
    finally:
        if name == "error-503-console-not-running.json":
            sandbox.sim.run("PUT", "/2/instances/inst1.ganeti.test/startup")
    assert response.status_code == rec["status"]
    assert response.json() == rec["body"]
    assert response.headers["content-type"] == "application/json"
    if "www-authenticate" in rec["headers"]:
        assert response.headers["www-authenticate"] == rec["headers"]["www-authenticate"]


# ---- shapes of successful answers ------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_same_shape(
    real: Any, ours: Any, where: str = "body", depth: int = 0, max_depth: int = 2
) -> None:
    """Same keys (records), same value kinds; null matches anything."""
    if real is None or ours is None:
        return
    assert _kind(real) == _kind(ours), f"{where}: {_kind(real)} != {_kind(ours)}"
    if isinstance(real, dict) and depth < max_depth:
        missing, extra = sorted(set(real) - set(ours)), sorted(set(ours) - set(real))
        assert not missing and not extra, f"{where}: missing {missing}, extra {extra}"
        for key in real:
            assert_same_shape(real[key], ours[key], f"{where}.{key}", depth + 1, max_depth)
    elif isinstance(real, list) and real and ours:
        assert_same_shape(real[0], ours[0], f"{where}[0]", depth, max_depth)


SHAPES = {
    # fixture -> path replayed on the simulator (None: the fixture's own)
    "get-2-info.json": None,
    "get-2-features.json": None,
    "get-2-instances.json": None,
    "get-2-instances-bulk.json": None,
    "get-2-instances-inst.json": None,
    "get-2-instances-inst-console.json": None,
    "get-2-instances-inst-tags.json": None,
    "get-2-nodes.json": None,
    "get-2-nodes-bulk.json": None,
    "get-2-nodes-node.json": None,
    "get-2-nodes-node-role.json": None,
    "get-2-nodes-node-tags.json": None,
    "get-2-groups.json": None,
    "get-2-groups-bulk.json": None,
    "get-2-groups-default-with-network.json": None,
    "get-2-networks.json": None,
    "get-2-networks-bulk.json": None,
    "get-2-networks-net1.json": None,
    "get-2-os.json": None,
    "get-2-os-bulk.json": None,
    "get-2-tags.json": None,
    "get-2.json": None,
    "get-root.json": None,
    "get-version.json": None,
    "get-2-jobs.json": None,
    "get-2-jobs-bulk.json": None,
    "get-2-jobs-unknown.json": None,
    "get-2-query-instance.json": None,
    "get-2-query-instance-read-user.json": None,
    "get-2-query-instance-unknown-field.json": None,
    "get-2-query-node.json": None,
    "get-2-query-job.json": None,
    "put-2-query-instance-qfilter.json": None,
    "put-2-query-instance-qfilter-or.json": None,
    "put-2-query-instance-qfilter-nomatch.json": None,
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_answers_have_the_real_shape(sandbox: Sandbox, name: str) -> None:
    rec = fixture(name)
    response = _replay(sandbox, rec, name)
    assert response.status_code == rec["status"], response.text
    # job lists start with different jobs (cluster init there): rows only
    assert_same_shape(rec["body"], response.json(), max_depth=1 if "jobs" in name else 2)


def test_network_answers_match_values(sandbox: Sandbox) -> None:
    ours = sandbox.sim.client.get("/2/networks/net1").json()
    real = fixture("get-2-networks-net1.json")["body"]
    for key in (
        "network",
        "gateway",
        "free_count",
        "reserved_count",
        "map",
        "group_list",
        "external_reservations",
        "tags",
    ):
        assert ours[key] == real[key], key


def test_query_field_definitions_match(sandbox: Sandbox) -> None:
    real = {f["name"]: f for f in fixture("get-2-query-instance-fields.json")["body"]["fields"]}
    ours = sandbox.sim.client.get("/2/query/instance/fields").json()["fields"]
    assert ours
    for field in ours:
        if field["name"] in real:
            assert field == real[field["name"]]
    for name in ("name", "status", "oper_state", "admin_state", "pnode", "be/memory", "tags"):
        assert name in {f["name"] for f in ours}


JOBS = {
    "get-2-jobs-id-success-create.json": "create",
    "get-2-jobs-id-success-network-add.json": "network-add",
    "get-2-jobs-id-success-instance-info.json": "info",
}


def _job_for(box: Sandbox, label: str) -> dict[str, Any]:
    sim = box.sim
    if label in box.jobs:
        return box.jobs[label]
    inst = "/2/instances/inst1.ganeti.test"
    runs = {
        "shutdown-reason": lambda: sim.run(
            "PUT", f"{inst}/shutdown", params={"reason": "gwm fixture"}, json={"timeout": 5}
        ),
        "startup": lambda: sim.run("PUT", f"{inst}/startup"),
        "modify": lambda: sim.run("PUT", f"{inst}/modify", json={"beparams": {"memory": 48}}),
        "unknown": lambda: sim.run("PUT", "/2/instances/unknown.ganeti.test/startup"),
        "duplicate": lambda: sim.run("POST", "/2/instances", json=CREATE),
    }
    box.jobs[label] = runs[label]()
    return box.jobs[label]


JOBS.update(
    {
        "get-2-jobs-id-success-shutdown-reason.json": "shutdown-reason",
        "get-2-jobs-id-success-startup.json": "startup",
        "get-2-jobs-id-success-modify.json": "modify",
        "get-2-jobs-id-error-unknown-entity.json": "unknown",
        "get-2-jobs-id-error-already-exists.json": "duplicate",
    }
)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_jobs_have_the_real_shape_and_results(sandbox: Sandbox, name: str) -> None:
    real = fixture(name)["body"]
    ours = _job_for(sandbox, JOBS[name])
    assert_same_shape(real, ours)
    assert set(ours["ops"][0]) == set(real["ops"][0])
    assert [e[0] for e in ours["ops"][0]["reason"]] == [e[0] for e in real["ops"][0]["reason"]]
    assert ours["summary"] == real["summary"]
    assert ours["status"] == real["status"]
    if real["status"] == "error" or JOBS[name] in ("modify", "create"):
        assert ours["opresult"] == real["opresult"]
    assert [e[3] for e in ours["oplog"][0]] == [e[3] for e in real["oplog"][0]]


def test_certificate_is_pinnable(sandbox: Sandbox) -> None:
    cert = sandbox.sim.running.cert_path
    assert cert is not None
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=context, auth=("gwm", "gwm")) as client:
        assert client.get(sandbox.sim.running.url + "/version").json() == 2


# ---- later additions (scripts/record-rapi-fixtures --extra) ------------------

INST3 = "/2/instances/inst3.ganeti.test"
EXTRA_JOBS: dict[str, tuple[str, str, dict[str, Any]]] = {
    # fixture -> (method, path, request kwargs), run against inst3 as the recorder did
    "get-2-jobs-id-success-create-dry-run.json": (
        "POST",
        "/2/instances",
        {"params": {"dry-run": 1}, "json": dict(CREATE, instance_name="inst3.ganeti.test")},
    ),  # run before inst3 exists, see inst3()
    "get-2-jobs-id-error-deactivate-disks-running.json": (
        "PUT",
        f"{INST3}/deactivate-disks",
        {},
    ),
    "get-2-jobs-id-error-migrate-one-node.json": ("PUT", f"{INST3}/migrate", {"json": {}}),
    "get-2-jobs-id-error-reinstall-diskless.json": (
        "POST",
        f"{INST3}/reinstall",
        {"json": {"os": "noop"}},
    ),
    "get-2-jobs-id-error-grow-disk-diskless.json": (
        "POST",
        f"{INST3}/disk/0/grow",
        {"json": {"amount": 10}},
    ),
    "get-2-jobs-id-error-recreate-disks-diskless.json": (
        "POST",
        f"{INST3}/recreate-disks",
        {"json": {}},
    ),
    "get-2-jobs-id-error-replace-disks-diskless.json": (
        "POST",
        f"{INST3}/replace-disks",
        {"json": {"mode": "replace_auto"}},
    ),
    "get-2-jobs-id-success-tags-dry-run.json": (
        "PUT",
        "/2/tags",
        {"params": {"tag": "gwm-fixture-dry", "dry-run": 1}},
    ),
    "get-2-jobs-id-error-tag-not-found.json": (
        "DELETE",
        "/2/tags",
        {"params": {"tag": "gwm-fixture-missing"}},
    ),
    "get-2-jobs-id-error-network-modify.json": (
        "PUT",
        "/2/networks/net2/modify",
        {"json": {"gateway": "198.51.100.225", "add_reserved_ips": ["198.51.100.231"]}},
    ),
}


@pytest.fixture(scope="module")
def inst3(sandbox: Sandbox) -> Iterator[Sandbox]:
    sim = sandbox.sim
    method, path, kwargs = EXTRA_JOBS["get-2-jobs-id-success-create-dry-run.json"]
    sandbox.jobs["dry-run"] = sim.run(method, path, **kwargs)
    sim.run("POST", "/2/instances", json=dict(CREATE, instance_name="inst3.ganeti.test"))
    sim.run("POST", "/2/networks", json={"network_name": "net2", "network": "198.51.100.224/28"})
    yield sandbox
    sim.run("DELETE", INST3)
    sim.run("DELETE", "/2/networks/net2")


@pytest.mark.parametrize("name", sorted(EXTRA_JOBS))
def test_later_jobs_have_the_real_shape_and_results(inst3: Sandbox, name: str) -> None:
    real = fixture(name)["body"]
    if name == "get-2-jobs-id-success-create-dry-run.json":
        ours = inst3.jobs["dry-run"]
    else:
        method, path, kwargs = EXTRA_JOBS[name]
        ours = inst3.sim.run(method, path, **kwargs)
    assert ours["summary"] == real["summary"]
    assert ours["status"] == real["status"]
    assert ours["opstatus"] == real["opstatus"]
    for mine, theirs in zip(ours["ops"], real["ops"], strict=True):
        assert set(mine) == set(theirs), mine["OP_ID"]
        assert [e[0] for e in mine["reason"]] == [e[0] for e in theirs["reason"]]
    node_uuid = inst3.sim.client.get("/2/nodes/node1.ganeti.test").json()["uuid"]
    masked = _uuids_masked(real["opresult"])
    assert _uuids_masked(ours["opresult"]) == masked
    if "<uuid>" in masked:  # the dry run answers the node's uuid, not its name
        assert node_uuid in json.dumps(ours["opresult"])
    assert [[e[2:] for e in log] for log in ours["oplog"]] == [
        [e[2:] for e in log] for log in real["oplog"]
    ]


def _uuids_masked(value: Any) -> str:
    """JSON text with every uuid replaced (the recording's cluster had other uuids)."""
    return re.sub(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", json.dumps(value)
    )
