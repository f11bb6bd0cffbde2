"""The network RAPI resources: list, add, read, remove, connect, modify, rename."""

from __future__ import annotations

from typing import Any

from gwm.simulator.fields.base import COMMON_FIELDS
from gwm.simulator.http import Req, Resources
from gwm.simulator.resources.listing import Listing, add_listing

RESOURCES = Resources()

# The fields rlib2 asks for in /2/networks?bulk=1 and /2/networks/NAME.
NET_FIELDS = [
    "name",
    "network",
    "gateway",
    "network6",
    "gateway6",
    "mac_prefix",
    "free_count",
    "reserved_count",
    "map",
    "group_list",
    "inst_list",
    "external_reservations",
    *COMMON_FIELDS,
]

add_listing(
    RESOURCES,
    Listing(
        plural="networks",
        kind="network",
        fields=NET_FIELDS,
        name_param="network_name",
        add_op="OP_NETWORK_ADD",
        remove_op="OP_NETWORK_REMOVE",
        remove_takes_body=True,
        table=lambda s: s.networks,
    ),
)


def _network_op(suffix: str, op_id: str, *, dry_run: bool = True) -> None:
    """``PUT /2/networks/NAME/SUFFIX``: the body's parameters for one opcode."""

    def static(r: Req) -> dict[str, Any]:
        named: dict[str, Any] = {"network_name": r.items[0]}
        return {**named, "dry_run": r.dry_run} if dry_run else named

    RESOURCES.opcode("PUT", f"/2/networks/{{name}}/{suffix}", op_id, static)


_network_op("connect", "OP_NETWORK_CONNECT")
_network_op("disconnect", "OP_NETWORK_DISCONNECT")
_network_op("modify", "OP_NETWORK_SET_PARAMS", dry_run=False)
_network_op("rename", "OP_NETWORK_RENAME")
