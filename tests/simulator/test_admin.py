"""The /__sim__ admin API: faults, stats, commands run "outside gwm"."""

from __future__ import annotations

import threading
import time

import httpx

from tests.simulator.conftest import Sim


def test_latency_fault(sim: Sim) -> None:
    # The added latency is a lower bound (deterministic); the answer without it is
    # only checked to be faster than that, with room for a loaded machine.
    sim.admin("PUT", "/faults", json={"latency": 1.0})
    started = time.monotonic()
    assert sim.client.get("/version").status_code == 200
    assert time.monotonic() - started >= 1.0
    sim.admin("DELETE", "/faults")
    started = time.monotonic()
    sim.client.get("/version")
    assert time.monotonic() - started < 1.0


def test_forced_status_for_n_requests(sim: Sim) -> None:
    sim.admin("PUT", "/faults", json={"force_status": 503, "force_count": 2})
    statuses = [sim.client.get("/2/info").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    body = None
    sim.admin("PUT", "/faults", json={"force_status": 500, "force_count": 1})
    body = sim.client.get("/2/info").json()
    assert body["code"] == 500 and body["explain"] == "Server got itself in trouble"


def test_error_rate(sim: Sim) -> None:
    sim.admin("PUT", "/faults", json={"error_rate": 1.0, "error_status": 502})
    assert sim.client.get("/2/info").status_code == 502
    sim.admin("PUT", "/faults", json={"error_rate": 0.5})
    statuses = {sim.client.get("/version").status_code for _ in range(40)}
    assert statuses == {200, 502}
    sim.admin("PUT", "/faults", json={"error_rate": 0})
    assert sim.client.get("/2/info").status_code == 200


def test_master_unreachable_spares_calls_that_need_no_master(sim: Sim) -> None:
    sim.admin("PUT", "/faults", json={"master_unreachable": True})
    response = sim.client.get("/2/instances")
    assert response.status_code == 502
    assert "Can&#x27;t connect to master daemon" in response.json()["message"]
    assert sim.client.get("/version").status_code == 200
    assert sim.client.get("/2/features").status_code == 200
    sim.admin("PUT", "/faults", json={"master_unreachable": False})
    assert sim.client.get("/2/instances").status_code == 200


def test_hang_until_cleared_and_for_seconds(sim: Sim) -> None:
    sim.admin("PUT", "/faults", json={"hang": True})
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(sim.client.get("/version").status_code))
    thread.start()
    time.sleep(0.3)
    assert results == []  # still hanging
    sim.admin("PUT", "/faults", json={"hang": False})
    thread.join(5)
    assert results == [200]
    sim.admin("PUT", "/faults", json={"hang_seconds": 0.3})
    started = time.monotonic()
    assert sim.client.get("/version").status_code == 200
    assert 0.2 <= time.monotonic() - started < 2
    short = httpx.Client(base_url=sim.running.url, verify=False, auth=("gwm", "gwm"), timeout=0.2)
    sim.admin("PUT", "/faults", json={"hang": True})
    try:
        short.get("/version")
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("a hung simulator answered")
    finally:
        sim.admin("DELETE", "/faults")
        short.close()


def test_queue_drained_refuses_writes(sim: Sim) -> None:
    sim.admin("PUT", "/faults", json={"queue_drained": True})
    name = sim.first_instance()
    response = sim.client.put(f"/2/instances/{name}/shutdown")
    assert response.status_code == 503
    assert response.json()["message"] == "Job queue is drained, cannot submit"
    assert sim.client.get("/2/instances").status_code == 200


def test_job_failure_injection(sim: Sim) -> None:
    sim.admin(
        "POST",
        "/job-failures",
        json={
            "opcode": "OP_INSTANCE_STARTUP",
            "count": 1,
            "error_type": "OpPrereqError",
            "message": "Not enough memory",
            "code": "insufficient_resources",
        },
    )
    name = sim.first_instance("ADMIN_down")
    failed = sim.run("PUT", f"/2/instances/{name}/startup")
    assert failed["opresult"] == [
        ["OpPrereqError", ["Not enough memory", "insufficient_resources"]]
    ]
    assert sim.instance(name)["status"] == "ADMIN_down"
    assert sim.run("PUT", f"/2/instances/{name}/startup")["status"] == "success"


