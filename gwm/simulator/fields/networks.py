"""The network query fields, in luxid's order."""

from __future__ import annotations

from gwm.simulator.derived import address_at, network_map, network_size
from gwm.simulator.fields.base import Ctx, FieldDef, attr, common_fields, computed
from gwm.simulator.state import Network


def _group_list(c: Ctx, net: Network) -> list[list[str]]:
    out = []
    for g in c.state.sorted_groups():
        if net.uuid in g.networks:
            p = g.networks[net.uuid]
            out.append([g.name, p["mode"], p["link"], p.get("vlan", "")])
    return out


def _external(net: Network) -> str:
    return ", ".join(address_at(net, off) for off in sorted(net.external))


def network_fields() -> list[FieldDef]:
    f = computed
    return [
        attr("name", "Network", "text", "Name"),
        attr("network", "Subnet", "text", "IPv4 subnet"),
        attr("gateway", "Gateway", "other", "IPv4 gateway"),
        attr("network6", "IPv6Subnet", "other", "IPv6 subnet"),
        attr("gateway6", "IPv6Gateway", "other", "IPv6 gateway"),
        attr("mac_prefix", "MacPrefix", "other", "MAC address prefix"),
        f(
            "free_count",
            "FreeCount",
            "number",
            "Number of available addresses",
            lambda c, n: network_size(n) - len(n.reserved | n.external),
        ),
        f(
            "reserved_count",
            "ReservedCount",
            "number",
            "Number of reserved addresses",
            lambda c, n: len(n.reserved | n.external),
        ),
        f("map", "Map", "text", "Actual mapping", lambda c, n: network_map(n)),
        f(
            "external_reservations",
            "ExternalReservations",
            "text",
            "External reservations",
            lambda c, n: _external(n),
        ),
        f(
            "group_list",
            "GroupList",
            "other",
            "List of nodegroups (group name, NIC mode, NIC link)",
            _group_list,
        ),
        f(
            "group_cnt",
            "NodeGroups",
            "number",
            "Number of nodegroups",
            lambda c, n: len(_group_list(c, n)),
        ),
        f(
            "inst_list",
            "InstanceList",
            "other",
            "List of instances",
            lambda c, n: list(c.net_instances(n)),
        ),
        f(
            "inst_cnt",
            "Instances",
            "number",
            "Number of instances",
            lambda c, n: len(c.net_instances(n)),
        ),
        *common_fields("Network"),
    ]
