"""Proposed gwm changes, applied inside one benchmark process only, to measure them first.

Nothing here changes files in ``gwm/``: each patch replaces a function in the
running process, so a benchmark can show a change's gain before anyone makes
it. Each patch names the place in gwm it stands for.

- ``executemany``: ``sync._apply_objects`` writes changed rows with Django's
  ``QuerySet.bulk_update`` (a ``CASE WHEN`` per column per batch of 500);
  here ``bulk_update`` sends one ``UPDATE … SET col = %s … WHERE id = %s``
  per row with ``executemany``.
- ``lean-query``: ``ganeti.RapiReader.query`` validates every cell as a
  ``QueryCell`` named tuple with an enum (``rapi.models.QueryResult``) and
  then copies the rows to lists; here the rows are checked as lists of
  ``[int, value]`` pairs with one ``TypeAdapter`` and used as they are.
- ``client-cache``: ``tasks.run_due_tiers`` builds a new ``RapiClient``
  (SSL context, CA file, TLS handshake, password decryption) for every
  round; here one client per cluster and connection settings is kept for
  the process (keep-alive; real Ganeti closes every connection, so there
  only the client-side setup is saved).
"""

from __future__ import annotations

import threading
from typing import Any

PATCHES = ("executemany", "lean-query", "client-cache")


def executemany_bulk_update(self: Any, objs: Any, fields: Any, batch_size: Any = None) -> int:
    """``bulk_update`` as one parametrised UPDATE per row, sent with ``executemany``."""
    from django.db import connections

    objs = list(objs)
    if not objs:
        return 0
    connection = connections[self.db]
    meta = self.model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    # Identifiers come from the model's meta (quoted); every value is a parameter.
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(objs)


def _lean_query() -> None:
    from pydantic import TypeAdapter

    from gwm.clusters import ganeti
    from gwm.rapi.endpoints.query import query
    from gwm.rapi.errors import RapiError
    from gwm.rapi.requests import RapiCall

    rows_adapter = TypeAdapter(list[list[tuple[int, Any]]])

    def parse(value: Any) -> list[list[list[Any]]]:
        rows = rows_adapter.validate_python(value["data"])
        return [[[status, cell] for status, cell in row] for row in rows]

    def lean(
        self: Any, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]:
        call = RapiCall(query(resource, fields, qfilter=qfilter).request, parse)
        try:
            result: list[list[list[Any]]] = self._client.send(call)
        except RapiError as exc:
            raise ganeti.as_sync_failure(exc) from exc
        return result

    ganeti.RapiReader.query = lean  # type: ignore[method-assign]


class _KeptClient:
    """A cached client whose ``close()`` (called after every round) keeps it open."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def close(self) -> None:
        return None


def _client_cache() -> None:
    from gwm.clusters import ganeti, tasks

    clients: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()
    build = ganeti.client_for

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

    # tasks imported these by name; replace whichever this version of tasks uses.
    if hasattr(tasks, "client_for"):
        setattr(tasks, "client_for", cached_client)  # noqa: B010
    if hasattr(tasks, "reader_for"):
        setattr(tasks, "reader_for", lambda cluster: ganeti.RapiReader(cached_client(cluster)))  # noqa: B010


def apply(names: list[str]) -> list[str]:
    """Apply the named patches in this process; returns what was applied."""
    unknown = sorted(set(names) - set(PATCHES))
    if unknown:
        raise ValueError(f"unknown what-if patches {unknown}; choose from {PATCHES}")
    if "executemany" in names:
        from django.db.models.query import QuerySet

        QuerySet.bulk_update = executemany_bulk_update  # type: ignore[method-assign]
    if "lean-query" in names:
        _lean_query()
    if "client-cache" in names:
        _client_cache()
    return [name for name in PATCHES if name in names]
