"""Node actions: their parameters, the RAPI call each sends, and what they hold."""

from __future__ import annotations

from typing import Literal

from gwm.operations.actions.base import Declarations, NoParams, Params, SendRequest, Tags
from gwm.rapi import RapiClient

# -- parameters ---------------------------------------------------------------------


class SetRole(Params):
    role: Literal["master-candidate", "regular", "drained", "offline"]
    force: bool | None = None
    auto_promote: bool | None = None


class Evacuate(Params):
    mode: Literal["primary-only", "secondary-only", "all"] | None = None
    iallocator: str | None = None
    remote_node: str | None = None
    early_release: bool | None = None


class NodeMigrate(Params):
    mode: Literal["live", "non-live"] | None = None
    target_node: str | None = None
    iallocator: str | None = None


class Powercycle(Params):
    force: bool | None = None


# -- the actions, each on the RAPI call it sends -------------------------------------

declare = Declarations("node", verb="manage_nodes")


@declare("drain", NoParams, holds="BUSY", opcodes=("OP_NODE_SET_PARAMS",))
def modify_node_drained(client: RapiClient, request: SendRequest) -> int:
    return client.modify_node(request.name, reason=request.reason, drained=True)


@declare("undrain", NoParams, holds="BUSY", opcodes=("OP_NODE_SET_PARAMS",))
def modify_node_undrained(client: RapiClient, request: SendRequest) -> int:
    return client.modify_node(request.name, reason=request.reason, drained=False)


@declare("offline", NoParams, holds="BUSY", opcodes=("OP_NODE_SET_PARAMS",))
def modify_node_offline(client: RapiClient, request: SendRequest) -> int:
    return client.modify_node(request.name, reason=request.reason, offline=True)


@declare("online", NoParams, holds="BUSY", opcodes=("OP_NODE_SET_PARAMS",))
def modify_node_online(client: RapiClient, request: SendRequest) -> int:
    return client.modify_node(request.name, reason=request.reason, offline=False)


@declare("set-role", SetRole, holds="BUSY", opcodes=("OP_NODE_SET_PARAMS",))
def set_node_role(client: RapiClient, request: SendRequest) -> int:
    return client.set_node_role(
        request.name,
        request.params["role"],
        reason=request.reason,
        **request.kwargs("force", "auto_promote"),
    )


@declare("evacuate", Evacuate, holds="BUSY", dry_run=True, opcodes=("OP_NODE_EVACUATE",))
def evacuate_node(client: RapiClient, request: SendRequest) -> int:
    return client.evacuate_node(
        request.name,
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("mode", "iallocator", "remote_node", "early_release"),
    )


@declare("migrate", NodeMigrate, holds="BUSY", opcodes=("OP_NODE_MIGRATE",))
def migrate_node(client: RapiClient, request: SendRequest) -> int:
    # Ganeti ignores the body when the query string has parameters (reason):
    # a target or allocator therefore goes without the reason.
    if request.params.get("target_node") or request.params.get("iallocator"):
        return client.migrate_node(
            request.name, **request.kwargs("mode", "target_node", "iallocator")
        )
    return client.migrate_node(request.name, reason=request.reason, **request.kwargs("mode"))


@declare("powercycle", Powercycle, holds="BUSY", opcodes=("OP_NODE_POWERCYCLE",))
def powercycle_node(client: RapiClient, request: SendRequest) -> int:
    return client.powercycle_node(request.name, reason=request.reason, **request.kwargs("force"))


@declare("add-tags", Tags, holds="BUSY", dry_run=True, opcodes=("OP_TAGS_SET",))
def add_node_tags(client: RapiClient, request: SendRequest) -> int:
    return client.add_node_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


@declare("remove-tags", Tags, holds="BUSY", dry_run=True, opcodes=("OP_TAGS_DEL",))
def delete_node_tags(client: RapiClient, request: SendRequest) -> int:
    return client.delete_node_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


NODE_ACTIONS = declare.actions
