"""One webhook attempt over HTTP: a POST, its answer, and no exception for the network.

A worker process holds one :class:`Sender`: one httpx client whose keep-alive
pool is shared by every delivery (at most 64 connections), so a busy receiver
gets its events over a few reused connections instead of a TLS handshake each.

:meth:`Sender.post` turns everything the network can do into an
:class:`Outcome`: a status and the first 1000 characters of the answer, or an
error text (refused target, connection refused, timeout). ``timeout`` bounds
the whole attempt: connecting, sending, waiting and reading, over every
redirect. At most 64 KiB of an answer is read, so an endless body cannot hold
a worker; a body cut short does not change the status it came with.

Targets are checked twice (see targets.py). Before each request the URL is
checked, so a refusal is a clear error and nothing is sent. Then the sockets
themselves go through a guarded network backend: it resolves the host again,
checks every address against the allow-list of the ``post`` running in this
thread, and connects only to an address it checked. A name that resolved to a
public address for the first check and to an internal one a moment later (DNS
rebinding) is refused at the socket. Environment proxies and ``.netrc`` are
ignored (a proxy would connect on gwm's behalf, past these checks); cookies
are never kept.

Redirects (301, 302, 303, 307, 308) are followed by hand, at most three, each
target checked first; a refused one ends the attempt with an error and is not
contacted. Every hop is a POST again with the same body and headers, for
301/302/303 too: a webhook is a POST, and turning it into a GET would deliver
nothing. (The Standard Webhooks specification suggests not following at all;
gwm follows a few so that an http → https move or a moved path keeps working.)
"""

from __future__ import annotations

import codecs
import contextvars
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from gwm.events.webhooks.targets import IPNetwork, TargetRefused, check_host, check_target

EXCERPT_CHARS = 1000
BODY_LIMIT = 64 * 1024
ERROR_CHARS = 500  # what Delivery.error holds
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30)
DEFAULT_HEADERS = {
    "User-Agent": "gwm-webhooks/1",
    # A compressed answer could inflate far past BODY_LIMIT in one chunk; ask for none.
    "Accept-Encoding": "identity",
}

#: The allow-list of the post() running in this thread, for the guarded backend.
_allowed: contextvars.ContextVar[Sequence[IPNetwork]] = contextvars.ContextVar(
    "webhook_allowed_networks", default=()
)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended. ``status`` None: no answer (see ``error``)."""

    status: int | None
    excerpt: str = ""  # the answer's first characters, for the delivery log
    duration_ms: float = 0.0
    error: str = ""
    retry_after: str | None = None  # the answer's Retry-After, as sent
    redirected_to: str | None = None  # the last Location gwm was sent to, followed or not

    @property
    def delivered(self) -> bool:
        """A 2xx answer, as the Standard Webhooks specification counts success."""
        return self.status is not None and 200 <= self.status < 300 and not self.error


@dataclass
class _Answer:
    status: int
    excerpt: str
    retry_after: str | None
    location: str | None


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses the running post() may reach."""

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        # Raises TargetRefused, which httpx lets through as it is.
        *others, last = check_host(host, port, _allowed.get())
        for address in others:
            try:
                return self._sockets.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError:
                continue  # refused or unreachable: the host's next address may answer
        return self._sockets.connect_tcp(str(last), port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise TargetRefused("unix sockets are not webhook targets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def guarded_transport(
    *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = LIMITS
) -> httpx.HTTPTransport:
    """An httpx transport whose connections go through the guarded backend."""
    transport = httpx.HTTPTransport(verify=verify, limits=limits)
    # httpx offers no parameter for the network backend: build its pool again, as
    # HTTPTransport does, with ours (httpx is pinned; the tests prove the guard holds).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(),
    )
    return transport


