"""Operations: 200 + a job that fails for wrong-state requests, statuses after."""

from __future__ import annotations

import time

from tests.simulator.conftest import Sim
from tests.simulator.test_http import CREATE


def test_starting_an_unknown_instance_is_a_failing_job(sim: Sim) -> None:
    response = sim.client.put("/2/instances/unknown.example.test/startup")
    assert response.status_code == 200
    job = sim.wait_job(response.json())
    assert job["status"] == "error"
    assert job["opresult"] == [
        ["OpPrereqError", ["Instance 'unknown.example.test' not known", "unknown_entity"]]
    ]


def test_create_then_duplicate_create(sim: Sim) -> None:
    job = sim.run("POST", "/2/instances", json=CREATE)
    assert job["status"] == "success"
    assert len(job["opresult"][0]) == 1  # the chosen primary node
    op = job["ops"][0]
    assert op["beparams"] == {"maxmem": 512, "minmem": 512}
    inst = sim.instance("web1.example.test")
    assert inst["status"] == "running"
    assert inst["beparams"]["memory"] == 512
    assert inst["serial_no"] == 1
    again = sim.run("POST", "/2/instances", json=CREATE)
    assert again["opresult"] == [
        [
            "OpPrereqError",
            ["Instance 'web1.example.test' is already in the cluster", "already_exists"],
        ]
    ]


def test_create_with_no_install_does_not_start(sim: Sim) -> None:
    body = {**CREATE, "instance_name": "quiet.example.test", "no_install": True}
    job = sim.run("POST", "/2/instances", json=body)
    assert "No-installation mode selected, disabling startup" in [
        entry[3] for entry in job["oplog"][0]
    ]
    assert sim.instance("quiet.example.test")["status"] == "ADMIN_down"


def test_create_policy_violation_and_no_memory(sim: Sim) -> None:
    nodes = sim.client.get("/2/nodes").json()
    policy = {
        **CREATE,
        "instance_name": "big.example.test",
        "pnode": nodes[0]["id"],
        "beparams": {"memory": 512, "vcpus": 128},
    }
    job = sim.run("POST", "/2/instances", json=policy)
    assert job["opresult"][0][0] == "OpPrereqError"
    assert (
        "violates policy: cpu-count value 128 is not in range [1, 64]" in job["opresult"][0][1][0]
    )
    huge = {**CREATE, "instance_name": "huge.example.test", "beparams": {"memory": 10**7}}
    job = sim.run("POST", "/2/instances", json=huge)
    assert job["opresult"][0][1][1] == "insufficient_resources"


def test_dry_run_checks_only(sim: Sim) -> None:
    job = sim.run("POST", "/2/instances?dry-run=1", json=CREATE)
    assert job["status"] == "success"
    assert job["ops"][0]["dry_run"] is True
    assert sim.client.get("/2/instances/web1.example.test").status_code == 404
    name = sim.first_instance("running")
    sim.run("PUT", f"/2/instances/{name}/shutdown?dry-run=1")
    assert sim.instance(name)["status"] == "running"


def test_statuses_through_shutdown_startup_reboot_and_crash(sim: Sim) -> None:
    name = sim.first_instance("running")
    before = sim.instance(name)
    sim.run("PUT", f"/2/instances/{name}/shutdown")
    after = sim.instance(name)
    assert (after["status"], after["admin_state"], after["oper_state"]) == (
        "ADMIN_down",
        "down",
        False,
    )
    assert after["oper_ram"] is None
    assert after["serial_no"] == before["serial_no"] + 1  # config change
    sim.run("PUT", f"/2/instances/{name}/startup")
    assert sim.instance(name)["status"] == "running"
    sim.run("POST", f"/2/instances/{name}/reboot?type=soft")
    assert sim.instance(name)["status"] == "running"
    serial = sim.instance(name)["serial_no"]
    sim.admin("POST", f"/instances/{name}/crash")
    crashed = sim.instance(name)
    assert crashed["status"] == "ERROR_down"
    assert crashed["admin_state"] == "up"
    assert crashed["serial_no"] == serial  # runtime state is not config


def test_offline_and_unreachable_nodes(sim: Sim) -> None:
    name = sim.first_instance("running")
    pnode = sim.instance(name)["pnode"]
    sim.admin("PUT", f"/nodes/{pnode}", json={"unreachable": True})
    inst = sim.instance(name)
    assert inst["status"] == "ERROR_nodedown"
    assert inst["oper_state"] is None
    rows = sim.client.put(
        "/2/query/instance",
        json={"fields": ["name", "oper_state", "oper_ram"], "qfilter": ["=", "name", name]},
    ).json()["data"]
    assert rows == [[[0, name], [2, None], [2, None]]]
    node = sim.client.get(f"/2/nodes/{pnode}").json()
    assert node["mfree"] is None
    sim.admin("PUT", f"/nodes/{pnode}", json={"unreachable": False, "offline": True})
    assert sim.instance(name)["status"] == "ERROR_nodeoffline"
    assert sim.client.get(f"/2/nodes/{pnode}/role").json() == "offline" or pnode.startswith(
        "node001"
    )
    job = sim.run("PUT", f"/2/instances/{name}/shutdown")
    assert job["opresult"] == [
        ["OpPrereqError", [f"Can't use offline node: {pnode}", "wrong_state"]]
    ]
    forced = sim.run("PUT", f"/2/instances/{name}/shutdown", json={"ignore_offline_nodes": True})
    assert forced["status"] == "success"


