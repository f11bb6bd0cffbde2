"""A RAPI client for one registered cluster, built from its stored connection.

Every RAPI client gwm uses is made here, with timeouts from the settings
(``GWM_HTTP_TIMEOUT_SECONDS`` bounds every read), so no worker ever hangs on
a cluster that stopped answering.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from django.conf import settings

from gwm.clusters.models import Cluster
from gwm.ganeti.failures import RoundFailure
from gwm.kit.crypto import SecretUnreadable, decrypt
from gwm.rapi import RapiClient

CONNECT_SECONDS = 5.0
#: A registration's check answers a person waiting: it gives up sooner than a round.
PROBE_READ_SECONDS = 15.0


def rapi_timeout(*, probe: bool = False) -> httpx.Timeout:
    read = float(settings.GWM_HTTP_TIMEOUT_SECONDS)
    if probe:
        read = min(read, PROBE_READ_SECONDS)
    return httpx.Timeout(connect=CONNECT_SECONDS, read=read, write=10.0, pool=CONNECT_SECONDS)


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
    probe: bool = False,
) -> RapiClient:
    """A client for these connection settings (a registration's check, or a cluster's)."""
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
        timeout=rapi_timeout(probe=probe),
        **tls,
    )


def stored_password(cluster: Cluster) -> str:
    """The cluster's RAPI password; a RoundFailure when it can no longer be decrypted."""
    try:
        return decrypt(cluster.password_encrypted) if cluster.password_encrypted else ""
    except SecretUnreadable:
        raise RoundFailure(
            "the stored RAPI password cannot be decrypted (was GWM_SECRET_KEY changed?); "
            "set the password again",
            reachable=True,
        ) from None


def client_for(cluster: Cluster) -> RapiClient:
    """A client over ``cluster``'s stored connection; close it when done."""
    return build_client(
        rapi_url=cluster.rapi_url,
        username=cluster.username,
        password=stored_password(cluster),
        tls_ca_pem=cluster.tls_ca_pem,
        tls_fingerprint=cluster.tls_fingerprint,
        tls_verify=cluster.tls_verify,
    )
