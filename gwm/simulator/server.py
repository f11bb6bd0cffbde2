"""Serving simulators over HTTP(S) with uvicorn: blocking, or in a thread.

Like Ganeti, HTTPS is the default, with a self-signed certificate made at
start for the given hostname and 127.0.0.1 (written to a file so clients can
pin it). ``serve_in_thread`` runs one cluster per port inside this process;
start several for multi-cluster benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import ipaddress
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gwm.simulator.app import Simulator
from gwm.simulator.asgi import build_app


def port_problem(host: str, port: int) -> str | None:
    """Why the simulator could not listen on ``host:port`` now, or None if it can.

    Binds a socket as uvicorn does (``SO_REUSEADDR``: a port in TIME_WAIT is
    free, one with a listener is taken) and closes it again at once.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, OverflowError) as exc:
        return f"cannot listen on {host}:{port} ({exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def make_certificate(hostname: str, cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate (usable as its own CA) for hostname + 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    with contextlib.suppress(ValueError):
        alt_names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    if loopback not in alt_names:
        alt_names.append(loopback)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)


def _tls_files(hostname: str, cert_out: str | Path | None) -> tuple[Path, Path]:
    if cert_out is None:
        directory = Path(tempfile.mkdtemp(prefix="gwm-simulator-"))
        cert_path = directory / "rapi.pem"
    else:
        cert_path = Path(cert_out)
    key_path = cert_path.with_name(cert_path.name + ".key")
    make_certificate(hostname, cert_path, key_path)
    return cert_path, key_path


def uvicorn_config(
    sim: Simulator,
    *,
    host: str,
    port: int,
    tls: bool,
    hostname: str,
    cert_out: str | Path | None,
) -> tuple[uvicorn.Config, Path | None]:
    cert_path: Path | None = None
    kwargs: dict[str, object] = {}
    if tls:
        cert_path, key_path = _tls_files(hostname, cert_out)
        kwargs = {"ssl_certfile": str(cert_path), "ssl_keyfile": str(key_path)}
    config = uvicorn.Config(
        build_app(sim),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
        # Stopping must not wait for clients that keep idle connections open.
        timeout_graceful_shutdown=1,
        **kwargs,  # type: ignore[arg-type]
    )
    return config, cert_path


@dataclass
class Running:
    """A simulator serving in a background thread."""

    url: str
    cert_path: Path | None
    sim: Simulator
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_thread(
    sim: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = True,
    hostname: str | None = None,
    cert_out: str | Path | None = None,
    start_timeout: float = 10.0,
) -> Running:
    """Start serving ``sim`` in a daemon thread; port 0 picks a free port."""
    config, cert_path = uvicorn_config(
        sim, host=host, port=port, tls=tls, hostname=hostname or host, cert_out=cert_out
    )
    # uvicorn installs no signal handlers outside the main thread
    server = uvicorn.Server(config)

    def run() -> None:
        asyncio.run(server.serve())

    thread = threading.Thread(target=run, name=f"gwm-simulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    url_host = hostname or host
    return Running(f"{scheme}://{url_host}:{bound}", cert_path, sim, server, thread)


def serve(
    sim: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 5080,
    tls: bool = True,
    hostname: str | None = None,
    cert_out: str | Path | None = None,
    announce: bool = True,
) -> None:
    """Serve ``sim`` until interrupted."""
    config, cert_path = uvicorn_config(
        sim, host=host, port=port, tls=tls, hostname=hostname or host, cert_out=cert_out
    )
    if announce:
        scheme = "https" if tls else "http"
        s = sim.state
        print(
            f"gwm simulator: cluster {s.info['name']} ({len(s.nodes)} nodes,"
            f" {len(s.instances)} instances) at {scheme}://{hostname or host}:{port}",
            flush=True,
        )
        if cert_path is not None:
            print(f"gwm simulator: certificate {cert_path}", flush=True)
        users = ", ".join(f"{u}:{v[0]} ({'/'.join(sorted(v[1]))})" for u, v in sim.users.items())
        print(f"gwm simulator: users {users}; admin API at /__sim__/", flush=True)
    uvicorn.Server(config).run()
