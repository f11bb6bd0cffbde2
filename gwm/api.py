"""The one NinjaAPI of gwm, mounted at /api/v1, and its problem+json rendering."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation

from gwm import __version__
from gwm.errors import PROBLEM_CONTENT_TYPE, AppError, BadRequest, ValidationFailed, problem_body
from gwm.schemas import ApiRoot, Problem

log = logging.getLogger(__name__)

API_VERSION = "v1"
# Announced additions to /api/v1 (see docs/versioning.md); clients test for these.
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
]

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What every operation may answer whatever it declares, and why.
_ALWAYS = {
    "400": "Bad request: an unknown, repeated or malformed query or path parameter",
}
_WITH_BODY = {
    "400": "Bad request: a body that is not JSON, or a bad parameter",
    "413": "The body is over the size limit",
    "422": "The body parses but fails validation",
}
_WITH_AUTH = {"401": "No token, a bad token, or an expired or revoked one"}


class GwmNinjaAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document says what gwm really answers.

    Every error is ``application/problem+json`` (ninja would say
    ``application/json``), and every status any operation can answer (400 for
    bad query and path parameters on every operation, 413 and 422 with a body,
    401 with authentication) is listed with its Problem schema.
    """

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _complete_responses(operation)
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _not_null(parameter.get("schema", {}))
        _add_links(schema)
        return schema


# Where an answer leads: a job's id to the job's own endpoints, a cluster's name to
# the cluster's. OpenAPI links, so clients and stateful testers can follow them.
_LINKS = {"JobOut": ("job_id", "id"), "ClusterOut": ("cluster", "name")}


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    targets: dict[str, list[tuple[str, str]]] = {}  # path parameter -> (operationId, summary)
    for path, operations in paths.items():
        params = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        if len(params) == 1:
            for operation in operations.values():
                targets.setdefault(params[0], []).append(
                    (operation["operationId"], operation.get("summary", ""))
                )
    for operations in paths.values():
        for operation in operations.values():
            for code, response in operation["responses"].items():
                if not code.startswith("2"):
                    continue
                ref = response.get("content", {}).get("application/json", {}).get("schema", {})
                name = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
                if name not in _LINKS:
                    continue
                parameter, field = _LINKS[name]
                response["links"] = {
                    target: {
                        "operationId": target,
                        "parameters": {parameter: f"$response.body#/{field}"},
                        "description": summary or target,
                    }
                    for target, summary in targets.get(parameter, [])
                }


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or has a value; ninja's ``anyOf [X, null]`` is just X."""
    alternatives = schema.get("anyOf")
    if not alternatives:
        return schema
    values = [alt for alt in alternatives if alt.get("type") != "null"]
    if len(values) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**values[0], **rest}


def _complete_responses(operation: dict[str, Any]) -> None:
    # ninja keys responses by int; JSON (and every reader of the document) by string.
    responses: dict[str, Any] = {str(k): v for k, v in operation.get("responses", {}).items()}
    extra = dict(_ALWAYS)
    if "requestBody" in operation:
        extra.update(_WITH_BODY)
    if operation.get("security"):
        extra.update(_WITH_AUTH)
    for code, description in extra.items():
        responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            if response.get("description") in (None, "", "OK"):
                response["description"] = HTTPStatus(int(code)).phrase
            response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
    operation["responses"] = dict(sorted(responses.items()))


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


