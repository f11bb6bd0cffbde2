"""Turn network and TLS failures into :mod:`gwm.rapi.errors` with plain sentences.

httpx wraps the OS error (refused, DNS, TLS verify) a few levels deep, in
``__cause__``, ``__context__`` or an exception's ``args``; the sentence is
built from that root cause, since "[Errno 111]" is not something a sysadmin
should have to decode.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from gwm.rapi.errors import (
    RapiConnectionError,
    RapiError,
    RapiProtocolError,
    RapiTimeout,
    RapiTLSError,
)
from gwm.rapi.tls import TLSSettings, format_fingerprint

# OpenSSL X509_V_ERR_* codes that get a specific explanation.
_SELF_SIGNED = {18, 19}
_UNKNOWN_ISSUER = {2, 20, 21}
_EXPIRED = 10
_NOT_YET_VALID = 9
_NAME_MISMATCH = {62, 64}  # host name, IP address

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network is unreachable",
    errno.ECONNRESET: "connection reset by the server",
    errno.EPIPE: "connection closed by the server",
    errno.ETIMEDOUT: "connection timed out",
}


@dataclass(frozen=True)
class Endpoint:
    """Where the client talks to, for messages: ``https://host:5080``."""

    base_url: str
    host: str
    port: int
    tls: TLSSettings

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    queue: list[BaseException] = [exc]
    while queue:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        # httpcore re-raises with ``from None`` and keeps the original in
        # ``args``: look everywhere, suppressed or not.
        queue.extend(a for a in current.args if isinstance(a, BaseException))
        if current.__cause__ is not None:
            queue.append(current.__cause__)
        if current.__context__ is not None:
            queue.append(current.__context__)


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((e for e in _causes(exc) if isinstance(e, kind)), None)


def _request_of(exc: BaseException) -> httpx.Request | None:
    try:
        return exc.request if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:
        return None


def _seconds(value: float | None) -> str:
    return "no limit" if value is None else f"{value:g} s"


def tls_verify_error(
    error: ssl.SSLCertVerificationError, where: Endpoint, request: httpx.Request | None
) -> RapiTLSError:
    reason = (error.verify_message or error.reason or str(error)).strip().rstrip(".")
    code = error.verify_code
    subject = f"TLS certificate of {where.hostport}"
    if code in _NAME_MISMATCH:
        sentence = (
            f"{subject} is not valid for the name {where.host!r} ({reason}); connect by a "
            "name the certificate lists, or pass check_hostname=False to rely on the CA alone"
        )
    elif code == _EXPIRED:
        sentence = (
            f"{subject} has expired; renew it on the cluster "
            "(gnt-cluster renew-crypto --new-rapi-certificate)"
        )
    elif code == _NOT_YET_VALID:
        sentence = f"{subject} is not valid yet; check the clocks of this host and the cluster"
    elif where.tls.ca_file and (code in _SELF_SIGNED or code in _UNKNOWN_ISSUER):
        sentence = (
            f"{subject} is not trusted by the CA file {where.tls.ca_file} ({reason}); "
            "is it the cluster's current rapi.pem?"
        )
    elif code in _SELF_SIGNED or code in _UNKNOWN_ISSUER:
        sentence = (
            f"{subject} could not be verified with the system CAs ({reason}); Ganeti's "
            "RAPI certificate is self-signed: trust it with ca_file= (the cluster's "
            "rapi.pem) or fingerprint= (its SHA-256)"
        )
    else:
        sentence = f"{subject} could not be verified: {reason}"
    return RapiTLSError(sentence, url=where.base_url, reason=reason, request=request)


def fingerprint_mismatch(
    where: Endpoint, *, expected: str, actual: str, request: httpx.Request | None = None
) -> RapiTLSError:
    expected_text, actual_text = format_fingerprint(expected), format_fingerprint(actual)
    return RapiTLSError(
        f"TLS certificate of {where.hostport} does not match the pinned fingerprint: "
        f"expected SHA-256 {expected_text}, the server presented {actual_text}; nothing "
        "was sent. If the cluster's certificate was renewed on purpose, pin the new one",
        url=where.base_url,
        reason="fingerprint mismatch",
        expected_fingerprint=expected_text,
        actual_fingerprint=actual_text,
        request=request,
    )


def transport_error(
    exc: BaseException, *, where: Endpoint, timeout: httpx.Timeout, action: str
) -> RapiError:
    """The :class:`RapiError` for a failure below HTTP (socket, DNS, TLS, timeouts)."""
    request = _request_of(exc)
    base = where.base_url

    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        if isinstance(exc, httpx.ReadTimeout):
            phase, limit = "read", timeout.read
            sentence = f"cannot {action}: {base} sent no answer within {_seconds(limit)}"
        elif isinstance(exc, httpx.WriteTimeout):
            phase, limit = "write", timeout.write
            sentence = f"cannot {action}: sending the request to {base} took over {_seconds(limit)}"
        elif isinstance(exc, httpx.PoolTimeout):
            phase, limit = "pool", timeout.pool
            sentence = (
                f"cannot {action}: no free connection to {base} within {_seconds(limit)} "
                "(too many requests at once)"
            )
        else:
            phase, limit = "connect", timeout.connect
            sentence = (
                f"cannot connect to {base}: timed out after {_seconds(limit)} "
                "(host down, or a firewall drops the packets)"
            )
        return RapiTimeout(sentence, url=base, phase=phase, seconds=limit, request=request)

    verify = _find(exc, ssl.SSLCertVerificationError)
    if isinstance(verify, ssl.SSLCertVerificationError):
        return tls_verify_error(verify, where, request)
    tls_failure = _find(exc, ssl.SSLError)
    if isinstance(tls_failure, ssl.SSLError):
        reason = tls_failure.reason or str(tls_failure)
        hint = ""
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            hint = " (is it plain HTTP? then use an http:// URL, or check the port)"
        return RapiTLSError(
            f"TLS handshake with {where.hostport} failed: {reason}{hint}",
            url=base,
            reason=str(reason),
            request=request,
        )

    if isinstance(exc, httpx.RemoteProtocolError) and "disconnect" not in str(exc).lower():
        return RapiProtocolError(
            f"cannot {action}: {base} does not speak HTTP the way Ganeti does ({exc})",
            url=base,
            request=request,
        )

    resolver = _find(exc, socket.gaierror)
    if isinstance(resolver, socket.gaierror):
        reason = f"host name {where.host!r} could not be resolved"
        detail = resolver.strerror or str(resolver)
        return RapiConnectionError(
            f"cannot connect to {base}: {reason} ({detail})",
            url=base,
            reason=reason,
            request=request,
        )

    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            reason = _ERRNO_WORDS[cause.errno]
            hint = ""
            if cause.errno == errno.ECONNREFUSED:
                hint = f" (is ganeti-rapi running and listening on port {where.port}?)"
            return RapiConnectionError(
                f"cannot connect to {base}: {reason}{hint}",
                url=base,
                reason=reason,
                request=request,
            )

    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        reason = "the connection was closed before an answer arrived"
        return RapiConnectionError(
            f"cannot {action}: {reason} by {base} ({exc or type(exc).__name__})",
            url=base,
            reason=reason,
            request=request,
        )
    reason = str(exc) or type(exc).__name__
    return RapiConnectionError(
        f"cannot connect to {base}: {reason}", url=base, reason=reason, request=request
    )
