"""Every other operation against the simulator: nodes, groups, networks, the cluster,
and the instance actions not covered elsewhere; each succeeds, and each can fail in Ganeti."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db(transaction=True)


def _migratable(live) -> str:
    state = live.running.sim.state
    return next(
        name
        for name, inst in sorted(state.instances.items())
        if inst.disk_template in {"drbd", "sharedfile", "rbd", "ext", "blockdev"}
        and inst.running_on
    )


def _node(live, index: int = 0) -> str:
    return sorted(live.running.sim.state.nodes)[index]


def _group(live) -> str:
    return sorted(g.name for g in live.running.sim.state.groups.values())[0]


def _network(live) -> str:
    return sorted(n.name for n in live.running.sim.state.networks.values())[0]


# (method, path, body) builders, and a check of the simulator's state afterwards.
CASES: dict[str, tuple[Any, Any]] = {
    "instance.migrate": (
        lambda live: ("post", f"/instances/{_migratable(live)}/actions", {"action": "migrate"}),
        None,
    ),
    "instance.failover": (
        lambda live: ("post", f"/instances/{_migratable(live)}/actions", {"action": "failover"}),
        None,
    ),
    "instance.grow-disk": (
        lambda live: (
            "post",
            f"/instances/{live.running_names()[0]}/actions",
            {"action": "grow-disk", "disk": 0, "amount": 512},
        ),
        None,
    ),
    "instance.deactivate-disks": (
        lambda live: (
            "post",
            f"/instances/{live.stopped_names()[0]}/actions",
            {"action": "deactivate-disks"},
        ),
        lambda live, sim: not sim.state.instances[live.stopped_names()[0]].disks_active,
    ),
    "instance.remove-tags": (
        lambda live: (
            "post",
            f"/instances/{_tagged(live)}/actions",
            {"action": "remove-tags", "tags": [live.sim_instance(_tagged(live)).tags[0]]},
        ),
        None,
    ),
    "node.drain": (
        lambda live: ("post", f"/nodes/{_node(live, 1)}/actions", {"action": "drain"}),
        lambda live, sim: sim.state.nodes[_node(live, 1)].drained,
    ),
    "node.set-role": (
        lambda live: (
            "post",
            f"/nodes/{_node(live, 2)}/actions",
            {"action": "set-role", "role": "regular"},
        ),
        None,
    ),
    "node.evacuate": (
        lambda live: (
            "post",
            f"/nodes/{_node(live, 1)}/actions",
            {"action": "evacuate", "mode": "secondary-only"},
        ),
        None,
    ),
    "node.migrate": (
        lambda live: ("post", f"/nodes/{_node(live, 1)}/actions", {"action": "migrate"}),
        None,
    ),
    "node.powercycle": (
        lambda live: (
            "post",
            f"/nodes/{_node(live, 2)}/actions",
            {"action": "powercycle", "force": True},
        ),
        None,
    ),
    "node.add-tags": (
        lambda live: (
            "post",
            f"/nodes/{_node(live)}/actions",
            {"action": "add-tags", "tags": ["rack-1"]},
        ),
        lambda live, sim: "rack-1" in sim.state.nodes[_node(live)].tags,
    ),
    "group.create": (
        lambda live: ("post", "/groups", {"name": "spare", "alloc_policy": "last_resort"}),
        lambda live, sim: any(g.name == "spare" for g in sim.state.groups.values()),
    ),
    "group.modify": (
        lambda live: ("patch", f"/groups/{_group(live)}", {"alloc_policy": "unallocable"}),
        None,
    ),
    "group.rename": (
        lambda live: (
            "post",
            f"/groups/{_group(live)}/actions",
            {"action": "rename", "new_name": "renamed-group"},
        ),
        lambda live, sim: any(g.name == "renamed-group" for g in sim.state.groups.values()),
    ),
    "network.create": (
        lambda live: (
            "post",
            "/networks",
            {"name": "lab", "network": "10.99.0.0/24", "gateway": "10.99.0.1"},
        ),
        lambda live, sim: any(n.name == "lab" for n in sim.state.networks.values()),
    ),
    "network.connect": (
        lambda live: (
            "post",
            f"/networks/{_network(live)}/actions",
            {"action": "connect", "group": _group(live), "mode": "bridged", "link": "br0"},
        ),
        None,
    ),
    "network.add-tags": (
        lambda live: (
            "post",
            f"/networks/{_network(live)}/actions",
            {"action": "add-tags", "tags": ["vlan-9"]},
        ),
        None,
    ),
    "cluster.redistribute-config": (
        lambda live: ("post", "/actions", {"action": "redistribute-config"}),
        None,
    ),
    "cluster.add-tags": (
        lambda live: ("post", "/actions", {"action": "add-tags", "tags": ["prod"]}),
        lambda live, sim: "prod" in sim.state.info["tags"],
    ),
}


def _tagged(live) -> str:
    return next(n for n, i in sorted(live.running.sim.state.instances.items()) if i.tags)


def _send(live, method: str, path: str, body: dict[str, Any]) -> Any:
    call = getattr(live.api, method)
    return call(live.url(path), body, content_type="application/json")


@pytest.mark.parametrize("case", sorted(CASES))
def test_operation_succeeds_and_carries_gwms_reason(live, case: str) -> None:
    build, check = CASES[case]
    method, path, body = build(live)
    response = _send(live, method, path, body)
    assert response.status_code == 202, response.content
    done = live.wait_done(response.json())
    assert done["status"] == "SUCCESS", (done["error"], done["last_error"])
    ganeti_job = live.running.sim.queue.jobs[done["ganeti"]["job_id"]]
    reasons = [entry[1] for op in ganeti_job.ops for entry in op.input.get("reason", [])]
    if done["action"] != "node.migrate" or "target_node" not in body:
        assert f"gwm:op:{done['id']}" in reasons
    if check is not None:
        assert check(live, live.running.sim)


@pytest.mark.parametrize(
    "case",
    ["node.drain", "group.create", "network.create", "cluster.add-tags", "instance.grow-disk"],
)
def test_a_failure_inside_ganeti_ends_the_job_error(live, case: str) -> None:
    build, _ = CASES[case]
    method, path, body = build(live)
    sim_admin(
        live.running,
        "POST",
        "job-failures",
        {"opcode": "*", "error_type": "OpExecError", "message": "disk on fire"},
    )
    done = live.wait_done(_send(live, method, path, body).json())
    assert done["status"] == "ERROR"
    assert "disk on fire" in done["error"]["message"]
    # Whatever it held is free again.
    if case == "node.drain":
        node = live.api.get(live.url(f"/nodes/{_node(live, 1)}")).json()
        assert node["status"] == "ONLINE"
