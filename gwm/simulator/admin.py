"""The admin API under ``/__sim__``: faults, stats, state changes, commands.

JSON in and out, no RAPI authentication (``X-Sim-Token`` when the simulator
has an admin token). It changes what real Ganeti would have changed by
itself or by hand: nodes going away, instances crashing, commands run on the
master "outside gwm" (``gnt-instance ...``, the watcher). README.md lists
the calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gwm.simulator.app import Simulator
from gwm.simulator.config import SimConfig
from gwm.simulator.derived import instance_status
from gwm.simulator.faults import JobFailure
from gwm.simulator.http import json_response
from gwm.simulator.opcodes.registry import InvalidParams
from gwm.simulator.state import Instance

PREFIX = "/__sim__"
Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

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


def _admin_error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class _Missing(Exception):
    """The object a call names does not exist: 404."""


def _named(table: Mapping[str, T], request: Request, what: str) -> T:
    name = request.path_params["name"]
    found = table.get(name)
    if found is None:
        raise _Missing(f"no {what} {name}")
    return found


def admin_routes(sim: Simulator) -> list[Route]:
    """``/__sim__/...``: JSON, no RAPI auth (optionally ``X-Sim-Token``)."""

    def guard(fn: Endpoint) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            token = sim.config.admin_token
            if token is not None and request.headers.get("x-sim-token") != token:
                return _admin_error(401, "X-Sim-Token required")
            try:
                return await fn(request)
            except _Missing as err:
                return _admin_error(404, str(err))
            except (ValueError, TypeError, KeyError) as err:
                return _admin_error(400, f"{type(err).__name__}: {err}")

        return wrapped

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        return json.loads(raw) if raw else {}

    async def index(request: Request) -> Response:
        s = sim.state
        return json_response(
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
        return json_response(sim.faults.to_dict())

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
        return json_response([f.to_dict() for f in sim.faults.job_failures])

    async def stats(request: Request) -> Response:
        data = sim.stats.to_dict()
        if request.method in ("DELETE", "POST"):
            sim.stats.reset()
        return json_response(data)

    async def node(request: Request) -> Response:
        target = _named(sim.state.nodes, request, "node")
        if request.method == "PUT":
            body = await body_of(request)
            if "offline" in body:
                target.offline = bool(body["offline"])
                if target.offline:
                    target.master_candidate = False
                sim.state.touch(target)
            if "unreachable" in body:
                target.unreachable = bool(body["unreachable"])
        return json_response(
            {"name": target.name, "offline": target.offline, "unreachable": target.unreachable}
        )

    async def instance_runtime(request: Request) -> Response:
        inst = _named(sim.state.instances, request, "instance")
        if request.method == "PUT":
            body = await body_of(request)
            if "running" in body:
                if body["running"]:
                    node_name = body.get("node")
                    where = sim.state.nodes[node_name].uuid if node_name else inst.pnode
                    inst.running_on = where
                else:
                    inst.running_on = None
        return json_response(_runtime_view(sim, inst))

    async def crash(request: Request) -> Response:
        inst = _named(sim.state.instances, request, "instance")
        inst.running_on = None
        return json_response(_runtime_view(sim, inst))

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
            op = sim.opcodes.build(op_id, params, trail)
        except InvalidParams as err:
            return _admin_error(400, str(err))
        return json_response({"job_id": sim.queue.submit([op])})

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
        return json_response(_config_dict(sim.config))

    async def queue(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            body = await body_of(request)
            if "hold" in body:
                sim.queue.set_hold(bool(body["hold"]))
            if body.get("archive"):
                for job in sim.queue.jobs.values():
                    if job.finalized:
                        job.archived = True
        return json_response(
            {
                "hold": sim.queue.hold,
                "jobs": len(sim.queue.jobs),
                "running": sim.queue.busy_jobs(),
                "archived": sum(1 for j in sim.queue.jobs.values() if j.archived),
            }
        )

    any_method = ["GET", "PUT", "POST", "DELETE"]
    reads_and_writes = ["GET", "PUT", "POST"]
    table: list[tuple[str, Endpoint, list[str]]] = [
        ("", index, ["GET"]),
        ("/", index, ["GET"]),
        ("/faults", faults, any_method),
        ("/job-failures", job_failures, any_method),
        ("/stats", stats, any_method),
        ("/stats/reset", stats, ["POST"]),
        ("/nodes/{name}", node, ["GET", "PUT"]),
        ("/instances/{name}/runtime", instance_runtime, ["GET", "PUT"]),
        ("/instances/{name}/crash", crash, ["POST"]),
        ("/exec", exec_command, ["POST"]),
        ("/config", config, reads_and_writes),
        ("/queue", queue, reads_and_writes),
    ]
    return [Route(PREFIX + path, guard(fn), methods=methods) for path, fn, methods in table]


def _runtime_view(sim: Simulator, inst: Instance) -> dict[str, Any]:
    where = None if inst.running_on is None else sim.state.node_by_uuid(inst.running_on).name
    return {
        "name": inst.name,
        "admin_state": inst.admin_state,
        "running_on": where,
        "status": instance_status(sim.state, inst),
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
