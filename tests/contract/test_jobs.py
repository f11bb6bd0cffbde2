"""Jobs: list, read, cancel, wait for changes, the reason trail, foreign jobs."""

from __future__ import annotations

import time

import pytest

from gwm.rapi import RapiForbidden, RapiJob, RapiJobLogEntry, RapiJobNotFound, RapiJobWaitTimeout
from gwm.rapi.constants import InstanceStatus, JobStatus
from tests.contract.conftest import SIM_WAIT_TIMEOUT, Target

UNKNOWN_JOB = 987_654_321  # far above any id a long-lived sandbox reaches
#: How long /2/jobs/ID/wait blocks when nothing changes: luxid's 10 s cap, the simulator's knob.
NO_CHANGE_SECONDS = {"simulator": SIM_WAIT_TIMEOUT, "ganeti": 10.0}


def test_job_ids_are_ints_and_jobs_are_listed(target: Target) -> None:
    client = target.client
    tag = target.unique_name("tag")
    target.track_cluster_tags(tag)
    job_id = client.add_cluster_tags([tag])
    assert isinstance(job_id, int) and not isinstance(job_id, bool)
    job = target.succeed(job_id)
    assert job.id == job_id

    ids = client.list_jobs()
    assert all(isinstance(i, int) for i in ids)
    assert job_id in ids
    bulk = {j.id: j for j in target.reader.list_jobs_bulk()}
    listed = bulk[job_id]
    assert isinstance(listed, RapiJob)
    assert listed.status == JobStatus.SUCCESS
    assert listed.summary == ["TAGS_SET"]
    assert listed.opstatus == [JobStatus.SUCCESS]
    # the bulk list has no oplog/opresult (only the single job has them)
    assert listed.oplog is None and listed.opresult is None
    assert listed.ops is not None and listed.ops[0]["OP_ID"] == "OP_TAGS_SET"


def test_a_finished_job_in_full(target: Target) -> None:
    name = target.create_instance(start=False)
    job_id = target.client.startup_instance(name, reason="contract: start")
    target.succeed(job_id)
    job = target.reader.get_job(job_id)
    assert job.id == job_id
    assert job.is_finalized
    assert job.summary == [f"INSTANCE_STARTUP({name})"]
    assert job.opstatus == [JobStatus.SUCCESS]
    assert job.opresult == [None]
    assert job.oplog == [[]]
    assert job.received_ts is not None and job.start_ts is not None and job.end_ts is not None
    assert job.received_at is not None and job.ended_at is not None
    assert job.received_at <= job.ended_at
    op = (job.ops or [{}])[0]
    assert op["OP_ID"] == "OP_INSTANCE_STARTUP"
    assert op["instance_name"] == name
    assert isinstance(op["instance_uuid"], str)


def test_reason_lands_first_in_every_opcode_reason_trail(target: Target) -> None:
    name = target.create_instance()
    reason = f"contract: why {target.unique_name('reason')}"
    job_id = target.client.shutdown_instance(name, timeout=0, reason=reason)
    job = target.succeed(job_id)
    for trail in job.reason_trails:
        assert [e.source for e in trail] == [
            "gnt:user",
            "gnt:library:rlib2:instances_name_shutdown",
            "gnt:opcode:instance_shutdown",
        ]
        assert trail[0].text == reason
        assert trail[1].text == ""
        assert trail[2].text == f"job={job_id};index=0"
        stamps = [e.timestamp_ns for e in trail]  # epoch nanoseconds, all within moments
        assert stamps[0] <= stamps[1] and stamps[0] > 1_500_000_000 * 10**9
        assert max(stamps) - min(stamps) < 5 * 10**9
    assert job.user_reasons == [reason]
    # the bulk list shows the same trail (how gwm finds its own jobs)
    listed = {j.id: j for j in target.client.list_jobs_bulk()}[job_id]
    assert listed.user_reasons == [reason]

    # without reason= there is no gnt:user entry
    job = target.succeed(target.client.startup_instance(name))
    assert [e.source for e in job.reason_trails[0]] == [
        "gnt:library:rlib2:instances_name_startup",
        "gnt:opcode:instance_startup",
    ]
    assert job.user_reasons == []


def test_a_command_line_job_is_foreign(target: Target) -> None:
    name = target.create_instance()
    job_id = target.gnt("gnt-instance", "shutdown", name)
    job = target.succeed(job_id)
    assert job.summary == [f"INSTANCE_SHUTDOWN({name})"]
    sources = [(e.source, e.text) for e in job.reason_trails[0]]
    assert sources[0] == ("gnt:client:gnt-instance", "shutdown")
    assert sources[-1] == ("gnt:opcode:instance_shutdown", f"job={job_id};index=0")
    assert job.user_reasons == []
    assert target.client.get_instance(name).status == InstanceStatus.ADMIN_DOWN

    job = target.succeed(target.gnt("gnt-instance", "startup", name, reason="maintenance"))
    assert [e.source for e in job.reason_trails[0]][:2] == [
        "gnt:user",
        "gnt:client:gnt-instance",
    ]
    assert job.user_reasons == ["maintenance"]
    assert target.client.get_instance(name).status == InstanceStatus.RUNNING


