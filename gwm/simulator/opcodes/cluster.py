"""Cluster opcodes: OS diagnosis, cluster parameters, config redistribution."""

from __future__ import annotations

from typing import Any

from gwm.simulator.opcodes.context import Exec
from gwm.simulator.opcodes.registry import COMMON_PARAMS, Registry

OPCODES = Registry()


@OPCODES.opcode("OP_OS_DIAGNOSE", "output_fields names")
async def os_diagnose(x: Exec, p: dict[str, Any]) -> Any:
    await x.work()
    fields = p.get("output_fields") or ["name", "variants"]
    return [[os.get(f) for f in fields] for os in x.state.os_list]


@OPCODES.opcode(
    "OP_CLUSTER_SET_PARAMS",
    "vg_name drbd_helper enabled_hypervisors hvparams beparams os_hvp osparams "
    "osparams_private_cluster diskparams candidate_pool_size max_running_jobs "
    "max_tracked_jobs uid_pool add_uids remove_uids maintain_node_health "
    "prealloc_wipe_disks nicparams ndparams ipolicy drbd_helper default_iallocator "
    "default_iallocator_params mac_prefix master_netdev master_netmask reserved_lvs "
    "hidden_os blacklisted_os use_external_mip_script enabled_disk_templates "
    "modify_etc_hosts file_storage_dir shared_file_storage_dir gluster_storage_dir "
    "install_image instance_communication_network zeroing_image enabled_user_shutdown "
    "enabled_data_collectors data_collector_interval force hv_state disk_state "
    "modify_ssh_setup ssh_key_type ssh_key_bits",
)
async def cluster_set_params(x: Exec, p: dict[str, Any]) -> Any:
    if x.dry_run(p):
        return None
    await x.work()
    info = x.state.info
    for key, value in p.items():
        if key in COMMON_PARAMS or key in ("OP_ID", "force") or value is None:
            continue
        if key in ("hvparams", "diskparams") and isinstance(value, dict):
            for sub, params in value.items():
                info[key].setdefault(sub, {}).update(params)
        elif key in ("beparams", "nicparams") and isinstance(value, dict):
            info[key]["default"].update(value)
        elif key in ("ndparams", "ipolicy") and isinstance(value, dict):
            info[key].update(value)
        elif key == "vg_name":
            info["volume_group_name"] = info["vg_name"] = value
        elif key == "drbd_helper":
            info["drbd_usermode_helper"] = info["drbd_helper"] = value
        elif key in info:
            info[key] = value
    x.state.touch(None)
    return None


@OPCODES.opcode("OP_CLUSTER_REDIST_CONF")
async def cluster_redist_conf(x: Exec, p: dict[str, Any]) -> Any:
    await x.work()
    # cfg.Update(cluster): wconfd bumps the cluster's serial and mtime
    x.state.touch(None)
    return None
