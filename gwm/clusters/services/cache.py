"""Every write of Ganeti's state into the cache, each with its change rows.

A sync round's read (``gwm.ganeti.reads.RoundRead``) is written in one
transaction that writes only what differs, one change row per object that
changed; a job's end writes what was re-read for it inside the job's own
transaction. The holds an operation puts on a resource are in ``holds``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from django.db import transaction

from gwm.accounts.services.ownership import bindings_forget_instances
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.events.models import Change, ChangeAction
from gwm.events.services import ChangeRecord, changes_record
from gwm.ganeti import fields as gf
from gwm.ganeti.reads import RoundRead
from gwm.kit.db import MANY_ROWS, planner_statistics_refresh


def _instance_status(obj: Instance) -> str:
    if obj.held_by_job is not None:
        # An operation holds this status until its job ends (operations app).
        return obj.status
    return gf.instance_status(obj.ganeti_status, obj.admin_state)


def _node_status(obj: Node) -> str:
    if obj.held_by_job is not None:
        return obj.status
    return gf.node_status(
        offline=obj.offline, drained=obj.drained, reachable=obj.reachable is not False
    )


def tag_index(tags: list[str]) -> str:
    return "\n" + "".join(f"{tag}\n" for tag in tags) if tags else ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _apply_objects(
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
    """
    records: list[ChangeRecord] = []
    manager = model._default_manager
    queryset = manager.filter(cluster=cluster)
    if present is not None and len(rows) < len(present):
        existing_qs = queryset.filter(name__in=list(rows))
    else:
        existing_qs = queryset
    existing = {obj.name: obj for obj in existing_qs} if rows else {}
    to_create: list[Any] = []
    to_update: list[Any] = []
    update_fields: set[str] = set()

    indexes_tags = any(f.name == "tag_index" for f in model._meta.get_fields())
    for name, values in rows.items():
        if name in skip:
            continue
        runtime = values.pop("_runtime", False)
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
            if runtime and hasattr(obj, "runtime_synced_at"):
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
                    {k: _jsonable(v) for k, v in values.items()},
                )
            )
            continue
        changed = [column for column, value in values.items() if getattr(obj, column) != value]
        before = {column: _jsonable(getattr(obj, column)) for column in changed}
        for column in changed:
            setattr(obj, column, values[column])
        if derive_status is not None:
            status = derive_status(obj)
            if status != obj.status:
                before["status"] = obj.status
                obj.status = status
                changed.append("status")
        if runtime and hasattr(obj, "runtime_synced_at"):
            obj.runtime_synced_at = now
            update_fields.add("runtime_synced_at")
        if changed:
            obj.synced_at = now
            update_fields.update(changed)
            update_fields.add("synced_at")
            records.append(
                ChangeRecord(
                    resource,
                    name,
                    ChangeAction.UPDATED,
                    sorted(changed),
                    {c: _jsonable(getattr(obj, c)) for c in changed},
                    before,
                )
            )
        if changed or runtime:
            to_update.append(obj)

    if to_create:
        manager.bulk_create(to_create, batch_size=500)
    if to_update and update_fields:
        manager.bulk_update(to_update, sorted(update_fields), batch_size=500)
    if present is not None:
        if any(f.name == "held_by_job" for f in model._meta.get_fields()):
            # An instance being created is not in Ganeti yet: its job decides.
            queryset = queryset.filter(held_by_job__isnull=True)
        if skip:
            queryset = queryset.exclude(name__in=list(skip))
        gone = (
            list(queryset.exclude(name__in=present).values_list("name", flat=True))
            if len(present) < 5000
            else [name for name in queryset.values_list("name", flat=True) if name not in present]
        )
        if gone:
            queryset.filter(name__in=gone).delete()
            if model is Instance:
                bindings_forget_instances(cluster.pk, gone, job_id=None)
            records.extend(ChangeRecord(resource, name, ChangeAction.DELETED) for name in gone)
    return records


_INFO_COLUMNS = {
    "name": "ganeti_name",
    "uuid": "uuid",
    "master": "master",
    "software_version": "software_version",
    "tags": "tags",
    "ctime": "ctime",
    "mtime": "mtime",
}


def _apply_info(cluster: Cluster, info: dict[str, Any]) -> list[str]:
    changed = []
    for key, column in _INFO_COLUMNS.items():
        if key in info and getattr(cluster, column) != info[key]:
            setattr(cluster, column, info[key])
            changed.append(column)
    if cluster.info != info:
        cluster.info = info
        changed.append("info")
    return changed


def _cluster_record(cluster: Cluster, changed: list[str]) -> ChangeRecord:
    """The change row of a cluster's own columns (its raw ``info`` is named, not copied)."""
    return ChangeRecord(
        "cluster",
        cluster.name,
        ChangeAction.UPDATED,
        sorted(set(changed)),
        {c: _jsonable(getattr(cluster, c)) for c in set(changed) if c != "info"},
    )


