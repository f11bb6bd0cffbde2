"""The sync engine: read a cluster through RAPI, then write only what differs.

Reading and writing are separate steps on purpose (no RAPI call inside a transaction): the
``read_*`` functions talk to Ganeti and never touch a transaction; the
``apply_*`` functions write one transaction per round, with one Change row per
object that changed.

Three tiers (docs/sync.md):

* fast: the instance fingerprints (config-only ``serial_no``, ``mtime``...),
  every node's config, and the Ganeti jobs that appeared since the last
  round. Instances whose fingerprint moved, and objects that foreign jobs
  touched, are re-read at once (config and runtime, filtered by name).
* runtime: ``status``/``oper_state`` of every instance and node resources,
  which make Ganeti ask every node; scheduled by a cost budget.
* slow: everything in full (cluster info, instance config, groups, networks).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db import transaction

from gwm.clusters import ganeti_fields as gf
from gwm.clusters.ganeti import SyncFailure
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.events.models import Change, ChangeAction
from gwm.events.services import ChangeRecord, changes_record

#: Above this many names a filtered query costs more than reading everything.
NAME_FILTER_LIMIT = 200

JOB_QUERY_FIELDS = ["id", "status", "summary", "ops", "received_ts", "end_ts"]
FINALIZED_JOB_STATUSES = {"success", "error", "canceled"}
#: gwm's jobs carry "gwm:op:<id>" (dry runs "gwm:dry-run") in their reason trail.
GWM_REASON_MARK = "gwm:"


class GanetiReader(Protocol):
    """What the sync engine needs from a RAPI client."""

    def query(
        self, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]: ...

    def cluster_info(self) -> dict[str, Any]: ...


class TimedReader:
    """Counts the requests a round makes and the time Ganeti took to answer them.

    ``seconds`` is the readers's own HTTP time when it keeps one (send to last
    byte, without decoding, the closest measure of Ganeti's cost), else wall time.
    """

    def __init__(self, reader: GanetiReader) -> None:
        self._reader = reader
        self.requests = 0
        self._wall = 0.0
        self._http_start = getattr(reader, "http_seconds", None)

    @property
    def seconds(self) -> float:
        http_now = getattr(self._reader, "http_seconds", None)
        if http_now is not None and self._http_start is not None:
            return float(http_now - self._http_start)
        return self._wall

    def query(
        self, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]:
        started = time.perf_counter()
        try:
            return self._reader.query(resource, fields, qfilter)
        finally:
            self.requests += 1
            self._wall += time.perf_counter() - started

    def cluster_info(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return self._reader.cluster_info()
        finally:
            self.requests += 1
            self._wall += time.perf_counter() - started


@dataclass
class RoundRead:
    """Everything one round read from Ganeti; ``None`` means "not read this round"."""

    info: dict[str, Any] | None = None
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    instance_names: set[str] | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_names: set[str] | None = None
    groups: dict[str, dict[str, Any]] | None = None
    networks: dict[str, dict[str, Any]] | None = None
    last_job_id: int | None = None
    open_job_ids: list[int] | None = None
    foreign_jobs: list[dict[str, Any]] = field(default_factory=list)
    runtime_swept: bool = False


def name_filter(names: Iterable[str]) -> list[Any]:
    return ["|", *(["=", "name", name] for name in sorted(names))]


def name_regex_filter(names: Iterable[str]) -> list[Any]:
    return ["=~", "name", "^(" + "|".join(re.escape(name) for name in sorted(names)) + ")$"]


def _rows(
    reader: GanetiReader, resource: str, fields: list[str], qfilter: list[Any] | None = None
) -> list[list[list[Any]]]:
    try:
        return reader.query(resource, fields, qfilter)
    except SyncFailure as failure:
        # Ganeti answers a name filter naming an object that no longer exists
        # (removed since the fingerprint was read) with a 500 "not found"; a
        # regular expression over the same names matches what is left instead.
        if qfilter is None or qfilter[0] != "|" or "not found" not in str(failure):
            raise
        names = [term[2] for term in qfilter[1:]]
        return reader.query(resource, fields, name_regex_filter(names))


def _merge(target: dict[str, dict[str, Any]], name: str, values: dict[str, Any]) -> None:
    target.setdefault(name, {}).update(values)


# -- reading ----------------------------------------------------------------


def read_instance_config(
    reader: GanetiReader, names: Iterable[str] | None, into: dict[str, dict[str, Any]]
) -> None:
    """Full config of ``names`` (all instances when ``None``)."""
    wanted = None if names is None else sorted(set(names))
    if wanted is not None and not wanted:
        return
    fields = gf.instance_config_query_fields()
    qfilter = name_filter(wanted) if wanted and len(wanted) <= NAME_FILTER_LIMIT else None
    for row in _rows(reader, "instance", fields, qfilter):
        values = gf.row_values(fields, row, gf.INSTANCE_CONFIG)
        name = values.get("name")
        if not name or (wanted is not None and qfilter is None and name not in wanted):
            continue
        disks = gf.zip_lists(fields, row, gf.INSTANCE_DISK_LISTS)
        nics = gf.zip_lists(fields, row, gf.INSTANCE_NIC_LISTS)
        if disks is not None:
            values["disks"] = disks
        if nics is not None:
            values["nics"] = nics
        beparams = values.get("beparams") or {}
        if "maxmem" in beparams or "memory" in beparams:
            values["memory"] = beparams.get("maxmem", beparams.get("memory"))
        if "vcpus" in beparams:
            values["vcpus"] = beparams["vcpus"]
        _merge(into, name, values)


def read_instance_runtime(
    reader: GanetiReader, names: Iterable[str] | None, into: dict[str, dict[str, Any]]
) -> None:
    wanted = None if names is None else sorted(set(names))
    if wanted is not None and not wanted:
        return
    fields = gf.instance_runtime_query_fields()
    qfilter = name_filter(wanted) if wanted and len(wanted) <= NAME_FILTER_LIMIT else None
    for row in _rows(reader, "instance", fields, qfilter):
        name = row[0][1]
        if wanted is not None and qfilter is None and name not in wanted:
            continue
        values = gf.instance_runtime_values(fields, row)
        values["_runtime"] = True
        _merge(into, name, values)


def read_nodes(reader: GanetiReader, *, runtime: bool, into: dict[str, dict[str, Any]]) -> set[str]:
    config_fields = [f.ganeti for f in gf.NODE_CONFIG]
    names: set[str] = set()
    for row in _rows(reader, "node", config_fields):
        values = gf.row_values(config_fields, row, gf.NODE_CONFIG)
        names.add(values["name"])
        _merge(into, values["name"], values)
    if runtime:
        runtime_fields = ["name", *(f.ganeti for f in gf.NODE_RUNTIME)]
        for row in _rows(reader, "node", runtime_fields):
            values = gf.row_values(runtime_fields, row, gf.NODE_RUNTIME)
            # "No data" on the memory and CPU totals means the node did not answer
            # (spindle fields have no data on healthy nodes without LVM, so they
            # cannot tell).
            cells = dict(zip(runtime_fields, row, strict=True))
            values["reachable"] = all(
                cells[key][0] == gf.QUERY_STATUS_NORMAL for key in ("mtotal", "ctotal")
            )
            values["_runtime"] = True
            _merge(into, row[0][1], values)
    return names


def read_simple(
    reader: GanetiReader, resource: str, fields: list[gf.Field]
) -> dict[str, dict[str, Any]]:
    names = [f.ganeti for f in fields]
    result: dict[str, dict[str, Any]] = {}
    for row in _rows(reader, resource, names):
        values = gf.row_values(names, row, fields)
        result[values["name"]] = values
    return result


def read_jobs(reader: GanetiReader, *, last_job_id: int, open_job_ids: list[int]) -> RoundRead:
    """Jobs that appeared since ``last_job_id``, and those still open from before."""
    qfilter: list[Any] = [">", "id", last_job_id]
    if open_job_ids:
        qfilter = ["|", qfilter, *(["=", "id", job_id] for job_id in open_job_ids)]
    read = RoundRead(last_job_id=last_job_id, open_job_ids=[])
    assert read.open_job_ids is not None
    for row in _rows(reader, "job", JOB_QUERY_FIELDS, qfilter):
        cells = {
            name: (cell[1] if cell[0] == 0 else None)
            for name, cell in zip(JOB_QUERY_FIELDS, row, strict=True)
        }
        job_id = int(cells["id"] or 0)
        read.last_job_id = max(read.last_job_id or 0, job_id)
        if cells["status"] not in FINALIZED_JOB_STATUSES:
            read.open_job_ids.append(job_id)
        if not is_gwm_job(cells.get("ops") or []):
            read.foreign_jobs.append(cells)
    return read


def is_gwm_job(ops: list[dict[str, Any]]) -> bool:
    for op in ops:
        for entry in op.get("reason") or []:
            if len(entry) >= 2 and str(entry[1]).startswith(GWM_REASON_MARK):
                return True
    return False


def objects_touched(jobs: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Which instances and nodes the opcodes of ``jobs`` name."""
    touched: dict[str, set[str]] = {"instance": set(), "node": set()}
    for job in jobs:
        for op in job.get("ops") or []:
            for key, resource in (
                ("instance_name", "instance"),
                ("node_name", "node"),
                ("new_name", "instance"),
                ("pnode", "node"),
                ("target_node", "node"),
            ):
                value = op.get(key)
                if isinstance(value, str) and value:
                    touched[resource].add(value)
            for name in op.get("instances") or []:
                if isinstance(name, str):
                    touched["instance"].add(name)
    return touched


