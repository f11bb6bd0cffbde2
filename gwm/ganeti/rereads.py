"""Re-reading what Ganeti jobs touched: a job's end, and the foreign jobs the watch saw end.

Nodes list their instances by name (``primary_instances``, ``secondary_instances``),
so a re-read also takes in the nodes when an instance it re-read came, went or
changed nodes (its ``placement``), whatever the job's opcode says: a migrate's
names no node. Reads only, like gwm.ganeti.reads; the caller writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gwm.ganeti import fields as gf
from gwm.ganeti.reads import (
    GanetiReader,
    RoundRead,
    objects_touched,
    read_instance_config,
    read_instance_names,
    read_instance_runtime,
    read_nodes,
    read_simple,
)
from gwm.ganeti.vocabulary import FINAL_JOB_STATUSES

#: An instance's primary node and secondary nodes, by instance name.
Placements = Mapping[str, tuple[str, tuple[str, ...]]]


def placement(instance: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """An instance's primary and secondary nodes, as compared across reads."""
    return instance.get("primary_node") or "", tuple(instance.get("secondary_nodes") or ())


def moved(read: RoundRead, known: Placements) -> bool:
    """Whether an instance ``read`` re-read came, went or changed nodes since ``known``:
    then the nodes' instance lists changed too."""
    return any(
        "name" not in values or placement(values) != known.get(name)
        for name, values in read.instances.items()
    )


def read_ended_jobs_objects(
    reader: GanetiReader,
    jobs: RoundRead,
    *,
    known_instances: Placements,
) -> RoundRead:
    """Into the watch's ``jobs`` read: what the foreign jobs that ended touched.

    Their instances are re-read by name (config and runtime); the nodes (one
    query) when a job named one or an instance's placement changed.
    A job still running is re-read by the next watch until it ends, and only
    then are its objects: the state it leaves is what counts. An instance that
    a job removed is found by listing the names (config-only).
    ``known_instances``: the cached instances' ``placement``.
    """
    ended = [job for job in jobs.foreign_jobs if job.get("status") in FINAL_JOB_STATUSES]
    if not ended:
        return jobs
    touched = objects_touched(ended)
    instances = sorted(touched["instance"])
    read_instance_config(reader, instances, jobs.instances)
    read_instance_runtime(reader, list(jobs.instances), jobs.instances)
    if any("name" not in jobs.instances.get(name, {}) for name in instances):
        names = read_instance_names(reader)
        if names != set(known_instances):
            jobs.instance_names = names
    # A migrate's opcode names no node, yet the nodes' instance lists change.
    if touched["node"] or jobs.instance_names is not None or moved(jobs, known_instances):
        jobs.node_names = read_nodes(reader, runtime=True, into=jobs.nodes)
    return jobs


def read_refresh(
    reader: GanetiReader,
    *,
    instances: list[str],
    known: Placements,
    nodes: bool,
    groups: bool,
    info: bool,
) -> tuple[RoundRead, list[str]]:
    """Re-read what a job touched. Returns the read and the instances that no longer exist.

    The nodes are read with ``nodes``, and also when one of ``instances`` came, went or
    changed nodes since ``known`` (the cached placements): whatever the job's action."""
    read = RoundRead()
    if instances:
        read_instance_config(reader, instances, read.instances)
        read_instance_runtime(reader, list(read.instances), read.instances)
    gone = [
        name
        for name in instances
        if name not in read.instances or "name" not in read.instances[name]
    ]
    nodes = nodes or bool(gone) or moved(read, known)
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
