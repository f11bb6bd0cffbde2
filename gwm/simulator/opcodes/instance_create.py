"""OP_INSTANCE_CREATE: checks, node choice, disks and NICs, the new instance."""

from __future__ import annotations

import random
from typing import Any

from gwm.simulator.data import mac_for
from gwm.simulator.derived import address_at, address_offset, network_size
from gwm.simulator.jobs import OpPrereqError
from gwm.simulator.opcodes.allocator import node_mem_free, pick_node
from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import Registry
from gwm.simulator.state import (
    ADMIN_DOWN,
    ADMIN_UP,
    ClusterState,
    Disk,
    Instance,
    Network,
    Nic,
    Node,
    new_uuid,
    now,
)

OPCODES = Registry()

_CREATE_PARAMS = (
    "mode instance_name disk_template disks nics os_type pnode snode iallocator beparams "
    "hvparams osparams osparams_private osparams_secret start name_check ip_check "
    "wait_for_sync no_install tags hypervisor file_driver file_storage_dir forthcoming "
    "commit conflicts_check identify_defaults ignore_ipolicy instance_communication "
    "helper_startup_timeout helper_shutdown_timeout opportunistic_locking os_image "
    "src_node src_path source_handshake source_instance_name source_shutdown_timeout "
    "source_x509_ca compress pnode_uuid snode_uuid group_name"
)


@OPCODES.opcode(
    "OP_INSTANCE_CREATE",
    _CREATE_PARAMS,
    required="mode instance_name disk_template",
    summary="instance_name",
    locks=lambda s, p: {f"instance:{p.get('instance_name')}", "cluster"},
    types={
        "mode": str,
        "instance_name": str,
        "disk_template": str,
        "disks": list,
        "nics": list,
        "beparams": dict,
        "hvparams": dict,
        "osparams": dict,
        "tags": list,
        "start": bool,
        "no_install": bool,
    },
    defaults={
        "force_variant": False,
        "wait_for_sync": True,
        "name_check": True,
        "ignore_ipolicy": False,
        "opportunistic_locking": False,
        "beparams": {},
        "disks": [],
        "hvparams": {},
        "identify_defaults": False,
        "ip_check": True,
        "conflicts_check": True,
        "nics": [],
        "osparams": {},
        "source_shutdown_timeout": 120,
        "compress": "none",
        "start": True,
        "forthcoming": False,
        "commit": False,
        "tags": [],
        "instance_communication": False,
        "helper_startup_timeout": 300,
        "helper_shutdown_timeout": 7200,
    },
    choices={
        "mode": frozenset({"create", "import", "remote-import"}),
        "disk_template": frozenset(
            {"diskless", "file", "sharedfile", "plain", "drbd", "blockdev", "rbd", "ext", "gluster"}
        ),
    },
)
async def instance_create(x: Exec, p: dict[str, Any]) -> Any:
    s = x.state
    name = p["instance_name"]
    if p.get("pnode") is None:
        p.setdefault("iallocator", s.info["default_iallocator"])
    if p["mode"] not in ("create", "import", "remote-import"):
        raise OpPrereqError(f"Invalid instance creation mode '{p['mode']}'", "wrong_input")
    if name in s.instances:
        raise OpPrereqError(f"Instance '{name}' is already in the cluster", "already_exists")
    template = p["disk_template"]
    if template not in s.info["enabled_disk_templates"]:
        raise OpPrereqError(
            f"Cannot create an instance with disk template '{template}', as it is not"
            " enabled in the cluster",
            "wrong_state",
        )
    p.setdefault("osparams_private", {})
    p.setdefault("osparams_secret", {})
    _convert_memory(p.get("beparams"))
    via_iallocator = p.get("pnode") is None
    pnode, snodes = _choose_nodes(x, p, template)
    x.check_os(p.get("os_type"), pnode)
    os_type: str = p["os_type"]
    disks = _disks(p)
    nics = _nics(x, p)
    chosen = [pnode.name, *[s.node_by_uuid(u).name for u in snodes]]
    if via_iallocator:
        x.log(
            f" - INFO: Selected nodes for instance {name} via iallocator {p['iallocator']}:"
            f" {', '.join(chosen)}"
        )
    p["pnode"] = pnode.name
    p["pnode_uuid"] = pnode.uuid
    p.setdefault("hypervisor", s.info["default_hypervisor"])
    if x.dry_run(p):
        # LUInstanceCreate's dry_run_result: the chosen nodes' uuids, not names
        return [pnode.uuid, *snodes]
    start = p.get("start", True)
    if p.get("no_install") and start:
        x.log("No-installation mode selected, disabling startup")
        start = False
    hv = p.get("hypervisor") or s.info["default_hypervisor"]
    ports = [i.network_port for i in s.instances.values() if i.network_port is not None]
    inst = Instance(
        name=name,
        uuid=new_uuid(),
        os=os_type,
        pnode=pnode.uuid,
        snodes=snodes,
        disk_template=template,
        disks=disks,
        nics=nics,
        admin_state=ADMIN_UP if start else ADMIN_DOWN,
        hypervisor=hv,
        beparams=dict(p.get("beparams") or {}),
        hvparams=dict(p.get("hvparams") or {}),
        osparams=dict(p.get("osparams") or {}),
        network_port=(max(ports, default=11000) + 1) if hv == "kvm" else None,
        disks_active=True,
        tags=list(p.get("tags") or []),
        ctime=now(),
        mtime=now(),
    )
    x.log("* creating instance disks...")
    await x.work(0.3)
    x.log(f"adding instance {name} to cluster config")
    s.instances[name] = inst
    x.log("adding disks to cluster config")
    for nic in nics:
        if nic.network is not None and nic.ip:
            net = s.network_by_uuid(nic.network)
            net.reserved.add(address_offset(net, nic.ip))
    s.instance_set_changed()
    s.touch(None)
    if template == "drbd":
        x.log(f" - INFO: Waiting for instance {name} to sync disks")
    # (the 3.0 sandbox logs no line for the OS create scripts)
    await x.work(0.4)
    if start:
        x.log("* starting instance...")
        await x.work(0.3)
        x.start(inst)
    else:
        inst.disks_active = False
    return chosen


