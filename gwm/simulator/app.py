"""The ASGI app: Ganeti RAPI v2 over HTTP, plus the admin API under /__sim__.

The request path mirrors Ganeti's rapi daemon (lib/server/rapi.py): find the
resource (404) and the method (501), authenticate (401/403), check the body's
content type (415) and JSON (400), then run the handler. Every answer costs
the time the cost model says, and is counted in the stats.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gwm.simulator import ops, query
from gwm.simulator import state as st
from gwm.simulator.config import SimConfig
from gwm.simulator.cost import CallKind, request_cost
from gwm.simulator.faults import Faults, JobFailure
from gwm.simulator.jobs import Job, JobQueue
from gwm.simulator.state import ClusterState
from gwm.simulator.stats import Stats

READ = "read"
WRITE = "write"
REALM = "Ganeti Remote API"
ADMIN_PREFIX = "/__sim__"

DEFAULT_USERS: dict[str, tuple[str, frozenset[str]]] = {
    "gwm": ("gwm", frozenset({READ, WRITE})),
    "reader": ("reader", frozenset({READ})),
}

FEATURES = [
    "instance-create-reqv1",
    "node-migrate-reqv1",
    "instance-reinstall-reqv1",
    "node-evac-res1",
]


class HttpError(Exception):
    def __init__(
        self, code: int, message: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: int, message: str | None = None) -> bytes:
    """Ganeti's error body: short and long texts from Python's table."""
    short, explain = BaseHTTPRequestHandler.responses.get(code, ("Unknown", "Unknown"))
    text = message if message else short
    body = {"code": code, "message": html.escape(text), "explain": explain}
    return json.dumps(body).encode()


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class Cost:
    kind: CallKind = CallKind.PLAIN
    nodes: int = 0
    instances: int = 0
    rows: int = 0
    unreachable: int = 0


class Simulator:
    """One simulated cluster: state, job queue, faults, stats and users."""

    def __init__(
        self,
        state: ClusterState,
        config: SimConfig | None = None,
        users: dict[str, tuple[str, frozenset[str]]] | None = None,
    ) -> None:
        self.state = state
        self.config = config or SimConfig()
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.faults = Faults()
        self.stats = Stats()
        self.queue = JobQueue(state, self.config, self.faults)
        ops.install(self.queue)

    def ctx(self) -> query.Ctx:
        return query.Ctx(self.state, self.queue.jobs)

    def cost_of(self, cost: Cost) -> float:
        model = replace(self.config.cost, time_scale=self.config.time_scale)
        return request_cost(
            model,
            cost.kind,
            nodes=cost.nodes,
            instances=cost.instances,
            rows=cost.rows,
            running_jobs=self.queue.busy_jobs(),
            unreachable=cost.unreachable,
        )


@dataclass
class Req:
    sim: Simulator
    method: str
    path: str
    items: tuple[str, ...]
    args: dict[str, list[str]]
    body: Any
    resource: str
    cost: Cost = field(default_factory=Cost)

    # ---- query arguments (baserlib._checkIntVariable) ------------------
    def int_arg(self, name: str, default: int = 0) -> int:
        values = self.args.get(name)
        value: Any = values[0] if values else default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise HttpError(400, f"Invalid value for the '{name}' parameter") from None

    def str_arg(self, name: str, default: str | None = None) -> str | None:
        values = self.args.get(name)
        return values[0] if values else default

    @property
    def bulk(self) -> bool:
        return bool(self.int_arg("bulk"))

    @property
    def dry_run(self) -> bool:
        return bool(self.int_arg("dry-run"))

    @property
    def force(self) -> bool:
        return bool(self.int_arg("force"))

    # ---- opcodes (baserlib.OpcodeResource) -----------------------------
    def reason_trail(self) -> list[list[Any]]:
        trail: list[list[Any]] = []
        user = self.str_arg("reason")
        if user:
            trail.append(["gnt:user", user, time.time_ns()])
        trail.append([f"gnt:library:rlib2:{self.resource}", "", time.time_ns()])
        return trail

    def opcode(
        self,
        op_id: str,
        body: Any,
        static: dict[str, Any],
        rename: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """baserlib.FillOpcode: body params, renames, statics, validation."""
        if body is None:
            params: dict[str, Any] = {}
        else:
            check_type(body, dict, "Body contents")
            params = dict(body)
        for old, new in (rename or {}).items():
            if old in params and new in params:
                raise HttpError(
                    400,
                    f"Parameter '{old}' was renamed to '{new}', but both are specified",
                )
            if old in params:
                params[new] = params.pop(old)
        if isinstance(body, dict) and body.get("depends"):
            params["depends"] = body["depends"]
        overwritten = set(params) & set(static)
        if overwritten:
            raise HttpError(400, f"Can't overwrite static parameters {overwritten!r}")
        params.update(static)
        try:
            return ops.build_op(op_id, params, self.reason_trail())
        except ops.InvalidParams as err:
            raise HttpError(400, f"Invalid body parameters: {err}") from None

    def submit(self, op_list: list[dict[str, Any]]) -> int:
        faults = self.sim.faults
        if faults.queue_drained:
            raise HttpError(503, "Job queue is drained, cannot submit")
        self.cost = Cost(CallKind.PLAIN)
        return self.sim.queue.submit(op_list)

    def submit_one(
        self,
        op_id: str,
        body: Any,
        static: dict[str, Any],
        rename: dict[str, str] | None = None,
    ) -> int:
        return self.submit([self.opcode(op_id, body, static, rename)])


def check_type(value: Any, exptype: type, descr: str) -> Any:
    if not isinstance(value, exptype):
        raise HttpError(
            400,
            f"{descr}: Type is '{type(value).__name__}', but '{exptype.__name__}' is expected",
        )
    return value


Handler = Callable[[Req], Awaitable[Any]]


@dataclass
class Resource:
    pattern: re.Pattern[str]
    template: str
    name: str  # rlib2 class name without R_2_ (for the reason trail)
    methods: dict[str, Handler]
    access: dict[str, frozenset[str]]  # method -> rights, empty: any user
    needs_master: bool = True


RESOURCES: list[Resource] = []
_NAME = r"[\w._-]+"


def resource(
    template: str,
    name: str,
    *,
    get_access: frozenset[str] = frozenset(),
    needs_master: bool = True,
) -> Callable[[type], type]:
    """Register a class whose GET/PUT/POST/DELETE static methods handle a path."""

    def register(cls: type) -> type:
        regex = re.escape(template)
        for ph, rx in (("{name}", _NAME), ("{disk}", r"\d+"), ("{id}", r"\d+")):
            regex = regex.replace(re.escape(ph), f"({rx})")
        methods = {m: getattr(cls, m) for m in ("GET", "PUT", "POST", "DELETE") if hasattr(cls, m)}
        access = {m: frozenset({WRITE}) for m in methods}
        access["GET"] = get_access
        access.update(getattr(cls, "ACCESS", {}))
        RESOURCES.append(
            Resource(re.compile(f"^{regex}$"), template, name, methods, access, needs_master)
        )
        return cls

    return register


def find_resource(path: str) -> tuple[Resource, tuple[str, ...]] | None:
    for res in RESOURCES:
        m = res.pattern.match(path)
        if m:
            return res, m.groups()
    return None


# ---- lookups ---------------------------------------------------------------


def _runtime_cost(sim: Simulator, nodes: list[st.Node], instances: int, bulk: bool) -> Cost:
    asked = [n for n in nodes if not n.offline]
    return Cost(
        CallKind.BULK_INSTANCES if bulk else CallKind.RUNTIME_QUERY,
        nodes=len(asked),
        instances=instances,
        unreachable=sum(1 for n in asked if n.unreachable),
    )


def _instance_dict(c: query.Ctx, inst: st.Instance) -> dict[str, Any]:
    row = query.classic_rows(c, "instance", query.I_FIELDS, [inst])[0]
    # rlib2._UpdateBeparams: "memory" mirrors "maxmem"
    row["beparams"]["memory"] = row["beparams"]["maxmem"]
    return row


def uri_list(names: list[Any], fmt: str, id_field: str) -> list[dict[str, Any]]:
    return [{id_field: n, "uri": fmt % n} for n in names]


# ---- resources -------------------------------------------------------------


@resource("/", "root", needs_master=False)
class RRoot:
    @staticmethod
    async def GET(r: Req) -> Any:
        return None


@resource("/2", "2", needs_master=False)
class R2:
    @staticmethod
    async def GET(r: Req) -> Any:
        return None


@resource("/version", "version", needs_master=False)
class RVersion:
    @staticmethod
    async def GET(r: Req) -> Any:
        return 2


@resource("/2/features", "features", needs_master=False)
class RFeatures:
    @staticmethod
    async def GET(r: Req) -> Any:
        return list(FEATURES)


@resource("/2/info", "info")
class RInfo:
    @staticmethod
    async def GET(r: Req) -> Any:
        info = dict(r.sim.state.info)
        info["master"] = r.sim.state.master.name
        return info


@resource("/2/os", "os")
class ROs:
    @staticmethod
    async def GET(r: Req) -> Any:
        # rlib2 runs an OpOsDiagnose job and polls it to the end, every call.
        # Ganeti 3.0 ignores ?bulk here; 3.1 answers dicts (SimConfig.os_bulk).
        bulk = r.bulk and r.sim.config.os_bulk
        fields = (
            [
                "name",
                "valid",
                "variants",
                "parameters",
                "api_versions",
                "blacklisted",
                "hidden",
                "trusted",
            ]
            if bulk
            else ["name", "variants"]
        )
        op = ops.build_op("OP_OS_DIAGNOSE", {"output_fields": fields, "names": []}, [])
        job_id = r.submit([op])
        job = r.sim.queue.jobs[job_id]
        while not job.finalized:
            await asyncio.sleep(0.01)
        result = job.ops[0].result
        if not isinstance(result, list):
            raise HttpError(502, "Can't get OS list")
        if bulk:
            out = []
            for row in result:
                item = dict(zip(fields, row, strict=True))
                item["parameters"] = [
                    {"name": p[0], "description": p[1]} for p in item["parameters"]
                ]
                out.append(item)
            return out
        names = []
        for name, variants in result:
            names.extend([f"{name}+{v}" for v in variants] if variants else [name])
        return names


@resource("/2/modify", "cluster_modify")
class RClusterModify:
    @staticmethod
    async def PUT(r: Req) -> Any:
        if isinstance(r.body, dict) and "compression_tools" in r.body:
            raise HttpError(403, "The parameter compression_tools cannot be set via RAPI")
        return r.submit_one("OP_CLUSTER_SET_PARAMS", r.body, {})


@resource("/2/redistribute-config", "redist_config")
class RRedist:
    @staticmethod
    async def PUT(r: Req) -> Any:
        return r.submit_one("OP_CLUSTER_REDIST_CONF", r.body, {})


def _tags_resource(template: str, name: str, kind: str) -> None:
    async def get(r: Req) -> Any:
        s = r.sim.state
        if kind == "cluster":
            return list(s.info["tags"])
        tables: dict[str, dict[str, Any]] = {
            "instance": s.instances,
            "node": s.nodes,
            "nodegroup": s.groups,
            "network": s.networks,
        }
        target = tables[kind].get(r.items[0])
        if target is None:
            label = {"nodegroup": "Group"}.get(kind, kind.capitalize())
            raise HttpError(500, str((f"{label} name {r.items[0]} not found", "unknown_entity")))
        return list(target.tags)

    async def put(r: Req) -> Any:
        return r.submit_one("OP_TAGS_SET", {}, _tag_static(r))

    async def delete(r: Req) -> Any:
        return r.submit_one("OP_TAGS_DEL", {}, _tag_static(r))

    def _tag_static(r: Req) -> dict[str, Any]:
        return {
            "kind": kind,
            "name": None if kind == "cluster" else r.items[0],
            "tags": r.args.get("tag", []),
            "dry_run": r.dry_run,
        }

    cls = type(
        name,
        (),
        {"GET": staticmethod(get), "PUT": staticmethod(put), "DELETE": staticmethod(delete)},
    )
    resource(template, name)(cls)


_tags_resource("/2/tags", "tags", "cluster")


# ---- instances -------------------------------------------------------------


@resource("/2/instances", "instances")
class RInstances:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        names = s.sorted_instance_names()
        if r.bulk:
            c = r.sim.ctx()
            insts = [s.instances[n] for n in names]
            r.cost = _runtime_cost(r.sim, list(s.nodes.values()), len(insts), bulk=True)
            rows = query.classic_rows(c, "instance", query.I_FIELDS, insts)
            for row in rows:
                row["beparams"]["memory"] = row["beparams"]["maxmem"]
            return rows
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(names))
        return uri_list(list(names), "/2/instances/%s", "id")

    @staticmethod
    async def POST(r: Req) -> Any:
        check_type(r.body, dict, "Body contents")
        version = r.body.get("__version__", 0)
        if version == 0:
            raise HttpError(400, "Instance creation request version 0 is no longer supported")
        if version != 1:
            raise HttpError(400, f"Unsupported request data version {version}")
        data = dict(r.body)
        data.pop("__version__", None)
        return r.submit_one(
            "OP_INSTANCE_CREATE",
            data,
            {"dry_run": r.dry_run},
            rename={"os": "os_type", "name": "instance_name"},
        )


@resource("/2/instances/{name}", "instances_name")
class RInstance:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        inst = s.instances.get(r.items[0])
        if inst is None:
            r.cost = Cost(CallKind.PLAIN)
            raise HttpError(404)
        r.cost = _runtime_cost(r.sim, [s.node_by_uuid(inst.pnode)], 1, bulk=False)
        return _instance_dict(r.sim.ctx(), inst)

    @staticmethod
    async def DELETE(r: Req) -> Any:
        static = {"instance_name": r.items[0], "ignore_failures": False, "dry_run": r.dry_run}
        return r.submit_one("OP_INSTANCE_REMOVE", r.body, static)


@resource("/2/instances/{name}/info", "instances_name_info")
class RInstanceInfo:
    @staticmethod
    async def GET(r: Req) -> Any:
        static = {"instances": [r.items[0]], "static": bool(r.int_arg("static"))}
        return r.submit_one("OP_INSTANCE_QUERY_DATA", {}, static)


def _instance_op(
    template: str,
    name: str,
    method: str,
    op_id: str,
    static_fn: Any,
    use_body: bool = True,
    rename: dict[str, str] | None = None,
) -> None:
    async def handler(r: Req) -> Any:
        body = r.body if use_body else {}
        return r.submit_one(op_id, body, static_fn(r), rename)

    resource(template, name)(type(name, (), {method: staticmethod(handler)}))


_instance_op(
    "/2/instances/{name}/startup",
    "instances_name_startup",
    "PUT",
    "OP_INSTANCE_STARTUP",
    lambda r: {
        "instance_name": r.items[0],
        "force": r.force,
        "dry_run": r.dry_run,
        "no_remember": bool(r.int_arg("no_remember")),
    },
    use_body=False,
)
_instance_op(
    "/2/instances/{name}/shutdown",
    "instances_name_shutdown",
    "PUT",
    "OP_INSTANCE_SHUTDOWN",
    lambda r: {
        "instance_name": r.items[0],
        "no_remember": bool(r.int_arg("no_remember")),
        "dry_run": r.dry_run,
    },
)
_instance_op(
    "/2/instances/{name}/reboot",
    "instances_name_reboot",
    "POST",
    "OP_INSTANCE_REBOOT",
    lambda r: {
        "instance_name": r.items[0],
        "reboot_type": r.str_arg("type", "hard"),
        "ignore_secondaries": bool(r.int_arg("ignore_secondaries")),
        "dry_run": r.dry_run,
    },
)
_instance_op(
    "/2/instances/{name}/activate-disks",
    "instances_name_activate_disks",
    "PUT",
    "OP_INSTANCE_ACTIVATE_DISKS",
    lambda r: {"instance_name": r.items[0], "ignore_size": bool(r.int_arg("ignore_size"))},
    use_body=False,
)
_instance_op(
    "/2/instances/{name}/deactivate-disks",
    "instances_name_deactivate_disks",
    "PUT",
    "OP_INSTANCE_DEACTIVATE_DISKS",
    lambda r: {"instance_name": r.items[0], "force": r.force},
    use_body=False,
)
_instance_op(
    "/2/instances/{name}/recreate-disks",
    "instances_name_recreate_disks",
    "POST",
    "OP_INSTANCE_RECREATE_DISKS",
    lambda r: {"instance_name": r.items[0]},
)
_instance_op(
    "/2/instances/{name}/migrate",
    "instances_name_migrate",
    "PUT",
    "OP_INSTANCE_MIGRATE",
    lambda r: {"instance_name": r.items[0]},
)
_instance_op(
    "/2/instances/{name}/failover",
    "instances_name_failover",
    "PUT",
    "OP_INSTANCE_FAILOVER",
    lambda r: {"instance_name": r.items[0]},
)
_instance_op(
    "/2/instances/{name}/rename",
    "instances_name_rename",
    "PUT",
    "OP_INSTANCE_RENAME",
    lambda r: {"instance_name": r.items[0]},
)
_instance_op(
    "/2/instances/{name}/modify",
    "instances_name_modify",
    "PUT",
    "OP_INSTANCE_SET_PARAMS",
    lambda r: {"instance_name": r.items[0]},
    rename={"custom_beparams": "beparams", "custom_hvparams": "hvparams"},
)
_tags_resource("/2/instances/{name}/tags", "instances_name_tags", "instance")


@resource("/2/instances/{name}/reinstall", "instances_name_reinstall")
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
        op_list = [
            ops.build_op("OP_INSTANCE_SHUTDOWN", {"instance_name": name}, []),
            ops.build_op(
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
                ops.build_op("OP_INSTANCE_STARTUP", {"instance_name": name, "force": False}, [])
            )
        return r.submit(op_list)


@resource("/2/instances/{name}/replace-disks", "instances_name_replace_disks")
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
        return r.submit_one("OP_INSTANCE_REPLACE_DISKS", data, {"instance_name": r.items[0]})


@resource("/2/instances/{name}/disk/{disk}/grow", "instances_name_disk_grow")
class RInstanceGrow:
    @staticmethod
    async def POST(r: Req) -> Any:
        static = {"instance_name": r.items[0], "disk": int(r.items[1])}
        return r.submit_one("OP_INSTANCE_GROW_DISK", r.body, static)


@resource(
    "/2/instances/{name}/console", "instances_name_console", get_access=frozenset({READ, WRITE})
)
class RInstanceConsole:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        inst = s.instances.get(r.items[0])
        if inst is None:
            # rlib2 indexes an empty query result
            raise HttpError(500, "list index out of range")
        r.cost = _runtime_cost(r.sim, [s.node_by_uuid(inst.pnode)], 1, bulk=False)
        c = r.sim.ctx()
        defs = query.FIELDS["instance"]
        status, oper = defs["oper_state"].getter(c, inst)
        if status != query.RS_NORMAL or not oper:
            raise HttpError(503, "Instance console unavailable")
        return query.instance_console(s, inst)


# ---- nodes -----------------------------------------------------------------


def _node_or_404(r: Req) -> st.Node:
    node = r.sim.state.nodes.get(r.items[0])
    if node is None:
        raise HttpError(404)
    return node


@resource("/2/nodes", "nodes")
class RNodes:
    @staticmethod
    async def GET(r: Req) -> Any:
        s = r.sim.state
        nodes = s.sorted_nodes()
        if r.bulk:
            r.cost = _runtime_cost(r.sim, nodes, 0, bulk=False)
            return query.classic_rows(r.sim.ctx(), "node", query.N_FIELDS, nodes)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(nodes))
        return uri_list([n.name for n in nodes], "/2/nodes/%s", "id")


@resource("/2/nodes/{name}", "nodes_name")
class RNode:
    @staticmethod
    async def GET(r: Req) -> Any:
        node = _node_or_404(r)
        r.cost = _runtime_cost(r.sim, [node], 0, bulk=False)
        row = query.classic_rows(r.sim.ctx(), "node", query.N_FIELDS, [node])[0]
        row["secondary_ip"] = row["sip"]  # rlib2 GET_ALIASES
        return row


@resource("/2/nodes/{name}/role", "nodes_name_role")
class RNodeRole:
    @staticmethod
    async def GET(r: Req) -> Any:
        node = r.sim.state.nodes.get(r.items[0])
        if node is None:
            raise HttpError(500, str((f"Node '{r.items[0]}' not known", "unknown_entity")))
        return st.ROLE_NAMES[r.sim.state.node_role(node)]

    @staticmethod
    async def PUT(r: Req) -> Any:
        check_type(r.body, str, "Body contents")
        role = r.body
        candidate: bool | None
        offline: bool | None
        drained: bool | None
        if role == "regular":
            candidate = offline = drained = False
        elif role == "master-candidate":
            candidate, offline, drained = True, None, None
        elif role == "drained":
            candidate, offline, drained = None, None, True
        elif role == "offline":
            candidate, offline, drained = None, True, None
        else:
            raise HttpError(400, f"Can't set '{role}' role")
        static = {
            "node_name": r.items[0],
            "master_candidate": candidate,
            "offline": offline,
            "drained": drained,
            "force": r.force,
            "auto_promote": bool(r.int_arg("auto-promote")),
        }
        return r.submit_one("OP_NODE_SET_PARAMS", {}, static)


@resource("/2/nodes/{name}/evacuate", "nodes_name_evacuate")
class RNodeEvacuate:
    @staticmethod
    async def POST(r: Req) -> Any:
        static = {"node_name": r.items[0], "dry_run": r.dry_run}
        return r.submit_one("OP_NODE_EVACUATE", r.body, static)


@resource("/2/nodes/{name}/migrate", "nodes_name_migrate")
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
        return r.submit_one("OP_NODE_MIGRATE", data, {"node_name": r.items[0]})


@resource("/2/nodes/{name}/modify", "nodes_name_modify")
class RNodeModify:
    @staticmethod
    async def POST(r: Req) -> Any:
        return r.submit_one("OP_NODE_SET_PARAMS", r.body, {"node_name": r.items[0]})


@resource("/2/nodes/{name}/powercycle", "nodes_name_powercycle")
class RNodePowercycle:
    @staticmethod
    async def POST(r: Req) -> Any:
        static = {"node_name": r.items[0], "force": r.force}
        return r.submit_one("OP_NODE_POWERCYCLE", r.body, static)


_tags_resource("/2/nodes/{name}/tags", "nodes_name_tags", "node")


# ---- groups ----------------------------------------------------------------


@resource("/2/groups", "groups")
class RGroups:
    @staticmethod
    async def GET(r: Req) -> Any:
        groups = r.sim.state.sorted_groups()
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(groups))
        if r.bulk:
            return query.classic_rows(r.sim.ctx(), "group", query.G_FIELDS, groups)
        return uri_list([g.name for g in groups], "/2/groups/%s", "name")

    @staticmethod
    async def POST(r: Req) -> Any:
        return r.submit_one(
            "OP_GROUP_ADD", r.body, {"dry_run": r.dry_run}, rename={"name": "group_name"}
        )


@resource("/2/groups/{name}", "groups_name")
class RGroup:
    @staticmethod
    async def GET(r: Req) -> Any:
        group = r.sim.state.groups.get(r.items[0])
        if group is None:
            raise HttpError(404)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=1)
        return query.classic_rows(r.sim.ctx(), "group", query.G_FIELDS, [group])[0]

    @staticmethod
    async def DELETE(r: Req) -> Any:
        static = {"group_name": r.items[0], "dry_run": r.dry_run}
        return r.submit_one("OP_GROUP_REMOVE", {}, static)


@resource("/2/groups/{name}/modify", "groups_name_modify")
class RGroupModify:
    @staticmethod
    async def PUT(r: Req) -> Any:
        rename = {
            "custom_ndparams": "ndparams",
            "custom_ipolicy": "ipolicy",
            "custom_diskparams": "diskparams",
        }
        return r.submit_one("OP_GROUP_SET_PARAMS", r.body, {"group_name": r.items[0]}, rename)


@resource("/2/groups/{name}/rename", "groups_name_rename")
class RGroupRename:
    @staticmethod
    async def PUT(r: Req) -> Any:
        static = {"group_name": r.items[0], "dry_run": r.dry_run}
        return r.submit_one("OP_GROUP_RENAME", r.body, static)


@resource("/2/groups/{name}/assign-nodes", "groups_name_assign_nodes")
class RGroupAssign:
    @staticmethod
    async def PUT(r: Req) -> Any:
        static = {"group_name": r.items[0], "dry_run": r.dry_run, "force": r.force}
        return r.submit_one("OP_GROUP_ASSIGN_NODES", r.body, static)


_tags_resource("/2/groups/{name}/tags", "groups_name_tags", "nodegroup")


# ---- networks --------------------------------------------------------------


@resource("/2/networks", "networks")
class RNetworks:
    @staticmethod
    async def GET(r: Req) -> Any:
        nets = r.sim.state.sorted_networks()
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(nets))
        if r.bulk:
            return query.classic_rows(r.sim.ctx(), "network", query.NET_FIELDS, nets)
        return uri_list([n.name for n in nets], "/2/networks/%s", "name")

    @staticmethod
    async def POST(r: Req) -> Any:
        return r.submit_one(
            "OP_NETWORK_ADD", r.body, {"dry_run": r.dry_run}, rename={"name": "network_name"}
        )


@resource("/2/networks/{name}", "networks_name")
class RNetwork:
    @staticmethod
    async def GET(r: Req) -> Any:
        net = r.sim.state.networks.get(r.items[0])
        if net is None:
            raise HttpError(404)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=1)
        return query.classic_rows(r.sim.ctx(), "network", query.NET_FIELDS, [net])[0]

    @staticmethod
    async def DELETE(r: Req) -> Any:
        static = {"network_name": r.items[0], "dry_run": r.dry_run}
        return r.submit_one("OP_NETWORK_REMOVE", r.body, static)


def _network_op(suffix: str, name: str, op_id: str, dry: bool = True) -> None:
    async def put(r: Req) -> Any:
        static: dict[str, Any] = {"network_name": r.items[0]}
        if dry:
            static["dry_run"] = r.dry_run
        return r.submit_one(op_id, r.body, static)

    resource(f"/2/networks/{{name}}/{suffix}", name)(type(name, (), {"PUT": staticmethod(put)}))


_network_op("connect", "networks_name_connect", "OP_NETWORK_CONNECT")
_network_op("disconnect", "networks_name_disconnect", "OP_NETWORK_DISCONNECT")
_network_op("modify", "networks_name_modify", "OP_NETWORK_SET_PARAMS", dry=False)
_network_op("rename", "networks_name_rename", "OP_NETWORK_RENAME")
_tags_resource("/2/networks/{name}/tags", "networks_name_tags", "network")


# ---- jobs ------------------------------------------------------------------


def job_info(sim: Simulator, job: Job | None, fields: list[str]) -> list[Any]:
    if job is None:
        return [None for _ in fields]
    c = sim.ctx()
    defs = query.resolve("job", fields)
    return [
        fd.getter(c, job)[1] if fd.getter(c, job)[0] == query.RS_NORMAL else None for fd in defs
    ]


@resource("/2/jobs", "jobs")
class RJobs:
    @staticmethod
    async def GET(r: Req) -> Any:
        jobs = r.sim.queue.live_jobs()
        if r.bulk:
            return [
                dict(zip(query.J_FIELDS_BULK, job_info(r.sim, j, query.J_FIELDS_BULK), strict=True))
                for j in jobs
            ]
        return uri_list([j.id for j in jobs], "/2/jobs/%s", "id")


@resource("/2/jobs/{id}", "jobs_id")
class RJob:
    @staticmethod
    async def GET(r: Req) -> Any:
        r.sim.queue.archive_old()
        job_id = int(r.items[0])
        job = r.sim.queue.jobs.get(job_id)
        # luxid answers an unknown id with a row of nulls (but the id), not an error
        row = dict(zip(query.J_FIELDS, job_info(r.sim, job, query.J_FIELDS), strict=True))
        row["id"] = job_id
        return row

    @staticmethod
    async def DELETE(r: Req) -> Any:
        return r.sim.queue.cancel(int(r.items[0]))


@resource("/2/jobs/{id}/wait", "jobs_id_wait", get_access=frozenset({WRITE}))
class RJobWait:
    @staticmethod
    async def GET(r: Req) -> Any:
        body = r.body
        if body is None:
            # rlib2 indexes the missing body: a TypeError, hence a 500
            raise HttpError(500, "'NoneType' object is not subscriptable")
        if not isinstance(body, dict):
            raise HttpError(500, "list indices must be integers or slices, not str")
        if "fields" not in body:
            raise HttpError(400, "Required parameter 'fields' is missing")
        fields = body["fields"]
        prev_info = body.get("previous_job_info")
        prev_serial = body.get("previous_log_serial")
        if not isinstance(fields, list):
            raise HttpError(400, "The 'fields' parameter should be a list")
        if not (prev_info is None or isinstance(prev_info, list)):
            raise HttpError(400, "The 'previous_job_info' parameter should be a list")
        if not (
            prev_serial is None
            or (isinstance(prev_serial, int) and not isinstance(prev_serial, bool))
        ):
            raise HttpError(400, "The 'previous_log_serial' parameter should be a number")
        job_id = int(r.items[0])
        job = r.sim.queue.jobs.get(job_id)
        if job is None or job.archived:
            raise HttpError(500, "Can't load job file")
        result = await r.sim.queue.wait_for_change(
            job_id, fields, prev_info, prev_serial, lambda j, f: job_info(r.sim, j, f)
        )
        if result is None:
            raise HttpError(404)
        return result


# ---- query -----------------------------------------------------------------


def _query_cost(
    sim: Simulator, resource_name: str, names: list[str], qfilter: Any, rows: int
) -> Cost:
    filter_fields = _filter_fields(qfilter)
    if query.is_runtime(resource_name, [*names, *filter_fields]):
        s = sim.state
        return _runtime_cost(sim, list(s.nodes.values()), len(s.instances), bulk=False)
    return Cost(CallKind.CONFIG_QUERY, rows=rows)


def _filter_fields(flt: Any) -> list[str]:
    if not isinstance(flt, list) or not flt:
        return []
    op = flt[0]
    if op in ("&", "|"):
        return [f for sub in flt[1:] for f in _filter_fields(sub)]
    if op == "!":
        return _filter_fields(flt[1]) if len(flt) > 1 else []
    return [flt[1]] if len(flt) > 1 and isinstance(flt[1], str) else []


def _run_query(r: Req, fields: list[str], qfilter: Any) -> Any:
    res = r.items[0]
    try:
        result = query.run_query(r.sim.ctx(), res, fields, qfilter)
    except query.QueryError as err:
        raise HttpError(500, err.rapi_message()) from None
    r.cost = _query_cost(r.sim, res, fields, qfilter, len(result["data"]))
    return result


def _split_fields(r: Req) -> list[str]:
    raw = r.args.get("fields")
    if not raw:
        raise HttpError(400, "Missing 'fields' query argument")
    return [f.strip() for f in raw[0].split(",")]


@resource("/2/query/{name}", "query", get_access=frozenset({READ, WRITE}))
class RQuery:
    ACCESS = {"PUT": frozenset({READ, WRITE})}

    @staticmethod
    async def GET(r: Req) -> Any:
        return _run_query(r, _split_fields(r), None)

    @staticmethod
    async def PUT(r: Req) -> Any:
        body = check_type(r.body, dict, "Body contents")
        fields = body["fields"] if "fields" in body else _split_fields(r)
        qfilter = body.get("qfilter")
        if qfilter is None:
            qfilter = body.get("filter")
        return _run_query(r, fields, qfilter)


@resource("/2/query/{name}/fields", "query_fields")
class RQueryFields:
    @staticmethod
    async def GET(r: Req) -> Any:
        raw = r.args.get("fields")
        names = [f.strip() for f in raw[0].split(",")] if raw else None
        try:
            return query.query_fields(r.items[0], names)
        except query.QueryError as err:
            raise HttpError(500, err.rapi_message()) from None


# ---- the RAPI endpoint -----------------------------------------------------


def _authenticate(sim: Simulator, request: Request, res: Resource, method: str) -> None:
    """Basic auth as with ``--require-authentication``: 401 unless a valid
    user, 403 unless the user has the rights the resource needs."""
    unauthorized = HttpError(401, headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
    header = request.headers.get("authorization")
    if not header:
        raise unauthorized
    parts = header.strip().split(None, 2)
    if parts[0].lower() != "basic":
        raise unauthorized
    if len(parts) < 2:
        raise HttpError(400, "Basic authentication requires credentials")
    try:
        creds = base64.b64decode(parts[1].encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError):
        raise unauthorized from None
    user, sep, password = creds.partition(":")
    entry = sim.users.get(user)
    if not sep or entry is None or entry[0] != password:
        raise unauthorized
    needed = res.access.get(method, frozenset())
    rights = set(entry[1])
    if WRITE in rights:
        rights.add(READ)
    if needed and not (rights & needed):
        raise HttpError(403)


async def _handle(sim: Simulator, request: Request, res_found: Any, method: str) -> Any:
    res, items = res_found
    handler = res.methods.get(method)
    if handler is None:
        raise HttpError(501, f"Method {method} is unsupported for path {request.url.path}")
    _authenticate(sim, request, res, method)
    raw = await request.body()
    body: Any = None
    if raw:
        ctype = request.headers.get("content-type", "application/octet-stream")
        if ctype.lower() != "application/json":
            raise HttpError(415)
        try:
            body = json.loads(raw)
        except ValueError:
            raise HttpError(400, "Unable to parse JSON data") from None
    forced = sim.faults.take_forced_status()
    if forced is not None:
        raise HttpError(forced)
    if res.needs_master and sim.faults.master_unreachable:
        raise HttpError(502, "Can't connect to master daemon: Connection refused")
    args = urllib.parse.parse_qs(request.url.query)
    req = Req(sim, method, request.url.path, items, args, body, res.name)
    try:
        value = await res.methods[method](req)
    finally:
        request.state.cost = req.cost
    return value


def make_rapi_endpoint(sim: Simulator) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        method = request.method.upper()
        path = request.url.path
        found = find_resource(path)
        template = found[0].template if found else "<unknown>"
        request.state.cost = Cost()
        await sim.faults.wait_hang()
        if sim.faults.latency:
            await asyncio.sleep(sim.faults.latency)
        status = 200
        headers: dict[str, str] = {}
        try:
            if found is None:
                raise HttpError(404)
            value = await _handle(sim, request, found, method)
            content = dumps(value)
        except HttpError as err:
            status = err.code
            headers = err.headers
            content = error_body(err.code, err.message)
        except Exception as err:  # Ganeti turns any handler failure into a 500
            status = 500
            content = error_body(500, str(err))
        cost = sim.cost_of(request.state.cost) if status not in (401, 404, 501) else 0.0
        if cost > 0:
            await asyncio.sleep(cost)
        sim.stats.record(method, template, status, cost, time.monotonic() - started)
        return Response(content, status_code=status, headers=headers, media_type="application/json")

    return endpoint


# ---- the admin API ---------------------------------------------------------

GNT_COMMANDS: dict[tuple[str, str], tuple[str, str]] = {
    # (client, command) -> (opcode, the parameter naming the object)
    ("gnt-instance", "startup"): ("OP_INSTANCE_STARTUP", "instance_name"),
    ("gnt-instance", "start"): ("OP_INSTANCE_STARTUP", "instance_name"),
    ("gnt-instance", "shutdown"): ("OP_INSTANCE_SHUTDOWN", "instance_name"),
    ("gnt-instance", "stop"): ("OP_INSTANCE_SHUTDOWN", "instance_name"),
    ("gnt-instance", "reboot"): ("OP_INSTANCE_REBOOT", "instance_name"),
    ("gnt-instance", "remove"): ("OP_INSTANCE_REMOVE", "instance_name"),
    ("gnt-instance", "migrate"): ("OP_INSTANCE_MIGRATE", "instance_name"),
    ("gnt-instance", "failover"): ("OP_INSTANCE_FAILOVER", "instance_name"),
    ("gnt-instance", "rename"): ("OP_INSTANCE_RENAME", "instance_name"),
    ("gnt-instance", "modify"): ("OP_INSTANCE_SET_PARAMS", "instance_name"),
    ("gnt-instance", "reinstall"): ("OP_INSTANCE_REINSTALL", "instance_name"),
    ("gnt-instance", "add"): ("OP_INSTANCE_CREATE", "instance_name"),
    ("gnt-instance", "grow-disk"): ("OP_INSTANCE_GROW_DISK", "instance_name"),
    ("gnt-instance", "activate-disks"): ("OP_INSTANCE_ACTIVATE_DISKS", "instance_name"),
    ("gnt-instance", "deactivate-disks"): ("OP_INSTANCE_DEACTIVATE_DISKS", "instance_name"),
    ("gnt-instance", "replace-disks"): ("OP_INSTANCE_REPLACE_DISKS", "instance_name"),
    ("gnt-instance", "add-tags"): ("OP_TAGS_SET", "name"),
    ("gnt-instance", "remove-tags"): ("OP_TAGS_DEL", "name"),
    ("gnt-node", "modify"): ("OP_NODE_SET_PARAMS", "node_name"),
    ("gnt-node", "migrate"): ("OP_NODE_MIGRATE", "node_name"),
    ("gnt-node", "evacuate"): ("OP_NODE_EVACUATE", "node_name"),
    ("gnt-node", "powercycle"): ("OP_NODE_POWERCYCLE", "node_name"),
    ("gnt-group", "add"): ("OP_GROUP_ADD", "group_name"),
    ("gnt-group", "remove"): ("OP_GROUP_REMOVE", "group_name"),
    ("gnt-group", "modify"): ("OP_GROUP_SET_PARAMS", "group_name"),
    ("gnt-group", "rename"): ("OP_GROUP_RENAME", "group_name"),
    ("gnt-group", "assign-nodes"): ("OP_GROUP_ASSIGN_NODES", "group_name"),
    ("gnt-network", "add"): ("OP_NETWORK_ADD", "network_name"),
    ("gnt-network", "remove"): ("OP_NETWORK_REMOVE", "network_name"),
    ("gnt-network", "modify"): ("OP_NETWORK_SET_PARAMS", "network_name"),
    ("gnt-network", "connect"): ("OP_NETWORK_CONNECT", "network_name"),
    ("gnt-network", "disconnect"): ("OP_NETWORK_DISCONNECT", "network_name"),
    ("gnt-cluster", "redist-conf"): ("OP_CLUSTER_REDIST_CONF", ""),
    ("gnt-cluster", "modify"): ("OP_CLUSTER_SET_PARAMS", ""),
    ("watcher", "restart"): ("OP_INSTANCE_STARTUP", "instance_name"),
}


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


def _admin_error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def admin_routes(sim: Simulator) -> list[Route]:
    """``/__sim__/...``: JSON, no RAPI auth (optionally ``X-Sim-Token``)."""

    def guard(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            token = sim.config.admin_token
            if token is not None and request.headers.get("x-sim-token") != token:
                return _admin_error(401, "X-Sim-Token required")
            try:
                return await fn(request)
            except (ValueError, TypeError, KeyError) as err:
                return _admin_error(400, f"{type(err).__name__}: {err}")

        return wrapped

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    async def index(request: Request) -> Response:
        s = sim.state
        return _json(
            {
                "cluster": s.info["name"],
                "nodes": len(s.nodes),
                "instances": len(s.instances),
                "groups": len(s.groups),
                "networks": len(s.networks),
                "jobs": len(sim.queue.jobs),
                "users": {u: sorted(v[1]) for u, v in sim.users.items()},
                "config": _config_dict(sim.config),
                "faults": sim.faults.to_dict(),
            }
        )

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            sim.faults.clear()
        elif request.method in ("PUT", "POST"):
            sim.faults.update(await body_of(request))
        return _json(sim.faults.to_dict())

    async def job_failures(request: Request) -> Response:
        if request.method == "DELETE":
            sim.faults.job_failures.clear()
        elif request.method == "POST":
            body = await body_of(request)
            failure = JobFailure(
                op_id=body["opcode"],
                error_type=body.get("error_type", "OpExecError"),
                message=body.get("message", "Injected failure"),
                code=body.get("code"),
                remaining=body.get("count", 1),
            )
            sim.faults.job_failures.append(failure)
        return _json([f.to_dict() for f in sim.faults.job_failures])

    async def stats(request: Request) -> Response:
        data = sim.stats.to_dict()
        if request.method in ("DELETE", "POST"):
            sim.stats.reset()
        return _json(data)

    async def node(request: Request) -> Response:
        name = request.path_params["name"]
        target = sim.state.nodes.get(name)
        if target is None:
            return _admin_error(404, f"no node {name}")
        if request.method == "PUT":
            body = await body_of(request)
            if "offline" in body:
                target.offline = bool(body["offline"])
                if target.offline:
                    target.master_candidate = False
                sim.state.touch(target)
            if "unreachable" in body:
                target.unreachable = bool(body["unreachable"])
        return _json(
            {"name": target.name, "offline": target.offline, "unreachable": target.unreachable}
        )

    async def instance_runtime(request: Request) -> Response:
        name = request.path_params["name"]
        inst = sim.state.instances.get(name)
        if inst is None:
            return _admin_error(404, f"no instance {name}")
        if request.method == "PUT":
            body = await body_of(request)
            if "running" in body:
                if body["running"]:
                    node_name = body.get("node")
                    where = sim.state.nodes[node_name].uuid if node_name else inst.pnode
                    inst.running_on = where
                else:
                    inst.running_on = None
                sim.state.touch(inst, config=False)
        return _json(_runtime_view(sim, inst))

    async def crash(request: Request) -> Response:
        name = request.path_params["name"]
        inst = sim.state.instances.get(name)
        if inst is None:
            return _admin_error(404, f"no instance {name}")
        inst.running_on = None
        sim.state.touch(inst, config=False)
        return _json(_runtime_view(sim, inst))

    async def exec_command(request: Request) -> Response:
        body = await body_of(request)
        client = body.get("client", "gnt-instance")
        command = body["command"]
        key = (client, command)
        if key not in GNT_COMMANDS:
            return _admin_error(400, f"unknown command {client} {command}")
        op_id, name_param = GNT_COMMANDS[key]
        params = dict(body.get("params") or {})
        if name_param and body.get("name") is not None:
            params[name_param] = body["name"]
        if op_id in ("OP_TAGS_SET", "OP_TAGS_DEL"):
            params.setdefault("kind", "instance")
        now_ns = time.time_ns()
        trail: list[list[Any]] = []
        if body.get("reason"):
            trail.append(["gnt:user", body["reason"], now_ns])
        source = "gnt:watcher" if client == "watcher" else f"gnt:client:{client}"
        trail.append([source, "" if client == "watcher" else command, now_ns])
        try:
            op = ops.build_op(op_id, params, trail)
        except ops.InvalidParams as err:
            return _admin_error(400, str(err))
        return _json({"job_id": sim.queue.submit([op])})

    async def config(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            body = await body_of(request)
            cfg = sim.config
            for key, value in body.items():
                if key in ("time_scale", "wait_timeout", "archive_age", "queued_seconds"):
                    setattr(cfg, key, float(value))
                elif key == "max_running_jobs":
                    cfg.max_running_jobs = int(value)
                elif key == "op_seconds":
                    cfg.op_seconds.update({k: float(v) for k, v in value.items()})
                else:
                    raise ValueError(f"unknown setting '{key}'")
        return _json(_config_dict(sim.config))

    async def queue(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            body = await body_of(request)
            if "hold" in body:
                sim.queue.set_hold(bool(body["hold"]))
            if body.get("archive"):
                for job in sim.queue.jobs.values():
                    if job.finalized:
                        job.archived = True
        return _json(
            {
                "hold": sim.queue.hold,
                "jobs": len(sim.queue.jobs),
                "running": sim.queue.busy_jobs(),
                "archived": sum(1 for j in sim.queue.jobs.values() if j.archived),
            }
        )

    any_method = ["GET", "PUT", "POST", "DELETE"]
    return [
        Route(f"{ADMIN_PREFIX}", guard(index), methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/", guard(index), methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/faults", guard(faults), methods=any_method),
        Route(f"{ADMIN_PREFIX}/job-failures", guard(job_failures), methods=any_method),
        Route(f"{ADMIN_PREFIX}/stats", guard(stats), methods=any_method),
        Route(f"{ADMIN_PREFIX}/stats/reset", guard(stats), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/nodes/{{name}}", guard(node), methods=["GET", "PUT"]),
        Route(
            f"{ADMIN_PREFIX}/instances/{{name}}/runtime",
            guard(instance_runtime),
            methods=["GET", "PUT"],
        ),
        Route(f"{ADMIN_PREFIX}/instances/{{name}}/crash", guard(crash), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/exec", guard(exec_command), methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/config", guard(config), methods=["GET", "PUT", "POST"]),
        Route(f"{ADMIN_PREFIX}/queue", guard(queue), methods=["GET", "PUT", "POST"]),
    ]


def _runtime_view(sim: Simulator, inst: st.Instance) -> dict[str, Any]:
    where = None if inst.running_on is None else sim.state.node_by_uuid(inst.running_on).name
    return {
        "name": inst.name,
        "admin_state": inst.admin_state,
        "running_on": where,
        "status": query.instance_status(sim.state, inst),
    }


def _config_dict(cfg: SimConfig) -> dict[str, Any]:
    return {
        "time_scale": cfg.time_scale,
        "wait_timeout": cfg.wait_timeout,
        "archive_age": cfg.archive_age,
        "queued_seconds": cfg.queued_seconds,
        "max_running_jobs": cfg.max_running_jobs,
        "op_seconds": dict(cfg.op_seconds),
    }


def build_app(sim: Simulator) -> Starlette:
    """The ASGI app for one simulated cluster."""
    rapi = make_rapi_endpoint(sim)
    methods = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    routes = [*admin_routes(sim), Route("/{path:path}", rapi, methods=methods)]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app
