"""Naming failures below HTTP from the exception chains httpx and anyio produce."""

from __future__ import annotations

import errno
import socket
import ssl

import httpx
import pytest

from gwm.rapi.errors import RapiConnectionError, RapiProtocolError, RapiTimeout, RapiTLSError
from gwm.rapi.tls import TLSSettings
from gwm.rapi.transport import Endpoint, transport_error

WHERE = Endpoint("https://cluster:5080", "cluster", 5080, TLSSettings())
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def wrapped(
    cause: BaseException, outer: type[httpx.HTTPError] = httpx.ConnectError
) -> BaseException:
    """The way httpx raises: its error, from httpcore's, ``from None`` over the OS error."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError(exc) from None
    except RuntimeError as middle:
        error = outer(str(cause))
        error.__cause__ = middle
        return error


def name(exc: BaseException, where: Endpoint = WHERE) -> Exception:
    return transport_error(exc, where=where, timeout=TIMEOUT, action="list instances")


def test_refused() -> None:
    error = name(wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")))
    assert type(error) is RapiConnectionError
    assert str(error) == (
        "cannot connect to https://cluster:5080: connection refused "
        "(is ganeti-rapi running and listening on port 5080?)"
    )


def test_refused_inside_an_exception_group() -> None:
    group = ExceptionGroup("all failed", [ConnectionRefusedError(errno.ECONNREFUSED, "refused")])
    outer = OSError("All connection attempts failed")
    outer.__cause__ = group
    assert "connection refused" in str(name(wrapped(outer)))


def test_dns() -> None:
    error = name(wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known")))
    assert str(error) == (
        "cannot connect to https://cluster:5080: host name 'cluster' could not be resolved "
        "(Name or service not known)"
    )


def test_no_route() -> None:
    error = name(wrapped(OSError(errno.EHOSTUNREACH, "No route to host")))
    assert str(error) == "cannot connect to https://cluster:5080: no route to host"


@pytest.mark.parametrize(
    ("exc", "phase", "text"),
    [
        (
            httpx.ConnectTimeout("t"),
            "connect",
            "cannot connect to https://cluster:5080: timed out after 5 s",
        ),
        (
            httpx.ReadTimeout("t"),
            "read",
            "cannot list instances: https://cluster:5080 sent no answer within 30 s",
        ),
        (httpx.PoolTimeout("t"), "pool", "no free connection"),
        (TimeoutError("t"), "connect", "timed out after 5 s"),
    ],
)
def test_timeouts(exc: BaseException, phase: str, text: str) -> None:
    error = name(exc)
    assert isinstance(error, RapiTimeout) and isinstance(error, RapiConnectionError)
    assert error.phase == phase
    assert text in str(error)


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_code = code
    error.verify_message = message
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


def test_tls_verify_failures_say_what_to_do() -> None:
    self_signed = name(wrapped(_verify_error(18, "self-signed certificate")))
    assert isinstance(self_signed, RapiTLSError)
    assert "self-signed" in str(self_signed) and "fingerprint=" in str(self_signed)
    expired = name(wrapped(_verify_error(10, "certificate has expired")))
    assert "renew-crypto" in str(expired)
    with_ca = Endpoint("https://cluster:5080", "cluster", 5080, TLSSettings(ca_file="/etc/ca.pem"))
    wrong_ca = name(wrapped(_verify_error(20, "unable to get local issuer certificate")), with_ca)
    assert "is not trusted by the CA file /etc/ca.pem" in str(wrong_ca)
    mismatch = name(
        wrapped(_verify_error(62, "Hostname mismatch, certificate is not valid for 'cluster'."))
    )
    assert "check_hostname=False" in str(mismatch)


def test_plain_http_on_the_tls_port() -> None:
    failure = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    failure.reason = "WRONG_VERSION_NUMBER"
    error = name(wrapped(failure))
    assert isinstance(error, RapiTLSError)
    assert "is it plain HTTP?" in str(error)


def test_a_server_that_hangs_up_is_a_connection_error_but_garbage_is_a_protocol_error() -> None:
    hangup = name(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    assert type(hangup) is RapiConnectionError
    garbage = name(httpx.RemoteProtocolError("illegal status line: bytearray(b'SSH-2.0')"))
    assert isinstance(garbage, RapiProtocolError)
