"""Every write request on /api/v1 leaves an audit row: who, when, from where, with which
token, what on which resource, with which parameters (secrets removed), and how it ended.

gwm.api installs :func:`audit_writes` as a view decorator (``mode="view"``) after
gwm.query_guard's, so it is the outermost wrapper of ninja's ``Operation.run``:
authentication, the query guard, body parsing, the handler and ninja's exception
handlers all run inside it. ``run`` turns every exception into a response, so what
this decorator judges is the response the client gets, never the exception.

A write that ends well (below 400) keeps its row in its own transaction: the view runs
inside ``transaction.atomic()`` and the row is written before the block ends, so the
write and its row are kept together or not at all (services' own blocks nest as
savepoints; their ``on_commit`` doorbells ring after the outer commit). A write that
ends otherwise is rolled back whole, then its row is written on its own, with the
status the client gets. Three kinds of write are handled differently:

- the login (``POST /auth/tokens`` with ``username``/``password``) runs untouched: its
  service audits both outcomes and must keep its failed-login row (the throttle's
  count) when it refuses, which a rolled-back block would undo;
- writes whose services audit their own success (tokens, users, groups, roles, role
  bindings, quotas) get a row here only when they fail (often before the service ran);
- dry runs keep nothing, so they run outside a transaction (which would otherwise hold
  the instance's row lock while Ganeti answers) and get their row afterwards;
- the writes that ask Ganeti before they write (registering a cluster, changing its
  connection: the registry probes RAPI first) run outside a transaction too, and get
  their row right after: on SQLite a transaction holds the one write lock from its
  start, so every other writer would wait while Ganeti answers (up to
  GWM_HTTP_TIMEOUT_SECONDS). Their services write the success row themselves, inside
  the block that makes the change, after the probe (gwm.kit.audit_hook); a failure
  gets its row here.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.db import OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from ninja.operation import Operation

from gwm.accounts.auth import client_address
from gwm.accounts.grants import token_of
from gwm.accounts.models import ApiToken
from gwm.accounts.services.audit import audit_record
from gwm.kit.audit_hook import audit_pending
from gwm.kit.urls import COLLECTIONS
from gwm.operations.actions import ACTIONS
from gwm.operations.models import Job

log = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that ask a question and change nothing.
QUESTIONS = frozenset({"/authz/check"})
# Writes that call Ganeti before they write anything (see the module's docstring).
PROBING = frozenset({("POST", "/clusters"), ("PATCH", "/clusters/{cluster}")})
# First path segments whose services write the success row themselves.
SELF_AUDITED = frozenset({"users", "groups", "roles", "role-bindings", "quotas"})
TOKENS_PATH = "/auth/tokens"
# What pydantic reads as true in a query parameter.
TRUTHY = frozenset({"1", "true", "t", "yes", "y", "on"})
SUB_COLLECTIONS = frozenset(COLLECTIONS.values())
# The service's own word where the method's would differ ("token.revoke").
VERB_OVERRIDES = {("token", "DELETE"): "revoke"}


@dataclass(frozen=True)
class Shape:
    """What an operation's path pattern says about the writes it takes."""

    kind: str  # resource type: "instance", "cluster", "role_binding"...
    name_param: str | None  # the path parameter naming the resource, if any
    verb: str | None  # fixed by the path ("sync", "cancel", "create"); None: from method/body
    from_body: bool  # the verb is the body's "action" (…/actions)
    self_audited: bool
    login_path: bool
    cached: bool  # one of a cluster's cached objects (instance, node, group, network)


@dataclass
class Fact:
    """One request's audit row, before its outcome is known."""

    action: str
    method: str
    path: str
    address: str | None
    cluster: str = ""
    resource_type: str = ""
    resource_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _singular(collection: str) -> str:
    name = collection.removesuffix("s")
    return name.replace("-", "_")


def _param_name(segment: str) -> str:
    # "{job_id}" or ninja's typed "{int:job_id}"
    return segment[1:-1].rsplit(":", 1)[-1]


