"""How gwm reaches one registered cluster: a RAPI client built from its row.

The only module of this app that imports the RAPI client. It also turns the
client's exceptions into the two outcomes the sync engine cares about
(:class:`SyncFailure` with ``reachable`` False → UNREACHABLE, True → ERROR)
and the problems a registration answers with.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from django.conf import settings

from gwm.clusters.models import Cluster
from gwm.kit.crypto import SecretUnreadable, decrypt
from gwm.rapi import RapiClient
from gwm.rapi.errors import (
    RapiConnectionError,
    RapiError,
    RapiForbidden,
    RapiHTTPError,
    RapiNotFound,
    RapiProtocolError,
    RapiServerError,
    RapiTLSError,
    RapiUnauthorized,
)

#: Sync reads must never hang a worker: bounded connect and read timeouts.
SYNC_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
PROBE_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=5.0, pool=5.0)


class SyncFailure(Exception):
    """A round could not read the cluster. ``reachable``: did Ganeti answer at all."""

    def __init__(self, message: str, *, reachable: bool) -> None:
        super().__init__(message)
        self.reachable = reachable


def ca_file_for(pem: str) -> str:
    """The CA PEM as a file (the client takes a path), keyed by its content."""
    digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
    directory = settings.DATA_DIR / "tls"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ca-{digest}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def build_client(
    *,
    rapi_url: str,
    username: str,
    password: str,
    tls_ca_pem: str = "",
    tls_fingerprint: str = "",
    tls_verify: bool = True,
    timeout: httpx.Timeout = SYNC_TIMEOUT,
) -> RapiClient:
    tls: dict[str, Any] = {}
    if tls_fingerprint:
        tls["fingerprint"] = tls_fingerprint
    elif tls_ca_pem:
        tls["ca_file"] = ca_file_for(tls_ca_pem)
        # Ganeti's certificates name the cluster, rarely the address gwm uses.
        tls["check_hostname"] = False
    elif not tls_verify:
        tls["verify"] = False
    return RapiClient(
        rapi_url,
        username=username or None,
        password=password or None,
        timeout=timeout,
        **tls,
    )


def client_for(cluster: Cluster, timeout: httpx.Timeout = SYNC_TIMEOUT) -> RapiClient:
    try:
        password = decrypt(cluster.password_encrypted) if cluster.password_encrypted else ""
    except SecretUnreadable:
        raise SyncFailure(
            "the stored RAPI password cannot be decrypted (was GWM_SECRET_KEY changed?); "
            "set the password again",
            reachable=True,
        ) from None
    return build_client(
        rapi_url=cluster.rapi_url,
        username=cluster.username,
        password=password,
        tls_ca_pem=cluster.tls_ca_pem,
        tls_fingerprint=cluster.tls_fingerprint,
        tls_verify=cluster.tls_verify,
        timeout=timeout,
    )


class RapiReader:
    """The sync engine's view of a cluster (see :class:`gwm.clusters.sync.GanetiReader`)."""

    def __init__(self, client: RapiClient) -> None:
        self._client = client

    def query(
        self, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]:
        try:
            return self._client.query_rows(resource, fields, qfilter=qfilter)
        except RapiError as exc:
            raise as_sync_failure(exc) from exc

    def close(self) -> None:
        self._client.close()

    @property
    def http_seconds(self) -> float:
        return self._client.http_seconds

    def cluster_info(self) -> dict[str, Any]:
        try:
            info = self._client.get_cluster_info()
        except RapiError as exc:
            raise as_sync_failure(exc) from exc
        return info.model_dump(mode="json", exclude_none=True)


def reader_for(cluster: Cluster) -> RapiReader:
    """A reader over a new client; close it when done."""
    return RapiReader(client_for(cluster))


def as_sync_failure(exc: RapiError) -> SyncFailure:
    """No answer, or the master daemon away (502/503/504): unreachable. Anything else: error."""
    unreachable = isinstance(exc, RapiConnectionError | RapiServerError)
    return SyncFailure(str(exc), reachable=not unreachable)


def probe_problem(exc: RapiError) -> tuple[str, str]:
    """(code, detail) for a registration whose RAPI check failed."""
    if isinstance(exc, RapiTLSError):
        return "rapi_tls_failed", str(exc)
    if isinstance(exc, RapiUnauthorized):
        return "rapi_auth_failed", str(exc)
    if isinstance(exc, RapiForbidden):
        return "rapi_forbidden", str(exc)
    if isinstance(exc, RapiConnectionError):
        return "rapi_unreachable", str(exc)
    if isinstance(exc, RapiProtocolError | RapiNotFound):
        return "not_ganeti", f"this URL does not answer like Ganeti RAPI v2: {exc}"
    if isinstance(exc, RapiHTTPError):
        return "rapi_error", str(exc)
    return "rapi_error", str(exc)
