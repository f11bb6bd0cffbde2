"""Instance operations end to end against the simulator: 202, status rules, jobs, wait.

What each action does to Ganeti and to gwm's cache is proved, action by action, in
``test_action_proofs.py``; these tests are about the request, the job and its rules.
"""

from __future__ import annotations

import pytest

from gwm.operations.models import Job
from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db(transaction=True)


def _reasons(live, ganeti_job_id: int) -> list[str]:
    job = live.running.sim.queue.jobs[ganeti_job_id]
    return [entry[1] for op in job.ops for entry in op.input.get("reason", [])]


def test_start_is_accepted_tracked_and_mirrored(live) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    before = live.instance(name)
    assert (before["status"], before["ganeti"]["status"]) == ("STOPPED", "ADMIN_down")
    assert live.sim_instance(name).running_on is None
    response = live.action(name, "start")
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] in {"PENDING", "QUEUED", "RUNNING"}
    assert job["action"] == "instance.start"
    assert job["resource"] == {
        "type": "instance",
        "name": name,
        "url": f"/api/v1/clusters/sim/instances/{name}",
    }
    assert job["requested_by"] == "root"
    # Held at once: the resource's status says what is happening to it.
    assert live.instance(name)["status"] == "BUSY"

    done = live.wait_done(job)

    assert done["status"] == "SUCCESS"
    assert done["ganeti"]["job_id"]
    assert done["ganeti"]["status"] == "success"
    assert done["finished_at"]
    assert f"gwm:op:{job['id']}" in _reasons(live, done["ganeti"]["job_id"])
    instance = live.instance(name)
    assert instance["status"] == "RUNNING"
    assert instance["ganeti"]["status"] == "running"
    assert live.sim_instance(name).running_on


def test_rename_moves_the_cache_entry(live) -> None:
    live.quiet()
    old = live.stopped_names()[0]  # Ganeti renames only stopped instances
    uuid = live.instance(old)["uuid"]
    assert live.api.get(live.url("/instances/renamed.example.test")).status_code == 404
    assert live.sim_instance("renamed.example.test") is None
    done = live.wait_done(
        live.action(
            old, "rename", new_name="renamed.example.test", name_check=False, ip_check=False
        ).json()
    )
    assert done["status"] == "SUCCESS", (done["error"], done["last_error"])
    assert live.api.get(live.url(f"/instances/{old}")).status_code == 404
    renamed = live.instance("renamed.example.test")
    assert (renamed["status"], renamed["uuid"]) == ("STOPPED", uuid)
    assert live.sim_instance(old) is None
    assert live.sim_instance("renamed.example.test").uuid == uuid


def test_create_lists_provisioning_at_once_then_running(live) -> None:
    live.quiet()
    node = sorted(live.running.sim.state.nodes)[0]
    assert live.api.get("/api/v1/instances?search=new1&fields=name").json()["items"] == []
    assert live.sim_instance("new1.example.test") is None
    body = {
        "name": "new1.example.test",
        "disk_template": "plain",
        "disks": [{"size": 1024}],
        "nics": [],
        "os": live.sim_instance(live.running_names()[0]).os,
        "pnode": node,
        "beparams": {"maxmem": 512, "vcpus": 1},
        "name_check": False,
        "ip_check": False,
    }
    response = live.post("/instances", body)
    assert response.status_code == 202, response.content
    listed = live.api.get("/api/v1/instances?search=new1&fields=name,status").json()["items"]
    assert listed == [{"name": "new1.example.test", "status": "PROVISIONING"}]
    done = live.wait_done(response.json())
    assert done["status"] == "SUCCESS", done
    instance = live.instance("new1.example.test")
    assert instance["status"] == "RUNNING"
    assert instance["primary_node"] == node
    assert instance["disks"][0]["size"] == 1024
    created = live.sim_instance("new1.example.test")
    assert created.running_on == live.running.sim.state.nodes[node].uuid
    assert instance["uuid"] == created.uuid


def test_delete_lists_deleting_then_removes(live) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    assert live.instance(name)["status"] == "STOPPED"
    assert live.sim_instance(name) is not None
    response = live.api.delete(live.url(f"/instances/{name}"))
    assert response.status_code == 202
    assert live.instance(name)["status"] == "DELETING"
    assert live.wait_done(response.json())["status"] == "SUCCESS"
    assert live.api.get(live.url(f"/instances/{name}")).status_code == 404
    assert live.sim_instance(name) is None


