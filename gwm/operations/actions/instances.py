"""Instance actions: their parameters, the RAPI call each sends, and what they hold."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from gwm.kit.names import GanetiName
from gwm.operations.actions.base import Changes, Declarations, Params, SendRequest, Tags
from gwm.rapi import RapiClient

# -- parameters ---------------------------------------------------------------------


class Disk(Params):
    size: int = Field(ge=1, description="MiB")
    mode: Literal["rw", "ro"] | None = None
    name: str | None = None
    spindles: int | None = None


class Nic(Params):
    ip: str | None = None
    mac: str | None = None
    mode: Literal["bridged", "routed", "openvswitch"] | None = None
    link: str | None = None
    network: str | None = None
    name: str | None = None


class InstanceCreate(Params):
    name: GanetiName
    disk_template: Literal[
        "diskless", "file", "sharedfile", "plain", "drbd", "blockdev", "rbd", "ext", "gluster"
    ]
    disks: list[Disk] = []
    nics: list[Nic] = []
    os: str | None = Field(None, description="OS definition, e.g. debootstrap+default")
    pnode: str | None = None
    snode: str | None = None
    iallocator: str | None = None
    beparams: dict[str, Any] = {}
    hvparams: dict[str, Any] = {}
    osparams: dict[str, Any] = {}
    tags: list[str] = []
    start: bool = True
    name_check: bool = True
    ip_check: bool = True
    wait_for_sync: bool | None = None
    no_install: bool | None = None


class InstanceDelete(Params):
    shutdown_timeout: int | None = Field(None, ge=0)


class InstanceModify(Changes):
    modifiers: ClassVar[frozenset[str]] = frozenset({"force", "wait_for_sync"})

    beparams: dict[str, Any] | None = None
    hvparams: dict[str, Any] | None = None
    osparams: dict[str, Any] | None = None
    os_name: str | None = None
    disk_template: str | None = None
    remote_node: str | None = None
    disks: list[Any] | None = Field(None, description='Ganeti\'s form: [["add", {...}], ...]')
    nics: list[Any] | None = None
    offline: bool | None = None
    force: bool | None = None
    wait_for_sync: bool | None = None


class Start(Params):
    force: bool | None = None
    no_remember: bool | None = None


class Shutdown(Params):
    timeout: int | None = Field(None, ge=0, description="seconds before a hard stop")
    force: bool | None = None
    no_remember: bool | None = None


class Reboot(Params):
    type: Literal["soft", "hard", "full"] = "hard"
    ignore_secondaries: bool | None = None
    shutdown_timeout: int | None = Field(None, ge=0)


class Reinstall(Params):
    os: str | None = None
    start: bool = True
    osparams: dict[str, Any] | None = None


class Migrate(Params):
    mode: Literal["live", "non-live"] | None = None
    cleanup: bool | None = None
    target_node: str | None = None
    allow_failover: bool | None = None
    iallocator: str | None = None


class Failover(Params):
    target_node: str | None = None
    iallocator: str | None = None
    ignore_consistency: bool | None = None
    shutdown_timeout: int | None = Field(None, ge=0)


class Rename(Params):
    new_name: GanetiName
    ip_check: bool | None = None
    name_check: bool | None = None


class GrowDisk(Params):
    disk: int = Field(ge=0, description="disk index")
    amount: int = Field(ge=1, description="MiB to add (or the new size when absolute)")
    absolute: bool | None = None
    wait_for_sync: bool | None = None


class ActivateDisks(Params):
    ignore_size: bool | None = None


class DeactivateDisks(Params):
    force: bool | None = None


# -- the actions, each on the RAPI call it sends -------------------------------------

declare = Declarations("instance", verb="modify")


def _set(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not None}


@declare(
    "create",
    InstanceCreate,
    verb="create_vm",
    holds="PROVISIONING",
    dry_run=True,
    opcodes=("OP_INSTANCE_CREATE",),
    summary="create an instance",
)
def create_instance(client: RapiClient, request: SendRequest) -> int:
    params = request.params
    return client.create_instance(
        request.name,
        disk_template=params["disk_template"],
        # What a disk or a NIC leaves unset is left to Ganeti, not sent as null.
        disks=[_set(disk) for disk in params["disks"]],
        nics=[_set(nic) for nic in params["nics"]],
        os_type=params.get("os"),
        beparams=params["beparams"] or None,
        hvparams=params["hvparams"] or None,
        osparams=params["osparams"] or None,
        tags=params["tags"] or None,
        start=params["start"],
        name_check=params["name_check"],
        ip_check=params["ip_check"],
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("pnode", "snode", "iallocator", "wait_for_sync", "no_install"),
    )


@declare(
    "delete",
    InstanceDelete,
    holds="DELETING",
    dry_run=True,
    opcodes=("OP_INSTANCE_REMOVE",),
    verb="remove",
)
def delete_instance(client: RapiClient, request: SendRequest) -> int:
    return client.delete_instance(
        request.name,
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("shutdown_timeout"),
    )


@declare("modify", InstanceModify, holds="BUSY", opcodes=("OP_INSTANCE_SET_PARAMS",))
def modify_instance(client: RapiClient, request: SendRequest) -> int:
    # Every parameter that is set goes to Ganeti: a change, or how to make it.
    return client.modify_instance(
        request.name, reason=request.reason, **request.kwargs(*request.params)
    )


@declare(
    "start",
    Start,
    holds="BUSY",
    dry_run=True,
    opcodes=("OP_INSTANCE_STARTUP",),
    verb="power",
)
def startup_instance(client: RapiClient, request: SendRequest) -> int:
    return client.startup_instance(
        request.name,
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("force", "no_remember"),
    )


@declare(
    "shutdown",
    Shutdown,
    holds="BUSY",
    dry_run=True,
    opcodes=("OP_INSTANCE_SHUTDOWN",),
    verb="power",
)
def shutdown_instance(client: RapiClient, request: SendRequest) -> int:
    return client.shutdown_instance(
        request.name,
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("timeout", "force", "no_remember"),
    )


@declare(
    "reboot",
    Reboot,
    holds="BUSY",
    dry_run=True,
    opcodes=("OP_INSTANCE_REBOOT",),
    verb="power",
)
def reboot_instance(client: RapiClient, request: SendRequest) -> int:
    return client.reboot_instance(
        request.name,
        reboot_type=request.params["type"],
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("ignore_secondaries", "shutdown_timeout"),
    )


@declare(
    "reinstall",
    Reinstall,
    holds="BUSY",
    carries_reason=False,
    opcodes=("OP_INSTANCE_SHUTDOWN", "OP_INSTANCE_REINSTALL"),
)
def reinstall_instance(client: RapiClient, request: SendRequest) -> int:
    params = request.params
    return client.reinstall_instance(
        request.name,
        os_type=params.get("os"),
        start=params["start"],
        osparams=params.get("osparams"),
        reason=request.reason,
    )


@declare("migrate", Migrate, holds="BUSY", opcodes=("OP_INSTANCE_MIGRATE",), verb="migrate")
def migrate_instance(client: RapiClient, request: SendRequest) -> int:
    return client.migrate_instance(
        request.name,
        reason=request.reason,
        **request.kwargs("mode", "cleanup", "target_node", "allow_failover", "iallocator"),
    )


@declare("failover", Failover, holds="BUSY", opcodes=("OP_INSTANCE_FAILOVER",), verb="migrate")
def failover_instance(client: RapiClient, request: SendRequest) -> int:
    return client.failover_instance(
        request.name,
        reason=request.reason,
        **request.kwargs("target_node", "iallocator", "ignore_consistency", "shutdown_timeout"),
    )


@declare("rename", Rename, holds="BUSY", opcodes=("OP_INSTANCE_RENAME",))
def rename_instance(client: RapiClient, request: SendRequest) -> int:
    return client.rename_instance(
        request.name,
        request.params["new_name"],
        reason=request.reason,
        **request.kwargs("ip_check", "name_check"),
    )


@declare("grow-disk", GrowDisk, holds="BUSY", opcodes=("OP_INSTANCE_GROW_DISK",))
def grow_instance_disk(client: RapiClient, request: SendRequest) -> int:
    return client.grow_instance_disk(
        request.name,
        request.params["disk"],
        request.params["amount"],
        reason=request.reason,
        **request.kwargs("absolute", "wait_for_sync"),
    )


@declare("activate-disks", ActivateDisks, holds="BUSY", opcodes=("OP_INSTANCE_ACTIVATE_DISKS",))
def activate_instance_disks(client: RapiClient, request: SendRequest) -> int:
    return client.activate_instance_disks(
        request.name, reason=request.reason, **request.kwargs("ignore_size")
    )


@declare(
    "deactivate-disks", DeactivateDisks, holds="BUSY", opcodes=("OP_INSTANCE_DEACTIVATE_DISKS",)
)
def deactivate_instance_disks(client: RapiClient, request: SendRequest) -> int:
    return client.deactivate_instance_disks(
        request.name, reason=request.reason, **request.kwargs("force")
    )


@declare("add-tags", Tags, holds="BUSY", dry_run=True, opcodes=("OP_TAGS_SET",))
def add_instance_tags(client: RapiClient, request: SendRequest) -> int:
    return client.add_instance_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


@declare("remove-tags", Tags, holds="BUSY", dry_run=True, opcodes=("OP_TAGS_DEL",))
def delete_instance_tags(client: RapiClient, request: SendRequest) -> int:
    return client.delete_instance_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


INSTANCE_ACTIONS = declare.actions
