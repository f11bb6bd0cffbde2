"""The node RAPI resources: list, read, role, evacuate, migrate, modify."""

from __future__ import annotations

from typing import Any

from gwm.simulator.cost import CallKind, Cost
from gwm.simulator.fields.base import COMMON_FIELDS
from gwm.simulator.http import HttpError, Req, Resources, check_type, runtime_cost, uri_list
from gwm.simulator.query import classic_rows
from gwm.simulator.state import ROLE_NAMES

RESOURCES = Resources()

# The fields rlib2 asks for in /2/nodes?bulk=1 and /2/nodes/NAME.
N_FIELDS = [
    "name",
    "offline",
    "master_candidate",
    "drained",
    "dtotal",
    "dfree",
    "sptotal",
    "spfree",
    "mtotal",
    "mnode",
    "mfree",
    "pinst_cnt",
    "sinst_cnt",
    "ctotal",
    "cnos",
    "cnodes",
    "csockets",
    "pip",
    "sip",
    "role",
    "pinst_list",
    "sinst_list",
    "master_capable",
    "vm_capable",
    "ndparams",
    "group.uuid",
    *COMMON_FIELDS,
]
# PUT /2/nodes/NAME/role: (master_candidate, offline, drained) per role
ROLE_FLAGS: dict[str, tuple[bool | None, bool | None, bool | None]] = {
    "regular": (False, False, False),
    "master-candidate": (True, None, None),
    "drained": (None, None, True),
    "offline": (None, True, None),
}


def _named(r: Req) -> dict[str, Any]:
    return {"node_name": r.items[0]}


@RESOURCES.resource("/2/nodes", "nodes")
class RNodes:
    @staticmethod
    async def GET(r: Req) -> Any:
        nodes = r.sim.state.sorted_nodes()
        if r.bulk:
            r.cost = runtime_cost(nodes, 0)
            return classic_rows(r.sim.ctx(), "node", N_FIELDS, nodes)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(nodes))
        return uri_list([n.name for n in nodes], "/2/nodes/%s", "id")


@RESOURCES.resource("/2/nodes/{name}", "nodes_name")
class RNode:
    @staticmethod
    async def GET(r: Req) -> Any:
        node = r.sim.state.nodes.get(r.items[0])
        if node is None:
            raise HttpError(404)
        r.cost = runtime_cost([node], 0)
        row = classic_rows(r.sim.ctx(), "node", N_FIELDS, [node])[0]
        row["secondary_ip"] = row["sip"]  # rlib2 GET_ALIASES
        return row


@RESOURCES.resource("/2/nodes/{name}/role", "nodes_name_role")
class RNodeRole:
    @staticmethod
    async def GET(r: Req) -> Any:
        node = r.sim.state.nodes.get(r.items[0])
        if node is None:
            raise HttpError(500, str((f"Node '{r.items[0]}' not known", "unknown_entity")))
        return ROLE_NAMES[r.sim.state.node_role(node)]

    @staticmethod
    async def PUT(r: Req) -> Any:
        role = check_type(r.body, str, "Body contents")
        if role not in ROLE_FLAGS:
            raise HttpError(400, f"Can't set '{role}' role")
        candidate, offline, drained = ROLE_FLAGS[role]
        static = {
            **_named(r),
            "master_candidate": candidate,
            "offline": offline,
            "drained": drained,
            "force": r.force,
            "auto_promote": r.flag("auto-promote"),
        }
        return r.submit_one("OP_NODE_SET_PARAMS", {}, static)


RESOURCES.opcode(
    "POST",
    "/2/nodes/{name}/evacuate",
    "OP_NODE_EVACUATE",
    lambda r: {**_named(r), "dry_run": r.dry_run},
)


@RESOURCES.resource("/2/nodes/{name}/migrate", "nodes_name_migrate")
class RNodeMigrate:
    @staticmethod
    async def POST(r: Req) -> Any:
        if r.args:
            if "live" in r.args and "mode" in r.args:
                raise HttpError(400, "Only one of 'live' and 'mode' should be passed")
            if "live" in r.args:
                mode: Any = "live" if r.int_arg("live", 1) else "non-live"
            else:
                mode = r.str_arg("mode")
            data: Any = {"mode": mode}
        else:
            data = r.body
        return r.submit_one("OP_NODE_MIGRATE", data, _named(r))


RESOURCES.opcode("POST", "/2/nodes/{name}/modify", "OP_NODE_SET_PARAMS", _named)
RESOURCES.opcode(
    "POST",
    "/2/nodes/{name}/powercycle",
    "OP_NODE_POWERCYCLE",
    lambda r: {**_named(r), "force": r.force},
)