def round_write(
    cluster_id: int,
    read: RoundRead,
    *,
    now: datetime,
    tier: str,
    rapi_seconds: float = 0.0,
    also: Callable[[Cluster, RoundRead], list[ChangeRecord]] | None = None,
    read_after: int | None = None,
) -> int:
    """Write one round's read in one transaction; returns the number of changes.

    ``also`` writes more in the same transaction (the job history of foreign jobs).
    ``read_after``: the change log's last sequence number when the read began
    (``events.services.last_seq``). Instances and nodes changed since, by a
    job's end re-reading them, are newer than this read and left alone; the
    next round reconciles them.
    """
    with transaction.atomic():
        # lifecycle.job_finish takes this lock too: every job end is committed before the
        # query below or waits until this round is written.
        # NO KEY: a plain FOR UPDATE would also block the foreign-key checks of every
        # transaction inserting a row that references the cluster (jobs, changes),
        # which run at commit while holding the change counter: a deadlock on PostgreSQL.
        locked = Cluster.objects.select_for_update(no_key=True)
        if read.info is None:
            # Most rounds do not touch the cluster's own info: do not decode it.
            locked = locked.defer("info", "tls_ca_pem")
        cluster = locked.get(pk=cluster_id)
        newer = _changed_since(cluster, read_after)
        records: list[ChangeRecord] = []
        if also is not None:
            records += also(cluster, read)
        records += _apply_objects(
            Node,
            "node",
            cluster,
            read.nodes,
            read.node_names,
            now,
            _node_status,
            skip=newer["node"],
        )
        records += _apply_objects(
            Instance,
            "instance",
            cluster,
            read.instances,
            read.instance_names,
            now,
            _instance_status,
            skip=newer["instance"],
        )
        if read.groups is not None:
            records += _apply_objects(
                NodeGroup, "group", cluster, read.groups, set(read.groups), now
            )
        if read.networks is not None:
            records += _apply_objects(
                Network, "network", cluster, read.networks, set(read.networks), now
            )

        cluster_changed = _apply_info(cluster, read.info) if read.info is not None else []
        if cluster.status != ClusterStatus.AVAILABLE:
            cluster.status = ClusterStatus.AVAILABLE
            cluster.error = ""
            cluster_changed += ["status", "error"]
        if read.last_job_id is not None:
            cluster.last_job_id = read.last_job_id
        if read.open_job_ids is not None:
            cluster.open_job_ids = read.open_job_ids
        cluster.synced_at = now
        setattr(cluster, f"{tier}_synced_at", now)
        if tier == "runtime":
            cluster.runtime_cost = rapi_seconds
        if cluster_changed:
            records.append(_cluster_record(cluster, cluster_changed))
        written = {
            "last_job_id",
            "open_job_ids",
            "synced_at",
            f"{tier}_synced_at",
            "runtime_cost",
            "updated_at",
            *cluster_changed,
        }
        cluster.save(update_fields=sorted(written))
        changes_record(cluster_id=cluster.pk, cluster_name=cluster.name, records=records)
    moved = sum(1 for r in records if r.resource == "instance" and r.action != ChangeAction.UPDATED)
    if moved >= MANY_ROWS:  # an import, say: permission filters need fresh statistics
        planner_statistics_refresh(Instance._meta.db_table)
    return len(records)


def _changed_since(cluster: Cluster, seq: int | None) -> dict[str, set[str]]:
    """Instances and nodes of ``cluster`` with a change committed after ``seq``."""
    newer: dict[str, set[str]] = {"instance": set(), "node": set()}
    if seq is None:
        return newer
    for resource, name in Change.objects.filter(
        seq__gt=seq, cluster=cluster, resource__in=list(newer)
    ).values_list("resource", "name"):
        newer[resource].add(name)
    return newer


def refresh_write(
    cluster_id: int, read: RoundRead, *, gone_instances: list[str], now: datetime
) -> list[ChangeRecord]:
    """Write what was re-read after a job ended; the caller's transaction records the changes."""
    cluster = Cluster.objects.get(pk=cluster_id)
    records: list[ChangeRecord] = []
    records += _apply_objects(Node, "node", cluster, read.nodes, None, now, _node_status)
    records += _apply_objects(
        Instance, "instance", cluster, read.instances, None, now, _instance_status
    )
    if read.groups is not None:
        records += _apply_objects(NodeGroup, "group", cluster, read.groups, set(read.groups), now)
    if read.networks is not None:
        records += _apply_objects(
            Network, "network", cluster, read.networks, set(read.networks), now
        )
    if read.info is not None:
        info_changed = _apply_info(cluster, read.info)
        if info_changed:
            cluster.save(update_fields=[*info_changed, "updated_at"])
            records.append(_cluster_record(cluster, info_changed))
    gone = Instance.objects.filter(
        cluster=cluster, name__in=gone_instances, held_by_job__isnull=True
    )
    names = list(gone.values_list("name", flat=True))
    if names:
        gone.delete()
        bindings_forget_instances(cluster.pk, names, job_id=None)
        records.extend(ChangeRecord("instance", name, ChangeAction.DELETED) for name in names)
    return records


def round_failure_write(cluster_id: int, *, error: str, now: datetime, reachable: bool) -> None:
    """Record that a round failed: UNREACHABLE (no answer) or ERROR (an answer gwm rejects)."""
    status = ClusterStatus.UNREACHABLE if not reachable else ClusterStatus.ERROR
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update(no_key=True).get(pk=cluster_id)
        changed = []
        if cluster.status != status:
            cluster.status = status
            changed.append("status")
        if cluster.error != error:
            cluster.error = error
            changed.append("error")
        cluster.error_at = now
        cluster.save(update_fields=["status", "error", "error_at", "updated_at"])
        if changed:
            changes_record(
                cluster_id=cluster.pk,
                cluster_name=cluster.name,
                records=[
                    ChangeRecord(
                        "cluster",
                        cluster.name,
                        ChangeAction.UPDATED,
                        changed,
                        {"status": status, "error": error},
                    )
                ],
            )
