"""Job lifecycle, reason trails, cancel, archive and /2/jobs/ID/wait."""

from __future__ import annotations

import time

from tests.simulator.conftest import Sim


def test_shutdown_job_moves_to_success_with_ganeti_reason_trail(sim: Sim) -> None:
    name = sim.first_instance("running")
    job_id = sim.client.put(f"/2/instances/{name}/shutdown?reason=maintenance").json()
    assert isinstance(job_id, int)
    job = sim.wait_job(job_id)
    assert job["status"] == "success"
    assert job["opstatus"] == ["success"]
    assert job["opresult"] == [None]
    assert job["summary"] == [f"INSTANCE_SHUTDOWN({name})"]
    op = job["ops"][0]
    assert op["OP_ID"] == "OP_INSTANCE_SHUTDOWN"
    sources = [entry[0] for entry in op["reason"]]
    assert sources == [
        "gnt:user",
        "gnt:library:rlib2:instances_name_shutdown",
        "gnt:opcode:instance_shutdown",
    ]
    assert op["reason"][0][1] == "maintenance"
    assert op["reason"][2][1] == f"job={job_id};index=0"
    assert all(isinstance(entry[2], int) and entry[2] > 10**18 for entry in op["reason"])
    for key in ("received_ts", "start_ts", "end_ts"):
        assert len(job[key]) == 2
    assert sim.instance(name)["status"] == "ADMIN_down"


def test_without_reason_there_is_no_user_entry(sim: Sim) -> None:
    name = sim.first_instance("ADMIN_down")
    job = sim.run("PUT", f"/2/instances/{name}/startup")
    assert [e[0] for e in job["ops"][0]["reason"]] == [
        "gnt:library:rlib2:instances_name_startup",
        "gnt:opcode:instance_startup",
    ]
    assert sim.instance(name)["status"] == "running"


def test_jobs_pass_through_queued_and_running(sim_factory) -> None:
    s = sim_factory(time_scale=1.0, queued_seconds=0.2, op_seconds={"OP_INSTANCE_REBOOT": 0.4})
    name = s.first_instance("running")
    job_id = s.client.post(f"/2/instances/{name}/reboot?type=hard").json()
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = s.client.get(f"/2/jobs/{job_id}").json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "success":
            break
        time.sleep(0.02)
    assert seen[0] == "queued"
    assert "running" in seen
    assert seen[-1] == "success"


def test_multi_opcode_reinstall_job(sim: Sim) -> None:
    name = sim.first_instance("running")
    job = sim.run("POST", f"/2/instances/{name}/reinstall", json={"os": "noop", "start": True})
    assert [op["OP_ID"] for op in job["ops"]] == [
        "OP_INSTANCE_SHUTDOWN",
        "OP_INSTANCE_REINSTALL",
        "OP_INSTANCE_STARTUP",
    ]
    assert job["opstatus"] == ["success"] * 3
    # rlib2 builds these opcodes itself: only luxid's entry is in the trail
    assert [e[1] for e in job["ops"][1]["reason"]] == [f"job={job['id']};index=1"]
    inst = sim.instance(name)
    assert inst["os"] == "noop"
    assert inst["status"] == "running"


def test_failed_opcode_fails_the_rest(sim: Sim) -> None:
    name = sim.first_instance("running")
    sim.admin("POST", "/job-failures", json={"opcode": "OP_INSTANCE_REINSTALL"})
    job = sim.run("POST", f"/2/instances/{name}/reinstall", json={})
    assert job["status"] == "error"
    assert job["opstatus"] == ["success", "error", "error"]
    assert job["opresult"][1] == ["OpExecError", ["Injected failure"]]
    assert job["opresult"][2] == ["OpExecError", ["Preceding opcode failed"]]


def test_job_list_and_bulk(sim: Sim) -> None:
    name = sim.first_instance("running")
    job = sim.run("PUT", f"/2/instances/{name}/shutdown")
    listed = sim.client.get("/2/jobs").json()
    assert {"id": job["id"], "uri": f"/2/jobs/{job['id']}"} in listed
    bulk = sim.client.get("/2/jobs?bulk=1").json()
    row = next(r for r in bulk if r["id"] == job["id"])
    assert set(row) == {
        "id",
        "ops",
        "status",
        "summary",
        "opstatus",
        "received_ts",
        "start_ts",
        "end_ts",
    }


def test_unknown_job_answers_a_row_of_nulls(sim: Sim) -> None:
    response = sim.client.get("/2/jobs/99999")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == 99999
    assert all(v is None for k, v in body.items() if k != "id")


