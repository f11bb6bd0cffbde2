"""Instances: create, read, power, console, rename, modify, tags, disks, reinstall, delete.

Every instance is diskless, has no NIC and 32 MB (what the sandbox's relaxed
instance policy accepts), and is removed when its test ends.
"""

from __future__ import annotations

import pytest

from gwm.rapi import (
    RapiInstance,
    RapiInstanceConsole,
    RapiNotFound,
    RapiNotImplemented,
    RapiServerError,
    RapiUnavailable,
)
from gwm.rapi.constants import AdminState, InstanceStatus, JobStatus
from tests.contract.conftest import Target, assert_stored_op


def test_create_runs_one_job_that_starts_the_instance(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    reason = f"contract: create {name}"
    job_id = target.client.create_instance(
        name, **target.instance_spec(tags=["contract"]), reason=reason
    )
    assert isinstance(job_id, int)
    logs: list[str] = []
    job = target.client.wait_for_job(job_id, timeout=60, on_log=lambda e: logs.append(e.message))

    assert job.status == JobStatus.SUCCESS
    assert job.summary == [f"INSTANCE_CREATE({name})"]
    # the nodes chosen: hail picks one of the two (the emptier one)
    assert job.opresult is not None and len(job.opresult) == 1
    (chosen,) = job.opresult[0]
    assert chosen in target.nodes
    assert job.user_reasons == [reason]
    op = (job.ops or [{}])[0]
    assert op["OP_ID"] == "OP_INSTANCE_CREATE"
    # Ganeti stores the legacy `memory` as maxmem/minmem and fills in the iallocator
    assert op["beparams"] == {"maxmem": 32, "minmem": 32}
    assert op["iallocator"] == "hail"
    assert op["hypervisor"] == "fake"
    # every log entry reached on_log once, in order
    assert logs == [entry.message for entry in (job.oplog or [[]])[0]]
    assert logs[0] == (f" - INFO: Selected nodes for instance {name} via iallocator hail: {chosen}")
    assert logs[-1] == "* starting instance..."

    inst = target.client.get_instance(name)
    assert isinstance(inst, RapiInstance)
    assert inst.name == name
    assert inst.status == InstanceStatus.RUNNING
    assert inst.admin_state == AdminState.UP
    assert inst.oper_state is True
    assert inst.oper_ram == 32
    assert inst.os == target.os_name
    assert inst.pnode == chosen
    assert inst.snodes == []
    assert inst.disk_template == "diskless"
    assert inst.disks == [] and inst.nics == []
    assert inst.disk_usage == 0
    assert inst.tags == ["contract"]
    assert inst.custom_beparams == {"maxmem": 32, "minmem": 32}
    assert inst.beparams is not None
    assert inst.beparams["memory"] == inst.beparams["maxmem"] == 32  # back-filled
    assert inst.custom_osparams is None  # not in Ganeti 3.0's I_FIELDS
    assert isinstance(inst.serial_no, int) and isinstance(inst.ctime, float)

    assert name in target.client.list_instances()
    bulk = {i.name: i for i in target.reader.list_instances_bulk()}
    assert bulk[name].status == InstanceStatus.RUNNING
    assert bulk[name].uuid == inst.uuid


def test_create_dry_run_checks_without_creating(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    job = target.succeed(
        target.client.create_instance(name, **target.instance_spec(), dry_run=True)
    )
    # a dry run answers the chosen nodes' uuids, not their names
    node_uuids = {target.client.get_node(node).uuid for node in target.nodes}
    assert job.opresult is not None and len(job.opresult) == 1
    (chosen,) = job.opresult[0]
    assert chosen in node_uuids
    messages = [e.message for e in (job.oplog or [[]])[0]]
    assert messages[-1] == " - INFO: dry-run mode requested, not actually executing the operation"
    with pytest.raises(RapiNotFound):
        target.client.get_instance(name)


def test_shutdown_startup_reboot_delete(target: Target) -> None:
    name = target.create_instance()
    client = target.client

    job = target.succeed(client.shutdown_instance(name, timeout=0, reason="contract: stop"))
    assert job.summary == [f"INSTANCE_SHUTDOWN({name})"]
    assert job.opresult == [None]
    inst = client.get_instance(name)
    assert inst.status == InstanceStatus.ADMIN_DOWN
    assert inst.admin_state == AdminState.DOWN
    assert inst.oper_state is False

    target.succeed(client.startup_instance(name))
    assert client.get_instance(name).status == InstanceStatus.RUNNING

    for reboot_type in ("soft", "hard"):
        job = target.succeed(client.reboot_instance(name, reboot_type=reboot_type))
        assert job.summary == [f"INSTANCE_REBOOT({name})"]
        assert (job.ops or [{}])[0]["reboot_type"] == reboot_type
        assert_stored_op(
            job,
            *("dry_run", "ignore_secondaries", "instance_name", "instance_uuid"),
            *("reboot_type", "shutdown_timeout"),
        )
        assert client.get_instance(name).status == InstanceStatus.RUNNING

    job = target.succeed(client.delete_instance(name, shutdown_timeout=0))
    assert job.summary == [f"INSTANCE_REMOVE({name})"]
    assert_stored_op(
        job,
        *("dry_run", "ignore_failures", "instance_name", "instance_uuid", "shutdown_timeout"),
    )
    with pytest.raises(RapiNotFound):
        client.get_instance(name)
    assert name not in client.list_instances()


def test_reboot_is_a_post_put_is_501(target: Target) -> None:
    name = target.create_instance()
    with pytest.raises(RapiNotImplemented) as caught:
        target.client.raw("PUT", f"/2/instances/{name}/reboot")
    assert caught.value.status == 501
    assert caught.value.message == f"Method PUT is unsupported for path /2/instances/{name}/reboot"


def test_console_of_running_and_stopped_instance(target: Target) -> None:
    name = target.create_instance()
    console = target.reader.get_instance_console(name)
    assert isinstance(console, RapiInstanceConsole)
    # the fake hypervisor has no console: kind "msg", and no host/port/command at all
    assert console.kind == "msg"
    assert console.instance == name
    assert console.message == "Console not available for fake hypervisor"
    assert console.model_dump(exclude_none=True) == {
        "instance": name,
        "kind": "msg",
        "message": "Console not available for fake hypervisor",
    }

    target.succeed(target.client.shutdown_instance(name, timeout=0))
    with pytest.raises(RapiUnavailable) as caught:
        target.client.get_instance_console(name)
    assert caught.value.status == 503
    assert caught.value.message == "Instance console unavailable"


def test_modify_beparams(target: Target) -> None:
    name = target.create_instance()
    job = target.succeed(
        target.client.modify_instance(name, beparams={"memory": 48}, reason="contract: grow")
    )
    assert job.summary == [f"INSTANCE_SET_PARAMS({name})"]
    assert job.opresult == [[["be/memory", 48]]]
    assert job.user_reasons == ["contract: grow"]
    assert_stored_op(
        job,
        *("beparams", "conflicts_check", "disks", "ext_params", "force", "force_variant"),
        *("hotplug", "hotplug_if_possible", "hvparams", "ignore_ipolicy", "instance_name"),
        *("instance_uuid", "nics", "osparams", "wait_for_sync"),
    )
    inst = target.client.get_instance(name)
    assert inst.beparams is not None and inst.beparams["memory"] == 48
    assert inst.custom_beparams == {"maxmem": 48, "minmem": 48}


def test_instance_tags(target: Target) -> None:
    name = target.create_instance()
    client = target.client
    assert client.get_instance_tags(name) == []
    target.succeed(client.add_instance_tags(name, ["a", "b"]))
    assert client.get_instance_tags(name) == ["a", "b"]
    assert target.reader.get_instance_tags(name) == ["a", "b"]
    target.succeed(client.delete_instance_tags(name, ["a"]))
    assert client.get_instance_tags(name) == ["b"]
    job = target.fail(client.delete_instance_tags(name, ["zz"]))
    assert job.error is not None
    assert (job.error.message, job.error.code) == ("Tag(s) 'zz' not found", "unknown_entity")


def test_rename_a_stopped_instance(target: Target) -> None:
    name = target.create_instance(start=False)
    new_name = target.unique_name()
    target.track_instance(new_name)
    inst = target.client.get_instance(name)
    assert inst.status == InstanceStatus.ADMIN_DOWN

    job = target.succeed(
        target.client.rename_instance(name, new_name, name_check=False, ip_check=False)
    )
    assert job.opresult == [new_name]  # the job's result is the new name
    with pytest.raises(RapiNotFound):
        target.client.get_instance(name)
    renamed = target.client.get_instance(new_name)
    assert renamed.uuid == inst.uuid
    assert renamed.status == InstanceStatus.ADMIN_DOWN


def test_activate_and_deactivate_disks(target: Target) -> None:
    name = target.create_instance()
    client = target.client
    # running (admin up): deactivating is refused before anything happens
    job = target.fail(client.deactivate_instance_disks(name))
    assert job.error is not None
    assert job.error.error_class == "OpPrereqError"
    assert job.error.code == "wrong_state"
    assert job.error.message == f"Instance '{name}' is marked to be up, cannot shutdown disks"

    target.succeed(client.shutdown_instance(name, timeout=0))
    job = target.succeed(client.deactivate_instance_disks(name))
    assert job.summary == [f"INSTANCE_DEACTIVATE_DISKS({name})"]
    assert job.opresult == [None]
    job = target.succeed(client.activate_instance_disks(name))
    assert job.summary == [f"INSTANCE_ACTIVATE_DISKS({name})"]
    assert job.opresult == [[]]  # one [node, iv_name, device] per disk: none here


def test_reinstall_is_one_job_of_shutdown_reinstall_startup(target: Target) -> None:
    name = target.create_instance()
    client = target.client
    # Ganeti cannot reinstall a diskless instance: the job shows its shape all the same
    job = target.fail(client.reinstall_instance(name, os_type=target.os_name))
    assert job.summary == [
        f"INSTANCE_SHUTDOWN({name})",
        f"INSTANCE_REINSTALL({name})",
        f"INSTANCE_STARTUP({name})",
    ]
    assert job.opstatus == [JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.ERROR]
    assert job.opresult == [
        None,
        ["OpPrereqError", [f"Instance '{name}' has no disks", "wrong_input"]],
        ["OpExecError", ["Preceding opcode failed"]],
    ]
    assert job.error is not None and job.error.code == "wrong_input"
    # rlib2 builds these opcodes itself: no reason trail but the opcode's own
    for trail in job.reason_trails:
        assert [entry.source for entry in trail] == [trail[-1].source]
        assert trail[-1].source.startswith("gnt:opcode:")
    assert client.get_instance(name).status == InstanceStatus.ADMIN_DOWN

    job = target.fail(client.reinstall_instance(name, start=False))
    assert job.summary == [f"INSTANCE_SHUTDOWN({name})", f"INSTANCE_REINSTALL({name})"]


def test_instance_info_runs_a_job(target: Target) -> None:
    name = target.create_instance()
    job = target.succeed(target.client.request_instance_info(name, static=True))
    assert job.summary == ["INSTANCE_QUERY_DATA"]
    assert_stored_op(job, "instances", "static", "use_locking")
    assert (job.ops or [{}])[0]["use_locking"] is False
    assert job.opresult is not None
    (result,) = job.opresult
    details = result[name]
    assert details["name"] == name
    assert details["config_state"] == "up"
    assert details["run_state"] is None  # static: no node was asked
    assert details["pnode"] == target.client.get_instance(name).pnode
    assert details["pnode"] in target.nodes
    assert details["pnode_group_name"] == "default"
    assert details["os"] == target.os_name
    assert details["disk_template"] == "diskless"
    assert details["hypervisor"] == "fake"
    assert details["disks"] == [] and details["nics"] == []
    assert details["be_instance"] == {"maxmem": 32, "minmem": 32}


def test_disk_operations_on_a_diskless_instance_fail_in_their_jobs(target: Target) -> None:
    name = target.create_instance(start=False)
    client = target.client
    cases = [
        (
            client.grow_instance_disk(name, 0, 10),
            "Invalid disk index: 0 (instace has disks 0 to -1",  # sic
            "wrong_input",
        ),
        (client.recreate_instance_disks(name), f"Instance '{name}' has no disks", "wrong_input"),
        (
            client.replace_instance_disks(name),
            "The instance has a strange layout, expected one secondary but found 0",
            "internal_error",
        ),
    ]
    for job_id, message, code in cases:
        job = target.fail(job_id)
        assert job.error is not None
        assert (job.error.error_class, job.error.message, job.error.code) == (
            "OpPrereqError",
            message,
            code,
        )


def test_migrate_and_failover_move_the_instance_to_the_other_node(target: Target) -> None:
    name = target.create_instance(pnode=target.node)
    client = target.client
    other = target.other_node(target.node)
    assert client.get_instance(name).pnode == target.node

    migrate = target.succeed(client.migrate_instance(name))
    assert migrate.summary == [f"INSTANCE_MIGRATE({name})"]
    inst = client.get_instance(name)
    assert (inst.pnode, inst.status) == (other, InstanceStatus.RUNNING)

    failover = target.succeed(client.failover_instance(name))
    assert failover.summary == [f"INSTANCE_FAILOVER({name})"]
    inst = client.get_instance(name)
    assert (inst.pnode, inst.status) == (target.node, InstanceStatus.RUNNING)
    for job in (migrate, failover):
        # no target given: the default iallocator was filled in and chose the other node
        assert (job.ops or [{}])[0]["iallocator"] == "hail"
    # a migration that ran stores the mode it used (the hypervisor's default)
    assert (migrate.ops or [{}])[0]["mode"] == "live"
    common = ("cleanup", "iallocator", "ignore_ipolicy", "instance_name", "instance_uuid")
    assert_stored_op(
        migrate, *common, "allow_failover", "allow_runtime_changes", "ignore_hvversions", "mode"
    )
    assert_stored_op(failover, *common, "ignore_consistency", "shutdown_timeout")


def test_migrate_and_failover_without_a_usable_second_node_fail(target: Target) -> None:
    name = target.create_instance(pnode=target.node)
    other = target.other_node(target.node)
    expected = (
        "Can't compute nodes using iallocator 'hail': Request failed: Can't find any good node: "
    )
    target.drain_node(other)
    migrate = target.fail(target.client.migrate_instance(name))
    failover = target.fail(target.client.failover_instance(name))
    for job in (migrate, failover):
        assert job.error is not None
        assert (job.error.message, job.error.code) == (expected, "insufficient_resources")
        # the default iallocator was filled in before it failed
        assert (job.ops or [{}])[0]["iallocator"] == "hail"
    inst = target.client.get_instance(name)
    assert (inst.pnode, inst.status) == (target.node, InstanceStatus.RUNNING)


def test_unknown_instance(target: Target) -> None:
    name = target.unique_name()
    with pytest.raises(RapiNotFound) as caught:
        target.client.get_instance(name)
    error = caught.value
    assert (error.status, error.code, error.message, error.explain) == (
        404,
        404,
        "Not Found",
        "Nothing matches the given URI",
    )
    assert error.body == {
        "code": 404,
        "message": "Not Found",
        "explain": "Nothing matches the given URI",
    }
    # sub-resources of an unknown instance are 500s in Ganeti 3.0, not 404s
    with pytest.raises(RapiServerError) as tags:
        target.client.get_instance_tags(name)
    assert tags.value.status == 500
    assert tags.value.message == str((f"Instance name {name} not found", "unknown_entity"))
    with pytest.raises(RapiServerError) as console:
        target.client.get_instance_console(name)
    assert (console.value.status, console.value.message) == (500, "list index out of range")


def test_duplicate_create_fails_the_job_with_already_exists(target: Target) -> None:
    name = target.create_instance()
    job = target.fail(target.client.create_instance(name, **target.instance_spec()))
    assert job.error is not None
    assert job.error.error_class == "OpPrereqError"
    assert job.error.code == "already_exists"
    assert job.error.message == f"Instance '{name}' is already in the cluster"


def test_startup_of_an_unknown_instance_fails_the_job_with_unknown_entity(
    target: Target,
) -> None:
    name = target.unique_name()
    job_id = target.client.startup_instance(name)  # accepted: 200 and a job id
    job = target.fail(job_id)
    assert job.opresult == [["OpPrereqError", [f"Instance '{name}' not known", "unknown_entity"]]]
    assert job.error is not None and job.error.code == "unknown_entity"


def test_a_file_instance_neither_migrates_nor_fails_over(target: Target) -> None:
    """``file`` disks are node-local (node2's file storage is its own): Ganeti refuses."""
    name = target.create_instance(disk_template="file", disks=[{"size": 16}], pnode=target.node)
    migrate = target.fail(target.client.migrate_instance(name))
    failover = target.fail(target.client.failover_instance(name))
    for job, what in ((migrate, "migrations"), (failover, "failovers")):
        assert job.error is not None
        assert (job.error.error_class, job.error.message, job.error.code) == (
            "OpPrereqError",
            f"Instance's disk layout 'file' does not allow {what}",
            "wrong_state",
        )
    inst = target.client.get_instance(name)
    assert (inst.pnode, inst.status, inst.disk_template) == (target.node, "running", "file")
