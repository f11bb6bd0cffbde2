"""Replay answers recorded from a real Ganeti 3.0 cluster (tests/fixtures/rapi).

For each recording: the method that should make that request makes exactly
it (method, path, query, body), and the recorded answer parses.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwm.rapi import errors, schemas
from gwm.rapi.base import raw_call
from gwm.rapi.builders import cluster, groups, instances, jobs, networks, nodes, query
from gwm.rapi.calls import RapiCall, complete
from gwm.rapi.constants import InstanceStatus, JobStatus, NodeRole, QueryFieldStatus

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rapi" / "ganeti-3.0"
INST = "inst1.ganeti.test"
NODE = "node1.ganeti.test"
# recorded on the two-node sandbox (scripts/record-rapi-fixtures --two-node)
INST4 = "inst4.ganeti.test"
NODE2 = "node2.ganeti.test"


def _recording(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.exists():
        # a missing recording fails: a skip would hide that the real answer is not checked
        pytest.fail(
            f"recording {name} is missing (re-run scripts/record-rapi-fixtures)", pytrace=False
        )
    return json.loads(path.read_text())


def _job(path: str) -> int:
    return int(path.split("/")[3])


def _wait(rec: dict[str, Any]) -> RapiCall[Any]:
    body = rec["request"]["body"]
    return jobs.wait_for_job_change(
        _job(rec["request"]["path"]),
        fields=body["fields"],
        previous_job_info=body["previous_job_info"],
        previous_log_serial=body["previous_log_serial"],
    )


def _query(rec: dict[str, Any]) -> RapiCall[Any]:
    request = rec["request"]
    resource = request["path"].split("/")[3]
    if request["method"] == "PUT":
        body = request["body"]
        return query.query(resource, body["fields"], qfilter=body["qfilter"])
    return query.query(resource, request["query"]["fields"].split(","))


def _create(rec: dict[str, Any]) -> RapiCall[Any]:
    body = dict(rec["request"]["body"])
    del body["__version__"]
    return instances.create_instance(body.pop("instance_name"), **body)


BUILDERS: dict[str, Callable[[dict[str, Any]], RapiCall[Any]]] = {
    "delete-2-instances-inst4": lambda r: instances.delete_instance(INST4, shutdown_timeout=0),
    "put-2-instances-inst4-migrate": lambda r: instances.migrate_instance(INST4),
    "put-2-instances-inst4-migrate-target": lambda r: instances.migrate_instance(
        INST4, target_node=NODE2, mode="non-live"
    ),
    "put-2-instances-inst4-failover": lambda r: instances.failover_instance(INST4),
    "post-2-nodes-node2-evacuate": lambda r: nodes.evacuate_node(NODE2, mode="primary-only"),
    "delete-2-jobs-id-": lambda r: jobs.cancel_job(_job(r["request"]["path"])),
    "delete-2-jobs-unknown": lambda r: jobs.cancel_job(_job(r["request"]["path"])),
    "delete-2-instances-inst": lambda r: instances.delete_instance(INST, shutdown_timeout=5),
    "delete-2-networks-net1": lambda r: networks.delete_network("net1"),
    "error-503-console-not-running": lambda r: instances.get_instance_console(INST),
    "error-401-bad-password": lambda r: cluster.get_cluster_info(),
    "error-401-no-auth.json": lambda r: cluster.get_cluster_info(),
    "error-403-read-user-wait": _wait,
    "error-500-wait-unknown-job": _wait,
    "error-404-unknown-instance": lambda r: instances.get_instance("nosuch.ganeti.test"),
    "error-404-unknown-node": lambda r: nodes.get_node("nosuch.ganeti.test"),
    "error-404-unknown-group": lambda r: groups.get_group("nosuch"),
    "error-404-unknown-network": lambda r: networks.get_network("nosuch"),
    "error-500-qfilter-unknown-name": _query,
    "get-2-features": lambda r: cluster.get_features(),
    "get-2-groups-bulk": lambda r: groups.list_groups_bulk(),
    "get-2-groups-default": lambda r: groups.get_group("default"),
    "get-2-groups.json": lambda r: groups.list_groups(),
    "get-2-info": lambda r: cluster.get_cluster_info(),
    "get-2-instances-bulk": lambda r: instances.list_instances_bulk(),
    "get-2-instances-empty": lambda r: instances.list_instances(),
    "get-2-instances.json": lambda r: instances.list_instances(),
    "get-2-instances-inst-console": lambda r: instances.get_instance_console(INST),
    "get-2-instances-inst-info": lambda r: instances.request_instance_info(INST),
    "get-2-instances-inst-tags": lambda r: instances.get_instance_tags(INST),
    "get-2-instances-inst.json": lambda r: instances.get_instance(INST),
    "get-2-instances-inst-after": lambda r: instances.get_instance(INST),
    "get-2-jobs-id-wait": _wait,
    "get-2-jobs-id-": lambda r: jobs.get_job(_job(r["request"]["path"])),
    "get-2-jobs.json": lambda r: jobs.list_jobs(),
    "get-2-jobs-unknown": lambda r: jobs.get_job(99999),
    "get-2-instances-after-delete": lambda r: instances.list_instances(),
    "get-2-jobs-bulk": lambda r: jobs.list_jobs_bulk(),
    "get-2-networks-bulk": lambda r: networks.list_networks_bulk(),
    "get-2-networks-empty": lambda r: networks.list_networks(),
    "get-2-networks-net1": lambda r: networks.get_network("net1"),
    "get-2-networks.json": lambda r: networks.list_networks(),
    "get-2-nodes-bulk": lambda r: nodes.list_nodes_bulk(),
    "get-2-nodes-node-role": lambda r: nodes.get_node_role(NODE),
    "get-2-nodes-node-tags": lambda r: nodes.get_node_tags(NODE),
    "get-2-nodes-node.json": lambda r: nodes.get_node(NODE),
    "get-2-nodes.json": lambda r: nodes.list_nodes(),
    "get-2-os-bulk": lambda r: cluster.list_os_bulk(),
    "get-2-os.json": lambda r: cluster.list_os(),
    "get-2-query-instance-fields": lambda r: query.query_fields("instance"),
    "get-2-query-": _query,
    "put-2-query-": _query,
    "get-2-tags": lambda r: cluster.get_cluster_tags(),
    "get-2.json": lambda r: raw_call("GET", "/2"),
    "get-root": lambda r: raw_call("GET", "/"),
    "get-version": lambda r: cluster.get_version(),
    "post-2-instances-create": _create,
    "post-2-instances-inst-reboot": lambda r: instances.reboot_instance(INST, reboot_type="hard"),
    "post-2-networks.json": lambda r: networks.create_network(**r["request"]["body"]),
    "put-2-instances-inst-modify": lambda r: instances.modify_instance(
        INST, beparams={"memory": 48}
    ),
    "put-2-instances-inst-shutdown.json": lambda r: instances.shutdown_instance(
        INST, timeout=5, reason="gwm fixture"
    ),
    "put-2-instances-inst-startup": lambda r: instances.startup_instance(INST),
    "put-2-instances-unknown-startup": lambda r: instances.startup_instance("unknown.ganeti.test"),
    "put-2-networks-net1-connect": lambda r: networks.connect_network(
        "net1", "default", mode="routed", link="lo"
    ),
    "put-2-networks-net1-disconnect": lambda r: networks.disconnect_network("net1", "default"),
}

#: Errors that are not simply the class of their HTTP status.
EXPECTED_ERROR = {
    "error-500-wait-unknown-job.json": errors.RapiJobNotFound,
    "get-2-jobs-unknown.json": errors.RapiJobNotFound,
}


def _builder(name: str) -> Callable[[dict[str, Any]], RapiCall[Any]] | None:
    matches = [prefix for prefix in BUILDERS if name.startswith(prefix)]
    return BUILDERS[max(matches, key=len)] if matches else None


def _replay(call: RapiCall[Any], recording: dict[str, Any]) -> Any:
    recorded = recording["request"]
    request = httpx.Request(recorded["method"], "https://cluster:5080" + recorded["path"])
    response = httpx.Response(
        recording["status"],
        content=json.dumps(recording["body"]).encode(),
        headers=recording.get("headers") or {"content-type": "application/json"},
        request=request,
    )
    return complete(call, response, base_url="https://cluster:5080", username="gwm-write")


# none recorded: one case that fails in _recording() (an empty parameter set would skip)
RECORDINGS = sorted(p.name for p in FIXTURES.glob("*.json")) or ["*.json"]


def test_the_recordings_are_there() -> None:
    assert FIXTURES.is_dir(), f"{FIXTURES} is missing (scripts/record-rapi-fixtures)"
    assert len(RECORDINGS) > 30


@pytest.mark.parametrize("name", RECORDINGS)
def test_replay(name: str) -> None:
    """Recordings the client makes itself: same request; others: the answer still reads."""
    recording = _recording(name)
    recorded = recording["request"]
    builder = _builder(name)
    if builder is None:
        # Deliberately odd requests (malformed JSON, wrong types, depends=...).
        call = raw_call(recorded["method"], recorded["path"])
    else:
        call = builder(recording)
        assert call.request.method == recorded["method"]
        assert call.request.path == recorded["path"]
        assert dict(call.request.query) == {k: str(v) for k, v in recorded["query"].items()}
        # Ganeti treats a missing body and {} alike for these resources.
        assert (call.request.body or None) == (recorded["body"] or None)
    status = recording["status"]
    if status == 200 and name not in EXPECTED_ERROR:
        _replay(call, recording)
        return
    expected = EXPECTED_ERROR.get(name, errors.error_class_for_status(status))
    with pytest.raises(errors.RapiError) as raised:
        _replay(call, recording)
    assert type(raised.value) is expected
    if isinstance(raised.value, errors.RapiHTTPError):
        assert raised.value.status == status
        assert raised.value.message == html.unescape(recording["body"]["message"])
        assert "&#x27;" not in str(raised.value)


def _answer(name: str, call: RapiCall[Any]) -> Any:
    return _replay(call, _recording(name))


def test_instance_fields_from_a_real_cluster() -> None:
    instance = _answer("get-2-instances-inst.json", instances.get_instance(INST))
    assert isinstance(instance, schemas.RapiInstance)
    assert instance.name == INST
    assert instance.status == InstanceStatus.RUNNING
    assert instance.pnode == NODE
    assert instance.beparams is not None and "memory" in instance.beparams
    stopped = _answer("get-2-instances-inst-after-shutdown.json", instances.get_instance(INST))
    assert stopped.status == InstanceStatus.ADMIN_DOWN and stopped.admin_state == "down"


def test_node_role_letter_from_a_real_cluster() -> None:
    node = _answer("get-2-nodes-node.json", nodes.get_node(NODE))
    assert node.role == "M" and node.role_name == NodeRole.MASTER
    assert node.group_uuid


def test_failed_jobs_from_a_real_cluster_name_their_error() -> None:
    expected = {
        "get-2-jobs-id-error-already-exists.json": "already_exists",
        "get-2-jobs-id-error-insufficient-resources.json": "insufficient_resources",
        "get-2-jobs-id-error-ipolicy.json": "wrong_input",
        "get-2-jobs-id-error-unknown-entity.json": "unknown_entity",
    }
    for name, code in expected.items():
        job = _answer(name, jobs.get_job(_job(_recording(name)["request"]["path"])))
        assert job.status == JobStatus.ERROR and job.is_finalized
        assert job.error is not None
        assert job.error.error_class == "OpPrereqError"
        assert job.error.code == code
        assert job.error.message


def test_moves_on_a_real_two_node_cluster() -> None:
    """Migrate, failover and evacuate as Ganeti ran them between node1 and node2."""
    bulk = _answer("get-2-nodes-bulk-two-nodes.json", nodes.list_nodes_bulk())
    assert sorted((n.name, n.role) for n in bulk) == [(NODE, "M"), (NODE2, "C")]
    moves = {
        "get-2-jobs-id-success-migrate.json": f"INSTANCE_MIGRATE({INST4})",
        "get-2-jobs-id-success-migrate-target.json": f"INSTANCE_MIGRATE({INST4})",
        "get-2-jobs-id-success-failover.json": f"INSTANCE_FAILOVER({INST4})",
    }
    for name, summary in moves.items():
        job = _answer(name, jobs.get_job(_job(_recording(name)["request"]["path"])))
        assert job.status == JobStatus.SUCCESS and job.summary == [summary]
        assert job.opresult == [None]
    migrate = _answer(
        "get-2-jobs-id-success-migrate.json",
        jobs.get_job(_job(_recording("get-2-jobs-id-success-migrate.json")["request"]["path"])),
    )
    # a migration that ran stores the mode it used; hail chose the other node
    assert (migrate.ops or [{}])[0]["mode"] == "live"
    assert (migrate.oplog or [[]])[0][0].message.endswith(f"via iallocator hail: {NODE2}")
    name = "get-2-jobs-id-success-node-evacuate.json"
    evacuate = _answer(name, jobs.get_job(_job(_recording(name)["request"]["path"])))
    # the evacuation only submits the moves, as further jobs
    (result,) = evacuate.opresult or [None]
    ((submitted, child),) = result["jobs"]
    assert submitted is True
    name = "get-2-jobs-id-success-node-evacuate-child.json"
    assert _job(_recording(name)["request"]["path"]) == child
    moved = _answer(name, jobs.get_job(child))
    assert moved.summary == [f"INSTANCE_MIGRATE({INST4})"]
    assert moved.end_ts is not None and evacuate.end_ts is not None
    assert tuple(moved.end_ts) > tuple(evacuate.end_ts)  # it ends after its parent


def test_reason_trail_from_a_real_cluster() -> None:
    job = _answer("get-2-jobs-id-success-shutdown-reason.json", jobs.get_job(27))
    assert job.user_reasons == ["gwm fixture"]
    sources = [entry.source for entry in job.reason_trails[0]]
    assert sources[0] == "gnt:user"
    assert sources[1].startswith("gnt:library:rlib2")


def test_wait_no_change_from_a_real_cluster() -> None:
    rec = _recording("get-2-jobs-id-wait-nochange.json")
    result = _answer("get-2-jobs-id-wait-nochange.json", _wait(rec))
    assert result.changed is False
    assert result.status == JobStatus.RUNNING
    finished = _answer(
        "get-2-jobs-id-wait-finished.json", _wait(_recording("get-2-jobs-id-wait-finished.json"))
    )
    assert finished.changed and finished.status == JobStatus.SUCCESS
    assert [entry.serial for entry in finished.log_entries] == sorted(
        entry.serial for entry in finished.log_entries
    )


def test_query_cells_from_a_real_cluster() -> None:
    rec = _recording("get-2-query-instance-unknown-field.json")
    result = _answer("get-2-query-instance-unknown-field.json", _query(rec))
    row = result.rows()[0]
    assert row["name"].status == QueryFieldStatus.NORMAL
    assert row["no_such_field"].status == QueryFieldStatus.UNKNOWN_FIELD
    assert result.values() == [{"name": INST, "no_such_field": None}]


def test_console_of_a_stopped_instance_is_unavailable() -> None:
    with pytest.raises(errors.RapiUnavailable, match="Instance console unavailable"):
        _answer("error-503-console-not-running.json", instances.get_instance_console(INST))
