"""Network opcodes: add, modify, rename, connect, disconnect, remove."""

from __future__ import annotations

import ipaddress
from typing import Any

from gwm.simulator.derived import address_offset
from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import Network, new_uuid, now

OPCODES = Registry()


@OPCODES.on(
    "network",
    "OP_NETWORK_ADD",
    "network gateway network6 gateway6 mac_prefix add_reserved_ips conflicts_check tags",
    required="network",
    types={"network_name": str, "network": str},
    defaults={"conflicts_check": True, "tags": []},
)
async def network_add(x: Exec, p: dict[str, Any]) -> Any:
    name = p["network_name"]
    x.check_free(x.state.networks, name, "network", "network")
    try:
        net = ipaddress.ip_network(p["network"], strict=False)
    except ValueError as exc:
        raise OpPrereqError(f"Invalid network: {exc}", "wrong_input") from None
    if net.version != 4 or net.prefixlen < 16:
        raise OpPrereqError("Network must be an IPv4 network of /16 or smaller", "wrong_input")
    if x.dry_run(p):
        return None
    await x.work()
    t = now()
    new = Network(
        name=name,
        uuid=new_uuid(),
        network=str(net),
        gateway=p.get("gateway"),
        network6=p.get("network6"),
        gateway6=p.get("gateway6"),
        mac_prefix=p.get("mac_prefix"),
        external={0, net.num_addresses - 1},
        tags=list(p.get("tags") or []),
        ctime=t,
        mtime=t,
    )
    for ip in [p.get("gateway"), *(p.get("add_reserved_ips") or [])]:
        if ip:
            new.external.add(address_offset(new, ip))
    x.add(x.state.networks, new)
    return None


@OPCODES.on(
    "network",
    "OP_NETWORK_SET_PARAMS",
    "gateway network6 gateway6 mac_prefix add_reserved_ips remove_reserved_ips",
)
async def network_set_params(x: Exec, p: dict[str, Any]) -> Any:
    if p.get("gateway") and (p.get("add_reserved_ips") or p.get("remove_reserved_ips")):
        raise OpPrereqError("Cannot modify gateway and reserved ips at once", "wrong_input")
    net = x.network(p["network_name"])
    if x.dry_run(p):
        return None
    await x.work()
    gateway = p.get("gateway")
    if gateway is not None:
        # the gateway is an external reservation: release the old, reserve the new
        if net.gateway:
            net.external.discard(address_offset(net, net.gateway))
        if gateway != "none":
            net.external.add(address_offset(net, gateway))
    for key in ("gateway", "network6", "gateway6", "mac_prefix"):
        if p.get(key) is not None:
            setattr(net, key, None if p[key] == "none" else p[key])
    for ip in p.get("add_reserved_ips") or []:
        net.external.add(address_offset(net, ip))
    for ip in p.get("remove_reserved_ips") or []:
        net.external.discard(address_offset(net, ip))
    x.state.touch(net)
    return None


@OPCODES.on(
    "network",
    "OP_NETWORK_RENAME",
    "new_name",
    required="new_name",
    summary=None,
)
async def network_rename(x: Exec, p: dict[str, Any]) -> Any:
    net = x.network(p["network_name"])
    return await x.rename(p, x.state.networks, net, "Network '{}' already exists")


@OPCODES.on(
    "network",
    "OP_NETWORK_CONNECT",
    "group_name network_mode network_link network_vlan conflicts_check",
    required="group_name network_mode network_link",
    defaults={"network_vlan": "", "conflicts_check": True},
)
async def network_connect(x: Exec, p: dict[str, Any]) -> Any:
    net = x.network(p["network_name"])
    group = x.group(p["group_name"])
    if x.dry_run(p):
        return None
    await x.work()
    if net.uuid in group.networks:
        x.log(f"Network '{net.name}' is already mapped to group '{group.name}'")
        return None
    group.networks[net.uuid] = {
        "mode": p["network_mode"],
        "link": p["network_link"],
        "vlan": p.get("network_vlan") or "",
    }
    x.state.touch(group)
    return None


@OPCODES.on(
    "network",
    "OP_NETWORK_DISCONNECT",
    "group_name",
    required="group_name",
)
async def network_disconnect(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    net = x.network(p["network_name"])
    group = x.group(p["group_name"])
    users = [
        i.name
        for i in s.instances.values()
        if s.node_by_uuid(i.pnode).group_uuid == group.uuid
        and any(n.network == net.uuid for n in i.nics)
    ]
    if users:
        raise OpPrereqError(
            f"Network '{net.name}' is in use by instances: {', '.join(users[:5])}",
            "wrong_state",
        )
    if x.dry_run(p):
        return None
    await x.work()
    if group.networks.pop(net.uuid, None) is None:
        x.log(f"Network '{net.name}' is not mapped to group '{group.name}'")
        return None
    s.touch(group)
    return None


@OPCODES.on(
    "network",
    "OP_NETWORK_REMOVE",
    "force",
    defaults={"force": False},
)
async def network_remove(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    net = x.network(p["network_name"])
    if any(net.uuid in g.networks for g in s.groups.values()):
        raise OpPrereqError("Network still connected", "wrong_state")
    if x.dry_run(p):
        return None
    await x.work()
    x.remove(s.networks, net)
    return None
