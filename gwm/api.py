"""The one NinjaAPI of gwm, mounted at /api/v1: its problem+json error answers, its
root, and each domain's router.

The OpenAPI completion is gwm.openapi; the strict query guard every operation
passes through is gwm.query_guard.
"""

from __future__ import annotations

import logging
import sqlite3
from importlib.metadata import version
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from gwm.accounts.api import router as accounts_router
from gwm.accounts.auth import caller_auth
from gwm.audit_writes import audit_writes
from gwm.clusters.api import router as clusters_router
from gwm.errors import PROBLEM_CONTENT_TYPE, AppError, problem_body
from gwm.events.api import router as events_router
from gwm.openapi import GwmNinjaAPI
from gwm.operations.api import router as jobs_router
from gwm.query_guard import strict_query
from gwm.schemas import ApiRoot, Problem

log = logging.getLogger(__name__)

API_VERSION = "v1"
GWM_VERSION = version("gwm")  # the installed package's, as pyproject.toml declares it
# Announced additions to /api/v1 (the versioning policy in docs/api.md); clients
# test for these instead of comparing versions.
FEATURES: list[str] = [
    "problem-json",
    "openapi",
    "clusters",
    "cached-reads",
    "operations",
    "jobs",
    "jobs-wait",
    "idempotency-key",
    "dry-run",
    "strict-query-parameters",
    "repeated-filters",
    "openapi-links",
    "accounts",
    "role-bindings",
    "quotas",
    "audit",
    "keystone-tokens",
    "change-feed",
    "change-stream",
    "event-schemas",
    "webhooks",
    "resource-hooks",
    "instance-export",
    "server-timing",
]

api = GwmNinjaAPI(
    title="gwm",
    version=API_VERSION,
    description=(
        "One JSON HTTP API in front of many Ganeti clusters. Errors are RFC 9457 "
        "`application/problem+json` bodies with a stable `code`."
    ),
    urls_namespace="api-v1",
    docs_url="/docs",
)


def _problem(
    request: HttpRequest, body: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    body.setdefault("instance", request.path)
    response = api.create_response(request, body, status=body["status"])
    response["Content-Type"] = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(AppError)
def _app_error(request: HttpRequest, exc: AppError) -> HttpResponse:
    return _problem(request, exc.problem(), exc.headers)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # A bad query or path parameter is a malformed request (400); a body that
    # parses but fails validation is 422.
    locations = {str(err.get("loc", ["body"])[0]) for err in exc.errors}
    status = 422 if locations <= {"body"} else 400
    extra: dict[str, Any] = {}
    if status == 400:
        # Name the parameter, as every other 400 does: ("query", "limit") -> "limit".
        named = [err["loc"][1] for err in exc.errors if len(err.get("loc", ())) > 1]
        if named:
            extra["parameter"] = str(named[0])
    body = problem_body(
        status=status,
        code="validation_failed" if status == 422 else "bad_request",
        title="Validation failed" if status == 422 else "Bad request",
        detail="; ".join(_describe(err) for err in exc.errors) or "invalid request",
        errors=[_clean(err) for err in exc.errors],
        **extra,
    )
    return _problem(request, body)


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    body = problem_body(
        status=401,
        code="unauthorized",
        title="Authentication required",
        detail="a valid bearer token is required",
    )
    return _problem(request, body, {"WWW-Authenticate": "Bearer"})


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        # ninja's own word for a body that is not JSON.
        body = problem_body(
            status=400,
            code="malformed_body",
            title="Malformed body",
            detail="the request body is not JSON",
        )
        return _problem(request, body)
    body = problem_body(
        status=exc.status_code, code="http_error", title="Request failed", detail=str(exc)
    )
    return _problem(request, body)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    body = problem_body(
        status=413,
        code="payload_too_large",
        title="Payload too large",
        detail=f"the request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
    )
    return _problem(request, body)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    body = problem_body(
        status=404, code="not_found", title="Not found", detail=str(exc) or "not found"
    )
    return _problem(request, body)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_busy(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    # The database's trouble, not the request's (DB-API's OperationalError and
    # InterfaceError): SQLite's one write lock held past the busy timeout, a database
    # out of reach, a pooled connection cut by a restart ("terminating connection due
    # to administrator command"). The request's transaction rolled back, so the client
    # may simply try again. A bug shows as another error (ProgrammingError...): a 500;
    # but SQLite raises OperationalError for bugs too ("no such table"), so there only
    # its lock and a failed connection are the database's trouble.
    from_sqlite = isinstance(exc.__cause__, sqlite3.Error)
    if from_sqlite and "locked" not in str(exc) and "unable to open" not in str(exc):
        return _unexpected(request, exc)
    log.warning("database busy on %s %s: %s", request.method, request.path, exc)
    body = problem_body(
        status=503,
        code="database_busy",
        title="Service unavailable",
        detail="the database is busy; nothing was changed, try again shortly",
    )
    return _problem(request, body, {"Retry-After": "1"})


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Known failures are AppErrors; anything else is a bug. Log it with its
    # traceback, but answer with a problem body, never a traceback.
    log.exception("unhandled error on %s %s", request.method, request.path)
    body = problem_body(
        status=500,
        code="internal_error",
        title="Internal error",
        detail="gwm failed to handle this request; the error is in its log",
    )
    return _problem(request, body)


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}"


def _clean(err: dict[str, Any]) -> dict[str, Any]:
    return {
        "loc": [str(part) for part in err.get("loc", ())],
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "")),
    }


api.add_decorator(strict_query, mode="view")
# Added after strict_query, so outside it: it also audits strict_query's and auth's refusals.
api.add_decorator(audit_writes, mode="view")


@api.get(
    "/",
    response={200: ApiRoot, 401: Problem},
    auth=caller_auth,
    summary="API root: versions and features",
    tags=["meta"],
)
def api_root(request: HttpRequest) -> dict[str, Any]:
    return {"gwm_version": GWM_VERSION, "api_version": API_VERSION, "features": FEATURES}


api.add_router("/", clusters_router)
api.add_router("/", jobs_router)
api.add_router("/", accounts_router)
api.add_router("/", events_router)
