"""What every response passes on its way out: Django's security, URL and
clickjacking middleware, and any bare error under /api/ turned into an RFC 9457
problem.

Routers raise AppError and get problem bodies from the API's handlers; the
problem step catches what never reaches them: unknown paths (the URL resolver's
404), methods a route does not have (405), CSRF failures.

:class:`EdgeMiddleware` runs those four as one step. None of them touches the
database or blocks, so under ASGI it calls them on the event loop: Django would
otherwise send each of their request and response hooks to a thread and back,
six hops per request, which cost more than a cached read's query.

It also starts each request's log context (gwm.observability.context): the request
id it came with in ``X-Request-ID`` if that is sane, else a new one, sent back in the
same header; and it times the request for ``gwm_http_request_duration_seconds``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.deprecation import MiddlewareMixin

from gwm.errors import PROBLEM_CONTENT_TYPE, problem_body
from gwm.observability import context, metrics

_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_CODES = {404: "not_found", 405: "method_not_allowed", 403: "forbidden"}


class ProblemMiddleware(MiddlewareMixin):
    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
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


#: In order: each one's process_request runs first to last, process_response last to first.
_STEPS = (SecurityMiddleware, ProblemMiddleware, CommonMiddleware, XFrameOptionsMiddleware)


class EdgeMiddleware:
    """Security headers, URL normalisation, X-Frame-Options and problem bodies, in one
    step that runs in the caller's mode (inline on the event loop under ASGI)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.steps: list[Any] = [step(get_response) for step in _STEPS]
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        # A thread serves one request after another: its context ends with the request.
        _, token = context.request_started(request.META.get(_REQUEST_ID_META))
        try:
            early = self._before(request)
            return self._after(request, early or self.get_response(request), started)
        finally:
            context.restore(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        # Django runs each request in an asyncio task of its own, whose context ends
        # with it; left set, it stays on the lines a stream logs after this returns.
        context.request_started(request.META.get(_REQUEST_ID_META))
        early = self._before(request)
        if early is not None:
            return self._after(request, early, started)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        return self._after(request, await get_response(request), started)

    def _before(self, request: HttpRequest) -> HttpResponse | None:
        for step in self.steps:
            hook = getattr(step, "process_request", None)
            answer: HttpResponse | None = hook(request) if hook is not None else None
            if answer is not None:
                return answer
        return None

    def _after(self, request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        for step in reversed(self.steps):
            hook = getattr(step, "process_response", None)
            if hook is not None:
                response = hook(request, response)
        # The server's own time (W3C Server Timing), for a client telling it from the
        # network's; a stream's is the time to its first byte.
        seconds = time.perf_counter() - started
        response["Server-Timing"] = f"app;dur={seconds * 1000:.2f}"
        response[context.REQUEST_ID_HEADER] = context.request_id() or ""
        metrics.http_request(request, response.status_code, seconds)
        return response