def test_migrate_failover_rename_modify_grow(sim: Sim) -> None:
    rows = sim.client.get("/2/instances?bulk=1").json()
    drbd = next(r for r in rows if r["disk_template"] == "drbd" and r["status"] == "running")
    name = drbd["name"]
    sim.run("PUT", f"/2/instances/{name}/migrate", json={"mode": "live"})
    moved = sim.instance(name)
    assert moved["pnode"] == drbd["snodes"][0] and moved["snodes"] == [drbd["pnode"]]
    assert moved["status"] == "running"
    sim.run("PUT", f"/2/instances/{name}/failover", json={})
    assert sim.instance(name)["pnode"] == drbd["pnode"]
    plain = next(r for r in rows if r["disk_template"] == "plain")
    refused = sim.run("PUT", f"/2/instances/{plain['name']}/migrate", json={})
    assert refused["opresult"][0] == [
        "OpPrereqError",
        ["Instance's disk layout 'plain' does not allow migrations", "wrong_state"],
    ]
    modify = sim.run("PUT", f"/2/instances/{name}/modify", json={"beparams": {"memory": 2048}})
    assert modify["opresult"] == [[["be/memory", 2048]]]
    assert sim.instance(name)["beparams"]["maxmem"] == 2048
    size = sim.instance(name)["disk.sizes"][0]
    sim.run("POST", f"/2/instances/{name}/disk/0/grow", json={"amount": 1024})
    assert sim.instance(name)["disk.sizes"][0] == size + 1024
    running_rename = sim.run("PUT", f"/2/instances/{name}/rename", json={"new_name": "x.test"})
    assert running_rename["opresult"][0][1][1] == "wrong_state"
    sim.run("PUT", f"/2/instances/{name}/shutdown")
    renamed = sim.run("PUT", f"/2/instances/{name}/rename", json={"new_name": "x.example.test"})
    assert renamed["opresult"] == ["x.example.test"]
    assert sim.client.get(f"/2/instances/{name}").status_code == 404
    job = sim.run("DELETE", "/2/instances/x.example.test")
    assert job["status"] == "success"
    assert sim.client.get("/2/instances/x.example.test").status_code == 404


def test_instance_info_is_a_job(sim: Sim) -> None:
    name = sim.first_instance()
    job = sim.wait_job(sim.client.get(f"/2/instances/{name}/info").json())
    assert job["summary"] == ["INSTANCE_QUERY_DATA"]
    assert job["opresult"][0][name]["run_state"] == "up"


def test_node_role_evacuate_and_migrate(sim: Sim) -> None:
    nodes = [n["id"] for n in sim.client.get("/2/nodes").json()]
    assert sim.client.get(f"/2/nodes/{nodes[0]}/role").json() == "master"
    target = nodes[1]
    sim.run("PUT", f"/2/nodes/{target}/role", json="drained")
    assert sim.client.get(f"/2/nodes/{target}").json()["role"] == "D"
    sim.run("PUT", f"/2/nodes/{target}/role", json="master-candidate")
    assert sim.client.get(f"/2/nodes/{target}/role").json() == "master-candidate"
    bad = sim.client.put(f"/2/nodes/{target}/role", json={"role": "x"})
    assert bad.status_code == 400
    job = sim.run("POST", f"/2/nodes/{target}/migrate", json={"mode": "live"})
    children = job["opresult"][0]["jobs"]
    assert children and all(ok is True for ok, _ in children)
    for _, child in children:
        sim.wait_job(child)
    job = sim.run("POST", f"/2/nodes/{target}/evacuate", json={"mode": "secondary-only"})
    assert "jobs" in job["opresult"][0]


def test_groups_and_networks(sim: Sim) -> None:
    sim.run("POST", "/2/groups", json={"group_name": "rack9"})
    assert "rack9" in [g["name"] for g in sim.client.get("/2/groups").json()]
    sim.run("PUT", "/2/groups/rack9/modify", json={"alloc_policy": "last_resort"})
    assert sim.client.get("/2/groups/rack9").json()["alloc_policy"] == "last_resort"
    sim.run("PUT", "/2/groups/rack9/rename", json={"new_name": "rack10"})
    node = sim.client.get("/2/nodes").json()[-1]["id"]
    sim.run("PUT", "/2/groups/rack10/assign-nodes", json={"nodes": [node]})
    assert sim.client.get("/2/groups/rack10").json()["node_list"] == [node]
    refused = sim.run("DELETE", "/2/groups/rack10")
    assert refused["opresult"][0][1][1] == "wrong_state"
    sim.run(
        "POST",
        "/2/networks",
        json={"network_name": "net1", "network": "198.51.100.128/28", "gateway": "198.51.100.129"},
    )
    net = sim.client.get("/2/networks/net1").json()
    assert (net["free_count"], net["reserved_count"], net["map"]) == (13, 3, "XX.............X")
    sim.run(
        "PUT",
        "/2/networks/net1/connect",
        json={"group_name": "default", "network_mode": "routed", "network_link": "lo"},
    )
    assert sim.client.get("/2/networks/net1").json()["group_list"] == [
        ["default", "routed", "lo", ""]
    ]
    sim.run("PUT", "/2/networks/net1/disconnect", json={"group_name": "default"})
    sim.run("PUT", "/2/networks/net1/rename", json={"new_name": "net2"})
    sim.run("DELETE", "/2/networks/net2")
    assert sim.client.get("/2/networks/net2").status_code == 404


