"""``/2/networks``: IP networks and their connection to node groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gwm.rapi.builders._shared import change_tags, get_tags, path, read, read_bulk, write
from gwm.rapi.calls import Query, RapiCall, body_of, model_parser, parse_names
from gwm.rapi.schemas import RapiNetwork


def _subject(name: str) -> str:
    return f"network {name!r}"


def list_networks() -> RapiCall[list[str]]:
    """``GET /2/networks``: network names."""
    return read("/2/networks", "list networks", parse_names)


def list_networks_bulk() -> RapiCall[list[RapiNetwork]]:
    """``GET /2/networks?bulk=1``: every network with NET_FIELDS."""
    return read_bulk("/2/networks", "list networks", RapiNetwork)


def get_network(name: str) -> RapiCall[RapiNetwork]:
    """``GET /2/networks/<name>`` (404 → RapiNotFound)."""
    return read(path("networks", name), f"read {_subject(name)}", model_parser(RapiNetwork))


def create_network(
    network_name: str,
    network: str,
    *,
    gateway: str | None = None,
    network6: str | None = None,
    gateway6: str | None = None,
    mac_prefix: str | None = None,
    add_reserved_ips: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    dry_run: bool = False,
    reason: str | None = None,
    **params: Any,
) -> RapiCall[int]:
    """``POST /2/networks`` → job id. ``network`` is the IPv4 CIDR, e.g. ``10.0.0.0/24``."""
    body = {
        "network_name": network_name,
        "network": network,
        **body_of(
            gateway=gateway,
            network6=network6,
            gateway6=gateway6,
            mac_prefix=mac_prefix,
            add_reserved_ips=list(add_reserved_ips) if add_reserved_ips is not None else None,
            tags=list(tags) if tags is not None else None,
        ),
        **params,
    }
    return write(
        "POST",
        "/2/networks",
        f"create {_subject(network_name)}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body,
    )


def modify_network(name: str, *, reason: str | None = None, **params: Any) -> RapiCall[int]:
    """``PUT /2/networks/<name>/modify`` with OpNetworkSetParams parameters → job id."""
    if not params:
        raise ValueError("modify_network needs at least one parameter to change")
    return write(
        "PUT",
        path("networks", name, "modify"),
        f"modify {_subject(name)}",
        query=Query().reason(reason),
        body=params,
    )


def rename_network(
    name: str, new_name: str, *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    """``PUT /2/networks/<name>/rename`` → job id."""
    return write(
        "PUT",
        path("networks", name, "rename"),
        f"rename {_subject(name)} to {new_name!r}",
        query=Query().dry_run(dry_run).reason(reason),
        body={"new_name": new_name},
    )


def delete_network(name: str, *, dry_run: bool = False, reason: str | None = None) -> RapiCall[int]:
    """``DELETE /2/networks/<name>`` → job id."""
    return write(
        "DELETE",
        path("networks", name),
        f"delete {_subject(name)}",
        query=Query().dry_run(dry_run).reason(reason),
    )


def connect_network(
    name: str,
    group_name: str,
    *,
    mode: str,
    link: str,
    vlan: str | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/networks/<name>/connect`` → job id. ``mode``: bridged, routed or openvswitch."""
    body = {
        "group_name": group_name,
        "network_mode": str(mode),
        "network_link": link,
        **body_of(network_vlan=vlan),
    }
    return write(
        "PUT",
        path("networks", name, "connect"),
        f"connect {_subject(name)} to node group {group_name!r}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body,
    )


def disconnect_network(
    name: str, group_name: str, *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    """``PUT /2/networks/<name>/disconnect`` → job id."""
    return write(
        "PUT",
        path("networks", name, "disconnect"),
        f"disconnect {_subject(name)} from node group {group_name!r}",
        query=Query().dry_run(dry_run).reason(reason),
        body={"group_name": group_name},
    )


def get_network_tags(name: str) -> RapiCall[list[str]]:
    return get_tags(path("networks", name, "tags"), _subject(name))


def add_network_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("networks", name, "tags")
    return change_tags("PUT", url, _subject(name), tags, dry_run=dry_run, reason=reason)


def delete_network_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("networks", name, "tags")
    return change_tags("DELETE", url, _subject(name), tags, dry_run=dry_run, reason=reason)
