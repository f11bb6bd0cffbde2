"""The node group RAPI resources: list, add, read, remove, modify, rename, assign."""

from __future__ import annotations

from typing import Any

from gwm.simulator.fields.base import COMMON_FIELDS
from gwm.simulator.http import Req, Resources
from gwm.simulator.resources.listing import Listing, add_listing

RESOURCES = Resources()

# The fields rlib2 asks for in /2/groups?bulk=1 and /2/groups/NAME.
G_FIELDS = [
    "alloc_policy",
    "name",
    "node_cnt",
    "node_list",
    "ipolicy",
    "custom_ipolicy",
    "diskparams",
    "custom_diskparams",
    "ndparams",
    "custom_ndparams",
    *COMMON_FIELDS,
]

add_listing(
    RESOURCES,
    Listing(
        plural="groups",
        kind="group",
        fields=G_FIELDS,
        name_param="group_name",
        add_op="OP_GROUP_ADD",
        remove_op="OP_GROUP_REMOVE",
        remove_takes_body=False,
        table=lambda s: s.groups,
    ),
)


def _named(r: Req) -> dict[str, Any]:
    return {"group_name": r.items[0]}


RESOURCES.opcode(
    "PUT",
    "/2/groups/{name}/modify",
    "OP_GROUP_SET_PARAMS",
    _named,
    rename={
        "custom_ndparams": "ndparams",
        "custom_ipolicy": "ipolicy",
        "custom_diskparams": "diskparams",
    },
)
RESOURCES.opcode(
    "PUT",
    "/2/groups/{name}/rename",
    "OP_GROUP_RENAME",
    lambda r: {**_named(r), "dry_run": r.dry_run},
)
RESOURCES.opcode(
    "PUT",
    "/2/groups/{name}/assign-nodes",
    "OP_GROUP_ASSIGN_NODES",
    lambda r: {**_named(r), "dry_run": r.dry_run, "force": r.force},
)