def test_os_list_runs_a_job(sim: Sim) -> None:
    assert "noop" in sim.client.get("/2/os").json()
    assert sim.client.get("/2/os?bulk=1").json() == sim.client.get("/2/os").json()
    summaries = [j["summary"] for j in sim.client.get("/2/jobs?bulk=1").json()]
    assert ["OS_DIAGNOSE"] in summaries


def test_query_fields_filters_and_status_codes(sim: Sim) -> None:
    q = sim.client.get("/2/query/instance?fields=name,no_such_field").json()
    assert q["fields"][1] == {
        "name": "no_such_field",
        "title": "no_such_field",
        "kind": "unknown",
        "doc": "Unknown field 'no_such_field'",
    }
    assert all(row[1] == [1, None] for row in q["data"])

    def names(flt) -> list[str]:
        response = sim.client.put("/2/query/instance", json={"fields": ["name"], "qfilter": flt})
        assert response.status_code == 200, response.text
        return [row[0][1] for row in response.json()["data"]]

    everyone = names(None)
    running = names(["==", "status", "running"])
    stopped = names(["!=", "status", "running"])
    assert sorted(running + stopped) == sorted(everyone)
    assert names(["|", ["=", "admin_state", "up"], ["=", "admin_state", "down"]]) == everyone
    assert names(["&", ["=~", "name", "^inst0000[12]"], ["?", "admin_up"]]) == [
        n for n in names(["=~", "name", "^inst0000[12]"]) if n in names(["?", "admin_up"])
    ]
    assert names(["!", ["?", "admin_up"]]) == names(["=", "admin_state", "down"])
    assert names([">=", "disk.count", 2]) == names(["!", ["<", "disk.count", 2]])
    assert names(["<=", "be/maxmem", 1024]) == names(["!", [">", "be/maxmem", 1024]])
    tagged = names(["=[]", "tags", "env:prod"])
    assert all("env:prod" in sim.instance(n)["tags"] for n in tagged)
    unknown = sim.client.put(
        "/2/query/instance", json={"fields": ["name"], "qfilter": ["=", "name", "nosuch"]}
    )
    assert unknown.status_code == 500
    assert unknown.json()["message"] == (
        "(&#x27;Instance name nosuch not found&#x27;, &#x27;unknown_entity&#x27;)"
    )
    bad_field = sim.client.put(
        "/2/query/instance", json={"fields": ["name"], "qfilter": ["=", "nosuch", 1]}
    )
    assert bad_field.status_code == 500
    fields = sim.client.get("/2/query/node/fields").json()["fields"]
    assert {"name", "role", "mfree"} <= {f["name"] for f in fields}
    jobs = sim.client.get("/2/query/job?fields=id,status").json()
    assert jobs["fields"][0]["name"] == "id"


def test_reboot_starts_a_stopped_instance_as_ganeti_does(sim: Sim) -> None:
    """LUInstanceReboot: an instance that is not running is started ("was already
    stopped, starting now") and marked up; a running one keeps running."""
    name = sim.first_instance("ADMIN_down")
    assert (sim.instance(name)["oper_state"], sim.instance(name)["admin_state"]) == (False, "down")
    job = sim.run("POST", f"/2/instances/{name}/reboot?type=hard")
    assert job["status"] == "success"
    assert f" - INFO: Instance {name} was already stopped, starting now" in [
        entry[3] for entry in job["oplog"][0]
    ]
    after = sim.instance(name)
    assert (after["status"], after["oper_state"], after["admin_state"]) == ("running", True, "up")
    again = sim.run("POST", f"/2/instances/{name}/reboot?type=soft")
    assert again["oplog"] == [[]]
    assert sim.instance(name)["status"] == "running"


def test_redistribute_config_writes_the_cluster_back(sim: Sim) -> None:
    """LUClusterRedistConf does cfg.Update(cluster): wconfd bumps its serial and mtime."""
    before = sim.client.get("/2/info").json()["mtime"]
    time.sleep(0.01)
    job = sim.run("PUT", "/2/redistribute-config")
    assert job["status"] == "success"
    assert sim.client.get("/2/info").json()["mtime"] > before