def test_ganeti_side_failure_ends_error_with_ganetis_message(live) -> None:
    name = live.stopped_names()[0]
    sim_admin(
        live.running,
        "POST",
        "job-failures",
        {
            "opcode": "OP_INSTANCE_STARTUP",
            "error_type": "OpPrereqError",
            "message": "Not enough memory on node",
            "code": "insufficient_resources",
        },
    )
    live.quiet()
    assert live.instance(name)["status"] == "STOPPED"
    job = live.action(name, "start").json()
    assert live.instance(name)["status"] == "BUSY"  # held while it runs
    done = live.wait_done(job)
    assert done["status"] == "ERROR"
    assert done["error"]["code"] == "insufficient_resources"
    assert "Not enough memory" in done["error"]["message"]
    assert live.instance(name)["status"] == "STOPPED"  # back to what Ganeti says
    assert live.sim_instance(name).running_on is None


def test_wrong_state_in_ganeti_is_a_failed_job_not_an_http_error(live) -> None:
    name = live.running_names()[0]
    # The cache says RUNNING; make Ganeti disagree so its own pre-check refuses.
    assert live.instance(name)["status"] == "RUNNING"
    live.running.sim.state.instances[name].admin_state = "offline"
    done = live.wait_done(live.action(name, "start").json())
    assert done["status"] == "ERROR"
    assert done["error"]["code"] == "wrong_state"
    assert "is marked to be offline" in done["error"]["message"]
    assert live.sim_instance(name).admin_state == "offline"  # Ganeti changed nothing


def test_a_busy_instance_refuses_writes_with_409(live) -> None:
    name = live.running_names()[0]
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    first = live.action(name, "reboot").json()
    second = live.action(name, "shutdown")
    assert second.status_code == 409
    problem = second.json()
    assert problem["code"] == "resource_busy"
    assert problem["resource_status"] == "BUSY"
    assert problem["job"] == f"/api/v1/jobs/{first['id']}"
    assert second["Retry-After"]
    assert live.api.get(live.url(f"/instances/{name}")).status_code == 200  # reads allowed
    sim_admin(live.running, "PUT", "queue", {"hold": False})
    assert live.wait_done(first)["status"] == "SUCCESS"
    assert live.action(name, "shutdown").status_code == 202


def test_two_concurrent_writes_never_both_pass(live) -> None:
    import threading

    from django.db import connections
    from django.test import Client

    name = live.running_names()[0]
    results: list[int] = []

    def post() -> None:
        client = Client(**live.api.defaults)
        try:
            answer = client.post(
                live.url(f"/instances/{name}/actions"),
                {"action": "reboot"},
                content_type="application/json",
            )
            results.append(answer.status_code)
        finally:
            connections.close_all()

    sim_admin(live.running, "PUT", "queue", {"hold": True})
    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [202, 409, 409, 409]
    assert Job.objects.filter(resource_name=name, action="instance.reboot").count() == 1
    sim_admin(live.running, "PUT", "queue", {"hold": False})


