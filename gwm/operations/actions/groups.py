"""Node group actions: their parameters and the RAPI call each sends (they hold nothing)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gwm.kit.names import GanetiName
from gwm.operations.actions.base import (
    Changes,
    Declarations,
    NewName,
    NoParams,
    Params,
    SendRequest,
    Tags,
)
from gwm.rapi import RapiClient

# -- parameters ---------------------------------------------------------------------


class GroupCreate(Params):
    name: GanetiName
    alloc_policy: Literal["preferred", "last_resort", "unallocable"] | None = None


class GroupModify(Changes):
    alloc_policy: Literal["preferred", "last_resort", "unallocable"] | None = None
    ndparams: dict[str, Any] | None = None
    diskparams: dict[str, Any] | None = None
    ipolicy: dict[str, Any] | None = None


class AssignNodes(Params):
    nodes: list[str] = Field(min_length=1)
    force: bool | None = None


# -- the actions, each on the RAPI call it sends -------------------------------------

declare = Declarations("group", verb="manage_cluster")


@declare("create", GroupCreate, dry_run=True, opcodes=("OP_GROUP_ADD",))
def create_group(client: RapiClient, request: SendRequest) -> int:
    return client.create_group(
        request.name,
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("alloc_policy"),
    )


@declare("modify", GroupModify, opcodes=("OP_GROUP_SET_PARAMS",))
def modify_group(client: RapiClient, request: SendRequest) -> int:
    # Every parameter that is set is a change for Ganeti.
    return client.modify_group(
        request.name, reason=request.reason, **request.kwargs(*request.params)
    )


@declare("rename", NewName, dry_run=True, opcodes=("OP_GROUP_RENAME",))
def rename_group(client: RapiClient, request: SendRequest) -> int:
    return client.rename_group(
        request.name, request.params["new_name"], dry_run=request.dry_run, reason=request.reason
    )


@declare("delete", NoParams, dry_run=True, opcodes=("OP_GROUP_REMOVE",))
def delete_group(client: RapiClient, request: SendRequest) -> int:
    return client.delete_group(request.name, dry_run=request.dry_run, reason=request.reason)


@declare("assign-nodes", AssignNodes, dry_run=True, opcodes=("OP_GROUP_ASSIGN_NODES",))
def assign_group_nodes(client: RapiClient, request: SendRequest) -> int:
    return client.assign_group_nodes(
        request.name,
        request.params["nodes"],
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("force"),
    )


@declare("add-tags", Tags, dry_run=True, opcodes=("OP_TAGS_SET",))
def add_group_tags(client: RapiClient, request: SendRequest) -> int:
    return client.add_group_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


@declare("remove-tags", Tags, dry_run=True, opcodes=("OP_TAGS_DEL",))
def delete_group_tags(client: RapiClient, request: SendRequest) -> int:
    return client.delete_group_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


GROUP_ACTIONS = declare.actions
