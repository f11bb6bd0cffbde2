"""Turn any bare error response under /api/ into an RFC 9457 problem.

Routers raise AppError and get problem bodies from the API's handlers; this
catches what never reaches them: unknown paths (the URL resolver's 404),
methods a route does not have (405), CSRF failures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

from gwm.errors import PROBLEM_CONTENT_TYPE, problem_body

_CODES = {404: "not_found", 405: "method_not_allowed", 403: "forbidden"}


class ProblemMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith("/api/")
            or response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return response
        status = response.status_code
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        if status == 404:
            detail = f"no resource at {request.path}"
        elif status == 405:
            detail = f"{request.method} is not allowed on {request.path}"
            allowed = response.get("Allow")
            if allowed:
                detail += f" (allowed: {allowed})"
        else:
            detail = phrase
        body = problem_body(
            status=status,
            code=_CODES.get(status, phrase.lower().replace(" ", "_")),
            title=phrase,
            detail=detail,
            instance=request.path,
        )
        problem = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                problem[header] = response[header]
        return problem
