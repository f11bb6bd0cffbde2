"""Proposed gwm changes, applied inside one benchmark process only, to measure them first.

Nothing here changes files in ``gwm/``: each patch replaces a function in the
running process, so a benchmark can show a change's gain before anyone makes
it. Each patch names the place in gwm it stands for.

- ``client-cache``: ``gwm.sync.rounds.run_due_tiers`` builds a new ``RapiClient``
  (SSL context, CA file, TLS handshake, password decryption) for every
  round; here one client per cluster and connection settings is kept for
  the process (keep-alive; real Ganeti closes every connection, so there
  only the client-side setup is saved).
"""

from __future__ import annotations

import threading
from typing import Any

PATCHES = ("client-cache",)


class _KeptClient:
    """A cached client whose ``close()`` (called after every round) keeps it open."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        return None


def _client_cache() -> Any:
    from gwm.ganeti import connect

    clients: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()
    build = connect.client_for

    def cached_client(cluster: Any, *args: Any, **kwargs: Any) -> Any:
        key = (
            cluster.pk,
            cluster.rapi_url,
            cluster.username,
            cluster.password_encrypted,
            cluster.tls_ca_pem,
            cluster.tls_fingerprint,
            cluster.tls_verify,
        )
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = _KeptClient(build(cluster, *args, **kwargs))
        return client

    return cached_client


class Patched:
    """Applied patches, and how to take them back (so rounds can alternate A/B)."""

    def __init__(self, names: list[str]) -> None:
        unknown = sorted(set(names) - set(PATCHES))
        if unknown:
            raise ValueError(f"unknown what-if patches {unknown}; choose from {PATCHES}")
        self.names = [name for name in PATCHES if name in names]
        self._saved: list[tuple[Any, str, Any]] = []

    def _replace(self, owner: Any, attribute: str, value: Any) -> None:
        self._saved.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, value)

    def __enter__(self) -> Patched:
        from gwm.sync import rounds

        if "client-cache" in self.names:
            # rounds imported client_for by name: replace it there.
            self._replace(rounds, "client_for", _client_cache())
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            owner, attribute, value = self._saved.pop()
            setattr(owner, attribute, value)


def apply(names: list[str]) -> list[str]:
    """Apply the named patches for the rest of this process; returns what was applied."""
    return Patched(names).__enter__().names