def read_fast_round(
    reader: GanetiReader,
    *,
    known_fingerprints: dict[str, tuple[Any, ...]],
    last_job_id: int,
    open_job_ids: list[int],
) -> RoundRead:
    jobs = read_jobs(reader, last_job_id=last_job_id, open_job_ids=open_job_ids)
    touched = objects_touched(jobs.foreign_jobs)

    fingerprints: dict[str, tuple[Any, ...]] = {}
    fp_fields = gf.INSTANCE_FINGERPRINT
    for row in _rows(reader, "instance", fp_fields):
        fingerprints[row[0][1]] = tuple(cell[1] for cell in row[1:])
    changed = {name for name, fp in fingerprints.items() if known_fingerprints.get(name) != fp}
    refresh = changed | (touched["instance"] & set(fingerprints))

    names = set(fingerprints)
    read = RoundRead(
        # The same names as cached: nothing disappeared, so skip the deletion pass.
        instance_names=None if names == set(known_fingerprints) else names,
        last_job_id=jobs.last_job_id,
        open_job_ids=jobs.open_job_ids,
        foreign_jobs=jobs.foreign_jobs,
    )
    read_instance_config(reader, refresh, read.instances)
    read_instance_runtime(reader, refresh, read.instances)
    read.node_names = read_nodes(reader, runtime=bool(touched["node"]), into=read.nodes)
    return read


