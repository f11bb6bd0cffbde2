"""What both clients share apart from I/O: URL, credentials, TLS, timeouts, retries.

It builds the ``httpx`` request for a :class:`RapiCall`, reads the answer,
and names failures; the client classes only send, sleep and probe.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from gwm.rapi.calls import RapiCall, RapiRequest, complete
from gwm.rapi.constants import RAPI_PORT
from gwm.rapi.errors import RapiError, RapiTLSError
from gwm.rapi.retry import RetryPolicy
from gwm.rapi.tls import TLSSettings, certificate_fingerprint, pinned_context
from gwm.rapi.transport import Endpoint, fingerprint_mismatch, transport_error

T = TypeVar("T")

log = logging.getLogger("gwm.rapi")

#: Connect within 5 s, answer within 30 s (job waits get longer, see RapiRequest).
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
USER_AGENT = "gwm-rapi/1"


def normalize_base_url(value: str) -> httpx.URL:
    """``host`` → ``https://host:5080``, ``host:port`` → ``https://host:port``; URLs are kept."""
    text = value.strip().rstrip("/")
    problem = ValueError(f"RAPI URL {value!r} must look like https://host:{RAPI_PORT}")
    try:
        if "://" not in text:
            text = f"https://{text}"
            if httpx.URL(text).port is None:
                text = f"{text}:{RAPI_PORT}"
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise problem from None
    if url.scheme not in ("http", "https") or not url.host:
        raise problem
    return url


class ClientConfig:
    """Settings and the I/O-free steps of a request, shared by both clients."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None,
        password: str | None,
        timeout: httpx.Timeout | float | None,
        transport_given: bool,
        verify: bool,
        ca_file: str | os.PathLike[str] | None,
        fingerprint: str | None,
        check_hostname: bool,
        retries: int,
        retry_backoff: float,
        retry_backoff_max: float,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.url = normalize_base_url(base_url)
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.username = username
        self.password = password
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.tls = TLSSettings(
            verify=verify,
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
            fingerprint=fingerprint,
            check_hostname=check_hostname,
        )
        https = self.url.scheme == "https"
        if not https and (self.tls.ca_file or self.tls.pinned):
            raise ValueError("ca_file= and fingerprint= need an https:// RAPI URL")
        if transport_given and (self.tls.ca_file or self.tls.pinned):
            # A custom transport brings its own TLS: the pin would silently not apply.
            raise ValueError("transport= cannot be combined with ca_file= or fingerprint=")
        self.retry = RetryPolicy(
            retries=retries, backoff=retry_backoff, max_backoff=retry_backoff_max
        )
        port = self.url.port or (443 if https else 80)
        prefix = self.url.path.rstrip("/")
        self.endpoint = Endpoint(
            base_url=f"{self.url.scheme}://{self.url.host}:{port}{prefix}",
            host=self.url.host,
            port=port,
            tls=self.tls,
        )
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}

    @property
    def base_url(self) -> str:
        return self.endpoint.base_url

    def __repr__(self) -> str:
        user = f" user={self.username!r}" if self.username else ""
        return f"<{self.base_url}{user} tls={self.tls.mode}>"

    def client_options(self, context: ssl.SSLContext | None) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client``/``AsyncClient``."""
        options: dict[str, Any] = {
            "base_url": str(self.url),
            "headers": self.headers,
            "timeout": self.timeout,
            "follow_redirects": False,
            # gwm talks to clusters directly: no proxies or .netrc from the environment.
            "trust_env": False,
        }
        if self.username is not None and self.password is not None:
            options["auth"] = httpx.BasicAuth(self.username, self.password)
        if self.url.scheme == "https":
            options["verify"] = context if context is not None else self.tls.context()
        return options

    def pin(self, der: bytes) -> ssl.SSLContext:
        """Check the probed certificate against the pin; a context trusting only it."""
        expected = self.tls.fingerprint
        assert expected is not None
        actual = certificate_fingerprint(der)
        if actual != expected:
            raise fingerprint_mismatch(self.endpoint, expected=expected, actual=actual)
        return pinned_context(der)

    def probe_failed(self, exc: BaseException) -> RapiError:
        return transport_error(
            exc, where=self.endpoint, timeout=self.timeout, action="read the TLS certificate"
        )

    def mismatch_after(self, error: RapiTLSError, der: bytes) -> RapiError:
        """A verify failure on a pinned client explained by the certificate now presented."""
        expected = self.tls.fingerprint
        actual = certificate_fingerprint(der)
        if expected is None or actual == expected:
            return error
        return fingerprint_mismatch(
            self.endpoint, expected=expected, actual=actual, request=error.request
        )

    def build(self, http: httpx.Client | httpx.AsyncClient, call: RapiCall[Any]) -> httpx.Request:
        request = call.request
        headers = {"Content-Type": "application/json"} if request.body is not None else None
        return http.build_request(
            request.method,
            request.path,
            params=list(request.query),
            content=request.encoded_body(),
            headers=headers,
            timeout=self.timeout_for(request),
        )

    def timeout_for(self, request: RapiRequest) -> httpx.Timeout:
        minimum = request.min_read_timeout
        if minimum is None or self.timeout.read is None or self.timeout.read >= minimum:
            return self.timeout
        return httpx.Timeout(
            connect=self.timeout.connect,
            read=minimum,
            write=self.timeout.write,
            pool=self.timeout.pool,
        )

    def failed(self, exc: httpx.HTTPError, call: RapiCall[Any]) -> RapiError:
        return transport_error(
            exc,
            where=self.endpoint,
            timeout=self.timeout_for(call.request),
            action=call.request.action,
        )

    def complete(self, call: RapiCall[T], response: httpx.Response) -> T:
        return complete(call, response, base_url=self.base_url, username=self.username)

    def retry_delay(self, call: RapiCall[Any], attempt: int, error: RapiError) -> float | None:
        delay = self.retry.delay(call.request, attempt, error)
        if delay is not None:
            log.warning(
                "retrying in %.1f s (retry %d of %d): %s",
                delay,
                attempt + 1,
                self.retry.retries,
                error,
            )
        return delay
