"""One sync round of one cluster: read the due tiers, write them, schedule the next.

Reading and writing are separate steps (no RAPI call inside a transaction):
gwm.ganeti.reads reads, gwm.clusters.services.cache writes what differs. The
fast tier's foreign jobs are written in the same transaction as its read.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from gwm.clusters.models import Cluster
from gwm.clusters.services import cache
from gwm.events.services import ChangeRecord, last_seq
from gwm.ganeti import reads
from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure
from gwm.operations.services.foreign import jobs_record_foreign

log = logging.getLogger(__name__)

#: Share of one Ganeti master core gwm may spend; runtime sweeps get most of it.
RUNTIME_BUDGET = 0.03
FAST_BUDGET = 0.01
RETRY_UNREACHABLE_SECONDS = 10.0


def _is_due(moment: datetime | None, now: datetime) -> bool:
    return moment is None or moment <= now


def run_due_tiers(cluster_id: int, *, force: bool = False) -> list[str]:
    """Run whichever tiers are due for one cluster; returns the tiers run."""
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return []
    now = timezone.now()
    slow = force or _is_due(cluster.next_slow_at, now)
    runtime = force or _is_due(cluster.next_runtime_at, now)
    fast = not slow and _is_due(cluster.next_fast_at, now)
    ran: list[str] = []
    try:
        client = client_for(cluster)
    except RoundFailure as failure:
        cache.round_failure_write(
            cluster_id, error=str(failure), now=now, reachable=failure.reachable
        )
        return ran
    reader = reads.TimedReader(reads.RapiReader(client))
    try:
        if slow:
            # What changed after this point (a job's end) is newer than the read.
            seen = last_seq()
            read = reads.read_slow_round(reader)
            cache.round_write(cluster_id, read, now=timezone.now(), tier="slow", read_after=seen)
            ran.append("slow")
        elif fast:
            seen = last_seq()
            read = reads.read_fast_round(
                reader,
                known_fingerprints=_fingerprints(cluster),
                last_job_id=cluster.last_job_id,
                open_job_ids=list(cluster.open_job_ids),
            )
            cache.round_write(
                cluster_id,
                read,
                now=timezone.now(),
                tier="fast",
                also=_record_foreign_jobs,
                read_after=seen,
            )
            ran.append("fast")
        fast_seconds = reader.seconds
        if runtime:
            before = reader.seconds
            seen = last_seq()
            read = reads.read_runtime_sweep(reader)
            cache.round_write(
                cluster_id,
                read,
                now=timezone.now(),
                tier="runtime",
                rapi_seconds=reader.seconds - before,
                read_after=seen,
            )
            ran.append("runtime")
    except RoundFailure as failure:
        log.warning("sync of cluster %s failed: %s", cluster.name, failure)
        cache.round_failure_write(
            cluster_id, error=str(failure), now=timezone.now(), reachable=failure.reachable
        )
        retry = now + timedelta(seconds=max(cluster.fast_interval, RETRY_UNREACHABLE_SECONDS))
        Cluster.objects.filter(pk=cluster_id).update(
            next_fast_at=retry,
            next_runtime_at=retry if runtime else cluster.next_runtime_at,
            next_slow_at=retry if slow else cluster.next_slow_at,
        )
        return ran
    finally:
        client.close()
    _schedule_next(cluster, ran, fast_seconds=fast_seconds, started=now)
    return ran


def _fingerprints(cluster: Cluster) -> dict[str, tuple[object, ...]]:
    return {
        name: (serial_no, mtime, admin_state, pnode)
        for name, serial_no, mtime, admin_state, pnode in cluster.instances.values_list(
            "name", "serial_no", "mtime", "admin_state", "primary_node"
        )
    }


def _record_foreign_jobs(cluster: Cluster, read: reads.RoundRead) -> list[ChangeRecord]:
    return jobs_record_foreign(cluster, read.foreign_jobs)


def _schedule_next(
    cluster: Cluster, ran: list[str], *, fast_seconds: float, started: datetime
) -> None:
    """Next due times, counted from when this round started (so a change made just
    after a round is seen one interval later, however long the round took);
    runtime sweeps and fast rounds are stretched to stay in budget."""
    cluster.refresh_from_db(
        fields=["runtime_cost", "fast_interval", "runtime_interval", "slow_interval"]
    )
    now = started
    updates: dict[str, datetime] = {}
    if ran:
        fast_every = max(cluster.fast_interval, fast_seconds / FAST_BUDGET if "fast" in ran else 0)
        updates["next_fast_at"] = now + timedelta(seconds=fast_every)
    if "slow" in ran:
        updates["next_slow_at"] = now + timedelta(seconds=cluster.slow_interval)
    if "runtime" in ran:
        runtime_every = max(cluster.runtime_interval, cluster.runtime_cost / RUNTIME_BUDGET)
        updates["next_runtime_at"] = now + timedelta(seconds=runtime_every)
    if updates:
        Cluster.objects.filter(pk=cluster.pk).update(**updates)
