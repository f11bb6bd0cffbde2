"""The RAPI's HTTP plumbing: errors, the request handlers see, the resource
table, authentication, and the one endpoint that serves every RAPI path.

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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gwm.simulator.app import READ, WRITE, Simulator
from gwm.simulator.cost import CallKind, Cost
from gwm.simulator.opcodes.registry import InvalidParams
from gwm.simulator.state import Node

REALM = "Ganeti Remote API"
# the rights a resource may require (an empty set: any valid user)
READERS = frozenset({READ, WRITE})
WRITERS = frozenset({WRITE})
T = TypeVar("T")


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


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(value), status_code=status, headers=headers, media_type="application/json"
    )


def check_type(value: Any, exptype: type[T], descr: str) -> T:
    """baserlib's CheckType: a 400 naming the type found and the one expected."""
    if not isinstance(value, exptype):
        raise HttpError(
            400,
            f"{descr}: Type is '{type(value).__name__}', but '{exptype.__name__}' is expected",
        )
    return value


# ---- what a handler gets ---------------------------------------------------


@dataclass
class Req:
    """What a resource handler gets; it sets ``cost`` to what the call costs."""

    sim: Simulator
    items: tuple[str, ...]  # the placeholders of the path, in order
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

    def flag(self, name: str) -> bool:
        return bool(self.int_arg(name))

    @property
    def bulk(self) -> bool:
        return self.flag("bulk")

    @property
    def dry_run(self) -> bool:
        return self.flag("dry-run")

    @property
    def force(self) -> bool:
        return self.flag("force")

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
        params: dict[str, Any] = {}
        if body is not None:
            params = dict(check_type(body, dict, "Body contents"))
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
            return self.sim.opcodes.build(op_id, params, self.reason_trail())
        except InvalidParams as err:
            raise HttpError(400, f"Invalid body parameters: {err}") from None

    def submit(self, op_list: list[dict[str, Any]]) -> int:
        if self.sim.faults.queue_drained:
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


def runtime_cost(nodes: list[Node], instances: int, *, bulk: bool = False) -> Cost:
    """A call that makes luxid ask ``nodes`` (the offline ones are not asked)."""
    asked = [n for n in nodes if not n.offline]
    return Cost(
        CallKind.BULK_INSTANCES if bulk else CallKind.RUNTIME_QUERY,
        nodes=len(asked),
        instances=instances,
        unreachable=sum(1 for n in asked if n.unreachable),
    )


def uri_list(names: list[Any], fmt: str, id_field: str) -> list[dict[str, Any]]:
    return [{id_field: n, "uri": fmt % n} for n in names]


# ---- the resource table ----------------------------------------------------

Handler = Callable[[Req], Awaitable[Any]]
METHODS = ("GET", "PUT", "POST", "DELETE")
PLACEHOLDERS = (("{name}", r"[\w._-]+"), ("{disk}", r"\d+"), ("{id}", r"\d+"))


@dataclass
class Resource:
    pattern: re.Pattern[str]
    template: str
    name: str  # rlib2 class name without R_2_ (for the reason trail)
    methods: dict[str, Handler]
    access: dict[str, frozenset[str]]  # method -> rights, empty: any user
    needs_master: bool = True


