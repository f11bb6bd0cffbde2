"""``/2/groups``: node groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gwm.rapi.builders._shared import change_tags, get_tags, path, read, read_bulk, write
from gwm.rapi.calls import Query, RapiCall, body_of, model_parser, parse_names
from gwm.rapi.schemas import RapiGroup


def _subject(name: str) -> str:
    return f"node group {name!r}"


def list_groups() -> RapiCall[list[str]]:
    """``GET /2/groups``: group names."""
    return read("/2/groups", "list node groups", parse_names)


def list_groups_bulk() -> RapiCall[list[RapiGroup]]:
    """``GET /2/groups?bulk=1``: every group with G_FIELDS."""
    return read_bulk("/2/groups", "list node groups", RapiGroup)


def get_group(name: str) -> RapiCall[RapiGroup]:
    """``GET /2/groups/<name>`` (404 → RapiNotFound)."""
    return read(path("groups", name), f"read {_subject(name)}", model_parser(RapiGroup))


def create_group(
    group_name: str,
    *,
    alloc_policy: str | None = None,
    dry_run: bool = False,
    reason: str | None = None,
    **params: Any,
) -> RapiCall[int]:
    """``POST /2/groups`` → job id. ``params``: further OpGroupAdd parameters (ndparams...)."""
    body = {"group_name": group_name, **body_of(alloc_policy=alloc_policy), **params}
    return write(
        "POST",
        "/2/groups",
        f"create {_subject(group_name)}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body,
    )


def modify_group(name: str, *, reason: str | None = None, **params: Any) -> RapiCall[int]:
    """``PUT /2/groups/<name>/modify`` with OpGroupSetParams parameters → job id."""
    if not params:
        raise ValueError("modify_group needs at least one parameter to change")
    return write(
        "PUT",
        path("groups", name, "modify"),
        f"modify {_subject(name)}",
        query=Query().reason(reason),
        body=params,
    )


def rename_group(
    name: str, new_name: str, *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    """``PUT /2/groups/<name>/rename`` → job id."""
    return write(
        "PUT",
        path("groups", name, "rename"),
        f"rename {_subject(name)} to {new_name!r}",
        query=Query().dry_run(dry_run).reason(reason),
        body={"new_name": new_name},
    )


def delete_group(name: str, *, dry_run: bool = False, reason: str | None = None) -> RapiCall[int]:
    """``DELETE /2/groups/<name>`` → job id."""
    return write(
        "DELETE",
        path("groups", name),
        f"delete {_subject(name)}",
        query=Query().dry_run(dry_run).reason(reason),
    )


def assign_group_nodes(
    name: str,
    nodes: Sequence[str],
    *,
    force: bool | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/groups/<name>/assign-nodes`` → job id."""
    return write(
        "PUT",
        path("groups", name, "assign-nodes"),
        f"assign nodes to {_subject(name)}",
        query=Query().add("force", force).dry_run(dry_run).reason(reason),
        body={"nodes": list(nodes)},
    )


def get_group_tags(name: str) -> RapiCall[list[str]]:
    return get_tags(path("groups", name, "tags"), _subject(name))


def add_group_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("groups", name, "tags")
    return change_tags("PUT", url, _subject(name), tags, dry_run=dry_run, reason=reason)


def delete_group_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("groups", name, "tags")
    return change_tags("DELETE", url, _subject(name), tags, dry_run=dry_run, reason=reason)