class Sender:
    """The shared client of one worker process (thread-safe; create it after fork)."""

    def __init__(
        self, *, verify: ssl.SSLContext | bool = True, limits: httpx.Limits = LIMITS
    ) -> None:
        self._client = httpx.Client(
            transport=guarded_transport(verify=verify, limits=limits),
            headers=DEFAULT_HEADERS,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # keeps none
            follow_redirects=False,
            trust_env=False,
        )

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,
        allowed: Sequence[IPNetwork],
    ) -> Outcome:
        """POST ``body`` to ``url``, following a few redirects; never raises for the network."""
        started = time.monotonic()
        token = _allowed.set(tuple(allowed))
        try:
            outcome = self._follow(url, body, dict(headers), started + timeout, timeout, allowed)
        finally:
            _allowed.reset(token)
        error = outcome.error
        return replace(
            outcome,
            error=error[: ERROR_CHARS - 1] + "…" if len(error) > ERROR_CHARS else error,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )

    def _follow(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
        timeout: float,
        allowed: Sequence[IPNetwork],
    ) -> Outcome:
        """The attempt's outcome, its duration aside."""
        try:
            check_target(url, allowed)
        except TargetRefused as exc:
            return Outcome(status=None, error=f"target refused: {exc.reason}")
        current, redirected_to = url, None
        for hop in range(MAX_REDIRECTS + 1):
            answer = self._request(current, body, headers, deadline, timeout)
            if isinstance(answer, str):
                return Outcome(status=None, error=answer, redirected_to=redirected_to)
            outcome = Outcome(
                status=answer.status,
                excerpt=answer.excerpt,
                retry_after=answer.retry_after,
                redirected_to=redirected_to,
            )
            if answer.status not in REDIRECTS or not answer.location:
                return outcome
            if hop == MAX_REDIRECTS:
                return replace(outcome, error=f"too many redirects (more than {MAX_REDIRECTS})")
            try:
                target = str(httpx.URL(current).join(answer.location))
                check_target(target, allowed)
            except httpx.InvalidURL as exc:
                return replace(outcome, error=f"redirect to an invalid URL: {exc}")
            except TargetRefused as exc:
                error = f"redirect to {target} refused: {exc.reason}"
                return replace(outcome, error=error, redirected_to=target)
            current = redirected_to = target
        raise AssertionError("unreachable: the last hop returns")  # pragma: no cover

    def _request(
        self, url: str, body: bytes, headers: dict[str, str], deadline: float, timeout: float
    ) -> _Answer | str:
        """One request: its answer, or an error text."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"timed out after {timeout:g} s (redirects)"
        try:
            with self._client.stream(
                "POST", url, content=body, headers=headers, timeout=remaining
            ) as response:
                return _Answer(
                    status=response.status_code,
                    excerpt=_excerpt(response, deadline),
                    retry_after=response.headers.get("retry-after"),
                    location=response.headers.get("location"),
                )
        except TargetRefused as exc:  # at the socket: the name resolves elsewhere now
            return f"target refused when connecting: {exc.reason}"
        except httpx.TimeoutException as exc:
            return f"timed out after {timeout:g} s ({_phase(exc)})"
        except httpx.ConnectError as exc:
            return f"cannot connect: {exc or type(exc).__name__}"
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"


def _phase(exc: httpx.TimeoutException) -> str:
    phases = {
        httpx.ConnectTimeout: "connecting",
        httpx.WriteTimeout: "sending",
        httpx.ReadTimeout: "waiting for the answer",
        httpx.PoolTimeout: "waiting for a free connection",
    }
    return next((name for kind, name in phases.items() if isinstance(exc, kind)), "timeout")


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The answer's first characters, from at most BODY_LIMIT bytes read before the deadline."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        return f"[{encoding}-encoded answer not shown]"
    received = bytearray()
    try:
        for chunk in response.iter_raw():
            received += chunk
            if len(received) >= BODY_LIMIT or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass  # dropped or too slow after the status line: the status stands, the text is cut
    return bytes(received[:BODY_LIMIT]).decode(_charset(response), errors="replace")[:EXCERPT_CHARS]


def _charset(response: httpx.Response) -> str:
    named = response.charset_encoding or "utf-8"
    try:
        return codecs.lookup(named).name
    except LookupError:
        return "utf-8"
