"""Every action in the catalog, proved: each starts from a state the action changes.

Each proof asserts the before-state in gwm's API *and* in the simulator's Ganeti
(read over its RAPI, as gwm itself reads it), runs the action through gwm's
HTTP API, then reads both again and compares them with what the action must
produce. Where Ganeti's state does not change (reboot of a running instance),
the proof reads what Ganeti does show: the job's opcode and parameters.

``test_every_action_has_a_proof`` fails when an action is added to
``gwm.operations.actions.ACTIONS`` without a proof here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gwm.operations.actions import ACTIONS
from tests.clusters.helpers import full_sync

pytestmark = pytest.mark.django_db(transaction=True)


class Proof:
    """gwm's API and the simulator's RAPI side by side, for one live cluster."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.rapi = httpx.Client(
            base_url=live.running.url, auth=("gwm", "gwm"), verify=False, timeout=10
        )
        self.ran: list[str] = []
        # No sync round runs in the background during a proof: what gwm shows after
        # the action is what the action's own end wrote (or what outside() synced).
        live.quiet()

    # -- reads ----------------------------------------------------------------------
    def gwm(self, path: str) -> Any:
        response = self.live.api.get(self.live.url(path))
        assert response.status_code == 200, (path, response.content)
        return response.json()

    def gwm_status(self, path: str) -> int:
        return int(self.live.api.get(self.live.url(path)).status_code)

    def sim(self, path: str) -> Any:
        response = self.rapi.get(path)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def sim_status(self, path: str) -> int:
        return self.rapi.get(path).status_code

    def sim_field(self, name: str, field: str) -> Any:
        """One instance field through /2/query (for fields /2/instances/NAME lacks)."""
        rows = self.rapi.put(
            "/2/query/instance",
            json={"fields": [field], "qfilter": ["=", "name", name]},
        ).json()["data"]
        assert len(rows) == 1, rows
        return rows[0][0][1]

    def both(self, kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.gwm(f"/{kind}/{name}"), self.sim(f"/2/{kind}/{name}")

    # -- acting outside gwm (the precondition), then letting gwm catch up -----------
    def outside(self, method: str, path: str, body: Any = None) -> None:
        response = self.rapi.request(method, path, json=body)
        assert response.status_code == 200, response.text
        self.wait_ganeti(int(response.json()))
        full_sync(self.live.cluster)

    def wait_ganeti(self, job_id: int, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.sim(f"/2/jobs/{job_id}")
            if job["status"] in {"success", "error", "canceled"}:
                assert job["status"] == "success", job["opresult"]
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.02)

    # -- the action, through gwm's HTTP API -----------------------------------------
    def run(self, key: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send the action, follow it to SUCCESS; returns Ganeti's job as RAPI shows it."""
        call = getattr(self.live.api, method)
        response = call(self.live.url(path), body, content_type="application/json")
        assert response.status_code == 202, response.content
        assert response.json()["action"] == key
        done = self.live.wait_done(response.json())
        assert done["status"] == "SUCCESS", (done["error"], done["last_error"])
        ganeti = self.sim(f"/2/jobs/{done['ganeti']['job_id']}")
        assert ganeti["status"] == "success"
        op_ids = tuple(op["OP_ID"] for op in ganeti["ops"])
        action = ACTIONS[key]
        assert op_ids[: len(action.opcodes)] == action.opcodes, op_ids
        if action.carries_reason and not (key == "node.migrate" and body.get("target_node")):
            for op in ganeti["ops"]:
                assert f"gwm:op:{done['id']}" in [entry[1] for entry in op["reason"]]
        self.ran.append(key)
        return ganeti


PROOFS: dict[str, list[Callable[[Proof], None]]] = {}


def proves(key: str) -> Callable[[Callable[[Proof], None]], Callable[[Proof], None]]:
    assert key in ACTIONS, key

    def register(fn: Callable[[Proof], None]) -> Callable[[Proof], None]:
        PROOFS.setdefault(key, []).append(fn)
        return fn

    return register


# -- choosing subjects from the simulated cluster ---------------------------------------


def _instances(p: Proof, *, running: bool, templates: set[str] | None = None) -> list[str]:
    state = p.live.running.sim.state
    return [
        name
        for name in sorted(state.instances)
        if bool(state.instances[name].running_on) == running
        and (templates is None or state.instances[name].disk_template in templates)
    ]


def _node(p: Proof, index: int) -> str:
    """A node by index; index 0 is the master."""
    state = p.live.running.sim.state
    names = sorted(state.nodes)
    assert names[0] == state.master.name
    return names[index]


def _instance_state(p: Proof, name: str) -> tuple[str, str, str, bool]:
    g, s = p.both("instances", name)
    return g["status"], g["ganeti"]["status"], s["status"], s["oper_state"]


RUNNING = ("RUNNING", "running", "running", True)
STOPPED = ("STOPPED", "ADMIN_down", "ADMIN_down", False)


# -- instances ------------------------------------------------------------------------


@proves("instance.create")
def create_instance(p: Proof) -> None:
    name = "proof-new.example.test"
    node = _node(p, 1)
    assert p.gwm_status(f"/instances/{name}") == 404
    assert p.sim_status(f"/2/instances/{name}") == 404
    body = {
        "name": name,
        "disk_template": "plain",
        "disks": [{"size": 1024}],
        "os": "noop",
        "pnode": node,
        "beparams": {"maxmem": 512, "minmem": 512, "vcpus": 1},
        "tags": ["proof"],
        "name_check": False,
        "ip_check": False,
    }
    p.run("instance.create", "post", "/instances", body)
    g, s = p.both("instances", name)
    assert _instance_state(p, name) == RUNNING
    assert g["uuid"] == s["uuid"]
    assert (g["primary_node"], s["pnode"]) == (node, node)
    assert [d["size"] for d in g["disks"]] == s["disk.sizes"] == [1024]
    assert g["memory"] == s["beparams"]["maxmem"] == 512
    assert g["os"] == s["os"] == "noop"
    assert g["tags"] == s["tags"] == ["proof"]


@proves("instance.delete")
def delete_instance(p: Proof) -> None:
    name = _instances(p, running=False)[0]
    assert _instance_state(p, name) == STOPPED
    p.run("instance.delete", "delete", f"/instances/{name}", {})
    assert p.gwm_status(f"/instances/{name}") == 404
    assert p.sim_status(f"/2/instances/{name}") == 404


@proves("instance.delete")
def delete_running_instance(p: Proof) -> None:
    name = _instances(p, running=True)[0]
    assert _instance_state(p, name) == RUNNING
    p.run("instance.delete", "delete", f"/instances/{name}", {})
    assert p.gwm_status(f"/instances/{name}") == 404
    assert p.sim_status(f"/2/instances/{name}") == 404


@proves("instance.modify")
def modify_instance_memory(p: Proof) -> None:
    name = _instances(p, running=True)[0]
    g, s = p.both("instances", name)
    before = g["memory"]
    assert s["beparams"]["maxmem"] == before
    assert g["serial_no"] == s["serial_no"]
    wanted = before + 512
    p.run("instance.modify", "patch", f"/instances/{name}", {"beparams": {"maxmem": wanted}})
    g2, s2 = p.both("instances", name)
    assert g2["memory"] == g2["beparams"]["maxmem"] == wanted
    assert s2["beparams"]["maxmem"] == s2["custom_beparams"]["maxmem"] == wanted
    assert g2["ganeti"]["custom_beparams"]["maxmem"] == wanted
    assert g2["serial_no"] == s2["serial_no"] > s["serial_no"]
    assert g2["status"] == "RUNNING"


@proves("instance.modify")
def modify_instance_os_name(p: Proof) -> None:
    name = _instances(p, running=False)[0]
    g, s = p.both("instances", name)
    assert g["os"] == s["os"] != "noop"
    p.run("instance.modify", "patch", f"/instances/{name}", {"os_name": "noop"})
    g2, s2 = p.both("instances", name)
    assert g2["os"] == s2["os"] == "noop"
    assert g2["status"] == "STOPPED"


@proves("instance.start")
def start_instance(p: Proof) -> None:
    name = _instances(p, running=False)[0]
    assert _instance_state(p, name) == STOPPED
    assert p.sim(f"/2/instances/{name}")["admin_state"] == "down"
    p.run("instance.start", "post", f"/instances/{name}/actions", {"action": "start"})
    assert _instance_state(p, name) == RUNNING
    assert p.sim(f"/2/instances/{name}")["admin_state"] == "up"


@proves("instance.shutdown")
def shutdown_instance(p: Proof) -> None:
    name = _instances(p, running=True)[0]
    assert _instance_state(p, name) == RUNNING
    p.run(
        "instance.shutdown",
        "post",
        f"/instances/{name}/actions",
        {"action": "shutdown", "timeout": 5},
    )
    assert _instance_state(p, name) == STOPPED
    assert p.sim(f"/2/instances/{name}")["admin_state"] == "down"


def _reboot_running(p: Proof, reboot_type: str) -> None:
    # Ganeti's state does not change: what it shows is its job, an OP_INSTANCE_REBOOT
    # of this instance with this reboot type, and the instance running before and after.
    name = _instances(p, running=True)[0]
    assert _instance_state(p, name) == RUNNING
    ganeti = p.run(
        "instance.reboot",
        "post",
        f"/instances/{name}/actions",
        {"action": "reboot", "type": reboot_type},
    )
    (op,) = ganeti["ops"]
    assert (op["OP_ID"], op["instance_name"], op["reboot_type"]) == (
        "OP_INSTANCE_REBOOT",
        name,
        reboot_type,
    )
    assert ganeti["opstatus"] == ["success"]
    assert ganeti["summary"] == [f"INSTANCE_REBOOT({name})"]
    assert _instance_state(p, name) == RUNNING


@proves("instance.reboot")
def reboot_soft(p: Proof) -> None:
    _reboot_running(p, "soft")


@proves("instance.reboot")
def reboot_hard(p: Proof) -> None:
    _reboot_running(p, "hard")


@proves("instance.reboot")
def reboot_full(p: Proof) -> None:
    _reboot_running(p, "full")


@proves("instance.reboot")
def reboot_starts_a_stopped_instance(p: Proof) -> None:
    # LUInstanceReboot starts an instance that is not running ("was already stopped,
    # starting now") and marks it up.
    name = _instances(p, running=False)[0]
    assert _instance_state(p, name) == STOPPED
    ganeti = p.run("instance.reboot", "post", f"/instances/{name}/actions", {"action": "reboot"})
    assert ganeti["ops"][0]["reboot_type"] == "hard"
    assert f" - INFO: Instance {name} was already stopped, starting now" in [
        entry[3] for entry in ganeti["oplog"][0]
    ]
    assert _instance_state(p, name) == RUNNING


def _other_os(p: Proof, name: str) -> str:
    current = p.sim(f"/2/instances/{name}")["os"]
    return "noop" if current != "noop" else "debootstrap+bookworm"


@proves("instance.reinstall")
def reinstall_running_with_another_os(p: Proof) -> None:
    name = _instances(p, running=True)[0]
    new_os = _other_os(p, name)
    g, s = p.both("instances", name)
    assert g["os"] == s["os"] != new_os
    assert _instance_state(p, name) == RUNNING
    ganeti = p.run(
        "instance.reinstall",
        "post",
        f"/instances/{name}/actions",
        {"action": "reinstall", "os": new_os, "start": True},
    )
    assert [op["OP_ID"] for op in ganeti["ops"]] == [
        "OP_INSTANCE_SHUTDOWN",
        "OP_INSTANCE_REINSTALL",
        "OP_INSTANCE_STARTUP",
    ]
    assert ganeti["ops"][1]["os_type"] == new_os
    g2, s2 = p.both("instances", name)
    assert g2["os"] == s2["os"] == new_os
    assert _instance_state(p, name) == RUNNING


@proves("instance.reinstall")
def reinstall_without_start_leaves_it_stopped(p: Proof) -> None:
    name = _instances(p, running=True)[1]
    os_before = p.sim(f"/2/instances/{name}")["os"]
    assert _instance_state(p, name) == RUNNING
    ganeti = p.run(
        "instance.reinstall",
        "post",
        f"/instances/{name}/actions",
        {"action": "reinstall", "start": False},
    )
    assert [op["OP_ID"] for op in ganeti["ops"]] == [
        "OP_INSTANCE_SHUTDOWN",
        "OP_INSTANCE_REINSTALL",
    ]
    assert "Running instance OS create scripts..." in [entry[3] for entry in ganeti["oplog"][1]]
    assert _instance_state(p, name) == STOPPED
    g2, s2 = p.both("instances", name)
    assert g2["os"] == s2["os"] == os_before


def _nodes_of(p: Proof, name: str) -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
    g, s = p.both("instances", name)
    return (g["primary_node"], g["secondary_nodes"]), (s["pnode"], s["snodes"])


@proves("instance.migrate")
def migrate_drbd_to_its_secondary(p: Proof) -> None:
    name = _instances(p, running=True, templates={"drbd"})[0]
    (gp, gs), sim_nodes = _nodes_of(p, name)
    assert len(gs) == 1 and gs[0] != gp
    assert sim_nodes == (gp, gs)
    p.run("instance.migrate", "post", f"/instances/{name}/actions", {"action": "migrate"})
    assert _nodes_of(p, name) == ((gs[0], [gp]), (gs[0], [gp]))
    assert _instance_state(p, name) == RUNNING


@proves("instance.migrate")
def migrate_sharedfile_to_a_chosen_node(p: Proof) -> None:
    name = _instances(p, running=True, templates={"sharedfile"})[0]
    (gp, _), (sp, _) = _nodes_of(p, name)
    assert gp == sp
    target = next(n for n in sorted(p.live.running.sim.state.nodes) if n != gp)
    p.run(
        "instance.migrate",
        "post",
        f"/instances/{name}/actions",
        {"action": "migrate", "target_node": target},
    )
    assert _nodes_of(p, name) == ((target, []), (target, []))
    assert _instance_state(p, name) == RUNNING
    node = p.gwm(f"/nodes/{target}")
    assert name in node["primary_instances"]
    assert name not in p.gwm(f"/nodes/{gp}")["primary_instances"]


@proves("instance.failover")
def failover_drbd(p: Proof) -> None:
    name = _instances(p, running=True, templates={"drbd"})[1]
    (gp, gs), sim_nodes = _nodes_of(p, name)
    assert sim_nodes == (gp, gs) and len(gs) == 1
    p.run("instance.failover", "post", f"/instances/{name}/actions", {"action": "failover"})
    assert _nodes_of(p, name) == ((gs[0], [gp]), (gs[0], [gp]))
    assert _instance_state(p, name) == RUNNING


@proves("instance.rename")
def rename_instance(p: Proof) -> None:
    old = _instances(p, running=False)[0]  # Ganeti renames only stopped instances
    new = "proof-renamed.example.test"
    uuid = p.sim(f"/2/instances/{old}")["uuid"]
    assert p.gwm(f"/instances/{old}")["uuid"] == uuid
    assert p.gwm_status(f"/instances/{new}") == 404
    assert p.sim_status(f"/2/instances/{new}") == 404
    p.run(
        "instance.rename",
        "post",
        f"/instances/{old}/actions",
        {"action": "rename", "new_name": new, "name_check": False, "ip_check": False},
    )
    assert p.gwm_status(f"/instances/{old}") == 404
    assert p.sim_status(f"/2/instances/{old}") == 404
    g, s = p.both("instances", new)
    assert g["uuid"] == s["uuid"] == uuid
    assert _instance_state(p, new) == STOPPED


@proves("instance.grow-disk")
def grow_disk(p: Proof) -> None:
    name = _instances(p, running=True, templates={"plain"})[0]
    g, s = p.both("instances", name)
    size = s["disk.sizes"][0]
    assert g["disks"][0]["size"] == size
    p.run(
        "instance.grow-disk",
        "post",
        f"/instances/{name}/actions",
        {"action": "grow-disk", "disk": 0, "amount": 512},
    )
    g2, s2 = p.both("instances", name)
    assert s2["disk.sizes"][0] == g2["disks"][0]["size"] == size + 512
    assert s2["disk.sizes"][1:] == s["disk.sizes"][1:]
    assert _instance_state(p, name) == RUNNING


@proves("instance.activate-disks")
def activate_disks(p: Proof) -> None:
    # gwm does not keep disks_active; what it shows is the configuration's new serial.
    name = _instances(p, running=False)[0]
    assert p.sim_field(name, "disks_active") is False
    serial = p.sim(f"/2/instances/{name}")["serial_no"]
    assert p.gwm(f"/instances/{name}")["serial_no"] == serial
    ganeti = p.run(
        "instance.activate-disks",
        "post",
        f"/instances/{name}/actions",
        {"action": "activate-disks"},
    )
    assert ganeti["opresult"][0], ganeti["opresult"]  # the disks' device paths
    assert p.sim_field(name, "disks_active") is True
    assert (
        p.gwm(f"/instances/{name}")["serial_no"]
        == p.sim(f"/2/instances/{name}")["serial_no"]
        == serial + 1
    )
    assert _instance_state(p, name) == STOPPED


@proves("instance.deactivate-disks")
def deactivate_disks(p: Proof) -> None:
    name = _instances(p, running=False)[0]
    p.outside("PUT", f"/2/instances/{name}/activate-disks")
    assert p.sim_field(name, "disks_active") is True
    serial = p.sim(f"/2/instances/{name}")["serial_no"]
    assert p.gwm(f"/instances/{name}")["serial_no"] == serial
    p.run(
        "instance.deactivate-disks",
        "post",
        f"/instances/{name}/actions",
        {"action": "deactivate-disks"},
    )
    assert p.sim_field(name, "disks_active") is False
    assert (
        p.gwm(f"/instances/{name}")["serial_no"]
        == p.sim(f"/2/instances/{name}")["serial_no"]
        == serial + 1
    )
    assert _instance_state(p, name) == STOPPED


@proves("instance.add-tags")
def add_instance_tags(p: Proof) -> None:
    name = _instances(p, running=True)[0]
    g, s = p.both("instances", name)
    assert "proof:added" not in g["tags"] and "proof:added" not in s["tags"]
    p.run(
        "instance.add-tags",
        "post",
        f"/instances/{name}/actions",
        {"action": "add-tags", "tags": ["proof:added"]},
    )
    g2, s2 = p.both("instances", name)
    assert sorted(g2["tags"]) == sorted(s2["tags"]) == sorted([*s["tags"], "proof:added"])


@proves("instance.remove-tags")
def remove_instance_tags(p: Proof) -> None:
    name = next(
        n for n in _instances(p, running=True) if len(p.sim(f"/2/instances/{n}")["tags"]) > 1
    )
    g, s = p.both("instances", name)
    assert sorted(g["tags"]) == sorted(s["tags"])
    gone = s["tags"][0]
    p.run(
        "instance.remove-tags",
        "post",
        f"/instances/{name}/actions",
        {"action": "remove-tags", "tags": [gone]},
    )
    g2, s2 = p.both("instances", name)
    assert sorted(g2["tags"]) == sorted(s2["tags"]) == sorted(s["tags"][1:])


# -- nodes --------------------------------------------------------------------------


def _node_flags(p: Proof, name: str) -> tuple[str, str, bool, bool, str]:
    g, s = p.both("nodes", name)
    return g["status"], g["role"], s["drained"], s["offline"], s["role"]


@proves("node.drain")
def drain_node(p: Proof) -> None:
    node = _node(p, 1)
    assert _node_flags(p, node) == ("ONLINE", "C", False, False, "C")
    p.run("node.drain", "post", f"/nodes/{node}/actions", {"action": "drain"})
    assert _node_flags(p, node) == ("DRAINED", "D", True, False, "D")
    assert p.gwm(f"/nodes/{node}")["ganeti"]["drained"] is True


@proves("node.undrain")
def undrain_node(p: Proof) -> None:
    node = _node(p, 1)
    p.outside("POST", f"/2/nodes/{node}/modify", {"drained": True})
    assert _node_flags(p, node) == ("DRAINED", "D", True, False, "D")
    p.run("node.undrain", "post", f"/nodes/{node}/actions", {"action": "undrain"})
    # Ganeti promotes it back to master candidate: the pool (10) is not full.
    assert _node_flags(p, node) == ("ONLINE", "C", False, False, "C")


@proves("node.offline")
def offline_node(p: Proof) -> None:
    node = _node(p, 2)
    assert _node_flags(p, node) == ("ONLINE", "C", False, False, "C")
    p.run("node.offline", "post", f"/nodes/{node}/actions", {"action": "offline"})
    assert _node_flags(p, node) == ("OFFLINE", "O", False, True, "O")
    # What ran on it is now on an offline node, in Ganeti and in gwm.
    primaries = p.sim(f"/2/nodes/{node}")["pinst_list"]
    assert primaries
    for name in primaries:
        g, s = p.both("instances", name)
        assert s["status"] == g["ganeti"]["status"] == "ERROR_nodeoffline", name


@proves("node.online")
def online_node(p: Proof) -> None:
    node = _node(p, 2)
    p.outside("POST", f"/2/nodes/{node}/modify", {"offline": True})
    assert _node_flags(p, node) == ("OFFLINE", "O", False, True, "O")
    p.run("node.online", "post", f"/nodes/{node}/actions", {"action": "online"})
    # Ganeti promotes it back to master candidate: the pool (10) is not full.
    assert _node_flags(p, node) == ("ONLINE", "C", False, False, "C")


@proves("node.set-role")
def set_node_role(p: Proof) -> None:
    node = _node(p, 2)
    assert p.sim(f"/2/nodes/{node}/role") == "master-candidate"
    assert p.gwm(f"/nodes/{node}")["role"] == "C"
    p.run(
        "node.set-role",
        "post",
        f"/nodes/{node}/actions",
        {"action": "set-role", "role": "regular"},
    )
    assert p.sim(f"/2/nodes/{node}/role") == "regular"
    g, s = p.both("nodes", node)
    assert g["role"] == s["role"] == "R"
    assert g["ganeti"]["master_candidate"] is s["master_candidate"] is False
    assert g["status"] == "ONLINE"


def _wait_sim_idle(p: Proof, timeout: float = 10) -> None:
    """Until Ganeti has no job pending or running (a node job's own jobs)."""
    deadline = time.monotonic() + timeout
    while not all(job.finalized for job in p.live.running.sim.queue.jobs.values()):
        assert time.monotonic() < deadline, "simulated jobs did not finish"
        time.sleep(0.02)


@proves("node.evacuate")
def evacuate_secondaries(p: Proof) -> None:
    node = _node(p, 1)
    g, s = p.both("nodes", node)
    secondaries = s["sinst_list"]
    assert secondaries and sorted(g["secondary_instances"]) == sorted(secondaries)
    for name in secondaries:
        assert p.gwm(f"/instances/{name}")["secondary_nodes"] == [node]
    ganeti = p.run(
        "node.evacuate",
        "post",
        f"/nodes/{node}/actions",
        {"action": "evacuate", "mode": "secondary-only"},
    )
    # Ganeti's answer names one job per instance it moves: the evacuation is those jobs.
    assert len(ganeti["opresult"][0]["jobs"]) == len(secondaries)
    # When gwm says the evacuation succeeded, gwm shows it done...
    assert p.gwm(f"/nodes/{node}")["secondary_instances"] == []
    for name in secondaries:
        assert node not in p.gwm(f"/instances/{name}")["secondary_nodes"], name
    # ... and so does Ganeti.
    assert p.sim(f"/2/nodes/{node}")["sinst_list"] == []
    for name in secondaries:
        assert node not in p.sim(f"/2/instances/{name}")["snodes"], name


@proves("node.migrate")
def migrate_node(p: Proof) -> None:
    state = p.live.running.sim.state
    # The node whose running instances can all move (drbd: to their secondary).
    node = next(
        n.name
        for n in state.sorted_nodes()
        if (running := [i for i in state.instances.values() if i.pnode == n.uuid and i.running_on])
        and all(i.disk_template == "drbd" for i in running)
    )
    g, s = p.both("nodes", node)
    moving = [name for name in s["pinst_list"] if p.sim(f"/2/instances/{name}")["oper_state"]]
    assert moving and sorted(g["primary_instances"]) == sorted(s["pinst_list"])
    targets = {name: p.sim(f"/2/instances/{name}")["snodes"][0] for name in moving}
    ganeti = p.run("node.migrate", "post", f"/nodes/{node}/actions", {"action": "migrate"})
    # Ganeti's answer names one job per instance it moves: the migration is those jobs.
    assert len(ganeti["opresult"][0]["jobs"]) == len(moving)
    # When gwm says the migration succeeded, gwm shows it done...
    assert not set(moving) & set(p.gwm(f"/nodes/{node}")["primary_instances"])
    for name, target in targets.items():
        g = p.gwm(f"/instances/{name}")
        assert (g["primary_node"], g["status"]) == (target, "RUNNING"), name
    # ... and so does Ganeti.
    for name, target in targets.items():
        assert p.sim(f"/2/instances/{name}")["pnode"] == target, name


@proves("node.powercycle")
def powercycle_node(p: Proof) -> None:
    node = _node(p, 1)
    running = [
        n for n in p.sim(f"/2/nodes/{node}")["pinst_list"] if n in _instances(p, running=True)
    ]
    assert running
    for name in running:
        assert _instance_state(p, name) == RUNNING
    ganeti = p.run(
        "node.powercycle",
        "post",
        f"/nodes/{node}/actions",
        {"action": "powercycle", "force": True},
    )
    assert ganeti["ops"][0]["node_name"] == node
    # The node went down under its instances: marked up, not running.
    for name in running:
        g, s = p.both("instances", name)
        assert (s["status"], s["admin_state"], s["oper_state"]) == ("ERROR_down", "up", False)
        assert (g["status"], g["ganeti"]["status"]) == ("ERROR", "ERROR_down"), name
    assert p.gwm(f"/nodes/{node}")["status"] == "ONLINE"


@proves("node.add-tags")
def add_node_tags(p: Proof) -> None:
    node = _node(p, 1)
    g, s = p.both("nodes", node)
    assert g["tags"] == s["tags"] == []
    p.run(
        "node.add-tags",
        "post",
        f"/nodes/{node}/actions",
        {"action": "add-tags", "tags": ["rack-1"]},
    )
    g2, s2 = p.both("nodes", node)
    assert g2["tags"] == s2["tags"] == ["rack-1"]


@proves("node.remove-tags")
def remove_node_tags(p: Proof) -> None:
    node = _node(p, 1)
    p.outside("PUT", f"/2/nodes/{node}/tags?tag=rack-1&tag=row-2")
    g, s = p.both("nodes", node)
    assert sorted(g["tags"]) == sorted(s["tags"]) == ["rack-1", "row-2"]
    p.run(
        "node.remove-tags",
        "post",
        f"/nodes/{node}/actions",
        {"action": "remove-tags", "tags": ["rack-1"]},
    )
    g2, s2 = p.both("nodes", node)
    assert g2["tags"] == s2["tags"] == ["row-2"]


# -- groups ---------------------------------------------------------------------------


@proves("group.create")
def create_group(p: Proof) -> None:
    assert p.gwm_status("/groups/spare") == 404
    assert p.sim_status("/2/groups/spare") == 404
    p.run("group.create", "post", "/groups", {"name": "spare", "alloc_policy": "last_resort"})
    g, s = p.both("groups", "spare")
    assert g["uuid"] == s["uuid"]
    assert g["alloc_policy"] == s["alloc_policy"] == "last_resort"
    assert g["nodes"] == s["node_list"] == []


@proves("group.modify")
def modify_group(p: Proof) -> None:
    g, s = p.both("groups", "default")
    assert g["alloc_policy"] == s["alloc_policy"] == "preferred"
    p.run("group.modify", "patch", "/groups/default", {"alloc_policy": "unallocable"})
    g2, s2 = p.both("groups", "default")
    assert g2["alloc_policy"] == s2["alloc_policy"] == "unallocable"
    assert g2["serial_no"] == s2["serial_no"] == s["serial_no"] + 1


@proves("group.rename")
def rename_group(p: Proof) -> None:
    g, s = p.both("groups", "default")
    assert g["uuid"] == s["uuid"]
    members = s["node_list"]
    assert members and all(p.gwm(f"/nodes/{n}")["group"] == "default" for n in members)
    assert p.gwm_status("/groups/renamed-group") == 404
    assert p.sim_status("/2/groups/renamed-group") == 404
    p.run(
        "group.rename",
        "post",
        "/groups/default/actions",
        {"action": "rename", "new_name": "renamed-group"},
    )
    assert p.gwm_status("/groups/default") == 404
    assert p.sim_status("/2/groups/default") == 404
    g2, s2 = p.both("groups", "renamed-group")
    assert g2["uuid"] == s2["uuid"] == s["uuid"]
    assert sorted(g2["nodes"]) == sorted(s2["node_list"]) == sorted(members)
    for n in members:
        assert p.gwm(f"/nodes/{n}")["group"] == "renamed-group", n


@proves("group.delete")
def delete_group(p: Proof) -> None:
    p.outside("POST", "/2/groups", {"name": "empty"})
    g, s = p.both("groups", "empty")
    assert g["uuid"] == s["uuid"] and s["node_list"] == []
    p.run("group.delete", "delete", "/groups/empty", {})
    assert p.gwm_status("/groups/empty") == 404
    assert p.sim_status("/2/groups/empty") == 404
    assert p.gwm_status("/groups/default") == 200


@proves("group.assign-nodes")
def assign_nodes(p: Proof) -> None:
    p.outside("POST", "/2/groups", {"name": "rack9"})
    node = _node(p, 1)
    rack9 = p.sim("/2/groups/rack9")
    assert p.gwm(f"/nodes/{node}")["group"] == "default"
    assert p.sim(f"/2/nodes/{node}")["group.uuid"] != rack9["uuid"]
    assert p.gwm("/groups/rack9")["nodes"] == rack9["node_list"] == []
    p.run(
        "group.assign-nodes",
        "post",
        "/groups/rack9/actions",
        {"action": "assign-nodes", "nodes": [node], "force": True},
    )
    assert p.sim(f"/2/nodes/{node}")["group.uuid"] == rack9["uuid"]
    assert p.gwm(f"/nodes/{node}")["group"] == "rack9"
    g, s = p.both("groups", "rack9")
    assert g["nodes"] == s["node_list"] == [node]
    assert node not in p.gwm("/groups/default")["nodes"]
    assert node not in p.sim("/2/groups/default")["node_list"]


@proves("group.add-tags")
def add_group_tags(p: Proof) -> None:
    g, s = p.both("groups", "default")
    assert g["tags"] == s["tags"] == []
    p.run(
        "group.add-tags", "post", "/groups/default/actions", {"action": "add-tags", "tags": ["dc1"]}
    )
    g2, s2 = p.both("groups", "default")
    assert g2["tags"] == s2["tags"] == ["dc1"]


@proves("group.remove-tags")
def remove_group_tags(p: Proof) -> None:
    p.outside("PUT", "/2/groups/default/tags?tag=dc1&tag=dc2")
    g, s = p.both("groups", "default")
    assert sorted(g["tags"]) == sorted(s["tags"]) == ["dc1", "dc2"]
    p.run(
        "group.remove-tags",
        "post",
        "/groups/default/actions",
        {"action": "remove-tags", "tags": ["dc2"]},
    )
    g2, s2 = p.both("groups", "default")
    assert g2["tags"] == s2["tags"] == ["dc1"]


# -- networks ---------------------------------------------------------------------------


@proves("network.create")
def create_network(p: Proof) -> None:
    assert p.gwm_status("/networks/lab") == 404
    assert p.sim_status("/2/networks/lab") == 404
    p.run(
        "network.create",
        "post",
        "/networks",
        {"name": "lab", "network": "10.99.0.0/24", "gateway": "10.99.0.1", "tags": ["t1"]},
    )
    g, s = p.both("networks", "lab")
    assert g["uuid"] == s["uuid"]
    assert g["network"] == s["network"] == "10.99.0.0/24"
    assert g["gateway"] == s["gateway"] == "10.99.0.1"
    assert g["tags"] == s["tags"] == ["t1"]


@proves("network.modify")
def modify_network(p: Proof) -> None:
    g, s = p.both("networks", "net-prod")
    assert g["gateway"] == s["gateway"] == "10.128.0.1"
    p.run("network.modify", "patch", "/networks/net-prod", {"gateway": "10.128.255.254"})
    g2, s2 = p.both("networks", "net-prod")
    assert g2["gateway"] == s2["gateway"] == "10.128.255.254"
    assert g2["serial_no"] == s2["serial_no"] == s["serial_no"] + 1


@proves("network.rename")
def rename_network(p: Proof) -> None:
    g, s = p.both("networks", "net-backup")
    assert g["uuid"] == s["uuid"]
    assert "net-backup" in p.gwm("/groups/default")["networks"]
    assert p.gwm_status("/networks/net-spare") == 404
    assert p.sim_status("/2/networks/net-spare") == 404
    p.run(
        "network.rename",
        "post",
        "/networks/net-backup/actions",
        {"action": "rename", "new_name": "net-spare"},
    )
    assert p.gwm_status("/networks/net-backup") == 404
    assert p.sim_status("/2/networks/net-backup") == 404
    g2, s2 = p.both("networks", "net-spare")
    assert g2["uuid"] == s2["uuid"] == s["uuid"]
    networks = p.gwm("/groups/default")["networks"]
    assert "net-spare" in networks and "net-backup" not in networks


def _add_loose_network(p: Proof, name: str) -> None:
    p.outside("POST", "/2/networks", {"network_name": name, "network": "10.77.0.0/24"})


@proves("network.delete")
def delete_network(p: Proof) -> None:
    _add_loose_network(p, "scratch")
    g, s = p.both("networks", "scratch")
    assert g["uuid"] == s["uuid"] and s["group_list"] == []
    p.run("network.delete", "delete", "/networks/scratch", {})
    assert p.gwm_status("/networks/scratch") == 404
    assert p.sim_status("/2/networks/scratch") == 404


@proves("network.connect")
def connect_network(p: Proof) -> None:
    _add_loose_network(p, "scratch")
    g, s = p.both("networks", "scratch")
    assert g["groups"] == s["group_list"] == []
    assert "scratch" not in p.gwm("/groups/default")["networks"]
    p.run(
        "network.connect",
        "post",
        "/networks/scratch/actions",
        {"action": "connect", "group": "default", "mode": "bridged", "link": "br-scratch"},
    )
    g2, s2 = p.both("networks", "scratch")
    assert s2["group_list"] == [["default", "bridged", "br-scratch", ""]]
    assert [list(x) for x in g2["groups"]] == s2["group_list"]
    assert "scratch" in p.gwm("/groups/default")["networks"]


@proves("network.disconnect")
def disconnect_network(p: Proof) -> None:
    g, s = p.both("networks", "net-backup")
    assert [x[0] for x in s["group_list"]] == [x[0] for x in g["groups"]] == ["default"]
    assert s["inst_list"] == []  # Ganeti refuses while instances use it
    p.run(
        "network.disconnect",
        "post",
        "/networks/net-backup/actions",
        {"action": "disconnect", "group": "default"},
    )
    g2, s2 = p.both("networks", "net-backup")
    assert g2["groups"] == s2["group_list"] == []
    assert "net-backup" not in p.gwm("/groups/default")["networks"]


@proves("network.add-tags")
def add_network_tags(p: Proof) -> None:
    g, s = p.both("networks", "net-prod")
    assert g["tags"] == s["tags"] == []
    p.run(
        "network.add-tags",
        "post",
        "/networks/net-prod/actions",
        {"action": "add-tags", "tags": ["vlan-9"]},
    )
    g2, s2 = p.both("networks", "net-prod")
    assert g2["tags"] == s2["tags"] == ["vlan-9"]


@proves("network.remove-tags")
def remove_network_tags(p: Proof) -> None:
    p.outside("PUT", "/2/networks/net-prod/tags?tag=vlan-9&tag=vlan-10")
    g, s = p.both("networks", "net-prod")
    assert sorted(g["tags"]) == sorted(s["tags"]) == ["vlan-10", "vlan-9"]
    p.run(
        "network.remove-tags",
        "post",
        "/networks/net-prod/actions",
        {"action": "remove-tags", "tags": ["vlan-9"]},
    )
    g2, s2 = p.both("networks", "net-prod")
    assert g2["tags"] == s2["tags"] == ["vlan-10"]


# -- the cluster ------------------------------------------------------------------------


@proves("cluster.redistribute-config")
def redistribute_config(p: Proof) -> None:
    # LUClusterRedistConf writes the cluster object back (cfg.Update): Ganeti bumps
    # its serial and mtime, the one trace the redistribution leaves in the config.
    mtime = p.sim("/2/info")["mtime"]
    assert p.gwm("")["ganeti"]["mtime"] == mtime
    time.sleep(0.01)
    p.run("cluster.redistribute-config", "post", "/actions", {"action": "redistribute-config"})
    after = p.sim("/2/info")["mtime"]
    assert after > mtime
    assert p.gwm("")["ganeti"]["mtime"] == after


@proves("cluster.add-tags")
def add_cluster_tags(p: Proof) -> None:
    assert p.gwm("")["ganeti"]["tags"] == p.sim("/2/tags") == []
    p.run("cluster.add-tags", "post", "/actions", {"action": "add-tags", "tags": ["prod"]})
    assert p.gwm("")["ganeti"]["tags"] == p.sim("/2/tags") == p.sim("/2/info")["tags"] == ["prod"]


@proves("cluster.remove-tags")
def remove_cluster_tags(p: Proof) -> None:
    p.outside("PUT", "/2/tags?tag=prod&tag=eu")
    assert sorted(p.gwm("")["ganeti"]["tags"]) == sorted(p.sim("/2/tags")) == ["eu", "prod"]
    p.run("cluster.remove-tags", "post", "/actions", {"action": "remove-tags", "tags": ["prod"]})
    assert p.gwm("")["ganeti"]["tags"] == p.sim("/2/tags") == ["eu"]


# -- the tests ------------------------------------------------------------------------

CASES = [(key, fn) for key in sorted(PROOFS) for fn in PROOFS[key]]


@pytest.mark.parametrize(("key", "proof"), CASES, ids=[f"{k}:{f.__name__}" for k, f in CASES])
def test_action_proof(live, key: str, proof: Callable[[Proof], None]) -> None:
    p = Proof(live)
    try:
        proof(p)
    finally:
        p.rapi.close()
    assert key in p.ran, f"{proof.__name__} never sent {key} through gwm's API"


def test_every_action_has_a_proof() -> None:
    assert set(PROOFS) == set(ACTIONS), {
        "without a proof": sorted(set(ACTIONS) - set(PROOFS)),
        "not an action": sorted(set(PROOFS) - set(ACTIONS)),
    }
