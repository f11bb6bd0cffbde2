"""Nodes (read, role, tags), node groups and networks."""

from __future__ import annotations

import pytest

from gwm.rapi import RapiGroup, RapiNetwork, RapiNode, RapiNotFound
from gwm.rapi.constants import JobStatus, NodeRole
from tests.contract.conftest import Target, assert_stored_op

# ---- nodes -------------------------------------------------------------------


def test_node_lists(target: Target) -> None:
    names = target.reader.list_nodes()
    assert target.node in names
    bulk = {n.name: n for n in target.reader.list_nodes_bulk()}
    node = bulk[target.node]
    assert isinstance(node, RapiNode)
    assert node.role == "M" and node.role_name == NodeRole.MASTER
    assert node.master_candidate is True
    assert node.offline is False and node.drained is False
    assert node.master_capable is True and node.vm_capable is True
    assert isinstance(node.mtotal, int) and isinstance(node.mfree, int)
    assert isinstance(node.pinst_list, list) and node.pinst_cnt == len(node.pinst_list)
    # the alias is only in the single GET
    assert "secondary_ip" not in (node.model_extra or {}) and node.secondary_ip is None


def test_get_node_and_its_role(target: Target) -> None:
    node = target.client.get_node(target.node)
    assert node.name == target.node
    assert node.role == "M"
    assert node.sip == node.pip and node.secondary_ip == node.sip
    assert isinstance(node.group_uuid, str)
    assert node.group_uuid == target.client.get_group(target.group).uuid
    assert isinstance(node.ndparams, dict) and "spindle_count" in node.ndparams
    assert isinstance(node.serial_no, int)

    role = target.reader.get_node_role(target.node)
    assert role == NodeRole.MASTER
    assert role == "master"


def test_a_new_instance_shows_on_its_node(target: Target) -> None:
    name = target.create_instance()
    pnode = target.client.get_instance(name).pnode  # hail chose one of the two
    assert pnode in target.nodes
    node = target.client.get_node(pnode)
    assert name in (node.pinst_list or [])
    assert node.sinst_list == []
    other = target.client.get_node(target.other_node(pnode))
    assert name not in (other.pinst_list or []) and name not in (other.sinst_list or [])


def test_unknown_node(target: Target) -> None:
    with pytest.raises(RapiNotFound) as caught:
        target.client.get_node(target.unique_name("node"))
    assert (caught.value.code, caught.value.message) == (404, "Not Found")


def test_node_tags(target: Target) -> None:
    tag = target.unique_name("tag")
    target.track_node_tags(tag)
    job = target.succeed(target.client.add_node_tags(target.node, [tag]))
    assert job.summary == ["TAGS_SET"]
    assert (job.ops or [{}])[0]["kind"] == "node"
    assert tag in target.reader.get_node_tags(target.node)
    target.succeed(target.client.delete_node_tags(target.node, [tag]))
    assert tag not in target.client.get_node_tags(target.node)


# ---- groups ------------------------------------------------------------------


def test_group_lists_and_the_default_group(target: Target) -> None:
    assert target.group in target.reader.list_groups()
    bulk = {g.name: g for g in target.reader.list_groups_bulk()}
    group = bulk[target.group]
    assert isinstance(group, RapiGroup)
    assert target.node in (group.node_list or [])
    assert group.node_cnt == len(group.node_list or [])

    one = target.client.get_group(target.group)
    assert one.name == target.group
    assert one.uuid == group.uuid
    assert one.alloc_policy == "preferred"
    assert one.ipolicy is not None
    assert set(one.ipolicy) >= {"minmax", "std", "disk-templates", "spindle-ratio", "vcpu-ratio"}
    assert isinstance(one.diskparams, dict) and "drbd" in one.diskparams
    assert isinstance(one.custom_ipolicy, dict)
    assert isinstance(one.ndparams, dict)


def test_group_create_modify_tag_rename_delete(target: Target) -> None:
    client = target.client
    name = target.unique_name("group")
    target.track_group(name)
    job = target.succeed(client.create_group(name, alloc_policy="last_resort", reason="contract"))
    assert job.summary == [f"GROUP_ADD({name})"]
    assert_stored_op(job, "alloc_policy", "dry_run", "group_name")
    assert job.user_reasons == ["contract"]
    group = client.get_group(name)
    assert (group.alloc_policy, group.node_cnt, group.node_list) == ("last_resort", 0, [])
    assert group.custom_ipolicy == {}

    job = target.succeed(client.modify_group(name, alloc_policy="unallocable"))
    assert job.summary == [f"GROUP_SET_PARAMS({name})"]
    assert_stored_op(job, "alloc_policy", "group_name")
    assert client.get_group(name).alloc_policy == "unallocable"

    target.succeed(client.add_group_tags(name, ["t1"]))
    assert client.get_group_tags(name) == ["t1"]

    new_name = target.unique_name("group")
    target.track_group(new_name)
    job = target.succeed(client.rename_group(name, new_name))
    assert job.summary == ["GROUP_RENAME"]
    assert job.opresult == [new_name]
    with pytest.raises(RapiNotFound):
        client.get_group(name)
    renamed = client.get_group(new_name)
    assert renamed.uuid == group.uuid and renamed.tags == ["t1"]

    job = target.succeed(client.delete_group(new_name))
    assert job.summary == [f"GROUP_REMOVE({new_name})"]
    assert new_name not in client.list_groups()


