"""The instance RAPI resources: list, create, read, delete and the actions."""

from __future__ import annotations

from typing import Any

from gwm.simulator.cost import CallKind, Cost
from gwm.simulator.derived import instance_console
from gwm.simulator.fields.base import COMMON_FIELDS, RS_NORMAL
from gwm.simulator.http import (
    READERS,
    HttpError,
    Req,
    Resources,
    check_type,
    runtime_cost,
    uri_list,
)
from gwm.simulator.query import FIELDS, classic_rows
from gwm.simulator.state import Instance

RESOURCES = Resources()

# The fields rlib2 asks for in /2/instances?bulk=1 and /2/instances/NAME.
I_FIELDS = [
    "name",
    "admin_state",
    "os",
    "pnode",
    "snodes",
    "disk_template",
    "nic.ips",
    "nic.macs",
    "nic.modes",
    "nic.uuids",
    "nic.names",
    "nic.links",
    "nic.networks",
    "nic.networks.names",
    "nic.bridges",
    "network_port",
    "disk.sizes",
    "disk.spindles",
    "disk_usage",
    "disk.uuids",
    "disk.names",
    "beparams",
    "hvparams",
    "oper_state",
    "oper_ram",
    "oper_vcpus",
    "status",
    "custom_hvparams",
    "custom_beparams",
    "custom_nicparams",
    # Ganeti 3.1 adds "custom_osparams" here; the 3.0 sandbox does not have it
    *COMMON_FIELDS,
]


def _instance_rows(r: Req, insts: list[Instance]) -> list[dict[str, Any]]:
    rows = classic_rows(r.sim.ctx(), "instance", I_FIELDS, insts)
    for row in rows:
        # rlib2._UpdateBeparams: "memory" mirrors "maxmem"
        row["beparams"]["memory"] = row["beparams"]["maxmem"]
    return rows


@RESOURCES.resource("/2/instances", "instances")
class RInstances:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        names = s.sorted_instance_names()
        if r.bulk:
            insts = [s.instances[n] for n in names]
            r.cost = runtime_cost(list(s.nodes.values()), len(insts), bulk=True)
            return _instance_rows(r, insts)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(names))
        return uri_list(list(names), "/2/instances/%s", "id")

    @staticmethod
    async def POST(r: Req) -> Any:
        body = check_type(r.body, dict, "Body contents")
        version = body.get("__version__", 0)
        if version == 0:
            raise HttpError(400, "Instance creation request version 0 is no longer supported")
        if version != 1:
            raise HttpError(400, f"Unsupported request data version {version}")
        data = dict(body)
        data.pop("__version__", None)
        return r.submit_one(
            "OP_INSTANCE_CREATE",
            data,
            {"dry_run": r.dry_run},
            rename={"os": "os_type", "name": "instance_name"},
        )


@RESOURCES.resource("/2/instances/{name}", "instances_name")
class RInstance:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        inst = s.instances.get(r.items[0])
        if inst is None:
            r.cost = Cost(CallKind.PLAIN)
            raise HttpError(404)
        r.cost = runtime_cost([s.node_by_uuid(inst.pnode)], 1)
        return _instance_rows(r, [inst])[0]

    @staticmethod
    async def DELETE(r: Req) -> Any:
        static = {"instance_name": r.items[0], "ignore_failures": False, "dry_run": r.dry_run}
        return r.submit_one("OP_INSTANCE_REMOVE", r.body, static)


@RESOURCES.resource("/2/instances/{name}/info", "instances_name_info")
class RInstanceInfo:
    @staticmethod
    async def GET(r: Req) -> Any:
        static = {"instances": [r.items[0]], "static": r.flag("static")}
        return r.submit_one("OP_INSTANCE_QUERY_DATA", {}, static)


def _named(r: Req) -> dict[str, Any]:
    return {"instance_name": r.items[0]}