def test_cancel_a_queued_job(target: Target) -> None:
    name = target.unique_name()
    with target.hold() as reason:
        job_id = target.client.startup_instance(name, reason=reason)
        time.sleep(0.3)
        job = target.client.get_job(job_id)
        assert job.status == JobStatus.QUEUED
        assert job.start_ts is None and job.end_ts is None
        assert job.opstatus == [JobStatus.QUEUED]
        result = target.client.cancel_job(job_id)
        assert result == (True, f"Dequeued job {job_id}")
        job = target.wait(job_id, timeout=30)
    assert job.status == JobStatus.CANCELED
    assert job.opstatus == [JobStatus.CANCELED]
    assert job.opresult == [None]
    assert job.start_ts is None and job.end_ts is not None
    # cancelling it again: it is no longer in the queue
    assert target.client.cancel_job(job_id) == (False, f"Job {job_id} not found in queue")


def test_cancel_a_finished_or_unknown_job(target: Target) -> None:
    job_id = target.client.startup_instance(target.unique_name())
    target.fail(job_id)
    result = target.client.cancel_job(job_id)
    assert result.success is False
    assert result.message == f"Job {job_id} not found in queue"
    assert target.client.cancel_job(UNKNOWN_JOB) == (
        False,
        f"Job {UNKNOWN_JOB} not found in queue",
    )


def test_unknown_job(target: Target) -> None:
    # Ganeti 3 answers 200 with every field null; the client raises
    with pytest.raises(RapiJobNotFound) as caught:
        target.client.get_job(UNKNOWN_JOB)
    assert caught.value.job_id == UNKNOWN_JOB
    raw = target.client.raw("GET", f"/2/jobs/{UNKNOWN_JOB}")
    assert raw["id"] == UNKNOWN_JOB
    fields = ("ops", "status", "summary", "opstatus", "received_ts", "start_ts", "end_ts")
    assert {k: v for k, v in raw.items() if k != "id"} == dict.fromkeys(
        (*fields, "oplog", "opresult")
    )
    # and a wait on it answers 500 "Can't load job file": the same exception
    with pytest.raises(RapiJobNotFound):
        target.client.wait_for_job_change(UNKNOWN_JOB)


def test_wait_on_a_finished_job_returns_at_once(target: Target) -> None:
    name = target.unique_name()
    job_id = target.client.startup_instance(name)
    target.fail(job_id)
    started = time.monotonic()
    first = target.client.wait_for_job_change(job_id)
    assert first.changed is True
    assert first.job_info == ["error"]
    assert first.status == JobStatus.ERROR
    # even when asked "tell me when it changes from error": final jobs never block
    again = target.client.wait_for_job_change(job_id, previous_job_info=["error"])
    assert again.changed is False
    assert again.job_info == ["error"]
    assert time.monotonic() - started < 5

    fields = ["id", "status", "opstatus", "opresult", "summary"]
    everything = target.client.wait_for_job_change(job_id, fields=fields)
    assert everything.get("id") == job_id
    assert everything.get("status") == "error"
    assert everything.get("opstatus") == ["error"]
    assert everything.get("summary") == [f"INSTANCE_STARTUP({name})"]
    assert everything.get("opresult") == [
        ["OpPrereqError", [f"Instance '{name}' not known", "unknown_entity"]]
    ]


def test_wait_without_change_returns_the_unchanged_job_info(target: Target) -> None:
    """The one wait that blocks: ~10 s on real Ganeti (luxid's cap)."""
    with target.hold() as reason:
        job_id = target.client.startup_instance(target.unique_name(), reason=reason)
        first = target.client.wait_for_job_change(job_id)
        assert first.changed is True and first.job_info == ["queued"]
        started = time.monotonic()
        same = target.client.wait_for_job_change(job_id, previous_job_info=first.job_info)
        took = time.monotonic() - started
        assert same.changed is False
        assert same.job_info == ["queued"]  # luxid sends the unchanged info back, not null
        assert same.log_entries == []
        expected = NO_CHANGE_SECONDS[target.name]
        assert expected * 0.8 <= took <= expected + 5

        # wait_for_job gives up between two waits once its time is over
        with pytest.raises(RapiJobWaitTimeout) as caught:
            target.client.wait_for_job(job_id, timeout=0)
        assert (caught.value.job_id, caught.value.last_status) == (job_id, "queued")
        assert target.client.cancel_job(job_id).success is True


def test_wait_for_job_follows_a_job_to_its_end_with_logs(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    job_id = target.client.create_instance(name, **target.instance_spec())
    seen: list[RapiJobLogEntry] = []
    job = target.client.wait_for_job(job_id, timeout=60, on_log=seen.append)
    assert job.status == JobStatus.SUCCESS
    assert job.is_finalized
    assert job.opresult is not None and len(job.opresult) == 1
    assert job.opresult[0][0] in target.nodes  # the node hail chose
    logged = (job.oplog or [[]])[0]
    assert [e.serial for e in seen] == [e.serial for e in logged]
    assert [e.message for e in seen] == [e.message for e in logged]
    assert all(e.log_type == "message" for e in seen)
    serials = [e.serial for e in seen]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)


def test_a_failed_job_is_reported_through_job_error(target: Target) -> None:
    name = target.unique_name()
    job = target.client.wait_for_job(target.client.startup_instance(name), timeout=60)
    assert job.status == JobStatus.ERROR
    assert job.error is not None
    assert job.error.error_class == "OpPrereqError"
    assert job.error.message == f"Instance '{name}' not known"
    assert job.error.code == "unknown_entity"


def test_waiting_needs_the_write_right(target: Target) -> None:
    job_id = target.client.startup_instance(target.unique_name())
    target.fail(job_id)
    with pytest.raises(RapiForbidden):
        target.reader.wait_for_job_change(job_id)
    # reading the job itself is fine
    assert target.reader.get_job(job_id).status == JobStatus.ERROR
