"""The one error tree of gwm and its RFC 9457 rendering.

Every known failure is an :class:`AppError` that carries its HTTP status and a
stable machine ``code``; one handler (``gwm.api``) renders it as
``application/problem+json``. Extra context goes in ``extra`` and becomes
extension members of the problem body (``job``, ``instance``...).
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://gwm.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class AppError(Exception):
    status: ClassVar[int] = 500
    code: str = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # a more precise machine word than the class's
        self.headers = headers or {}
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            instance=instance,
            **self.extra,
        )


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return body


class BadRequest(AppError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(AppError):
    status = 410
    code = "gone"
    title = "Gone"


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class BadGateway(AppError):
    status = 502
    code = "bad_gateway"
    title = "Ganeti answered something gwm cannot understand"


class GatewayTimeout(AppError):
    status = 504
    code = "gateway_timeout"
    title = "Ganeti did not answer in time"
