"""The typed answers: aliases, unknown fields kept, helpers."""

from __future__ import annotations

from gwm.rapi.constants import (
    JOB_STATUS_FINALIZED,
    JOB_STATUS_PENDING,
    NODE_ROLE_BY_LETTER,
    NODE_ROLE_LETTER,
    InstanceStatus,
    JobStatus,
    NodeRole,
    QueryFieldStatus,
)
from gwm.rapi.schemas import RapiInstance, RapiJob, RapiJobFailure, RapiNode, RapiQueryResult


def test_instance_dotted_fields_and_unknown_fields() -> None:
    instance = RapiInstance.model_validate(
        {
            "name": "web1",
            "status": "ERROR_nodedown",
            "nic.ips": ["10.0.0.5", None],
            "nic.macs": ["aa:00:00:00:00:01", "aa:00:00:00:00:02"],
            "nic.modes": ["bridged", "routed"],
            "nic.links": ["br0", "lo"],
            "disk.sizes": [1024, 2048],
            "disk.names": [None, "data"],
            "beparams": {"maxmem": 512, "memory": 512},
            "some_future_field": {"x": 1},
        }
    )
    assert instance.status == InstanceStatus.ERROR_NODEDOWN
    assert instance.nic_ips == ["10.0.0.5", None]
    assert [n.link for n in instance.nics] == ["br0", "lo"]
    assert instance.nics[1].ip is None and instance.nics[1].position == 1
    assert [(d.size, d.name) for d in instance.disks] == [(1024, None), (2048, "data")]
    assert instance.model_extra == {"some_future_field": {"x": 1}}
    dumped = instance.model_dump(mode="json", exclude_none=True)
    assert dumped["nic.ips"] == ["10.0.0.5", None]
    assert dumped["some_future_field"] == {"x": 1}
    assert RapiInstance.model_validate({"nic_ips": ["1.2.3.4"]}).nic_ips == ["1.2.3.4"]


def test_an_unknown_status_stays_a_string() -> None:
    assert RapiInstance.model_validate({"status": "ERROR_newkind"}).status == "ERROR_newkind"


def test_node_role_letters() -> None:
    assert RapiNode.model_validate({"role": "C"}).role_name == NodeRole.MASTER_CANDIDATE
    assert RapiNode.model_validate({}).role_name is None
    assert {NODE_ROLE_LETTER[role] for role in NodeRole} == set(NODE_ROLE_BY_LETTER)


def test_job_helpers() -> None:
    job = RapiJob.model_validate(
        {
            "id": 9,
            "status": "error",
            "opstatus": ["success", "error", "error"],
            "opresult": [None, ["OpPrereqError", ["Instance 'x' is down", "wrong_state"]], None],
            "ops": [
                {"reason": [["gnt:user", "gwm:op:5", 1], ["gnt:library:rlib2:x", "", 2]]},
                {"reason": [["gnt:opcode:y", "job=9;index=1", 3]]},
            ],
            "received_ts": [1700000000, 250000],
            "start_ts": None,
        }
    )
    assert job.is_finalized
    assert job.error == RapiJobFailure("OpPrereqError", "Instance 'x' is down", "wrong_state")
    assert job.user_reasons == ["gwm:op:5"]
    assert job.reason_trails[1][0].source == "gnt:opcode:y"
    assert job.received_at == 1700000000.25 and job.started_at is None
    assert RapiJob.model_validate({"status": "running"}).error is None
    assert RapiJob.model_validate({"status": "waitlock"}).status == JobStatus.WAITING


def test_job_error_shapes() -> None:
    def error(result: object) -> RapiJobFailure | None:
        return RapiJob.model_validate(
            {"status": "error", "opstatus": ["error"], "opresult": [result]}
        ).error

    assert error(["OpExecError", ["disk failure"]]) == RapiJobFailure(
        "OpExecError", "disk failure", None
    )
    assert error(["OpExecError", "plain"]) == RapiJobFailure("OpExecError", "plain", None)
    assert error("Job canceled by request") == RapiJobFailure(None, "Job canceled by request", None)


def test_status_sets() -> None:
    assert set(JobStatus) == JOB_STATUS_FINALIZED | JOB_STATUS_PENDING | {JobStatus.RUNNING}
    assert not JOB_STATUS_FINALIZED & JOB_STATUS_PENDING


def test_query_result_rows_and_values() -> None:
    result = RapiQueryResult.model_validate(
        {
            "fields": [{"name": "name"}, {"name": "mfree", "kind": "unit"}],
            "data": [[[0, "n1"], [2, None]], [[0, "n2"], [0, 1024]]],
        }
    )
    assert result.names == ["name", "mfree"]
    assert result.rows()[0]["mfree"].status == QueryFieldStatus.NO_DATA
    assert result.values() == [{"name": "n1", "mfree": None}, {"name": "n2", "mfree": 1024}]