def _convert_memory(beparams: Any) -> None:
    """Ganeti turns the legacy ``memory`` backend parameter into max/minmem."""
    if isinstance(beparams, dict) and "memory" in beparams:
        memory = beparams.pop("memory")
        beparams.setdefault("maxmem", memory)
        beparams.setdefault("minmem", memory)


def _check_ipolicy(s: ClusterState, node: Node, be: dict[str, Any], p: dict[str, Any]) -> None:
    group = s.group_by_uuid(node.group_uuid)
    policy = {**s.info["ipolicy"], **group.ipolicy}
    disks = p.get("disks") or []
    values = {
        "memory-size": be["maxmem"],
        "cpu-count": be["vcpus"],
        "disk-count": len(disks),
        "nic-count": len(p.get("nics") or []),
    }
    problems = []
    for minmax in policy["minmax"]:
        problems = [
            f"{key} value {value} is not in range [{minmax['min'][key]}, {minmax['max'][key]}]"
            for key, value in values.items()
            if not minmax["min"][key] <= value <= minmax["max"][key]
        ]
        problems += [
            f"disk-size value {d['size']} is not in range"
            f" [{minmax['min']['disk-size']}, {minmax['max']['disk-size']}]"
            for d in disks
            if isinstance(d, dict)
            and isinstance(d.get("size"), int)
            and not minmax["min"]["disk-size"] <= d["size"] <= minmax["max"]["disk-size"]
        ]
        if not problems:
            return
    raise OpPrereqError(
        f"Instance allocation to group {group.uuid} ({group.name}) violates policy:"
        f" {'; '.join(problems)}",
        "wrong_input",
    )


def _allocate_ip(net: Network) -> str:
    size = network_size(net)
    taken = net.reserved | net.external
    for off in range(size):
        if off not in taken:
            return address_at(net, off)
    raise OpPrereqError(
        f"Network '{net.name}' has no free addresses", "temp_insufficient_resources"
    )


def _choose_nodes(x: Exec, p: dict[str, Any], template: str) -> tuple[Node, list[str]]:
    """The primary node (given, or chosen as hail would) and the secondaries' uuids."""
    s = x.state
    be = {**s.info["beparams"]["default"], **(p.get("beparams") or {})}
    if p.get("pnode") is None:
        candidates = [n for n in s.sorted_nodes() if node_mem_free(s, n) >= be["maxmem"]]
        if not candidates:
            group = s.sorted_groups()[0]
            raise OpPrereqError(
                f"Can't compute nodes using iallocator '{p['iallocator']}': Request failed:"
                f" Group {group.name} ({group.alloc_policy}): No valid allocation solutions,"
                f" failure reasons: FailMem: {len(s.nodes)}",
                "insufficient_resources",
            )
        pnode = pick_node(
            s, exclude={n.uuid for n in s.nodes.values()} - {n.uuid for n in candidates}
        )
    else:
        pnode = x.node(p["pnode"])
        x.check_online(pnode)
        if not p.get("ignore_ipolicy"):
            _check_ipolicy(s, pnode, be, p)
    if template != "drbd":
        return pnode, []
    if p.get("snode") is not None:
        snode = x.node(p["snode"])
        x.check_online(snode)
        if snode is pnode:
            raise OpPrereqError("The secondary node cannot be the primary node", "wrong_input")
    else:
        snode = pick_node(s, exclude={pnode.uuid}, group_uuid=pnode.group_uuid)
    return pnode, [snode.uuid]


def _disks(p: dict[str, Any]) -> list[Disk]:
    disks = []
    for d in p.get("disks") or []:
        if not isinstance(d, dict) or not isinstance(d.get("size"), int):
            raise OpPrereqError("Missing disk size", "wrong_input")
        disks.append(
            Disk(
                uuid=new_uuid(),
                size=d["size"],
                mode=d.get("mode", "rw"),
                name=d.get("name"),
                spindles=d.get("spindles"),
            )
        )
    return disks


def _nics(x: Exec, p: dict[str, Any]) -> list[Nic]:
    rng = random.Random()
    nics = []
    for n in p.get("nics") or []:
        if not isinstance(n, dict):
            raise OpPrereqError("Invalid NIC specification", "wrong_input")
        net_uuid = None
        ip = n.get("ip")
        if n.get("network") is not None:
            net = x.network(n["network"])
            net_uuid = net.uuid
            if ip == "pool":
                ip = _allocate_ip(net)
        mac = n.get("mac")
        if mac in (None, "auto", "generate"):
            mac = mac_for(rng, x.state.info["mac_prefix"])
        params = {k: n[k] for k in ("mode", "link", "vlan") if n.get(k) is not None}
        nics.append(
            Nic(
                uuid=new_uuid(),
                mac=mac,
                ip=ip,
                name=n.get("name"),
                network=net_uuid,
                nicparams=params,
            )
        )
    return nics
