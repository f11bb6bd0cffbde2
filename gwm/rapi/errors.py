"""Exceptions raised by the Ganeti RAPI client.

Every exception's ``str()`` is one sentence a sysadmin can act on without a
traceback: what was being done, against which cluster, and why it failed.

::

    RapiError                           base of everything below
    ├── RapiConnectionError             cluster unreachable: DNS, refused, reset, no route
    │   └── RapiTimeout                 connect, read, write or pool timeout (.phase, .seconds)
    ├── RapiTLSError                    certificate not trusted, or pinned fingerprint mismatch
    ├── RapiHTTPError                   Ganeti answered with an HTTP error status
    │   ├── RapiBadRequest              400  bad parameters or body
    │   ├── RapiUnauthorized            401  wrong or missing credentials
    │   ├── RapiForbidden               403  user lacks the permission (read/write)
    │   ├── RapiNotFound                404  unknown resource or path
    │   ├── RapiMethodNotAllowed        405
    │   │   └── RapiNotImplemented      501  Ganeti's way of saying "method not allowed here"
    │   ├── RapiUnsupportedMediaType    415  body without Content-Type: application/json
    │   └── RapiServerError             5xx
    │       ├── RapiMasterUnreachable   502  ganeti-rapi cannot reach the master daemon
    │       ├── RapiUnavailable         503  job queue full/drained, console unavailable
    │       └── RapiGatewayTimeout      504  ganeti-rapi timed out talking to the master daemon
    ├── RapiProtocolError               the answer is not Ganeti RAPI (HTML, not JSON, wrong shape)
    ├── RapiJobNotFound                 unknown job id (404, Ganeti 3's all-null job, a wait's 500)
    └── RapiJobWaitTimeout              wait_for_job gave up before the job finished

Semantic failures ("already exists", "wrong state") are not HTTP errors:
Ganeti accepts the request, answers a job id, and the *job* fails; read
them from :attr:`gwm.rapi.schemas.RapiJob.error`.

:class:`RapiHTTPError` keeps Ganeti's error body: ``status`` (HTTP), ``code``,
``message`` (unescaped) and ``explain`` from ``{"code", "message",
"explain"}``, the decoded ``body``, and httpx's ``request``/``response``.
Errors pickle (for Celery results) without ``request``/``response``.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus
from typing import Any

import httpx


def _rebuild(cls: type[RapiError], args: tuple[Any, ...], state: dict[str, Any]) -> RapiError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class RapiError(Exception):
    """Base class of every error the RAPI client raises."""

    request: httpx.Request | None
    response: httpx.Response | None

    def __init__(
        self,
        sentence: str,
        *,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(sentence)
        self.request = request
        self.response = response

    def __reduce__(self) -> tuple[Any, ...]:
        # httpx objects hold sockets and streams: they do not pickle, and a
        # Celery result only needs the sentence and the plain attributes.
        state = {k: v for k, v in self.__dict__.items() if k not in ("request", "response")}
        state.update(request=None, response=None)
        return (_rebuild, (type(self), self.args, state))


class RapiConnectionError(RapiError):
    """The cluster could not be reached (DNS, refused, reset, no route)."""

    def __init__(self, sentence: str, *, url: str, reason: str, **kwargs: Any) -> None:
        super().__init__(sentence, **kwargs)
        self.url = url
        self.reason = reason


class RapiTimeout(RapiConnectionError):
    """Connecting, sending, waiting for the answer or for a free connection took too long."""

    def __init__(
        self, sentence: str, *, url: str, phase: str, seconds: float | None, **kwargs: Any
    ) -> None:
        super().__init__(sentence, url=url, reason=f"{phase} timeout", **kwargs)
        self.phase = phase
        self.seconds = seconds


class RapiTLSError(RapiError):
    """The TLS handshake failed or the certificate is not the trusted one.

    ``expected_fingerprint``/``actual_fingerprint`` are set when a pinned
    SHA-256 fingerprint did not match (colon-separated upper-case hex).
    """

    def __init__(
        self,
        sentence: str,
        *,
        url: str,
        reason: str,
        expected_fingerprint: str | None = None,
        actual_fingerprint: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(sentence, **kwargs)
        self.url = url
        self.reason = reason
        self.expected_fingerprint = expected_fingerprint
        self.actual_fingerprint = actual_fingerprint


class RapiHTTPError(RapiError):
    """Ganeti (or something in front of it) answered with an HTTP error."""

    def __init__(
        self,
        sentence: str,
        *,
        status: int,
        code: int | None,
        message: str,
        explain: str | None,
        body: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(sentence, **kwargs)
        self.status = status
        self.code = code
        self.message = message
        self.explain = explain
        self.body = body


class RapiBadRequest(RapiHTTPError):
    """400: Ganeti rejected the parameters or the body."""


class RapiUnauthorized(RapiHTTPError):
    """401: wrong or missing username/password."""


class RapiForbidden(RapiHTTPError):
    """403: the RAPI user lacks the permission, or a parameter is forbidden."""


class RapiNotFound(RapiHTTPError):
    """404: no such instance, node, group, network, job or path."""


class RapiMethodNotAllowed(RapiHTTPError):
    """405: the method is not allowed for this path."""


class RapiNotImplemented(RapiMethodNotAllowed):
    """501: Ganeti's answer for a method a resource does not support."""


