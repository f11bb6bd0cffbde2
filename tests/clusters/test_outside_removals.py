"""Nodes, groups and networks removed or renamed outside gwm follow in gwm's API after a sync.

"Outside gwm" is what an operator does on the master: ``gnt-*`` commands
(the simulator's ``/__sim__/exec``), a RAPI client that is not gwm, or — for a
node, which RAPI cannot remove — the cluster's configuration itself. Each
change is made after gwm has the object, and read back through the API.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.events.models import Change
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, gnt, register, wait_for_jobs

pytestmark = pytest.mark.django_db

C = "/api/v1/clusters/sim"


def _names(api: Client, kind: str) -> list[str]:
    response = api.get(f"{C}/{kind}?fields=name&limit=1000")
    assert response.status_code == 200, response.content
    return [item["name"] for item in response.json()["items"]]


def _cluster(simulator: Any, **kwargs: Any) -> tuple[Running, Cluster]:
    running = simulator(**kwargs)
    cluster = register(running, name="sim")
    full_sync(cluster)
    return running, cluster


def _deleted_change(cluster: Cluster, resource: str, name: str) -> bool:
    return Change.objects.filter(
        cluster=cluster, resource=resource, name=name, action="deleted"
    ).exists()


def _rapi(running: Running, method: str, path: str, body: Any = None) -> Any:
    """A RAPI client that is not gwm (as a script of the operator's would be)."""
    assert running.cert_path is not None
    response = httpx.request(
        method,
        f"{running.url}{path}",
        json=body,
        auth=("gwm", "gwm"),
        verify=ssl.create_default_context(cafile=str(running.cert_path)),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def test_a_node_removed_outside_gwm_disappears(simulator: Any, api: Client) -> None:
    running, cluster = _cluster(simulator, nodes=4, instances=2)
    state = running.sim.state
    used = {i.pnode for i in state.instances.values()} | {
        s for i in state.instances.values() for s in i.snodes
    }
    spare = next(
        node.name
        for node in state.sorted_nodes()
        if node.uuid not in used and node.uuid != state.master_uuid
    )
    assert spare in _names(api, "nodes")
    assert api.get(f"{C}/nodes/{spare}").status_code == 200

    # gnt-node remove: the node leaves the configuration (RAPI has no node removal).
    del state.nodes[spare]
    state.reindex()
    state.touch(None)
    full_sync(cluster)

    assert spare not in _names(api, "nodes")
    assert sorted(_names(api, "nodes")) == sorted(state.nodes)
    gone = api.get(f"{C}/nodes/{spare}")
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"
    assert _deleted_change(cluster, "node", spare)
    group = api.get(f"{C}/groups/default").json()
    assert spare not in group["nodes"]
    assert api.get(f"{C}").json()["counts"]["nodes"] == 3


def test_a_group_removed_outside_gwm_disappears(simulator: Any, api: Client) -> None:
    running, cluster = _cluster(simulator, nodes=3, instances=4)
    gnt(running, "gnt-group", "add", "spare")
    full_sync(cluster)
    assert "spare" in _names(api, "groups")

    gnt(running, "gnt-group", "remove", "spare")
    assert "spare" not in running.sim.state.groups
    full_sync(cluster)

    assert "spare" not in _names(api, "groups")
    assert api.get(f"{C}/groups/spare").status_code == 404
    assert _deleted_change(cluster, "group", "spare")


def test_a_group_renamed_outside_gwm_appears_renamed_with_its_nodes(
    simulator: Any, api: Client
) -> None:
    running, cluster = _cluster(simulator, nodes=3, instances=4)
    members = sorted(running.sim.state.nodes)
    assert api.get(f"{C}/groups/default").json()["nodes"] == members
    assert {api.get(f"{C}/nodes/{n}").json()["group"] for n in members} == {"default"}

    gnt(running, "gnt-group", "rename", "default", new_name="rack-a")
    assert "rack-a" in running.sim.state.groups
    full_sync(cluster)

    assert _names(api, "groups") == ["rack-a"]
    assert api.get(f"{C}/groups/default").status_code == 404
    renamed = api.get(f"{C}/groups/rack-a")
    assert renamed.status_code == 200
    assert sorted(renamed.json()["nodes"]) == members
    # The nodes say which group they are in: the new name.
    assert {api.get(f"{C}/nodes/{n}").json()["group"] for n in members} == {"rack-a"}


def test_a_network_removed_outside_gwm_disappears(simulator: Any, api: Client) -> None:
    running, cluster = _cluster(simulator, nodes=3, instances=4)
    assert "net-backup" in _names(api, "networks")
    connected = api.get(f"{C}/groups/default").json()["networks"]
    assert any("net-backup" in str(entry) for entry in connected), connected

    gnt(running, "gnt-network", "disconnect", "net-backup", group_name="default")
    gnt(running, "gnt-network", "remove", "net-backup")
    assert "net-backup" not in running.sim.state.networks
    full_sync(cluster)

    assert _names(api, "networks") == ["net-prod"]
    assert api.get(f"{C}/networks/net-backup").status_code == 404
    assert _deleted_change(cluster, "network", "net-backup")
    assert not any(
        "net-backup" in str(entry) for entry in api.get(f"{C}/groups/default").json()["networks"]
    )


def test_a_network_renamed_outside_gwm_appears_renamed(simulator: Any, api: Client) -> None:
    running, cluster = _cluster(simulator, nodes=3, instances=4)
    before = api.get(f"{C}/networks/net-backup").json()
    assert before["network"]

    _rapi(running, "PUT", "/2/networks/net-backup/rename", {"new_name": "net-spare"})
    wait_for_jobs(running)
    assert "net-spare" in running.sim.state.networks
    full_sync(cluster)

    assert sorted(_names(api, "networks")) == ["net-prod", "net-spare"]
    assert api.get(f"{C}/networks/net-backup").status_code == 404
    after = api.get(f"{C}/networks/net-spare")
    assert after.status_code == 200
    assert after.json()["network"] == before["network"]
    assert after.json()["uuid"] == before["uuid"]
    groups = api.get(f"{C}/groups/default").json()["networks"]
    assert any("net-spare" in str(entry) for entry in groups), groups
    assert not any("net-backup" in str(entry) for entry in groups), groups
