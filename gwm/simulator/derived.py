"""Values Ganeti derives from its configuration, shared by opcodes and queries.

Merged parameters (cluster defaults under an object's own), an instance's
status and console as luxid reports them, and the address arithmetic of a
network (reservations are offsets into its range).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from gwm.simulator.state import ADMIN_OFFLINE, ADMIN_UP, ClusterState, Instance, Network, Nic, Node

# cluster-wide hypervisor parameters luxid leaves out of an instance's hvparams
HV_GLOBALS = frozenset({"migration_port", "migration_bandwidth", "migration_mode", "xen_cmd"})


# ---- merged parameters -----------------------------------------------------


def instance_beparams(state: ClusterState, inst: Instance) -> dict[str, Any]:
    return {**state.info["beparams"]["default"], **inst.beparams}


def instance_hvparams(state: ClusterState, inst: Instance) -> dict[str, Any]:
    merged = {**state.info["hvparams"].get(inst.hypervisor, {}), **inst.hvparams}
    return {k: v for k, v in merged.items() if k not in HV_GLOBALS}


def instance_maxmem(state: ClusterState, inst: Instance) -> int:
    """The memory a running instance takes from its node."""
    maxmem: int = inst.beparams.get("maxmem", state.info["beparams"]["default"]["maxmem"])
    return maxmem


def nic_filled(state: ClusterState, nic: Nic) -> dict[str, str]:
    return {**state.info["nicparams"]["default"], **nic.nicparams}


def node_ndparams(state: ClusterState, node: Node) -> dict[str, Any]:
    group = state.group_by_uuid(node.group_uuid)
    return {**state.info["ndparams"], **group.ndparams, **node.ndparams}


# ---- instances -------------------------------------------------------------


def instance_status(state: ClusterState, inst: Instance) -> str:
    """Ganeti's determineInstanceStatus (src/Ganeti/Query/Instance.hs)."""
    pnode = state.node_by_uuid(inst.pnode)
    if pnode.offline:
        return "ERROR_nodeoffline"
    if pnode.unreachable:
        return "ERROR_nodedown"
    if inst.running_on is not None:
        if inst.running_on != inst.pnode:
            return "ERROR_wrongnode"
        return "running" if inst.admin_state == ADMIN_UP else "ERROR_up"
    if inst.admin_state == ADMIN_UP:
        return "ERROR_down"
    if inst.admin_state == ADMIN_OFFLINE:
        return "ADMIN_offline"
    if inst.admin_state_source == "user" and state.info.get("enabled_user_shutdown"):
        return "USER_down"
    return "ADMIN_down"


def instance_console(state: ClusterState, inst: Instance) -> dict[str, Any]:
    """What OpInstanceConsole / the ``console`` field report for the hypervisor."""
    node = state.node_by_uuid(inst.running_on or inst.pnode)
    if inst.hypervisor == "kvm" and inst.network_port is not None:
        return {
            "instance": inst.name,
            "kind": "vnc",
            "host": node.name,
            "port": inst.network_port,
            "display": inst.network_port - 5900,
        }
    return {
        "instance": inst.name,
        "kind": "msg",
        "message": "Console not available for fake hypervisor",
    }


# ---- network addresses -----------------------------------------------------


def _network(net: Network) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(net.network, strict=False)


def network_size(net: Network) -> int:
    return int(_network(net).num_addresses)


def address_offset(net: Network, ip: str) -> int:
    """Where ``ip`` lies in the network's range (what reservations store)."""
    return int(ipaddress.ip_address(ip)) - int(_network(net).network_address)


def address_at(net: Network, offset: int) -> str:
    return str(_network(net).network_address + offset)


def network_map(net: Network) -> str:
    """luxid's ``map``: one character per address, ``X`` where reserved."""
    size = network_size(net)
    chars = ["."] * size
    for off in net.reserved | net.external:
        if off < size:
            chars[off] = "X"
    return "".join(chars)