def shape_of(path: str) -> Shape:
    """Read ``/clusters/{cluster}/instances/{instance}/actions`` as (instance, instance, body)."""
    parts = [p for p in path.strip("/").split("/") if p]
    kind, name_param = "", None
    tail: list[str] = []
    for part in parts:
        if part.startswith("{"):
            kind = _singular(tail[-1]) if tail else kind
            name_param = _param_name(part)
            tail = []
        else:
            tail.append(part)
    verb: str | None = None
    from_body = False
    if name_param is None:  # a top-level collection: POST /clusters
        kind, verb = _singular(tail[-1]) if tail else "api", "create"
    elif tail == ["actions"]:
        from_body = True
    elif tail and tail[-1] in SUB_COLLECTIONS:  # POST /clusters/{cluster}/instances
        kind, name_param, verb = _singular(tail[-1]), None, "create"
    elif tail:
        verb = tail[-1].replace("-", "_")  # sync, cancel
    normalized = "/" + "/".join(parts)
    return Shape(
        kind=kind,
        name_param=name_param,
        verb=verb,
        from_body=from_body,
        self_audited=bool(parts)
        and (parts[0] in SELF_AUDITED or normalized.startswith(TOKENS_PATH)),
        login_path=normalized == TOKENS_PATH,
        cached=parts[:1] == ["clusters"] and kind in COLLECTIONS,
    )


def _method_verb(kind: str, method: str, cached: bool) -> str:
    if (kind, method) in VERB_OVERRIDES:
        return VERB_OVERRIDES[(kind, method)]
    if method == "DELETE":
        return "delete"
    if method in {"PATCH", "PUT"}:
        # Jobs name a change "modify" (instance.modify); the registry and directory "update"
        # (a user group is a "group" too, but not a node group).
        return "modify" if cached and f"{kind}.modify" in ACTIONS else "update"
    return "create"


def _body(request: HttpRequest) -> Any:
    try:
        raw = request.body
    except RequestDataTooBig:
        return {"_body": "too large to keep"}
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"_body": "not JSON"}


def _query(request: HttpRequest) -> dict[str, Any]:
    return {k: (vs[0] if len(vs) == 1 else vs) for k, vs in request.GET.lists()}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def fact_of(shape: Shape, request: HttpRequest, kw: dict[str, Any], body: Any) -> Fact:
    method = str(request.method or "").upper()
    data = body if isinstance(body, dict) else {}
    if shape.from_body:
        verb = _text(data.get("action")) or "action"
    else:
        verb = shape.verb or _method_verb(shape.kind, method, shape.cached)
    name = str(kw.get(shape.name_param, "")) if shape.name_param else ""
    if not name:  # a create names its resource in the body
        name = _text(data.get("name")) or _text(data.get("username"))
    cluster = _text(kw.get("cluster")) or _text(data.get("cluster"))
    if shape.kind == "cluster":
        cluster = name
    params: dict[str, Any] = dict(data) if isinstance(body, dict) else {}
    if body is not None and not isinstance(body, dict):
        params = {"body": body}
    query = _query(request)
    if query:
        params["_query"] = query  # dry_run and the like: part of what was asked
    return Fact(
        action=f"{shape.kind}.{verb}"[:64],
        method=method[:8],
        path=request.path,
        address=client_address(request),
        cluster=cluster[:63],
        resource_type=shape.kind[:32],
        resource_name=name,
        params=params,
    )


def _job_cluster(fact: Fact) -> None:
    """A job's writes (cancel) name their cluster through the job."""
    name = fact.resource_name
    # A path parameter as given: only a number a job id can be is looked up.
    if fact.resource_type == "job" and name.isdigit() and len(name) < 19 and not fact.cluster:
        found = Job.objects.filter(pk=int(name)).values_list("cluster_name", flat=True).first()
        fact.cluster = (found or "")[:63]


def _caller(request: HttpRequest) -> tuple[User | None, ApiToken | None]:
    auth = getattr(request, "auth", None)
    if isinstance(auth, User):
        return auth, token_of(auth)
    # POST /auth/tokens authenticates a bearer itself; it leaves the user on request.user
    # with its token attached (a session's user, without one, is not this API's caller).
    user = getattr(request, "user", None)
    if isinstance(user, User) and token_of(user) is not None:
        return user, token_of(user)
    return None, None


def _answer(response: HttpResponseBase) -> dict[str, Any]:
    if not isinstance(response, HttpResponse) or "json" not in response.get("Content-Type", ""):
        return {}
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def record(
    fact: Fact, request: HttpRequest, status: int, response: HttpResponseBase | None
) -> None:
    answer = _answer(response) if response is not None else {}
    # A 202 that is a job (a job's body has its status); 202 /sync queues no job.
    job_id = answer.get("id") if status == 202 and "status" in answer else None
    user, token = _caller(request)
    _job_cluster(fact)
    audit_record(
        action=fact.action,
        user=user,
        token=token,
        status=status,
        address=fact.address,
        method=fact.method,
        path=fact.path,
        cluster=fact.cluster,
        resource_type=fact.resource_type,
        resource_name=fact.resource_name,
        params=fact.params,
        detail=_text(answer.get("detail")) if status >= 400 else "",
        job_id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None,
    )


