"""``/2/nodes``: listing, role, evacuate, migrate, modify, powercycle, tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gwm.rapi.builders._shared import change_tags, get_tags, path, read, read_bulk, write
from gwm.rapi.calls import (
    Query,
    RapiCall,
    ShapeError,
    body_of,
    model_parser,
    parse_names,
)
from gwm.rapi.constants import NodeRole
from gwm.rapi.schemas import RapiNode


def _subject(name: str) -> str:
    return f"node {name!r}"


def _parse_role(value: Any) -> NodeRole:
    try:
        return NodeRole(value)
    except ValueError:
        raise ShapeError(f"expected a node role, got {value!r:.60}") from None


def list_nodes() -> RapiCall[list[str]]:
    """``GET /2/nodes``: node names."""
    return read("/2/nodes", "list nodes", parse_names)


def list_nodes_bulk() -> RapiCall[list[RapiNode]]:
    """``GET /2/nodes?bulk=1``: every node with N_FIELDS (asks every node daemon)."""
    return read_bulk("/2/nodes", "list nodes", RapiNode)


def get_node(name: str) -> RapiCall[RapiNode]:
    """``GET /2/nodes/<name>`` (404 → RapiNotFound)."""
    return read(path("nodes", name), f"read {_subject(name)}", model_parser(RapiNode))


def get_node_role(name: str) -> RapiCall[NodeRole]:
    """``GET /2/nodes/<name>/role``: master, master-candidate, regular, drained or offline."""
    return read(path("nodes", name, "role"), f"read the role of {_subject(name)}", _parse_role)


def set_node_role(
    name: str,
    role: NodeRole | str,
    *,
    force: bool | None = None,
    auto_promote: bool | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/nodes/<name>/role`` with the role as a bare JSON string → job id.

    Settable roles: master-candidate, regular, drained, offline (the master
    changes only by master failover).
    """
    query = Query().add("force", force).add("auto-promote", auto_promote).reason(reason)
    return write(
        "PUT",
        path("nodes", name, "role"),
        f"set the role of {_subject(name)} to {str(role)!r}",
        query=query,
        body=str(role),
    )


def evacuate_node(
    name: str,
    *,
    mode: str | None = None,
    iallocator: str | None = None,
    remote_node: str | None = None,
    early_release: bool | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/nodes/<name>/evacuate`` → job id.

    ``mode``: primary-only, secondary-only or all. The job's result is
    ``{"jobs": [[true, job_id] | [false, message], ...]}``: the moves run as
    further jobs.
    """
    if iallocator and remote_node:
        raise ValueError("give either iallocator or remote_node, not both")
    body = body_of(
        mode=str(mode) if mode else None,
        iallocator=iallocator,
        remote_node=remote_node,
        early_release=early_release,
    )
    return write(
        "POST",
        path("nodes", name, "evacuate"),
        f"evacuate {_subject(name)}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body,
    )


def migrate_node(
    name: str,
    *,
    mode: str | None = None,
    target_node: str | None = None,
    iallocator: str | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/nodes/<name>/migrate``: live-migrate its primary instances → job id.

    rlib2 ignores the body as soon as the query string has any parameter, and
    ``reason`` must go in the query string; with ``reason`` the mode goes in
    the query string too, and ``target_node``/``iallocator`` cannot be sent.
    """
    subject = f"migrate the instances of {_subject(name)}"
    url = path("nodes", name, "migrate")
    if reason:
        if target_node or iallocator:
            raise ValueError(
                "Ganeti ignores target_node and iallocator for node migration when a "
                "reason is given (rlib2 then reads only the query string); drop one"
            )
        query = Query().add("mode", str(mode) if mode else None).reason(reason)
        return write("POST", url, subject, query=query)
    body = body_of(mode=str(mode) if mode else None, target_node=target_node, iallocator=iallocator)
    return write("POST", url, subject, body=body)


def modify_node(name: str, *, reason: str | None = None, **params: Any) -> RapiCall[int]:
    """``POST /2/nodes/<name>/modify`` with OpNodeSetParams parameters → job id."""
    if not params:
        raise ValueError("modify_node needs at least one parameter to change")
    return write(
        "POST",
        path("nodes", name, "modify"),
        f"modify {_subject(name)}",
        query=Query().reason(reason),
        body=params,
    )


def powercycle_node(
    name: str, *, force: bool | None = None, reason: str | None = None
) -> RapiCall[int]:
    """``POST /2/nodes/<name>/powercycle`` → job id."""
    return write(
        "POST",
        path("nodes", name, "powercycle"),
        f"power-cycle {_subject(name)}",
        query=Query().add("force", force).reason(reason),
    )


def get_node_tags(name: str) -> RapiCall[list[str]]:
    return get_tags(path("nodes", name, "tags"), _subject(name))


def add_node_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("nodes", name, "tags")
    return change_tags("PUT", url, _subject(name), tags, dry_run=dry_run, reason=reason)


def delete_node_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("nodes", name, "tags")
    return change_tags("DELETE", url, _subject(name), tags, dry_run=dry_run, reason=reason)
