"""Job waiting: both forms of "no change", and the GenericPollJob loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gwm.rapi import AsyncRapiClient, RapiClient, RapiJobNotFound, RapiJobWaitTimeout
from gwm.rapi.builders import jobs
from gwm.rapi.calls import Flow, RapiCall, Sleep
from gwm.rapi.constants import JobStatus
from gwm.rapi.schemas import RapiJob, RapiJobLogEntry, RapiJobWaitResult
from tests.rapi.server import RapiTestServer, Reply


def test_null_means_no_change() -> None:
    call = jobs.wait_for_job_change(7, previous_job_info=["running"], previous_log_serial=4)
    result = call.parse(None)
    assert result == RapiJobWaitResult(changed=False, fields=["status"], job_info=["running"])
    assert result.status == JobStatus.RUNNING


def test_the_same_job_info_without_logs_means_no_change() -> None:
    call = jobs.wait_for_job_change(7, previous_job_info=["running"])
    result = call.parse({"job_info": ["running"], "log_entries": []})
    assert result.changed is False


def test_new_logs_or_a_new_status_are_a_change() -> None:
    call = jobs.wait_for_job_change(7, previous_job_info=["running"], previous_log_serial=1)
    logs = call.parse({"job_info": ["running"], "log_entries": [[2, [1, 0], "message", "hi"]]})
    assert logs.changed and logs.log_entries == [RapiJobLogEntry(2, (1, 0), "message", "hi")]
    status = call.parse({"job_info": ["success"], "log_entries": []})
    assert status.changed and status.status == JobStatus.SUCCESS


def test_the_first_answer_is_always_a_change() -> None:
    result = jobs.wait_for_job_change(7).parse({"job_info": ["queued"], "log_entries": []})
    assert result.changed and result.status == JobStatus.QUEUED


def test_legacy_waitlock_reads_as_waiting() -> None:
    result = jobs.wait_for_job_change(7).parse({"job_info": ["waitlock"], "log_entries": []})
    assert result.status == JobStatus.WAITING


def drive(flow: Flow[Any], answer: Callable[[RapiCall[Any]], Any]) -> tuple[Any, list[Any]]:
    """Run a flow like a client would, with ``answer`` as the cluster."""
    steps: list[Any] = []
    reply: Any = None
    try:
        step = next(flow)
        while True:
            steps.append(step)
            reply = None if isinstance(step, Sleep) else step.parse(answer(step))
            step = flow.send(reply)
    except StopIteration as done:
        return done.value, steps


FINAL_JOB = {"id": 7, "status": "success", "opstatus": ["success"], "opresult": [["node1"]]}


def test_wait_for_job_follows_the_job_to_its_end_and_reads_it() -> None:
    answers = iter(
        [
            {"job_info": ["queued"], "log_entries": []},
            {"job_info": ["running"], "log_entries": [[1, [1, 0], "message", "a"]]},
            {"job_info": ["running"], "log_entries": [[2, [1, 0], "message", "b"]]},
            {"job_info": ["success"], "log_entries": []},
            FINAL_JOB,
        ]
    )
    seen: list[str] = []
    job, steps = drive(
        jobs.wait_for_job(7, on_log=lambda e: seen.append(e.message)), lambda _: next(answers)
    )
    assert isinstance(job, RapiJob) and job.status == JobStatus.SUCCESS
    assert seen == ["a", "b"]
    bodies = [s.request.body for s in steps if isinstance(s, RapiCall) and s.request.body]
    # Each wait sends what it knows: the last job_info and the highest log serial.
    assert [(b["previous_job_info"], b["previous_log_serial"]) for b in bodies] == [
        (None, None),
        (["queued"], None),
        (["running"], 1),
        (["running"], 2),
    ]
    assert steps[-1].request.path == "/2/jobs/7"


def test_no_change_answers_keep_waiting_with_the_previous_info() -> None:
    answers = iter(
        [
            {"job_info": ["running"], "log_entries": []},
            None,
            {"job_info": ["running"], "log_entries": []},
            {"job_info": ["error"], "log_entries": []},
            {**FINAL_JOB, "status": "error", "opresult": [["OpExecError", ["boom"]]]},
        ]
    )
    job, steps = drive(jobs.wait_for_job(7), lambda _: next(answers))
    assert job.error.message == "boom"
    bodies = [s.request.body for s in steps if isinstance(s, RapiCall) and s.request.body]
    assert [b["previous_job_info"] for b in bodies] == [None, ["running"], ["running"], ["running"]]
    # Fast "no change" answers (no server-side blocking) are paced, not spun on.
    assert sum(isinstance(s, Sleep) for s in steps) == 2


def test_a_timeout_raises_with_the_last_status(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(jobs.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(RapiJobWaitTimeout) as raised:
        drive(
            jobs.wait_for_job(7, timeout=12), lambda _: {"job_info": ["running"], "log_entries": []}
        )
    assert str(raised.value) == "job 7 did not finish within 12 s (last status: running)"
    assert raised.value.last_status == "running"


def test_canceling_is_not_the_end() -> None:
    answers = iter(
        [
            {"job_info": ["canceling"], "log_entries": []},
            {"job_info": ["canceled"], "log_entries": []},
            {"id": 7, "status": "canceled", "opstatus": ["canceled"], "opresult": [None]},
        ]
    )
    job, _ = drive(jobs.wait_for_job(7), lambda _: next(answers))
    assert job.status == JobStatus.CANCELED and job.is_finalized and job.error is None


def _job_server(server: RapiTestServer) -> None:
    server.route(
        "GET",
        "/2/jobs/7/wait",
        Reply(json={"job_info": ["running"], "log_entries": [[1, [1, 0], "message", "go"]]}),
        Reply(json={"job_info": ["running"], "log_entries": []}),
        Reply(json=None),
        Reply(json={"job_info": ["success"], "log_entries": []}),
    )
    server.route("GET", "/2/jobs/7", Reply(json=FINAL_JOB))


def test_wait_for_job_over_http(
    http_server: RapiTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "NO_CHANGE_PAUSE", 0.01)
    _job_server(http_server)
    logs: list[RapiJobLogEntry] = []
    with RapiClient(http_server.url, username="gwm", password="pw") as rapi:
        job = rapi.wait_for_job(7, timeout=30, on_log=logs.append)
    assert job.opresult == [["node1"]]
    assert [entry.message for entry in logs] == ["go"]
    waits = [r for r in http_server.requests if r.path.endswith("/wait")]
    assert len(waits) == 4
    assert all(r.method == "GET" and r.headers["content-type"] == "application/json" for r in waits)
    assert waits[1].json() == {
        "fields": ["status"],
        "previous_job_info": ["running"],
        "previous_log_serial": 1,
    }


async def test_async_wait_for_job_over_http(
    http_server: RapiTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "NO_CHANGE_PAUSE", 0.01)
    _job_server(http_server)
    async with AsyncRapiClient(http_server.url) as rapi:
        job = await rapi.wait_for_job(7)
    assert job.status == JobStatus.SUCCESS


def test_waiting_for_an_unknown_job(http_server: RapiTestServer) -> None:
    http_server.route("GET", "/2/jobs/8/wait", Reply(json={"job_info": [None], "log_entries": []}))
    nulls = dict.fromkeys(["id", "ops", "status", "summary", "opstatus", "opresult", "oplog"])
    http_server.route("GET", "/2/jobs/8", Reply(json=nulls))
    with RapiClient(http_server.url) as rapi, pytest.raises(RapiJobNotFound):
        rapi.wait_for_job(8)