def test_idempotency_key(live) -> None:
    name = live.stopped_names()[0]
    first = live.post(
        f"/instances/{name}/actions", {"action": "start"}, **{"Idempotency-Key": "k-1"}
    )
    again = live.post(
        f"/instances/{name}/actions", {"action": "start"}, **{"Idempotency-Key": "k-1"}
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = live.post(
        f"/instances/{name}/actions",
        {"action": "start", "force": True},
        **{"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    live.wait_done(first.json())
    starts = [
        j
        for j in live.running.sim.queue.jobs.values()
        if j.ops[0].input["OP_ID"] == "OP_INSTANCE_STARTUP"
    ]
    assert len(starts) == 1


def test_cancel_a_queued_job(live) -> None:
    live.quiet()
    name = live.running_names()[0]
    assert live.instance(name)["status"] == "RUNNING"
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    job = live.action(name, "shutdown").json()
    live.api.get(f"/api/v1/jobs/{job['id']}/wait?timeout=5")  # until it reached Ganeti
    canceled = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 202
    assert live.instance(name)["status"] == "BUSY"
    done = live.wait_done(job)
    assert done["status"] == "CANCELED"
    assert live.instance(name)["status"] == "RUNNING"
    sim_admin(live.running, "PUT", "queue", {"hold": False})
    # Ganeti canceled the shutdown: the instance still runs there.
    assert live.running.sim.queue.jobs[done["ganeti"]["job_id"]].status == "canceled"
    assert live.sim_instance(name).running_on is not None
    again = live.api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409


def test_wait_returns_early_on_change_and_after_timeout(live) -> None:
    import time

    name = live.running_names()[0]
    sim_admin(live.running, "PUT", "queue", {"hold": True})
    job = live.action(name, "reboot").json()
    first = live.api.get(f"/api/v1/jobs/{job['id']}/wait?timeout=5").json()
    started = time.monotonic()
    quiet = live.api.get(
        f"/api/v1/jobs/{job['id']}/wait?timeout=1&status={first['job']['status']}"
    ).json()
    assert quiet["changed"] is False
    assert 0.9 <= time.monotonic() - started < 3
    sim_admin(live.running, "PUT", "queue", {"hold": False})
    started = time.monotonic()
    moved = live.api.get(
        f"/api/v1/jobs/{job['id']}/wait?timeout=30&status={first['job']['status']}"
    ).json()
    assert moved["changed"] is True
    assert time.monotonic() - started < 10
    assert live.api.get(f"/api/v1/jobs/{job['id']}/wait?timeout=500").status_code == 400


def test_dry_run_changes_nothing(live) -> None:
    name = live.stopped_names()[0]
    before = Job.objects.count()
    response = live.post(f"/instances/{name}/actions?dry_run=true", {"action": "start"})
    assert response.status_code == 200, response.content
    verdict = response.json()
    assert verdict["ok"] is True
    assert Job.objects.count() == before
    assert live.instance(name)["status"] == "STOPPED"
    assert live.sim_instance(name).running_on is None
    unsupported = live.post(f"/instances/{name}/actions?dry_run=true", {"action": "migrate"})
    assert unsupported.status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/instances/{i}/actions", {"action": "explode"}, 422, "validation_failed"),
        (
            "/instances/{i}/actions",
            {"action": "shutdown", "timeout": "soon"},
            422,
            "validation_failed",
        ),
        ("/instances/{i}/actions", {"action": "grow-disk", "disk": 0}, 422, "validation_failed"),
        (
            "/instances/{i}/actions",
            {"action": "migrate", "target_node": "nope"},
            422,
            "unknown_node",
        ),
        ("/instances/nope/actions", {"action": "start"}, 404, "not_found"),
        ("/instances", {"name": "{i}", "disk_template": "plain"}, 409, "name_taken"),
        (
            "/instances",
            {"name": "x.example.test", "disk_template": "plain", "pnode": "nope"},
            422,
            "unknown_node",
        ),
        (
            "/instances",
            {"name": "x.example.test", "disk_template": "floppy"},
            422,
            "validation_failed",
        ),
        ("/instances", {"disk_template": "plain"}, 422, "validation_failed"),
        ("/nodes/nope/actions", {"action": "drain"}, 404, "not_found"),
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(live, path, body, status, code) -> None:
    name = live.running_names()[0]
    body = {k: (v.replace("{i}", name) if isinstance(v, str) else v) for k, v in body.items()}
    before = Job.objects.count()
    response = live.post(path.replace("{i}", name), body)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert Job.objects.count() == before
    assert live.instance(name)["status"] == "RUNNING"


def test_rapi_down_leaves_the_job_pending_and_retried(live) -> None:
    import time

    from gwm.operations.tasks import sweep

    live.quiet()
    name = live.stopped_names()[0]
    assert live.instance(name)["status"] == "STOPPED"
    sim_admin(live.running, "PUT", "faults", {"master_unreachable": True})
    job = live.action(name, "start").json()
    deadline = time.monotonic() + 10
    while True:
        current = live.api.get(f"/api/v1/jobs/{job['id']}").json()
        if current["attempts"] >= 1 and current["last_error"]:
            break
        assert time.monotonic() < deadline, current
        time.sleep(0.1)
    assert current["status"] == "PENDING"
    assert "502" in current["last_error"] or "master" in current["last_error"].lower()
    sim_admin(live.running, "DELETE", "faults")
    Job.objects.filter(pk=job["id"]).update(next_attempt_at=None)
    Job.objects.filter(pk=job["id"]).update(next_attempt_at="2000-01-01T00:00:00Z")
    sweep()
    done = live.wait_done(job)
    assert done["status"] == "SUCCESS"
    assert done["attempts"] >= 2
    assert live.instance(name)["status"] == "RUNNING"
    assert live.sim_instance(name).running_on is not None


def test_foreign_jobs_appear_in_the_history(live) -> None:
    from tests.clusters.helpers import fast_round, gnt

    live.quiet()
    name = live.running_names()[0]
    assert live.instance(name)["status"] == "RUNNING"
    before = live.api.get("/api/v1/jobs?foreign=true").json()["items"]
    assert not [job for job in before if job["resource"]["name"] == name]
    gnt(live.running, "gnt-instance", "shutdown", name)
    assert live.sim_instance(name).running_on is None
    fast_round(live.cluster)
    history = live.api.get("/api/v1/jobs?foreign=true").json()["items"]
    mine = [job for job in history if job["resource"]["name"] == name]
    assert len(mine) == 1, history
    assert mine[0]["source"].startswith("gnt:client:gnt-instance")
    assert mine[0]["status"] == "SUCCESS"
    assert mine[0]["action"] == "ganeti.instance-shutdown"
    # ... and what it did is in the cache after that one fast round.
    after = live.instance(name)
    assert (after["status"], after["ganeti"]["status"]) == ("STOPPED", "ADMIN_down")
    listing = live.api.get(f"/api/v1/jobs?resource=instance:{name}").json()["items"]
    assert listing and all(job["resource"]["name"] == name for job in listing)