def test_node_offline_makes_its_instances_nodeoffline(sim: Sim) -> None:
    nodes = [n["id"] for n in sim.client.get("/2/nodes").json()]
    sim.admin("PUT", f"/nodes/{nodes[1]}", json={"offline": True})
    rows = sim.client.get("/2/instances?bulk=1").json()
    on_node = [r for r in rows if r["pnode"] == nodes[1]]
    assert on_node and all(r["status"] == "ERROR_nodeoffline" for r in on_node)
    assert sim.client.get(f"/2/nodes/{nodes[1]}").json()["offline"] is True


def test_exec_outside_gwm_carries_the_client_reason(sim: Sim) -> None:
    name = sim.first_instance("running")
    result = sim.admin(
        "POST", "/exec", json={"client": "gnt-instance", "command": "shutdown", "name": name}
    )
    job = sim.wait_job(result["job_id"])
    trail = job["ops"][0]["reason"]
    assert trail[0][:2] == ["gnt:client:gnt-instance", "shutdown"]
    assert trail[1][0] == "gnt:opcode:instance_shutdown"
    assert sim.instance(name)["status"] == "ADMIN_down"
    watcher = sim.admin(
        "POST", "/exec", json={"client": "watcher", "command": "restart", "name": name}
    )
    assert sim.wait_job(watcher["job_id"])["ops"][0]["reason"][0][0] == "gnt:watcher"


def test_crash_and_wrong_node_without_a_job(sim: Sim) -> None:
    name = sim.first_instance("running")
    jobs_before = len(sim.client.get("/2/jobs").json())
    assert sim.admin("POST", f"/instances/{name}/crash")["status"] == "ERROR_down"
    other = next(
        n["id"] for n in sim.client.get("/2/nodes").json() if n["id"] != sim.instance(name)["pnode"]
    )
    view = sim.admin("PUT", f"/instances/{name}/runtime", json={"running": True, "node": other})
    assert view["status"] == "ERROR_wrongnode"
    stopped = sim.first_instance("ADMIN_down")
    view = sim.admin("PUT", f"/instances/{stopped}/runtime", json={"running": True})
    assert view["status"] == "ERROR_up"
    assert len(sim.client.get("/2/jobs").json()) == jobs_before


def test_stats_count_requests_and_simulated_time(sim_factory) -> None:
    s = sim_factory(time_scale=0.1, nodes=2, instances=20)
    s.admin("DELETE", "/stats")
    for _ in range(3):
        s.client.get("/2/info")
    s.client.get("/2/instances?bulk=1")
    name = s.first_instance()
    s.client.get(f"/2/instances/{name}")
    stats = s.admin("GET", "/stats")
    info = stats["requests"]["GET /2/info"]
    assert info["count"] == 3
    assert info["cost_seconds"] == __import__("pytest").approx(3 * 0.0015, rel=0.01)
    assert info["wall_seconds"] >= info["cost_seconds"]
    bulk = stats["requests"]["GET /2/instances"]
    assert bulk["cost_seconds"] > info["cost_seconds"]
    assert stats["requests"]["GET /2/instances/{name}"]["count"] == 1
    assert stats["total"]["count"] == 6
    assert stats["by_status"]["200"] == 6
    reset = s.admin("POST", "/stats/reset")
    assert reset["total"]["count"] == 6
    assert s.admin("GET", "/stats")["total"]["count"] == 0


def test_admin_token(sim_factory) -> None:
    s = sim_factory(admin_token="s3cret")
    assert s.client.get("/__sim__/stats").status_code == 401
    ok = s.client.get("/__sim__/stats", headers={"X-Sim-Token": "s3cret"})
    assert ok.status_code == 200


def test_several_clusters_in_one_process(sim_factory) -> None:
    a = sim_factory(instances=3)
    b = sim_factory(instances=5)
    assert a.running.url != b.running.url
    assert len(a.client.get("/2/instances").json()) == 3
    assert len(b.client.get("/2/instances").json()) == 5
