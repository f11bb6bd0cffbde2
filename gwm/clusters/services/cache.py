"""Every write of Ganeti's state into the cache, each with its change rows.

A sync round's read (``gwm.ganeti.reads.RoundRead``) is written in one
transaction that writes only what differs, one change row per object that
changed; a job's end writes what was re-read for it inside the job's own
transaction. The holds an operation puts on a resource are in ``holds``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from gwm.accounts.services.ownership import bindings_forget_instances
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.clusters.services.upsert import compared_columns, jsonable, upsert_objects
from gwm.events.models import Change, ChangeAction
from gwm.events.services import ChangeRecord, changes_record
from gwm.ganeti import fields as gf
from gwm.ganeti.reads import RoundRead
from gwm.ganeti.rereads import Placements, placement
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
        {c: jsonable(getattr(cluster, c)) for c in set(changed) if c != "info"},
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

    ``also`` writes the read's foreign jobs in the same transaction (their job history).
    ``read_after``: the change log's last sequence number when the read began
    (``events.services.last_seq``). Instances and nodes changed since, by a
    job's end re-reading them, are newer than this read and left alone; the
    next round reconciles them.
    """
    bookkeeping = _bookkeeping(read, now=now, tier=tier, rapi_seconds=rapi_seconds)
    if _write_if_unchanged(cluster_id, read, bookkeeping):
        return 0
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
        records += upsert_objects(
            Node,
            "node",
            cluster,
            read.nodes,
            read.node_names,
            now,
            _node_status,
            skip=newer["node"],
        )
        records += upsert_objects(
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
            records += upsert_objects(
                NodeGroup, "group", cluster, read.groups, set(read.groups), now
            )
        if read.networks is not None:
            records += upsert_objects(
                Network, "network", cluster, read.networks, set(read.networks), now
            )

        cluster_changed = _apply_info(cluster, read.info) if read.info is not None else []
        if cluster.status != ClusterStatus.AVAILABLE:
            cluster.status = ClusterStatus.AVAILABLE
            cluster.error = ""
            cluster_changed += ["status", "error"]
        for column, value in bookkeeping.items():
            setattr(cluster, column, value)
        if cluster_changed:
            records.append(_cluster_record(cluster, cluster_changed))
        cluster.save(update_fields=sorted({*bookkeeping, "updated_at", *cluster_changed}))
        changes_record(cluster_id=cluster.pk, cluster_name=cluster.name, records=records)
    moved = sum(1 for r in records if r.resource == "instance" and r.action != ChangeAction.UPDATED)
    if moved >= MANY_ROWS:  # an import, say: permission filters need fresh statistics
        planner_statistics_refresh(Instance._meta.db_table)
    return len(records)


def _bookkeeping(
    read: RoundRead, *, now: datetime, tier: str, rapi_seconds: float
) -> dict[str, Any]:
    """The cluster's columns every round writes, whatever it found."""
    columns: dict[str, Any] = {"synced_at": now, f"{tier}_synced_at": now}
    if read.last_job_id is not None:
        columns["last_job_id"] = read.last_job_id
    if read.open_job_ids is not None:
        columns["open_job_ids"] = read.open_job_ids
    if tier == "runtime":
        columns["runtime_cost"] = rapi_seconds
    return columns


def _write_if_unchanged(cluster_id: int, read: RoundRead, bookkeeping: dict[str, Any]) -> bool:
    """Write a round that brought no news (most fast rounds) with one UPDATE; False if it did.

    No news: no instance to write and the same names as cached (the fast read
    says so with ``instance_names=None``), no foreign job, the nodes as cached,
    and the cluster AVAILABLE already. Nothing is written but the bookkeeping,
    so neither the cluster's lock nor the object passes are needed.
    """
    if (
        read.instances
        or read.instance_names is not None
        or read.foreign_jobs
        or read.info is not None
        or read.groups is not None
        or read.networks is not None
        or not _nodes_unchanged(cluster_id, read)
    ):
        return False
    unchanged = Cluster.objects.filter(pk=cluster_id, status=ClusterStatus.AVAILABLE)
    return unchanged.update(**bookkeeping, updated_at=timezone.now()) == 1


def _nodes_unchanged(cluster_id: int, read: RoundRead) -> bool:
    if not read.nodes and read.node_names is None:
        return True  # not read (a watch)
    if any("_runtime" in values for values in read.nodes.values()):
        return False  # runtime rows get their stamp: the full write
    cached = {
        node.name: node
        for node in Node.objects.filter(cluster_id=cluster_id)
        .order_by()
        .only(*compared_columns(Node, read.nodes))
    }
    if read.node_names is not None and set(cached) != read.node_names:
        return False
    for name, values in read.nodes.items():
        node = cached.get(name)
        if node is None or any(getattr(node, c) != v for c, v in values.items()):
            return False
        if _node_status(node) != node.status:
            return False  # a hold ended since: the full write derives the status again
    return True


def instance_placements(cluster_id: int, names: list[str] | None = None) -> Placements:
    """The cached instances' ``placement`` (all of the cluster's, or ``names``): what a
    re-read compares to tell whether the nodes' instance lists changed."""
    rows = Instance.objects.filter(cluster_id=cluster_id).order_by()
    if names is not None:
        rows = rows.filter(name__in=names)
    return {
        row["name"]: placement(row)
        for row in rows.values("name", "primary_node", "secondary_nodes")
    }


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
    records += upsert_objects(Node, "node", cluster, read.nodes, None, now, _node_status)
    records += upsert_objects(
        Instance, "instance", cluster, read.instances, None, now, _instance_status
    )
    if read.groups is not None:
        records += upsert_objects(NodeGroup, "group", cluster, read.groups, set(read.groups), now)
    if read.networks is not None:
        records += upsert_objects(
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