class RapiUnsupportedMediaType(RapiHTTPError):
    """415: a body was sent without ``Content-Type: application/json``."""


class RapiServerError(RapiHTTPError):
    """5xx: Ganeti failed to answer."""


class RapiMasterUnreachable(RapiServerError):
    """502: ganeti-rapi cannot reach the master daemon (or a protocol error)."""


class RapiUnavailable(RapiServerError):
    """503: job queue full or drained, or the console is unavailable."""


class RapiGatewayTimeout(RapiServerError):
    """504: ganeti-rapi timed out talking to the master daemon."""


class RapiProtocolError(RapiError):
    """The answer is not Ganeti RAPI: an HTML page, not JSON, or the wrong shape."""

    def __init__(
        self, sentence: str, *, url: str, status: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(sentence, **kwargs)
        self.url = url
        self.status = status

    @classmethod
    def about(cls, response: httpx.Response, sentence: str) -> RapiProtocolError:
        """The error for this answer: its URL, status, request and response attached."""
        return cls(
            sentence,
            url=str(response.request.url),
            status=response.status_code,
            request=response.request,
            response=response,
        )


class RapiJobNotFound(RapiError):
    """Ganeti does not know the job.

    Ganeti says so with a 404, with a job whose every field but the id is null
    (Ganeti 3), or with a 500 "Can't load job file" to a wait.
    """

    def __init__(self, sentence: str, *, job_id: int, **kwargs: Any) -> None:
        super().__init__(sentence, **kwargs)
        self.job_id = job_id


class RapiJobWaitTimeout(RapiError):
    """``wait_for_job`` gave up before the job reached a final status."""

    def __init__(
        self, sentence: str, *, job_id: int, timeout: float, last_status: str | None
    ) -> None:
        super().__init__(sentence)
        self.job_id = job_id
        self.timeout = timeout
        self.last_status = last_status


STATUS_ERRORS: dict[int, type[RapiHTTPError]] = {
    400: RapiBadRequest,
    401: RapiUnauthorized,
    403: RapiForbidden,
    404: RapiNotFound,
    405: RapiMethodNotAllowed,
    415: RapiUnsupportedMediaType,
    501: RapiNotImplemented,
    502: RapiMasterUnreachable,
    503: RapiUnavailable,
    504: RapiGatewayTimeout,
}


def error_class_for_status(status: int) -> type[RapiHTTPError]:
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return RapiServerError if status >= 500 else RapiHTTPError


def _ganeti_error_body(response: httpx.Response) -> dict[str, Any] | None:
    """Ganeti's ``{"code", "message", "explain"}`` body, or None if it is not one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("message"), str) and "code" in body:
        return body
    return None


def describe_body(response: httpx.Response) -> str:
    """Name a non-Ganeti body in a few words: 'an HTML page ("Welcome to nginx")'."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    text = response.text.strip()
    if not text:
        return "an empty answer"
    lowered = text[:2048].lower()
    if "html" in content_type or lowered.startswith(("<!doctype html", "<html")):
        start = lowered.find("<title>")
        end = lowered.find("</title>", start)
        if start >= 0 and end > start:
            return f'an HTML page ("{html.unescape(text[start + 7 : end].strip())[:80]}")'
        return "an HTML page"
    snippet = " ".join(text[:80].split())
    kind = f"a {content_type} body" if content_type else "a body without Content-Type"
    return f"{kind} starting {snippet!r}"


def http_error(
    response: httpx.Response, *, action: str, base_url: str, username: str | None
) -> RapiHTTPError | RapiProtocolError:
    """Turn an HTTP error answer into the exception for its status.

    A 4xx whose body is not Ganeti's error document becomes a
    :class:`RapiProtocolError`: an HTML 404 from a proxy or another server on
    the port must not read as "the instance is gone". 401, 403 and 5xx keep
    their class whoever sent them, since their meaning does not depend on it.
    """
    status = response.status_code
    request = response.request
    ganeti = _ganeti_error_body(response)
    body: Any
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if ganeti is None:
        if status < 500 and status not in (401, 403):
            if 300 <= status < 400:
                where = response.headers.get("location", "elsewhere")
                why = f"redirected to {where}; check the RAPI URL (gwm does not follow redirects)"
            else:
                why = f"{describe_body(response)}; is this the Ganeti RAPI port?"
            return RapiProtocolError.about(
                response, f"cannot {action}: {base_url} answered {status} {phrase} with {why}"
            )
        message, explain, code, body = phrase, None, None, response.text
        detail = f"{status} {phrase}, answered by something other than Ganeti: "
        detail += describe_body(response)
    else:
        message = html.unescape(str(ganeti["message"]))
        explain = ganeti.get("explain")
        code = ganeti.get("code") if isinstance(ganeti.get("code"), int) else None
        body = ganeti
        detail = f"{status} {phrase}" + ("" if message == phrase else f": {message}")
    cls = error_class_for_status(status)
    user = f"user {username!r}" if username else "an anonymous client"
    if cls is RapiUnauthorized:
        if username:
            sentence = f"authentication failed for {user} at {base_url} ({detail})"
        else:
            sentence = (
                f"{base_url} requires authentication and no username/password was given ({detail})"
            )
    elif cls is RapiForbidden:
        sentence = (
            f"{user} may not {action} on {base_url} ({detail}); writes need 'write' "
            "access in Ganeti's RAPI users file"
        )
    elif cls is RapiNotFound:
        sentence = f"cannot {action}: not found on {base_url} ({detail})"
    elif issubclass(cls, RapiMethodNotAllowed):
        sentence = (
            f"cannot {action}: {base_url} does not support {request.method} "
            f"{request.url.path} ({detail})"
        )
    elif cls is RapiMasterUnreachable:
        sentence = (
            f"cannot {action}: ganeti-rapi at {base_url} cannot reach the Ganeti master "
            f"daemon ({detail})"
        )
    elif cls is RapiUnavailable:
        sentence = (
            f"cannot {action}: Ganeti at {base_url} is unavailable ({detail}); the job "
            "queue may be full or drained"
        )
    elif cls is RapiGatewayTimeout:
        sentence = (
            f"cannot {action}: ganeti-rapi at {base_url} timed out talking to the master "
            f"daemon ({detail})"
        )
    elif cls is RapiBadRequest:
        sentence = f"Ganeti at {base_url} rejected the request to {action} ({detail})"
    else:
        sentence = f"cannot {action}: {base_url} answered {detail}"
    return cls(
        sentence,
        status=status,
        code=code,
        message=message,
        explain=explain if isinstance(explain, str) else None,
        body=body,
        request=request,
        response=response,
    )
