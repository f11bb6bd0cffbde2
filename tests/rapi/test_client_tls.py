"""TLS trust against a real local TLS server: CA file, pinning, verify=False, failures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gwm.rapi import AsyncRapiClient, RapiClient, RapiConnectionError, RapiTLSError
from gwm.rapi.tls import certificate_fingerprint, format_fingerprint
from tests.rapi.certs import Cert, make_cert
from tests.rapi.conftest import server_context
from tests.rapi.server import RapiTestServer, Reply


def _client(server: RapiTestServer, **options: object) -> RapiClient:
    options.setdefault("retries", 0)
    return RapiClient(server.url, username="gwm", password="secret", **options)  # type: ignore[arg-type]


def test_ca_file_trusts_the_self_signed_certificate(
    tls_server: RapiTestServer, server_cert: Cert
) -> None:
    with _client(tls_server, ca_file=server_cert.cert_file) as rapi:
        assert rapi.get_version() == 2
    assert tls_server.requests[0].headers["authorization"].startswith("Basic ")


def test_ca_file_checks_the_host_name_against_the_san(
    tls_server: RapiTestServer, server_cert: Cert
) -> None:
    url = f"https://localhost:{tls_server.port}"
    with RapiClient(url, ca_file=server_cert.cert_file, retries=0) as rapi:
        assert rapi.get_cluster_info().name == "cluster.test"


def test_a_certificate_for_another_name_fails_with_a_hint(cert_dir: Path) -> None:
    cert = make_cert(cert_dir, "wrong-name", common_name="cluster.test", sans=("cluster.test",))
    with RapiTestServer(server_context(cert)) as server:
        server.route("GET", "/version", Reply(json=2))
        with pytest.raises(RapiTLSError) as raised, _client(server, ca_file=cert.cert_file) as rapi:
            rapi.get_version()
        assert "is not valid for the name '127.0.0.1'" in str(raised.value)
        assert "check_hostname=False" in str(raised.value)
        assert server.requests == []
        with _client(server, ca_file=cert.cert_file, check_hostname=False) as rapi:
            assert rapi.get_version() == 2


def test_a_ganeti_style_certificate_without_san_works_without_host_name_check(
    cert_dir: Path,
) -> None:
    cert = make_cert(cert_dir, "cn-only", common_name="cluster.test", sans=())
    with RapiTestServer(server_context(cert)) as server:
        server.route("GET", "/version", Reply(json=2))
        with _client(server, ca_file=cert.cert_file, check_hostname=False) as rapi:
            assert rapi.get_version() == 2


def test_a_wrong_ca_file_fails_with_rapi_tls_error(
    tls_server: RapiTestServer, other_cert: Cert
) -> None:
    with (
        pytest.raises(RapiTLSError) as raised,
        _client(tls_server, ca_file=other_cert.cert_file) as rapi,
    ):
        rapi.get_version()
    message = str(raised.value)
    assert (
        f"TLS certificate of 127.0.0.1:{tls_server.port} is not trusted by the CA file" in message
    )
    assert str(other_cert.cert_file) in message
    assert tls_server.requests == []


def test_the_default_system_cas_reject_a_self_signed_certificate_and_say_what_to_do(
    tls_server: RapiTestServer,
) -> None:
    with pytest.raises(RapiTLSError) as raised, _client(tls_server) as rapi:
        rapi.get_version()
    message = str(raised.value)
    assert "could not be verified with the system CAs" in message
    assert "self-signed" in message
    assert "ca_file=" in message and "fingerprint=" in message
    assert tls_server.requests == []


def test_an_expired_certificate_is_named_as_such(cert_dir: Path) -> None:
    cert = make_cert(cert_dir, "expired", expired=True)
    with (
        RapiTestServer(server_context(cert)) as server,
        pytest.raises(RapiTLSError, match="has expired"),
        _client(server, ca_file=cert.cert_file) as rapi,
    ):
        rapi.get_version()


@pytest.mark.parametrize("spelling", ["colons", "plain", "openssl"])
def test_a_matching_fingerprint_is_trusted(
    tls_server: RapiTestServer, server_cert: Cert, spelling: str
) -> None:
    digest = certificate_fingerprint(server_cert.der)
    pin = {
        "colons": format_fingerprint(digest),
        "plain": digest,
        "openssl": f"sha256 Fingerprint={format_fingerprint(digest)}",
    }[spelling]
    with _client(tls_server, fingerprint=pin) as rapi:
        assert rapi.get_version() == 2
        assert rapi.get_cluster_info().software_version == "3.0.2"
    # One look at the certificate, then the real requests.
    assert [r.path for r in tls_server.requests] == ["/version", "/2/info"]


def test_a_fingerprint_mismatch_fails_before_anything_is_sent(
    tls_server: RapiTestServer, server_cert: Cert, other_cert: Cert
) -> None:
    pin = certificate_fingerprint(other_cert.der)
    with pytest.raises(RapiTLSError) as raised, _client(tls_server, fingerprint=pin) as rapi:
        rapi.get_version()
    error = raised.value
    assert error.expected_fingerprint == format_fingerprint(pin)
    assert error.actual_fingerprint == format_fingerprint(certificate_fingerprint(server_cert.der))
    message = str(error)
    assert "does not match the pinned fingerprint" in message
    assert error.expected_fingerprint in message and error.actual_fingerprint in message
    assert "nothing was sent" in message
    # The handshake happened (to read the certificate), no HTTP request did:
    # the credentials never left the client.
    assert tls_server.connections == 1
    assert tls_server.requests == []


def test_a_certificate_changed_after_pinning_is_reported_as_a_mismatch(
    server_cert: Cert, other_cert: Cert
) -> None:
    pin = certificate_fingerprint(server_cert.der)
    with RapiTestServer(server_context(server_cert)) as first:
        # Closed after the answer, so the next request needs a new handshake.
        first.route("GET", "/version", Reply(json=2, headers={"Connection": "close"}))
        port = first.port
        rapi = _client(first, fingerprint=pin)
        assert rapi.get_version() == 2
    with RapiTestServer(server_context(other_cert), port=port) as second, rapi:
        second.route("GET", "/version", Reply(json=2))
        with pytest.raises(RapiTLSError) as raised:
            rapi.get_version()
        assert raised.value.actual_fingerprint == format_fingerprint(
            certificate_fingerprint(other_cert.der)
        )
        assert second.requests == []


async def test_async_fingerprint_pinning(
    tls_server: RapiTestServer, server_cert: Cert, other_cert: Cert
) -> None:
    good = certificate_fingerprint(server_cert.der)
    async with AsyncRapiClient(tls_server.url, fingerprint=good, retries=0) as rapi:
        assert await rapi.get_version() == 2
    bad = certificate_fingerprint(other_cert.der)
    async with AsyncRapiClient(tls_server.url, username="u", password="p", fingerprint=bad) as rapi:
        with pytest.raises(RapiTLSError, match="does not match the pinned fingerprint"):
            await rapi.get_version()
    assert [r.path for r in tls_server.requests] == ["/version"]
    assert "authorization" not in tls_server.requests[0].headers


def test_verify_false_accepts_any_certificate(tls_server: RapiTestServer) -> None:
    with _client(tls_server, verify=False) as rapi:
        assert rapi.get_version() == 2


async def test_async_ca_file_and_wrong_ca(
    tls_server: RapiTestServer, server_cert: Cert, other_cert: Cert
) -> None:
    async with AsyncRapiClient(tls_server.url, ca_file=server_cert.cert_file) as rapi:
        assert await rapi.get_version() == 2
    async with AsyncRapiClient(tls_server.url, ca_file=other_cert.cert_file, retries=0) as rapi:
        with pytest.raises(RapiTLSError, match="is not trusted by the CA file"):
            await rapi.get_version()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_port_is_a_connection_error_with_a_clear_message() -> None:
    port = _free_port()
    with (
        RapiClient(f"https://127.0.0.1:{port}", verify=False, retries=0) as rapi,
        pytest.raises(RapiConnectionError) as raised,
    ):
        rapi.get_version()
    assert str(raised.value) == (
        f"cannot connect to https://127.0.0.1:{port}: connection refused "
        f"(is ganeti-rapi running and listening on port {port}?)"
    )
    assert raised.value.reason == "connection refused"


async def test_async_unreachable_port_is_a_connection_error() -> None:
    port = _free_port()
    async with AsyncRapiClient(f"https://127.0.0.1:{port}", verify=False, retries=0) as rapi:
        with pytest.raises(RapiConnectionError, match="connection refused"):
            await rapi.get_version()


def test_an_unreachable_port_with_a_pin_fails_while_reading_the_certificate() -> None:
    port = _free_port()
    with (
        RapiClient(f"https://127.0.0.1:{port}", fingerprint="ab" * 32, retries=0) as rapi,
        pytest.raises(RapiConnectionError, match="connection refused"),
    ):
        rapi.get_version()


def test_an_unknown_host_name_is_a_connection_error() -> None:
    url = "https://no-such-cluster.invalid:5080"
    with (
        RapiClient(url, verify=False, retries=0) as rapi,
        pytest.raises(RapiConnectionError) as raised,
    ):
        rapi.get_version()
    assert "host name 'no-such-cluster.invalid' could not be resolved" in str(raised.value)


def test_https_to_a_plain_http_server_is_a_tls_error_with_a_hint(
    http_server: RapiTestServer,
) -> None:
    url = http_server.url.replace("http://", "https://")
    with (
        RapiClient(url, verify=False, retries=0) as rapi,
        pytest.raises(RapiTLSError) as raised,
    ):
        rapi.get_version()
    assert f"TLS handshake with 127.0.0.1:{http_server.port} failed" in str(raised.value)
