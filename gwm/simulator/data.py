"""Deterministic, realistic cluster generation (seedable).

Names: nodes ``node001.<domain>``, instances ``inst00001.<domain>``, groups
``default`` (and ``rack2``... once there are 4 nodes or more), networks
``net-prod`` and ``net-backup``. The mix: varied OS, memory, vcpus, disks,
NICs and tags; about 85 % running, the rest ADMIN_down; spread over all nodes.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from gwm.simulator.derived import address_at
from gwm.simulator.state import (
    ADMIN_DOWN,
    ADMIN_UP,
    ClusterState,
    Disk,
    Group,
    Instance,
    Network,
    Nic,
    Node,
    new_uuid,
    now,
)

SOFTWARE_VERSION = "3.0.2"
PROTOCOL_VERSION = 3000000

DEFAULT_BEPARAMS: dict[str, Any] = {
    "always_failover": False,
    "auto_balance": True,
    "maxmem": 128,
    "minmem": 128,
    "spindle_use": 1,
    "vcpus": 1,
}

DEFAULT_NICPARAMS: dict[str, str] = {"mode": "bridged", "link": "br0", "vlan": ""}

DEFAULT_NDPARAMS: dict[str, Any] = {
    "cpu_speed": 1,
    "exclusive_storage": False,
    "oob_program": "",
    "ovs": False,
    "ovs_link": "",
    "ovs_name": "switch1",
    "spindle_count": 1,
    "ssh_port": 22,
}

# The kvm hypervisor's parameters (names from Ganeti's hv_kvm), with defaults.
KVM_HVPARAMS: dict[str, Any] = {
    "acpi": True,
    "boot_order": "disk",
    "cdrom2_image_path": "",
    "cdrom_disk_type": "",
    "cdrom_image_path": "",
    "cpu_cores": 0,
    "cpu_mask": "all",
    "cpu_sockets": 0,
    "cpu_threads": 0,
    "cpu_type": "",
    "disk_aio": "threads",
    "disk_cache": "default",
    "disk_discard": "ignore",
    "disk_type": "paravirtual",
    "floppy_image_path": "",
    "initrd_path": "",
    "kernel_args": "ro",
    "kernel_path": "",
    "keymap": "",
    "kvm_extra": "",
    "kvm_flag": "",
    "kvm_path": "/usr/bin/kvm",
    "machine_version": "",
    "mem_path": "",
    "migration_bandwidth": 32,
    "migration_downtime": 30,
    "migration_mode": "live",
    "migration_port": 8102,
    "nic_type": "paravirtual",
    "reboot_behavior": "reboot",
    "root_path": "/dev/vda1",
    "security_domain": "",
    "security_model": "none",
    "serial_console": True,
    "serial_speed": 38400,
    "soundhw": "",
    "spice_bind": "",
    "spice_ip_version": 0,
    "spice_use_tls": False,
    "usb_devices": "",
    "usb_mouse": "",
    "use_chroot": False,
    "use_localtime": False,
    "user_shutdown": False,
    "vga": "",
    "vhost_net": False,
    "vnc_bind_address": "0.0.0.0",
    "vnc_password_file": "",
    "vnc_tls": False,
    "vnc_x509_path": "",
    "vnc_x509_verify": False,
    "vnet_hdr": True,
}

FAKE_HVPARAMS: dict[str, Any] = {"migration_mode": "live"}
XEN_PVM_HVPARAMS: dict[str, Any] = {
    "blockdev_prefix": "sd",
    "bootloader_args": "",
    "bootloader_path": "",
    "cpu_cap": 0,
    "cpu_mask": "all",
    "cpu_weight": 256,
    "cpuid": "",
    "initrd_path": "",
    "kernel_args": "ro",
    "kernel_path": "/boot/vmlinuz-3-xenU",
    "migration_mode": "live",
    "migration_port": 8002,
    "reboot_behavior": "reboot",
    "root_path": "/dev/xvda1",
    "soundhw": "",
    "use_bootloader": False,
    "vif_script": "",
    "vif_type": "paravirtual",
    "xen_cmd": "xl",
}
XEN_HVM_HVPARAMS: dict[str, Any] = {
    "acpi": True,
    "blockdev_prefix": "hd",
    "boot_order": "cd",
    "cdrom_image_path": "",
    "cpu_cap": 0,
    "cpu_mask": "all",
    "cpu_weight": 256,
    "cpuid": "",
    "device_model": "",
    "disk_type": "paravirtual",
    "kernel_path": "",
    "migration_mode": "non-live",
    "migration_port": 8002,
    "nic_type": "rtl8139",
    "pae": True,
    "pci_pass": "",
    "reboot_behavior": "reboot",
    "soundhw": "",
    "use_localtime": False,
    "vif_script": "",
    "vif_type": "ioemu",
    "viridian": False,
    "vnc_bind_address": "0.0.0.0",
    "vnc_password_file": "/etc/ganeti/vnc-cluster-password",
    "xen_cmd": "xl",
}

ISPEC_MIN = {
    "cpu-count": 1,
    "disk-count": 0,
    "disk-size": 1,
    "memory-size": 32,
    "nic-count": 0,
    "spindle-use": 0,
}
ISPEC_MAX = {
    "cpu-count": 64,
    "disk-count": 16,
    "disk-size": 4_194_304,
    "memory-size": 1_048_576,
    "nic-count": 8,
    "spindle-use": 12,
}
ISPEC_STD = {
    "cpu-count": 1,
    "disk-count": 1,
    "disk-size": 1024,
    "memory-size": 128,
    "nic-count": 1,
    "spindle-use": 1,
}

DISK_TEMPLATES = ["plain", "drbd", "file", "sharedfile", "diskless"]

DEFAULT_IPOLICY: dict[str, Any] = {
    "minmax": [{"min": ISPEC_MIN, "max": ISPEC_MAX}],
    "std": ISPEC_STD,
    "disk-templates": DISK_TEMPLATES,
    "spindle-ratio": 32.0,
    "vcpu-ratio": 4.0,
}

DEFAULT_DISKPARAMS: dict[str, dict[str, Any]] = {
    "blockdev": {},
    "ext": {"access": "kernelspace"},
    "gluster": {"access": "kernelspace", "host": "127.0.0.1", "port": 24007, "volume": "gv0"},
    "rbd": {"access": "kernelspace", "pool": "rbd"},
    "diskless": {},
    "file": {},
    "sharedfile": {},
    "plain": {"stripes": 1},
    "drbd": {
        "c-delay-target": 1,
        "c-fill-target": 0,
        "c-max-rate": 61440,
        "c-min-rate": 4096,
        "c-plan-ahead": 20,
        "data-stripes": 1,
        "disk-barriers": "n",
        "disk-custom": "",
        "dynamic-resync": False,
        "meta-barriers": False,
        "meta-stripes": 1,
        "metavg": "xenvg",
        "net-custom": "",
        "protocol": "C",
        "resync-rate": 61440,
    },
}

OS_NAMES = [
    "debootstrap+bookworm",
    "debootstrap+trixie",
    "debootstrap+bullseye",
    "image+ubuntu-24.04",
    "image+rocky-9",
    "noop",
]
MEMORY_CHOICES = [512, 1024, 1024, 2048, 2048, 4096, 8192, 16384]
VCPU_CHOICES = [1, 1, 2, 2, 4, 8]
DISK_CHOICES = [5120, 10240, 20480, 51200, 102400]
TAG_CHOICES = ["env:prod", "env:staging", "env:dev", "team:web", "team:db", "backup:daily", "pci"]


def cluster_info(name: str, master_name: str, hypervisor: str) -> dict[str, Any]:
    """The /2/info dict (luxid's QueryClusterInfo fields, without serial_no)."""
    t = now() - 86400 * 30
    return {
        "software_version": SOFTWARE_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "config_version": PROTOCOL_VERSION,
        "os_api_version": 20,
        "export_version": 0,
        "vcs_version": f"(ganeti) version {SOFTWARE_VERSION}-3",
        "architecture": ["64bits", "x86_64"],
        "name": name,
        "master": master_name,
        "default_hypervisor": hypervisor,
        "enabled_hypervisors": [hypervisor],
        # Ganeti keeps defaults for every hypervisor, enabled or not
        "hvparams": {
            "kvm": copy.deepcopy(KVM_HVPARAMS),
            "xen-pvm": dict(XEN_PVM_HVPARAMS),
            "chroot": {"init_script": "/ganeti-chroot"},
            "xen-hvm": dict(XEN_HVM_HVPARAMS),
            "lxc": {
                "cpu_mask": "",
                "devices": "c 1:3 rw,c 1:5 rw,c 1:7 rw,c 1:8 rw,c 1:9 rw",
                "drop_capabilities": "mac_override,sys_boot,sys_module,sys_time,sys_admin",
                "extra_cgroups": "",
                "extra_config": "",
                "lxc_cgroup_use": "",
                "lxc_devices": "",
                "lxc_drop_capabilities": "",
                "lxc_extra_cgroups": "",
                "lxc_extra_config": "",
                "lxc_startup_timeout": 30,
                "num_ttys": 6,
                "startup_timeout": 30,
            },
            "fake": dict(FAKE_HVPARAMS),
        },
        "os_hvp": {},
        "beparams": {"default": dict(DEFAULT_BEPARAMS)},
        "osparams": {},
        "ipolicy": copy.deepcopy(DEFAULT_IPOLICY),
        "nicparams": {"default": dict(DEFAULT_NICPARAMS)},
        "ndparams": dict(DEFAULT_NDPARAMS),
        "diskparams": copy.deepcopy(DEFAULT_DISKPARAMS),
        "candidate_pool_size": 10,
        "max_running_jobs": 20,
        "max_tracked_jobs": 25,
        "mac_prefix": "aa:00:00",
        "master_netdev": "eth0",
        "master_netmask": 32,
        "use_external_mip_script": False,
        "volume_group_name": "xenvg",
        "drbd_usermode_helper": "/bin/true",
        "file_storage_dir": "/srv/ganeti/file-storage",
        "shared_file_storage_dir": "/srv/ganeti/shared-file-storage",
        "gluster_storage_dir": "/var/run/ganeti/gluster",
        "maintain_node_health": False,
        "ctime": t,
        "mtime": t,
        "uuid": new_uuid(),
        "tags": [],
        "uid_pool": [],
        "default_iallocator": "hail",
        "default_iallocator_params": {"no-capacity-checks": None},
        "reserved_lvs": [],
        "primary_ip_version": 4,
        "prealloc_wipe_disks": False,
        "hidden_os": [],
        "blacklisted_os": [],
        "enabled_disk_templates": list(DISK_TEMPLATES),
        "install_image": "",
        "instance_communication_network": "",
        "zeroing_image": "",
        "compression_tools": ["gzip", "gzip-fast", "gzip-slow"],
        "enabled_user_shutdown": False,
        "enabled_data_collectors": {
            "cpu-avg-load": True,
            "diskstats": True,
            "drbd": True,
            "inst-status-xen": True,
            "lv": True,
            "xen-cpu-avg-load": True,
        },
        "data_collector_interval": {
            "cpu-avg-load": 5000000,
            "diskstats": 5000000,
            "drbd": 5000000,
            "inst-status-xen": 5000000,
            "lv": 5000000,
            "xen-cpu-avg-load": 5000000,
        },
        "modify_ssh_setup": True,
        "ssh_key_type": "rsa",
        "ssh_key_bits": 2048,
        # rlib2's R_2_info GET_ALIASES
        "vg_name": "xenvg",
        "drbd_helper": "/bin/true",
    }


def default_os_list() -> list[dict[str, Any]]:
    """What OpOsDiagnose reports: one entry per OS (variants folded in)."""
    result: dict[str, dict[str, Any]] = {}
    for full in OS_NAMES:
        base, _, variant = full.partition("+")
        entry = result.setdefault(
            base,
            {
                "name": base,
                "valid": True,
                "variants": [],
                "parameters": [["dhcp", "Use DHCP"], ["root-size", "Root size"]]
                if base != "noop"
                else [],
                "api_versions": [20],
                "blacklisted": False,
                "hidden": False,
                "trusted": True,
            },
        )
        if variant:
            entry["variants"].append(variant)
    return list(result.values())


def mac_for(rng: random.Random, prefix: str = "aa:00:00") -> str:
    return prefix + ":" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def generate_cluster(
    *,
    nodes: int = 2,
    instances: int = 20,
    seed: int = 0,
    cluster_name: str = "cluster.example.test",
    domain: str = "example.test",
    hypervisor: str = "kvm",
    running_ratio: float = 0.85,
) -> ClusterState:
    """Build a cluster; the same arguments always give the same names/sizes."""
    if nodes < 1:
        raise ValueError("a cluster needs at least one node")
    rng = random.Random(seed)
    t0 = now() - 86400 * 30
    info = cluster_info(cluster_name, f"node001.{domain}", hypervisor)
    state = ClusterState(info=info, os_list=default_os_list())

    n_groups = 1 if nodes < 4 else min(4, 1 + nodes // 25)
    group_names = ["default"] + [f"rack{i}" for i in range(2, n_groups + 1)]
    for gname in group_names:
        g = Group(name=gname, uuid=new_uuid(), ctime=t0, mtime=t0)
        state.groups[gname] = g
    groups = list(state.groups.values())

    for i in range(1, nodes + 1):
        g = groups[(i - 1) * len(groups) // nodes]
        node = Node(
            name=f"node{i:03d}.{domain}",
            uuid=new_uuid(),
            group_uuid=g.uuid,
            pip=f"192.0.2.{i % 250 + 1}" if nodes < 250 else f"10.1.{i // 250}.{i % 250 + 1}",
            sip=f"198.51.100.{i % 250 + 1}" if nodes < 250 else f"10.2.{i // 250}.{i % 250 + 1}",
            master_candidate=i <= 10,
            ctime=t0,
            mtime=t0,
            mtotal=rng.choice([262144, 393216, 524288]),
            mnode=2048,
            dtotal=rng.choice([4_194_304, 8_388_608]),
            ctotal=rng.choice([32, 48, 64]),
            csockets=2,
            cnodes=2,
        )
        state.nodes[node.name] = node
    state.master_uuid = next(iter(state.nodes.values())).uuid

    for net_name, octet in (("net-prod", 128), ("net-backup", 129)):
        net = Network(
            name=net_name,
            uuid=new_uuid(),
            network=f"10.{octet}.0.0/16",
            gateway=f"10.{octet}.0.1",
            external={0, 1, 65535},
            ctime=t0,
            mtime=t0,
        )
        state.networks[net.name] = net
        for g in groups:
            g.networks[net.uuid] = {"mode": "bridged", "link": f"br-{net.name[4:]}", "vlan": ""}
    prod = state.networks["net-prod"]

    state.reindex()
    node_list = list(state.nodes.values())
    nodes_by_group: dict[str, list[Node]] = {}
    for n in node_list:
        nodes_by_group.setdefault(n.group_uuid, []).append(n)

    for i in range(1, instances + 1):
        pnode = node_list[(i - 1) % len(node_list)]
        peers = [n for n in nodes_by_group[pnode.group_uuid] if n is not pnode]
        template = rng.choice(["drbd", "drbd", "plain", "plain", "sharedfile"])
        if template == "drbd" and not peers:
            template = "plain"
        snodes = [peers[i % len(peers)].uuid] if template == "drbd" else []
        ndisks = rng.choice([1, 1, 1, 2, 3])
        disks = [
            Disk(uuid=new_uuid(), size=rng.choice(DISK_CHOICES), name=None) for _ in range(ndisks)
        ]
        nics = [
            Nic(
                uuid=new_uuid(),
                mac=mac_for(rng),
                ip=address_at(prod, 1 + i),
                network=prod.uuid,
                nicparams={"mode": "bridged", "link": "br-prod"},
            )
        ]
        prod.reserved.add(1 + i)
        if rng.random() < 0.2:
            nics.append(Nic(uuid=new_uuid(), mac=mac_for(rng), nicparams={}))
        running = rng.random() < running_ratio
        mem = rng.choice(MEMORY_CHOICES)
        inst = Instance(
            name=f"inst{i:05d}.{domain}",
            uuid=new_uuid(),
            os=rng.choice(OS_NAMES),
            pnode=pnode.uuid,
            snodes=snodes,
            disk_template=template,
            disks=disks,
            nics=nics,
            admin_state=ADMIN_UP if running else ADMIN_DOWN,
            hypervisor=hypervisor,
            beparams={"maxmem": mem, "minmem": mem, "vcpus": rng.choice(VCPU_CHOICES)},
            network_port=11000 + i if hypervisor == "kvm" else None,
            disks_active=running,
            tags=sorted(set(rng.sample(TAG_CHOICES, rng.choice([0, 1, 1, 2, 3])))),
            ctime=t0 + i,
            mtime=t0 + i,
            serial_no=rng.choice([1, 2, 3, 4]),
            running_on=pnode.uuid if running else None,
        )
        state.instances[inst.name] = inst
    state.reindex()
    return state