def problem_response(
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
    return problem_response(request, exc.problem(), exc.headers)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # Query and path problems are malformed requests (400); a body that parses
    # but fails validation is 422, as API.md says.
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
    return problem_response(request, body)


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    body = problem_body(
        status=401,
        code="unauthorized",
        title="Authentication required",
        detail="a valid bearer token is required",
    )
    return problem_response(request, body, {"WWW-Authenticate": "Bearer"})


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
        return problem_response(request, body)
    body = problem_body(
        status=exc.status_code, code="http_error", title="Request failed", detail=str(exc)
    )
    return problem_response(request, body)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    from django.conf import settings

    body = problem_body(
        status=413,
        code="payload_too_large",
        title="Payload too large",
        detail=f"the request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes",
    )
    return problem_response(request, body)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    body = problem_body(
        status=404, code="not_found", title="Not found", detail=str(exc) or "not found"
    )
    return problem_response(request, body)


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
    return problem_response(request, body)


def _describe(err: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}"


def _clean(err: dict[str, Any]) -> dict[str, Any]:
    return {
        "loc": [str(part) for part in err.get("loc", ())],
        "msg": str(err.get("msg", "")),
        "type": str(err.get("type", "")),
    }


# -- query parameters: declared ones only; a repeated one only where it is a list --------


def _query_names(operation: Operation) -> tuple[frozenset[str], frozenset[str]]:
    """(every query parameter the operation declares, those that take a list)."""
    names: set[str] = set()
    lists: set[str] = set()
    for model in operation.models:
        if model.__ninja_param_source__ != "query":
            continue
        flat = getattr(model, "__ninja_flatten_map__", None) or {
            (field.alias or name): (name,) for name, field in model.model_fields.items()
        }
        names.update(flat)
        lists.update(getattr(model, "__ninja_collection_fields__", ()) or ())
    return frozenset(names), frozenset(lists)


def _check_query(request: HttpRequest, names: frozenset[str], lists: frozenset[str]) -> None:
    for key, values in request.GET.lists():
        if any("\x00" in value for value in values):
            # No name or value of gwm's holds one, and PostgreSQL cannot even compare it.
            raise BadRequest(f"query parameter {key!r} contains a NUL character", parameter=key)
    for key in request.GET:
        if key not in names:
            known = f"; this endpoint takes: {', '.join(sorted(names))}" if names else ""
            raise BadRequest(
                f"unknown query parameter {key!r}{known}",
                code="unknown_parameter",
                parameter=key,
            )
        if key not in lists and len(request.GET.getlist(key)) > 1:
            raise BadRequest(
                f"query parameter {key!r} is given more than once; it takes one value",
                parameter=key,
            )


def _check_body(request: HttpRequest) -> None:
    """A JSON string holding NUL: PostgreSQL stores none (text nor jsonb), so 422 up front."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    body = request.body
    if b"\\u0000" not in body and b"\x00" not in body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # ninja answers 400 malformed_body
    if _holds_nul(data):
        raise ValidationFailed("a string in the body contains a NUL character (\\u0000)", errors=[])


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _check_path(path_params: dict[str, Any]) -> None:
    for key, value in path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise BadRequest(f"path parameter {key!r} contains a NUL character", parameter=key)


def strict_query(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an operation's ``run``: an undeclared or repeated scalar parameter is a 400.

    A silently ignored filter would turn a scripted bulk action into an action
    on everything, so no parameter is ignored. Applied to every operation of the
    API (``api.add_decorator(..., mode="view")``), from what each one declares.
    """
    operation = getattr(run, "__self__", None)
    if not isinstance(operation, Operation):  # not ninja's bound run: nothing to read
        return run
    names, lists = _query_names(operation)

    if inspect.iscoroutinefunction(run):

        @functools.wraps(run)
        async def arun(request: HttpRequest, **kw: Any) -> HttpResponseBase:
            try:
                _check_query(request, names, lists)
                _check_path(kw)
                _check_body(request)
            except (BadRequest, ValidationFailed, RequestDataTooBig) as exc:
                return operation.api.on_exception(request, exc)
            return await run(request, **kw)

        return arun

    @functools.wraps(run)
    def wrapped(request: HttpRequest, **kw: Any) -> HttpResponseBase:
        try:
            _check_query(request, names, lists)
            _check_path(kw)
            _check_body(request)
        except (BadRequest, ValidationFailed, RequestDataTooBig) as exc:
            return operation.api.on_exception(request, exc)
        return run(request, **kw)

    return wrapped


api.add_decorator(strict_query, mode="view")


@api.get("/", response={200: ApiRoot}, summary="API root: versions and features", tags=["meta"])
def api_root(request: HttpRequest) -> dict[str, Any]:
    return {"gwm_version": __version__, "api_version": API_VERSION, "features": FEATURES}


from gwm.clusters.api import router as clusters_router  # noqa: E402
from gwm.operations.api import jobs_router  # noqa: E402
from gwm.operations.api import router as operations_router  # noqa: E402

api.add_router("/", clusters_router)
api.add_router("/", operations_router)
api.add_router("/", jobs_router)

# Every response code a client may meet on any endpoint is declared by the
# routers themselves; Problem is exported so they can share it.
__all__ = ["Problem", "api", "problem_response"]