def test_cancel_queued_running_finished_and_unknown(sim_factory) -> None:
    s = sim_factory(time_scale=1.0, op_seconds={"OP_INSTANCE_REBOOT": 30.0})
    running_name, queued_name = s.client.get("/2/instances").json()[0:2]
    running = s.client.post(f"/2/instances/{running_name['id']}/reboot").json()
    deadline = time.monotonic() + 5
    while s.client.get(f"/2/jobs/{running}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s.admin("PUT", "/queue", json={"hold": True})
    queued = s.client.put(f"/2/instances/{queued_name['id']}/shutdown").json()
    assert s.client.delete(f"/2/jobs/{queued}").json() == [True, f"Dequeued job {queued}"]
    job = s.client.get(f"/2/jobs/{queued}").json()
    assert job["status"] == "canceled"
    assert job["opstatus"] == ["canceled"]
    assert job["start_ts"] is None and job["end_ts"] is not None
    assert s.client.delete(f"/2/jobs/{running}").json() == [
        False,
        "Job no longer waiting, can't cancel (informed it anyway)",
    ]
    assert s.client.delete(f"/2/jobs/{queued}").json() == [
        False,
        f"Job {queued} not found in queue",
    ]
    assert s.client.delete("/2/jobs/99999").json() == [False, "Job 99999 not found in queue"]


def test_archived_jobs_leave_the_list_but_still_answer(sim: Sim) -> None:
    name = sim.first_instance("running")
    job = sim.run("PUT", f"/2/instances/{name}/shutdown")
    sim.admin("PUT", "/config", json={"archive_age": 0})
    time.sleep(0.01)
    assert job["id"] not in [j["id"] for j in sim.client.get("/2/jobs").json()]
    again = sim.client.get(f"/2/jobs/{job['id']}").json()
    assert again["status"] == "success"


def _wait(sim: Sim, job_id: int, prev_info=None, prev_serial=None, fields=None):
    body = {
        "fields": fields or ["status"],
        "previous_job_info": prev_info,
        "previous_log_serial": prev_serial,
    }
    return sim.client.request("GET", f"/2/jobs/{job_id}/wait", json=body)


def test_wait_returns_at_once_for_a_finished_job_with_its_logs(sim: Sim) -> None:
    job = sim.run(
        "POST",
        "/2/instances",
        json={
            "__version__": 1,
            "mode": "create",
            "instance_name": "new1.example.test",
            "disk_template": "plain",
            "disks": [{"size": 1024}],
            "nics": [],
            "os_type": "noop",
        },
    )
    assert job["status"] == "success", job["opresult"]
    started = time.monotonic()
    response = _wait(sim, job["id"], prev_info=["success"])
    assert time.monotonic() - started < 0.5
    body = response.json()
    assert body["job_info"] == ["success"]
    messages = [entry[3] for entry in body["log_entries"]]
    assert "* creating instance disks..." in messages
    serials = [entry[0] for entry in body["log_entries"]]
    assert serials == list(range(1, len(serials) + 1))
    assert all(entry[2] == "message" and len(entry[1]) == 2 for entry in body["log_entries"])
    newer = _wait(sim, job["id"], prev_info=["success"], prev_serial=serials[-2]).json()
    assert [e[0] for e in newer["log_entries"]] == [serials[-1]]


def test_wait_returns_early_on_change(sim_factory) -> None:
    s = sim_factory(time_scale=1.0, wait_timeout=5.0, op_seconds={"OP_INSTANCE_SHUTDOWN": 0.3})
    name = s.first_instance("running")
    job_id = s.client.put(f"/2/instances/{name}/shutdown").json()
    info, serial = None, None
    statuses = []
    started = time.monotonic()
    while True:
        body = _wait(s, job_id, info, serial).json()
        info = body["job_info"]
        statuses.append(info[0])
        if body["log_entries"]:
            serial = body["log_entries"][-1][0]
        if info[0] in ("success", "error"):
            break
    assert statuses[-1] == "success"
    assert time.monotonic() - started < 3.0  # never sat out a 5 s timeout


def test_wait_without_change_returns_unchanged_info_after_the_timeout(sim_factory) -> None:
    s = sim_factory(time_scale=1.0, wait_timeout=0.5, op_seconds={"OP_INSTANCE_REBOOT": 30})
    name = s.first_instance("running")
    job_id = s.client.post(f"/2/instances/{name}/reboot").json()
    deadline = time.monotonic() + 5
    while s.client.get(f"/2/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    body = _wait(s, job_id, ["running"]).json()
    elapsed = time.monotonic() - started
    assert body == {"job_info": ["running"], "log_entries": []}
    assert 0.45 <= elapsed < 2.0


def test_wait_errors_like_ganeti(sim: Sim) -> None:
    name = sim.first_instance("running")
    job = sim.run("PUT", f"/2/instances/{name}/shutdown")
    no_body = sim.client.get(f"/2/jobs/{job['id']}/wait")
    assert no_body.status_code == 500
    assert no_body.json()["message"] == "&#x27;NoneType&#x27; object is not subscriptable"
    bad = sim.client.request("GET", f"/2/jobs/{job['id']}/wait", json={"fields": "status"})
    assert bad.status_code == 400
    assert bad.json()["message"] == "The &#x27;fields&#x27; parameter should be a list"
    unknown = _wait(sim, 99999)
    assert unknown.status_code == 500
    assert unknown.json()["message"] == "Can&#x27;t load job file"
    read_only = sim.reader.request("GET", f"/2/jobs/{job['id']}/wait", json={"fields": ["status"]})
    assert read_only.status_code == 403


def test_waiting_for_locks_shows_as_waiting(sim_factory) -> None:
    s = sim_factory(time_scale=1.0, op_seconds={"OP_INSTANCE_REBOOT": 1.0})
    name = s.first_instance("running")
    first = s.client.post(f"/2/instances/{name}/reboot").json()
    second = s.client.post(f"/2/instances/{name}/reboot").json()
    deadline = time.monotonic() + 5
    while s.client.get(f"/2/jobs/{second}").json()["status"] != "waiting":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert s.client.get(f"/2/jobs/{first}").json()["status"] == "running"
    assert s.wait_job(second)["status"] == "success"