RESOURCES.opcode(
    "PUT",
    "/2/instances/{name}/startup",
    "OP_INSTANCE_STARTUP",
    lambda r: {
        **_named(r),
        "force": r.force,
        "dry_run": r.dry_run,
        "no_remember": r.flag("no_remember"),
    },
    use_body=False,
)
RESOURCES.opcode(
    "PUT",
    "/2/instances/{name}/shutdown",
    "OP_INSTANCE_SHUTDOWN",
    lambda r: {**_named(r), "no_remember": r.flag("no_remember"), "dry_run": r.dry_run},
)
RESOURCES.opcode(
    "POST",
    "/2/instances/{name}/reboot",
    "OP_INSTANCE_REBOOT",
    lambda r: {
        **_named(r),
        "reboot_type": r.str_arg("type", "hard"),
        "ignore_secondaries": r.flag("ignore_secondaries"),
        "dry_run": r.dry_run,
    },
)
RESOURCES.opcode(
    "PUT",
    "/2/instances/{name}/activate-disks",
    "OP_INSTANCE_ACTIVATE_DISKS",
    lambda r: {**_named(r), "ignore_size": r.flag("ignore_size")},
    use_body=False,
)
RESOURCES.opcode(
    "PUT",
    "/2/instances/{name}/deactivate-disks",
    "OP_INSTANCE_DEACTIVATE_DISKS",
    lambda r: {**_named(r), "force": r.force},
    use_body=False,
)
RESOURCES.opcode("POST", "/2/instances/{name}/recreate-disks", "OP_INSTANCE_RECREATE_DISKS", _named)
RESOURCES.opcode("PUT", "/2/instances/{name}/migrate", "OP_INSTANCE_MIGRATE", _named)
RESOURCES.opcode("PUT", "/2/instances/{name}/failover", "OP_INSTANCE_FAILOVER", _named)
RESOURCES.opcode("PUT", "/2/instances/{name}/rename", "OP_INSTANCE_RENAME", _named)
RESOURCES.opcode(
    "PUT",
    "/2/instances/{name}/modify",
    "OP_INSTANCE_SET_PARAMS",
    _named,
    rename={"custom_beparams": "beparams", "custom_hvparams": "hvparams"},
)


@RESOURCES.resource("/2/instances/{name}/reinstall", "instances_name_reinstall")
class RInstanceReinstall:
    @staticmethod
    async def POST(r: Req) -> Any:
        name = r.items[0]
        if r.body:
            if r.args:
                raise HttpError(400, "Can't combine query and body parameters")
            body = r.body
        elif r.args:
            body = {"os": r.str_arg("os"), "start": not r.int_arg("nostartup")}
        else:
            body = {}
        if not isinstance(body, dict):
            raise HttpError(400, "Invalid body contents, not a dictionary")
        start = body.get("start", True)
        if not isinstance(start, bool):
            raise HttpError(
                400, f"'start' parameter: Type is '{type(start).__name__}', but 'bool' is expected"
            )
        # rlib2 builds these opcodes itself: no rlib2 reason entry
        build = r.sim.opcodes.build
        op_list = [
            build("OP_INSTANCE_SHUTDOWN", {"instance_name": name}, []),
            build(
                "OP_INSTANCE_REINSTALL",
                {
                    "instance_name": name,
                    "os_type": body.get("os"),
                    "osparams": body.get("osparams"),
                },
                [],
            ),
        ]
        if start:
            op_list.append(
                build("OP_INSTANCE_STARTUP", {"instance_name": name, "force": False}, [])
            )
        return r.submit(op_list)


@RESOURCES.resource("/2/instances/{name}/replace-disks", "instances_name_replace_disks")
class RInstanceReplaceDisks:
    @staticmethod
    async def POST(r: Req) -> Any:
        if r.body:
            data = dict(r.body) if isinstance(r.body, dict) else r.body
        elif r.args:
            data = {k: r.str_arg(k) for k in ("remote_node", "mode", "disks", "iallocator")}
        else:
            data = {}
        if isinstance(data, dict) and "disks" in data:
            raw = data.pop("disks")
            if raw:
                if isinstance(raw, list) and all(isinstance(d, int) for d in raw):
                    data["disks"] = raw
                else:
                    try:
                        data["disks"] = [int(part) for part in str(raw).split(",")]
                    except ValueError as err:
                        raise HttpError(400, f"Invalid disk index passed: {err}") from None
        return r.submit_one("OP_INSTANCE_REPLACE_DISKS", data, _named(r))


RESOURCES.opcode(
    "POST",
    "/2/instances/{name}/disk/{disk}/grow",
    "OP_INSTANCE_GROW_DISK",
    lambda r: {**_named(r), "disk": int(r.items[1])},
    name="instances_name_disk_grow",
)


@RESOURCES.resource("/2/instances/{name}/console", "instances_name_console", get_access=READERS)
class RInstanceConsole:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        inst = s.instances.get(r.items[0])
        if inst is None:
            # rlib2 indexes an empty query result
            raise HttpError(500, "list index out of range")
        r.cost = runtime_cost([s.node_by_uuid(inst.pnode)], 1)
        status, oper = FIELDS["instance"]["oper_state"].getter(r.sim.ctx(), inst)
        if status != RS_NORMAL or not oper:
            raise HttpError(503, "Instance console unavailable")
        return instance_console(s, inst)
