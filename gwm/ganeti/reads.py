"""Reading a cluster through RAPI: the sync tiers, and re-reads after a job.

Nothing here opens a transaction or writes the database: a round reads first,
then ``gwm.clusters.services.cache`` writes what differs (no RAPI call ever
runs inside a transaction). Four tiers (docs/sync.md):

* watch: Ganeti's job list (new jobs, and the open ones' status), every
  second or so; when a foreign job ends, what it touched is re-read by name.
  While the job list is watched, fast rounds are not needed.
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gwm.ganeti import fields as gf
from gwm.ganeti.failures import RoundFailure, round_failure
from gwm.ganeti.vocabulary import FINAL_JOB_STATUSES, is_gwm_job
from gwm.rapi import RapiClient
from gwm.rapi.errors import RapiError

#: Above this many names a filtered query costs more than reading everything.
NAME_FILTER_LIMIT = 200

JOB_QUERY_FIELDS = ["id", "status", "summary", "ops", "received_ts", "end_ts"]

#: Requests each tier makes when nothing changed (the schedule's request budget
#: counts on them; tests/sync/test_freshness_watch.py checks them).
WATCH_REQUESTS = 1  # the job query
RUNTIME_SWEEP_REQUESTS = 2  # instances' runtime fields, nodes (config and runtime)
SLOW_ROUND_REQUESTS = 5  # info, instances, nodes, groups, networks


class GanetiReader(Protocol):
    """What the read tiers need from Ganeti (a :class:`RapiReader`, or a test's stand-in)."""

    def query(
        self, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]: ...

    def cluster_info(self) -> dict[str, Any]: ...


class RapiReader:
    """:class:`GanetiReader` over a RAPI client: RAPI failures become round failures."""

    def __init__(self, client: RapiClient) -> None:
        self._client = client

    def query(
        self, resource: str, fields: list[str], qfilter: list[Any] | None = None
    ) -> list[list[list[Any]]]:
        try:
            return self._client.query_rows(resource, fields, qfilter=qfilter)
        except RapiError as exc:
            raise round_failure(exc) from exc

    def cluster_info(self) -> dict[str, Any]:
        try:
            info = self._client.get_cluster_info()
        except RapiError as exc:
            raise round_failure(exc) from exc
        return info.model_dump(mode="json", exclude_none=True)

    @property
    def http_seconds(self) -> float:
        return self._client.http_seconds

    def close(self) -> None:
        self._client.close()


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
    except RoundFailure as failure:
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
    """Every node's config, and its resources with ``runtime``: one query either way
    (the runtime fields cost Ganeti the same with or without the config beside them)."""
    config_fields = [f.ganeti for f in gf.NODE_CONFIG]
    runtime_fields = [f.ganeti for f in gf.NODE_RUNTIME] if runtime else []
    fields = [*config_fields, *runtime_fields]
    names: set[str] = set()
    for row in _rows(reader, "node", fields):
        values = gf.row_values(config_fields, row[: len(config_fields)], gf.NODE_CONFIG)
        name = values["name"]
        names.add(name)
        _merge(into, name, values)
        if not runtime:
            continue
        cells = row[len(config_fields) :]
        resources = gf.row_values(runtime_fields, cells, gf.NODE_RUNTIME)
        # "No data" on the memory and CPU totals means the node did not answer
        # (spindle fields have no data on healthy nodes without LVM, so they
        # cannot tell).
        by_field = dict(zip(runtime_fields, cells, strict=True))
        resources["reachable"] = all(
            by_field[key][0] == gf.QUERY_STATUS_NORMAL for key in ("mtotal", "ctotal")
        )
        resources["_runtime"] = True
        _merge(into, name, resources)
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


def read_instance_names(reader: GanetiReader) -> set[str]:
    """Every instance's name (config-only: cheap)."""
    return {row[0][1] for row in _rows(reader, "instance", ["name"])}


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
        if cells["status"] not in FINAL_JOB_STATUSES:
            read.open_job_ids.append(job_id)
        if not is_gwm_job(cells.get("ops") or []):
            read.foreign_jobs.append(cells)
    return read


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