def read_runtime_sweep(reader: GanetiReader) -> RoundRead:
    read = RoundRead(runtime_swept=True)
    read_instance_runtime(reader, None, read.instances)
    read.node_names = read_nodes(reader, runtime=True, into=read.nodes)
    return read


def read_slow_round(reader: GanetiReader) -> RoundRead:
    read = RoundRead(info=reader.cluster_info())
    read_instance_config(reader, None, read.instances)
    read.instance_names = set(read.instances)
    read.node_names = read_nodes(reader, runtime=False, into=read.nodes)
    read.groups = read_simple(reader, "group", gf.GROUP_CONFIG)
    read.networks = read_simple(reader, "network", gf.NETWORK_CONFIG)
    return read


# -- writing ----------------------------------------------------------------


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
        for column in changed:
            setattr(obj, column, values[column])
        if derive_status is not None:
            status = derive_status(obj)
            if status != obj.status:
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


def apply_round(
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
        # job_finish takes this lock too: every job end is committed before the
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


def apply_refresh(
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
        records.extend(ChangeRecord("instance", name, ChangeAction.DELETED) for name in names)
    return records


def read_refresh(
    reader: GanetiReader,
    *,
    instances: list[str],
    nodes: bool,
    groups: bool,
    info: bool,
) -> tuple[RoundRead, list[str]]:
    """Re-read what a job touched. Returns the read and the instances that no longer exist."""
    read = RoundRead()
    if instances:
        read_instance_config(reader, instances, read.instances)
        read_instance_runtime(reader, list(read.instances), read.instances)
    gone = [
        name
        for name in instances
        if name not in read.instances or "name" not in read.instances[name]
    ]
    for name in gone:
        read.instances.pop(name, None)
    if nodes:
        read.node_names = read_nodes(reader, runtime=True, into=read.nodes)
    if groups:
        read.groups = read_simple(reader, "group", gf.GROUP_CONFIG)
        read.networks = read_simple(reader, "network", gf.NETWORK_CONFIG)
    if info:
        read.info = reader.cluster_info()
    return read, gone


def apply_failure(cluster_id: int, *, error: str, now: datetime, reachable: bool) -> None:
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