def test_a_group_with_nodes_cannot_be_removed(target: Target) -> None:
    job = target.fail(target.client.delete_group(target.group))
    assert job.error is not None
    assert job.error.code == "wrong_state"
    # Ganeti 3.0 lists the nodes by uuid
    prefix = f"Group '{target.group}' not empty, has the following nodes: "
    assert job.error.message.startswith(prefix), job.error.message
    listed = job.error.message.removeprefix(prefix).split(", ")
    assert sorted(listed) == sorted(target.client.get_node(n).uuid for n in target.nodes)


# ---- networks ----------------------------------------------------------------


def test_network_lifecycle(target: Target) -> None:
    client = target.client
    name = target.unique_name("net")
    target.track_network(name)
    job = target.succeed(
        client.create_network(
            name,
            "198.51.100.192/28",
            gateway="198.51.100.193",
            tags=["contract"],
            reason="contract: network",
        )
    )
    assert job.summary == [f"NETWORK_ADD({name})"]
    assert_stored_op(
        job, "conflicts_check", "dry_run", "gateway", "network", "network_name", "tags"
    )
    assert job.opresult == [None]
    assert job.user_reasons == ["contract: network"]

    net = client.get_network(name)
    assert isinstance(net, RapiNetwork)
    assert (net.name, net.network, net.gateway) == (name, "198.51.100.192/28", "198.51.100.193")
    assert (net.network6, net.gateway6, net.mac_prefix) == (None, None, None)
    # network address, gateway and broadcast are reserved
    assert (net.free_count, net.reserved_count) == (13, 3)
    assert net.map == "XX.............X"
    assert net.external_reservations == "198.51.100.192, 198.51.100.193, 198.51.100.207"
    assert net.group_list == [] and net.inst_list == []
    assert net.tags == ["contract"]
    assert name in client.list_networks()
    assert name in {n.name for n in target.reader.list_networks_bulk()}

    job = target.succeed(client.connect_network(name, target.group, mode="routed", link="lo"))
    assert job.summary == [f"NETWORK_CONNECT({name})"]
    assert_stored_op(
        job,
        *("conflicts_check", "dry_run", "group_name", "network_link", "network_mode"),
        *("network_name", "network_vlan"),
    )
    assert client.get_network(name).group_list == [[target.group, "routed", "lo", ""]]

    target.succeed(client.add_network_tags(name, ["t2"]))
    assert client.get_network_tags(name) == ["contract", "t2"]

    job = target.succeed(client.disconnect_network(name, target.group))
    assert job.summary == [f"NETWORK_DISCONNECT({name})"]
    assert_stored_op(job, "dry_run", "group_name", "network_name")
    assert client.get_network(name).group_list == []

    job = target.succeed(client.delete_network(name))
    assert job.summary == [f"NETWORK_REMOVE({name})"]
    assert_stored_op(job, "dry_run", "force", "network_name")
    with pytest.raises(RapiNotFound):
        client.get_network(name)


def test_network_modify(target: Target) -> None:
    client = target.client
    name = target.unique_name("net")
    target.track_network(name)
    target.succeed(client.create_network(name, "198.51.100.224/28"))
    net = client.get_network(name)
    assert net.gateway is None
    assert (net.free_count, net.reserved_count, net.map) == (14, 2, "X..............X")

    job = target.succeed(client.modify_network(name, add_reserved_ips=["198.51.100.230"]))
    assert job.summary == [f"NETWORK_SET_PARAMS({name})"]
    net = client.get_network(name)
    assert (net.free_count, net.reserved_count) == (13, 3)
    assert net.external_reservations == "198.51.100.224, 198.51.100.230, 198.51.100.239"

    # Ganeti refuses both at once
    job = target.fail(
        client.modify_network(name, gateway="198.51.100.225", add_reserved_ips=["198.51.100.231"])
    )
    assert job.error is not None
    assert (job.error.message, job.error.code) == (
        "Cannot modify gateway and reserved ips at once",
        "wrong_input",
    )
    assert job.status == JobStatus.ERROR

    # a gateway is an external reservation: the old one is released
    target.succeed(client.modify_network(name, gateway="198.51.100.225"))
    net = client.get_network(name)
    assert net.gateway == "198.51.100.225"
    assert net.external_reservations == (
        "198.51.100.224, 198.51.100.225, 198.51.100.230, 198.51.100.239"
    )
    target.succeed(client.modify_network(name, gateway="198.51.100.226"))
    net = client.get_network(name)
    assert net.gateway == "198.51.100.226"
    assert net.external_reservations == (
        "198.51.100.224, 198.51.100.226, 198.51.100.230, 198.51.100.239"
    )
    assert (net.free_count, net.reserved_count) == (12, 4)