class Resources:
    """RAPI resources by path template; tables of several modules join."""

    def __init__(self, *parts: Resources) -> None:
        self.resources: list[Resource] = [res for part in parts for res in part.resources]

    def add(
        self,
        template: str,
        name: str,
        methods: dict[str, Handler],
        *,
        get_access: frozenset[str] = frozenset(),
        access: dict[str, frozenset[str]] | None = None,
        needs_master: bool = True,
    ) -> None:
        """Serve ``template``; writes need the write right, GET ``get_access``
        (empty: any user), ``access`` overrides both per method."""
        regex = re.escape(template)
        for placeholder, rx in PLACEHOLDERS:
            regex = regex.replace(re.escape(placeholder), f"({rx})")
        rights = {m: WRITERS for m in methods}
        rights["GET"] = get_access
        rights.update(access or {})
        pattern = re.compile(f"^{regex}$")
        self.resources.append(Resource(pattern, template, name, methods, rights, needs_master))

    def resource(
        self,
        template: str,
        name: str,
        *,
        get_access: frozenset[str] = frozenset(),
        access: dict[str, frozenset[str]] | None = None,
        needs_master: bool = True,
    ) -> Callable[[type[T]], type[T]]:
        """Serve a path with the GET/PUT/POST/DELETE static methods of a class."""

        def register(cls: type[T]) -> type[T]:
            methods = {m: getattr(cls, m) for m in METHODS if hasattr(cls, m)}
            self.add(
                template,
                name,
                methods,
                get_access=get_access,
                access=access,
                needs_master=needs_master,
            )
            return cls

        return register

    def opcode(
        self,
        method: str,
        template: str,
        op_id: str,
        static: Callable[[Req], dict[str, Any]],
        *,
        use_body: bool = True,
        rename: dict[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        """Serve ``method template`` with one opcode: parameters from the path
        and the query (``static``) and, with ``use_body``, from the body. The
        rlib2 name is the template's unless given: ``/2/nodes/{name}/modify``
        is ``nodes_name_modify``."""

        async def handler(r: Req) -> Any:
            return r.submit_one(op_id, r.body if use_body else {}, static(r), rename)

        if name is None:
            path = re.sub(r"[{}]", "", template.removeprefix("/2/"))
            name = path.replace("/", "_").replace("-", "_")
        self.add(template, name, {method: handler})

    def find(self, path: str) -> tuple[Resource, tuple[str, ...]] | None:
        for res in self.resources:
            m = res.pattern.match(path)
            if m:
                return res, m.groups()
        return None


# ---- the endpoint ----------------------------------------------------------


def authenticate(sim: Simulator, request: Request, res: Resource, method: str) -> None:
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


async def json_body(request: Request) -> Any:
    """The request's JSON body (None when empty): 415 unless JSON, 400 if bad."""
    raw = await request.body()
    if not raw:
        return None
    ctype = request.headers.get("content-type", "application/octet-stream")
    if ctype.lower() != "application/json":
        raise HttpError(415)
    try:
        return json.loads(raw)
    except ValueError:
        raise HttpError(400, "Unable to parse JSON data") from None


def rapi_endpoint(sim: Simulator, table: Resources) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for every RAPI path of ``sim``."""

    async def answer(request: Request, found: tuple[Resource, tuple[str, ...]]) -> Any:
        res, items = found
        method = request.method.upper()
        handler = res.methods.get(method)
        if handler is None:
            raise HttpError(501, f"Method {method} is unsupported for path {request.url.path}")
        authenticate(sim, request, res, method)
        body = await json_body(request)
        forced = sim.faults.take_forced_status()
        if forced is not None:
            raise HttpError(forced)
        if res.needs_master and sim.faults.master_unreachable:
            raise HttpError(502, "Can't connect to master daemon: Connection refused")
        args = urllib.parse.parse_qs(request.url.query)
        req = Req(sim, items, args, body, res.name)
        try:
            return await handler(req)
        finally:
            request.state.cost = req.cost

    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        found = table.find(request.url.path)
        request.state.cost = Cost()
        await sim.faults.wait_hang()
        if sim.faults.latency:
            await asyncio.sleep(sim.faults.latency)
        status = 200
        headers: dict[str, str] = {}
        try:
            if found is None:
                raise HttpError(404)
            content = dumps(await answer(request, found))
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
        template = found[0].template if found else "<unknown>"
        sim.stats.record(request.method.upper(), template, status, cost, time.monotonic() - started)
        return Response(content, status_code=status, headers=headers, media_type="application/json")

    return endpoint
