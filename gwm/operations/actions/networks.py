"""Network actions: their parameters and the RAPI call each sends (they hold nothing)."""

from __future__ import annotations

from typing import Literal

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


class NetworkCreate(Params):
    name: GanetiName
    network: str = Field(description="IPv4 network in CIDR form, e.g. 10.0.0.0/24")
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    add_reserved_ips: list[str] | None = None
    tags: list[str] | None = None


class NetworkModify(Changes):
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    add_reserved_ips: list[str] | None = None
    remove_reserved_ips: list[str] | None = None


class Connect(Params):
    group: str
    mode: Literal["bridged", "routed", "openvswitch"]
    link: str
    vlan: str | None = None


class Disconnect(Params):
    group: str


# -- the actions, each on the RAPI call it sends -------------------------------------

declare = Declarations("network", verb="manage_cluster")


@declare("create", NetworkCreate, dry_run=True, opcodes=("OP_NETWORK_ADD",))
def create_network(client: RapiClient, request: SendRequest) -> int:
    return client.create_network(
        request.name,
        request.params["network"],
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs(
            "gateway", "network6", "gateway6", "mac_prefix", "add_reserved_ips", "tags"
        ),
    )


@declare("modify", NetworkModify, opcodes=("OP_NETWORK_SET_PARAMS",))
def modify_network(client: RapiClient, request: SendRequest) -> int:
    # Every parameter that is set is a change for Ganeti.
    return client.modify_network(
        request.name, reason=request.reason, **request.kwargs(*request.params)
    )


@declare("rename", NewName, dry_run=True, opcodes=("OP_NETWORK_RENAME",))
def rename_network(client: RapiClient, request: SendRequest) -> int:
    return client.rename_network(
        request.name, request.params["new_name"], dry_run=request.dry_run, reason=request.reason
    )


@declare("delete", NoParams, dry_run=True, opcodes=("OP_NETWORK_REMOVE",))
def delete_network(client: RapiClient, request: SendRequest) -> int:
    return client.delete_network(request.name, dry_run=request.dry_run, reason=request.reason)


@declare("connect", Connect, dry_run=True, opcodes=("OP_NETWORK_CONNECT",))
def connect_network(client: RapiClient, request: SendRequest) -> int:
    return client.connect_network(
        request.name,
        request.params["group"],
        mode=request.params["mode"],
        link=request.params["link"],
        dry_run=request.dry_run,
        reason=request.reason,
        **request.kwargs("vlan"),
    )


@declare("disconnect", Disconnect, dry_run=True, opcodes=("OP_NETWORK_DISCONNECT",))
def disconnect_network(client: RapiClient, request: SendRequest) -> int:
    return client.disconnect_network(
        request.name, request.params["group"], dry_run=request.dry_run, reason=request.reason
    )


@declare("add-tags", Tags, dry_run=True, opcodes=("OP_TAGS_SET",))
def add_network_tags(client: RapiClient, request: SendRequest) -> int:
    return client.add_network_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


@declare("remove-tags", Tags, dry_run=True, opcodes=("OP_TAGS_DEL",))
def delete_network_tags(client: RapiClient, request: SendRequest) -> int:
    return client.delete_network_tags(
        request.name, request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


NETWORK_ACTIONS = declare.actions
