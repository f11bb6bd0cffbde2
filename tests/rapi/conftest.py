from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rapi.certs import Cert, make_cert
from tests.rapi.server import RapiTestServer, Reply


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def server_cert(cert_dir: Path) -> Cert:
    """The server's self-signed certificate, valid for localhost and 127.0.0.1."""
    return make_cert(cert_dir, "server")


@pytest.fixture(scope="session")
def other_cert(cert_dir: Path) -> Cert:
    """An unrelated self-signed certificate: the wrong CA, the wrong pin."""
    return make_cert(cert_dir, "other")


def server_context(cert: Cert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    return context


def serve_rapi(server: RapiTestServer) -> None:
    """Routes every client test may use."""
    server.route("GET", "/version", Reply(json=2))
    server.route(
        "GET", "/2/info", Reply(json={"name": "cluster.test", "software_version": "3.0.2"})
    )


@pytest.fixture
def tls_server(server_cert: Cert) -> Iterator[RapiTestServer]:
    with RapiTestServer(server_context(server_cert)) as server:
        serve_rapi(server)
        yield server


@pytest.fixture
def http_server() -> Iterator[RapiTestServer]:
    with RapiTestServer() as server:
        serve_rapi(server)
        yield server
