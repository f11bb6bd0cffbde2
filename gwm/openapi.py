"""The OpenAPI document as gwm really answers: ninja's, completed.

- Every error is ``application/problem+json`` with the Problem schema (ninja
  would say ``application/json``).
- Every status any operation can answer is listed: 400 for bad query and path
  parameters on every operation, 400, 413 and 422 with a body, 401 with
  authentication, 503 when the database is busy (``gwm.api``'s handler).
- A parameter is absent or has a value: ninja's ``anyOf [X, null]`` is just X.
- Links: where an answer leads (a job's id to the job's endpoints, a cluster's
  name to the cluster's), so clients and stateful testers can follow them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from gwm.errors import PROBLEM_CONTENT_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What every operation may answer whatever it declares, and why.
_ALWAYS = {
    "400": "Bad request: an unknown, repeated or malformed query or path parameter",
    "503": "The database is busy or out of reach for a moment (code `database_busy`, "
    "`Retry-After`); nothing was changed",
}
_WITH_BODY = {
    "400": "Bad request: a body that is not JSON, or a bad parameter",
    "413": "The body is over the size limit",
    "422": "The body parses but fails validation",
}
_WITH_AUTH = {"401": "No token, a bad token, or an expired or revoked one"}
# response schema -> (the path parameter it leads to, the body field that fills it)
_LINKS = {"JobOut": ("job_id", "id"), "ClusterOut": ("cluster", "name")}


class GwmNinjaAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document says what gwm really answers (see above)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _complete_responses(operation)
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _not_null(parameter.get("schema", {}))
        _add_links(schema)
        return schema


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
