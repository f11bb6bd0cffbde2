"""TLS trust for a Ganeti cluster: system CAs, a CA file, or a pinned certificate.

Ganeti's RAPI certificate is self-signed, so by default (system CAs) the
handshake fails and says how to trust it. Three ways to trust it:

- ``ca_file=``: the cluster's PEM (``/var/lib/ganeti/rapi.pem`` without the
  key) acts as its own CA. Host names are still checked against the
  certificate's subjectAltName; ``check_hostname=False`` turns that off for
  certificates made without one (Python never matches the CN).
- ``fingerprint=``: the SHA-256 of the DER certificate. The client first
  fetches the peer's certificate on a throw-away connection that sends
  nothing, compares it, and only then connects with a context that trusts
  exactly that certificate, so credentials never reach an impostor.
- ``verify=False``: no verification at all, only when asked for.

Contexts are made once per trust (CA file and its content, pinned
certificate, mode) and kept for the process: building one costs 1 ms with a
CA file and 65 ms with the system CAs, and a sync worker opens a client per
cluster per round. A context is safe to share between threads and clients.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import ssl
from dataclasses import dataclass

_HEX = re.compile(r"[0-9a-f]+")


def normalize_fingerprint(value: str) -> str:
    """Lower-case hex of a SHA-256 fingerprint given in any usual spelling.

    Accepts ``AB:CD:...``, ``abcd...``, spaces, and the prefixes ``sha256:``,
    ``SHA256:`` and OpenSSL's ``sha256 Fingerprint=``.
    """
    text = value.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = re.sub(r"[\s:-]", "", text)
    if not _HEX.fullmatch(text or "x"):
        raise ValueError(f"TLS fingerprint {value!r} is not hexadecimal")
    if len(text) != 64:
        hint = " (that is a SHA-1 fingerprint)" if len(text) == 40 else ""
        raise ValueError(
            f"TLS fingerprint must be the SHA-256 of the certificate: 64 hex digits, "
            f"got {len(text)}{hint}; e.g. `openssl x509 -noout -fingerprint -sha256 -in rapi.pem`"
        )
    return text


def format_fingerprint(hex_digest: str) -> str:
    """``AB:CD:...``, the way ``openssl x509 -fingerprint -sha256`` prints it."""
    digits = normalize_fingerprint(hex_digest).upper()
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


def certificate_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as lower-case hex."""
    return hashlib.sha256(der).hexdigest()


def fetch_peer_certificate(host: str, port: int, *, timeout: float | None) -> bytes:
    """The DER certificate ``host:port`` presents; nothing is sent but the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to read the certificate we then compare
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return der


#: Distinct trusts kept (clusters registered with different CAs or pins).
_KEPT_CONTEXTS = 1024


@functools.lru_cache(maxsize=_KEPT_CONTEXTS)
def pinned_context(der: bytes) -> ssl.SSLContext:
    """A context that trusts exactly this certificate and nothing else (kept per certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The pin is stronger than a name check, and Ganeti's certificate often
    # has no subjectAltName at all.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=der)
    # Lets a CA-issued leaf act as its own anchor too.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


@dataclass(frozen=True)
class TLSSettings:
    """How the client decides to trust the cluster's certificate."""

    verify: bool = True
    ca_file: str | None = None
    fingerprint: str | None = None
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.fingerprint is not None:
            object.__setattr__(self, "fingerprint", normalize_fingerprint(self.fingerprint))
            if self.ca_file is not None:
                raise ValueError("give either ca_file= or fingerprint=, not both")
        if not self.verify and (self.ca_file or self.fingerprint):
            raise ValueError("verify=False cannot be combined with ca_file= or fingerprint=")

    @property
    def pinned(self) -> bool:
        return self.fingerprint is not None

    @property
    def mode(self) -> str:
        if self.fingerprint:
            return "fingerprint"
        if self.ca_file:
            return "ca_file"
        return "system" if self.verify else "insecure"

    def context(self) -> ssl.SSLContext:
        """The context for every mode but pinning (see :func:`pinned_context`), kept per
        trust: a CA file is told apart by its content's size and modification time."""
        if self.pinned:
            raise RuntimeError("a pinned context needs the peer certificate first")
        if not self.verify:
            return _insecure_context()
        version = None
        if self.ca_file:
            stat = os.stat(self.ca_file)
            version = (stat.st_mtime_ns, stat.st_size)
        return _verifying_context(self.ca_file, version, self.check_hostname)


@functools.lru_cache(maxsize=1)
def _insecure_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@functools.lru_cache(maxsize=_KEPT_CONTEXTS)
def _verifying_context(
    ca_file: str | None, version: tuple[int, int] | None, check_hostname: bool
) -> ssl.SSLContext:
    """``version`` only keys the cache: a rewritten CA file gets a new context."""
    context = ssl.create_default_context(cafile=ca_file)
    if ca_file:
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = check_hostname
    return context
