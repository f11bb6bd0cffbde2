"""Write one kind of a cluster's cached objects from a read: compare, update, insert, delete.

``upsert_objects`` loads only the columns a read compares, writes each changed row's own
changed columns with one ``executemany`` per set of columns, inserts new rows the same way,
stamps rows whose only news is ``runtime_synced_at`` with one ``UPDATE``, and returns one
change record per object that changed. ``gwm.clusters.services.cache`` calls it inside a
round's (or a job's) transaction; it never opens one itself.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import connections

from gwm.accounts.services.ownership import bindings_forget_instances
from gwm.clusters.models import Cluster, Instance, Node
from gwm.events.models import ChangeAction
from gwm.events.services import ChangeRecord


def tag_index(tags: list[str]) -> str:
    return "\n" + "".join(f"{tag}\n" for tag in tags) if tags else ""


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


#: What each model's ``derive_status`` reads besides ``held_by_job`` and ``status``.
_STATUS_INPUTS: dict[Any, tuple[str, ...]] = {
    Instance: ("ganeti_status", "admin_state"),
    Node: ("offline", "drained", "reachable"),
}
#: Rows per ``pk IN (…)``.
_BATCH = 500


def compared_columns(model: Any, rows: dict[str, dict[str, Any]]) -> list[str]:
    """The columns a round compares: those its rows carry, plus status and bookkeeping.

    Loading only these (not every JSON column of every object) is most of a
    runtime sweep's saving.
    """
    wanted = {"id", "name", "status", "held_by_job", "runtime_synced_at"}
    wanted.update(_STATUS_INPUTS.get(model, ()))
    for values in rows.values():
        wanted.update(values)
    if "tags" in wanted:
        wanted.add("tag_index")
    return sorted(wanted & {f.name for f in model._meta.concrete_fields})


def _update_rows(model: Any, using: str, groups: dict[tuple[str, ...], list[Any]]) -> None:
    """One ``UPDATE … SET <each row's own changed columns> WHERE id = %s`` per group, sent
    with ``executemany``: Django's ``bulk_update`` builds a ``CASE WHEN id = …`` per row per
    column and writes the union of all changed columns to every row."""
    connection = connections[using]
    meta = model._meta
    quote = connection.ops.quote_name
    for names, objs in groups.items():
        fields = [meta.get_field(name) for name in names]
        # Identifiers come from the model's meta (quoted); every value is a parameter.
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
        params = [
            [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] + [obj.pk]
            for obj in objs
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def _insert_rows(model: Any, using: str, objs: list[Any]) -> None:
    """The new objects with one ``INSERT`` sent with ``executemany``: ``bulk_create``
    compiles a statement of every value per batch (most of an import's write time), and
    nothing here needs the new ids back."""
    connection = connections[using]
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    params = [
        [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields] for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def upsert_objects(
    model: Any,
    resource: str,
    cluster: Cluster,
    rows: dict[str, dict[str, Any]],
    present: set[str] | None,
    now: datetime,
    derive_status: Any = None,
    skip: Collection[str] = (),
) -> list[ChangeRecord]:
    """Upsert ``rows`` and delete what is not ``present``; return one record per change.

    Names in ``skip`` are left as they are (newer news than this read arrived).
    ``rows`` is not modified.
    """
    records: list[ChangeRecord] = []
    manager = model._default_manager
    queryset = manager.filter(cluster=cluster).order_by()
    # Few rows (a refresh, a fast round's changes): load just those; else the whole cluster.
    whole = len(rows) >= len(present) if present is not None else len(rows) > _BATCH
    existing: dict[str, Any] = {}
    if rows:
        loaded = queryset if whole else queryset.filter(name__in=list(rows))
        existing = {obj.name: obj for obj in loaded.only(*compared_columns(model, rows))}
    to_create: list[Any] = []
    changed_rows: dict[tuple[str, ...], list[Any]] = {}
    runtime_only: list[int] = []

    fields = {f.name for f in model._meta.concrete_fields}
    indexes_tags = "tag_index" in fields
    stamps_runtime = "runtime_synced_at" in fields
    for name, incoming in rows.items():
        if name in skip:
            continue
        values = dict(incoming)
        runtime = values.pop("_runtime", False) and stamps_runtime
        if indexes_tags and "tags" in values:
            values["tag_index"] = tag_index(values["tags"])
        obj = existing.get(name)
        if obj is None:
            # Runtime-only rows never create objects: the config read does.
            if "name" not in values or (present is not None and name not in present):
                continue
            obj = model(cluster=cluster, name=name, synced_at=now)
            for column, value in values.items():
                setattr(obj, column, value)
            if runtime:
                obj.runtime_synced_at = now
            if derive_status is not None:
                obj.status = derive_status(obj)
            to_create.append(obj)
            records.append(
                ChangeRecord(
                    resource,
                    name,
                    ChangeAction.CREATED,
                    sorted(values),
                    {k: jsonable(v) for k, v in values.items()},
                )
            )
            continue
        changed = [column for column, value in values.items() if getattr(obj, column) != value]
        before = {column: jsonable(getattr(obj, column)) for column in changed}
        for column in changed:
            setattr(obj, column, values[column])
        if derive_status is not None:
            status = derive_status(obj)
            if status != obj.status:
                before["status"] = obj.status
                obj.status = status
                changed.append("status")
        if changed:
            obj.synced_at = now
            written = [*changed, "synced_at"]
            if runtime:
                obj.runtime_synced_at = now
                written.append("runtime_synced_at")
            changed_rows.setdefault(tuple(sorted(written)), []).append(obj)
            records.append(
                ChangeRecord(
                    resource,
                    name,
                    ChangeAction.UPDATED,
                    sorted(changed),
                    {c: jsonable(getattr(obj, c)) for c in changed},
                    before,
                )
            )
        elif runtime:
            runtime_only.append(obj.pk)

    if to_create:
        _insert_rows(model, queryset.db, to_create)
    _update_rows(model, queryset.db, changed_rows)
    if runtime_only and whole and len(runtime_only) == len(existing):
        # A full sweep where nothing changed: every row of the cluster gets the stamp.
        queryset.update(runtime_synced_at=now)
    else:
        for start in range(0, len(runtime_only), _BATCH):
            chunk = runtime_only[start : start + _BATCH]
            manager.filter(pk__in=chunk).update(runtime_synced_at=now)
    if present is not None:
        gone = _gone(model, queryset, existing if rows and whole else None, present, skip)
        if gone:
            queryset.filter(name__in=gone).delete()
            if model is Instance:
                bindings_forget_instances(cluster.pk, gone, job_id=None)
            records.extend(ChangeRecord(resource, name, ChangeAction.DELETED) for name in gone)
    return records


def _gone(
    model: Any,
    queryset: Any,
    existing: dict[str, Any] | None,
    present: set[str],
    skip: Collection[str],
) -> list[str]:
    """Cached names no longer ``present``, from the objects already loaded when they are all."""
    holds = "held_by_job" in {f.name for f in model._meta.concrete_fields}
    if existing is not None:
        cached = [(obj.name, obj.held_by_job if holds else None) for obj in existing.values()]
    elif holds:
        cached = list(queryset.values_list("name", "held_by_job"))
    else:
        cached = [(name, None) for name in queryset.values_list("name", flat=True)]
    # An instance being created is not in Ganeti yet: its job decides.
    return sorted(
        name for name, held in cached if held is None and name not in present and name not in skip
    )
