"""``/2/query``: fields, filters, per-cell statuses, field definitions."""

from __future__ import annotations

import pytest

from gwm.rapi import RapiQueryField, RapiQueryResult, RapiServerError
from gwm.rapi.constants import InstanceStatus, QueryFieldStatus
from tests.contract.conftest import Target


def test_query_instances_with_a_name_filter(target: Target) -> None:
    name = target.create_instance()
    fields = ["name", "status", "admin_state", "oper_state", "pnode", "be/memory", "disk_template"]
    result = target.client.query("instance", fields, qfilter=["=", "name", name])
    assert isinstance(result, RapiQueryResult)
    assert result.names == fields
    assert [f.kind for f in result.fields] == [
        "text",
        "text",
        "text",
        "bool",
        "text",
        "unit",
        "text",
    ]
    assert result.fields[0].title == "Instance"
    (row,) = result.rows()
    assert all(cell.status == QueryFieldStatus.NORMAL for cell in row.values())
    assert result.values() == [
        {
            "name": name,
            "status": InstanceStatus.RUNNING,
            "admin_state": "up",
            "oper_state": True,
            "pnode": target.client.get_instance(name).pnode,
            "be/memory": 32,
            "disk_template": "diskless",
        }
    ]


def test_query_with_an_or_filter_and_a_regexp(target: Target) -> None:
    running = target.create_instance()
    stopped = target.create_instance(start=False)
    prefix = running.rsplit("-", 1)[0]
    result = target.reader.query(
        "instance",
        ["name", "admin_state"],
        qfilter=[
            "&",
            ["=~", "name", f"^{prefix}-"],
            ["|", ["=", "admin_state", "up"], ["=", "admin_state", "down"]],
        ],
    )
    assert {(r["name"], r["admin_state"]) for r in result.values()} >= {
        (running, "up"),
        (stopped, "down"),
    }
    assert all(r["name"].startswith(prefix) for r in result.values())
    nothing = target.client.query("instance", ["name"], qfilter=["=~", "name", "^no-such-"])
    assert nothing.data == []


def test_query_without_a_filter_is_a_get(target: Target) -> None:
    result = target.reader.query("node", ["name", "role", "offline", "master_candidate"])
    rows = {r["name"]: r for r in result.values()}
    assert set(rows) == set(target.nodes)
    assert rows[target.node] == {
        "name": target.node,
        "role": "M",
        "offline": False,
        "master_candidate": True,
    }
    other = target.other_node(target.node)
    assert rows[other] == {"name": other, "role": "C", "offline": False, "master_candidate": True}


def test_query_jobs(target: Target) -> None:
    job_id = target.client.startup_instance(target.unique_name())
    target.fail(job_id)
    result = target.client.query("job", ["id", "status", "summary"], qfilter=["=", "id", job_id])
    (row,) = result.values()
    assert row["id"] == job_id
    assert row["status"] == "error"
    assert len(row["summary"]) == 1 and row["summary"][0].startswith("INSTANCE_STARTUP(")


def test_unknown_fields_come_back_with_status_1(target: Target) -> None:
    result = target.client.query("node", ["name", "no_such_field"])
    assert result.fields[1] == RapiQueryField(
        name="no_such_field",
        title="no_such_field",
        kind="unknown",
        doc="Unknown field 'no_such_field'",
    )
    for row in result.rows():
        assert row["no_such_field"].status == QueryFieldStatus.UNKNOWN_FIELD
        assert row["no_such_field"].value is None


def test_an_equality_filter_on_an_unknown_name_fails_the_whole_query(target: Target) -> None:
    name = target.unique_name()
    with pytest.raises(RapiServerError) as caught:
        target.client.query("instance", ["name"], qfilter=["=", "name", name])
    assert caught.value.status == 500
    assert caught.value.message == str((f"Instance name {name} not found", "unknown_entity"))


def test_query_fields(target: Target) -> None:
    fields = {f.name: f for f in target.reader.query_fields("instance")}
    assert fields["name"] == RapiQueryField(
        name="name", title="Instance", kind="text", doc="Instance name"
    )
    assert fields["oper_state"].kind == "bool"
    assert fields["be/memory"].kind == "unit"
    assert {"status", "admin_state", "pnode", "tags", "disk_template", "nic.ips"} <= set(fields)

    some = target.client.query_fields("node", fields=["name", "role"])
    assert [f.name for f in some] == ["name", "role"]
    assert some[1].title == "Role"
