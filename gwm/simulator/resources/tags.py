"""The tags of the cluster and of every kind of object (rlib2's _R_Tags)."""

from __future__ import annotations

from typing import Any

from gwm.simulator.http import HttpError, Req, Resources

RESOURCES = Resources()


def _tags_resource(template: str, name: str, kind: str) -> None:
    async def get(r: Req) -> Any:
        if kind == "cluster":
            return list(r.sim.state.info["tags"])
        target = r.sim.state.by_kind(kind).get(r.items[0])
        if target is None:
            label = {"nodegroup": "Group"}.get(kind, kind.capitalize())
            raise HttpError(500, str((f"{label} name {r.items[0]} not found", "unknown_entity")))
        return list(target.tags)

    def static(r: Req) -> dict[str, Any]:
        return {
            "kind": kind,
            "name": None if kind == "cluster" else r.items[0],
            "tags": r.args.get("tag", []),
            "dry_run": r.dry_run,
        }

    async def put(r: Req) -> Any:
        return r.submit_one("OP_TAGS_SET", {}, static(r))

    async def delete(r: Req) -> Any:
        return r.submit_one("OP_TAGS_DEL", {}, static(r))

    RESOURCES.add(template, name, {"GET": get, "PUT": put, "DELETE": delete})


_tags_resource("/2/tags", "tags", "cluster")
_tags_resource("/2/instances/{name}/tags", "instances_name_tags", "instance")
_tags_resource("/2/nodes/{name}/tags", "nodes_name_tags", "node")
_tags_resource("/2/groups/{name}/tags", "groups_name_tags", "nodegroup")
_tags_resource("/2/networks/{name}/tags", "networks_name_tags", "network")