def _operation_of(run: Callable[..., Any]) -> Operation | None:
    """The Operation whose bound ``run`` this is, through other decorators' wraps."""
    seen: Any = run
    while seen is not None:
        owner = getattr(seen, "__self__", None)
        if isinstance(owner, Operation):
            return owner
        seen = getattr(seen, "__wrapped__", None)
    return None


def _is_login(body: Any) -> bool:
    data = body if isinstance(body, dict) else {}
    return data.get("username") is not None or data.get("password") is not None


def _is_dry_run(request: HttpRequest) -> bool:
    return str(request.GET.get("dry_run", "")).lower() in TRUTHY


def _run_audited(
    operation: Operation,
    shape: Shape,
    run: Callable[..., HttpResponseBase],
    request: HttpRequest,
    kw: dict[str, Any],
) -> HttpResponseBase:
    body = _body(request)
    if shape.login_path and _is_login(body):
        return run(request, **kw)
    fact = fact_of(shape, request, kw, body)
    if (fact.method, operation.path) in PROBING:
        return _run_probing(fact, run, request, kw)
    if _is_dry_run(request):
        response = run(request, **kw)
        if response.status_code >= 400 or not shape.self_audited:
            record(fact, request, response.status_code, response)
        return response
    try:
        with transaction.atomic():
            response = run(request, **kw)
            if response.status_code >= 400:
                transaction.set_rollback(True)
            elif not shape.self_audited:
                record(fact, request, response.status_code, response)
    except Exception as exc:
        # Raised past ninja's handlers, or the row itself could not be written: the block
        # rolled back, so the write is gone too. Answer as ninja's handlers would (they
        # re-raise what none of them handles).
        try:
            response = operation.api.on_exception(request, exc)
        except Exception:
            record(fact, request, 500, None)
            raise
    if response.status_code >= 400:
        try:
            record(fact, request, response.status_code, response)
        except OperationalError:
            if response.status_code != 503:
                raise
            # The database is too busy for the row as well: the write changed nothing,
            # and the client was told to try again. Lost, but logged.
            log.warning("audit row of %s %s lost: database busy", fact.method, fact.path)
    return response


def _run_probing(
    fact: Fact, run: Callable[..., HttpResponseBase], request: HttpRequest, kw: dict[str, Any]
) -> HttpResponseBase:
    """A write that asks Ganeti first: outside a transaction; its service writes the
    success row in its own block (a create answers 201, a change 200)."""
    written: list[bool] = []

    def write_success() -> None:
        record(fact, request, 201 if fact.method == "POST" else 200, None)
        written.append(True)

    with audit_pending(write_success):
        response = run(request, **kw)
    if response.status_code >= 400 or not written:
        # A failure, or a success that changed nothing (no block, no row yet).
        record(fact, request, response.status_code, response)
    return response


def audit_writes(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a write operation's ``run`` so it leaves an audit row; reads pass untouched."""
    operation = _operation_of(run)
    if operation is None or set(operation.methods) <= READS or operation.path in QUESTIONS:
        return run
    shape = shape_of(operation.path)

    if inspect.iscoroutinefunction(run):
        # No async write exists; should one come, it is recorded after it ends (an
        # async view cannot share the sync transaction machinery).
        @functools.wraps(run)
        async def arun(request: HttpRequest, **kw: Any) -> HttpResponseBase:
            body = await sync_to_async(_body)(request)
            fact = fact_of(shape, request, kw, body)
            response: HttpResponseBase = await run(request, **kw)
            if response.status_code >= 400 or not shape.self_audited:
                await sync_to_async(record)(fact, request, response.status_code, response)
            return response

        arun.gwm_audited = True  # type: ignore[attr-defined]
        return arun

    @functools.wraps(run)
    def wrapped(request: HttpRequest, **kw: Any) -> HttpResponseBase:
        return _run_audited(operation, shape, run, request, kw)

    wrapped.gwm_audited = True  # type: ignore[attr-defined]
    return wrapped
