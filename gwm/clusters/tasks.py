"""Sync tasks. They take ids, re-read the database and are safe to run twice.

Beat rings ``dispatch_due_syncs`` four times a second; it enqueues one
``sync_cluster`` per cluster that has a tier due and is not being synced. A
cluster is synced by one worker at a time: the task takes a lease on the
cluster row by compare-and-set, so a second copy of the task returns at once,
and a worker that dies leaves a lease that simply expires.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from datetime import datetime, timedelta

from celery import shared_task
from django.db import OperationalError
from django.db.models import Q
from django.utils import timezone

from gwm.clusters import sync
from gwm.clusters.ganeti import RapiReader, SyncFailure, client_for
from gwm.clusters.models import Cluster
from gwm.events.services import last_seq

log = logging.getLogger(__name__)

#: A lease outlives any round (client timeouts are bounded well below it).
LEASE_SECONDS = 120
#: A dispatched task that never started frees the cluster after this long.
DISPATCH_LEASE_SECONDS = 30
DISPATCHED = "dispatched"
#: Share of one Ganeti master core gwm may spend; runtime sweeps get most of it.
RUNTIME_BUDGET = 0.03
FAST_BUDGET = 0.01
RETRY_UNREACHABLE_SECONDS = 10.0


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def _due(now: datetime) -> Q:
    return (
        Q(next_fast_at__isnull=True)
        | Q(next_fast_at__lte=now)
        | Q(next_runtime_at__lte=now)
        | Q(next_slow_at__lte=now)
    )


@shared_task(name="clusters.dispatch_due_syncs", ignore_result=True)
def dispatch_due_syncs() -> int:
    now = timezone.now()
    dispatched = 0
    for cluster_id in Cluster.objects.filter(_due(now) & _free(now)).values_list("pk", flat=True):
        claimed = (
            Cluster.objects.filter(pk=cluster_id)
            .filter(_free(now))
            .update(
                lease_owner=DISPATCHED,
                lease_until=now + timedelta(seconds=DISPATCH_LEASE_SECONDS),
            )
        )
        if claimed:
            sync_cluster.delay(cluster_id)
            dispatched += 1
    return dispatched


@shared_task(
    name="clusters.sync_cluster",
    ignore_result=True,
    # SQLite answers "database is locked" when many clusters write at once;
    # try again shortly instead of waiting for the next dispatch.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def sync_cluster(cluster_id: int, force: bool = False) -> None:
    now = timezone.now()
    owner = f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    claimed = (
        Cluster.objects.filter(pk=cluster_id)
        .filter(_free(now) | Q(lease_owner=DISPATCHED))
        .update(lease_owner=owner, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    if not claimed:
        return
    try:
        run_due_tiers(cluster_id, force=force)
    except Cluster.DoesNotExist:
        # Unregistered while this round read it: there is nothing left to write.
        log.info("cluster %s was unregistered during its sync round", cluster_id)
    finally:
        Cluster.objects.filter(pk=cluster_id, lease_owner=owner).update(
            lease_owner="", lease_until=None
        )


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
    except SyncFailure as failure:
        sync.apply_failure(cluster_id, error=str(failure), now=now, reachable=failure.reachable)
        return ran
    reader = sync.TimedReader(RapiReader(client))
    try:
        if slow:
            # What changed after this point (a job's end) is newer than the read.
            seen = last_seq()
            sync.apply_round(
                cluster_id,
                sync.read_slow_round(reader),
                now=timezone.now(),
                tier="slow",
                read_after=seen,
            )
            ran.append("slow")
        elif fast:
            fingerprints = {
                name: (serial_no, mtime, admin_state, pnode)
                for name, serial_no, mtime, admin_state, pnode in cluster.instances.values_list(
                    "name", "serial_no", "mtime", "admin_state", "primary_node"
                )
            }
            seen = last_seq()
            read = sync.read_fast_round(
                reader,
                known_fingerprints=fingerprints,
                last_job_id=cluster.last_job_id,
                open_job_ids=list(cluster.open_job_ids),
            )
            sync.apply_round(
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
            read = sync.read_runtime_sweep(reader)
            sync.apply_round(
                cluster_id,
                read,
                now=timezone.now(),
                tier="runtime",
                rapi_seconds=reader.seconds - before,
                read_after=seen,
            )
            ran.append("runtime")
    except SyncFailure as failure:
        log.warning("sync of cluster %s failed: %s", cluster.name, failure)
        sync.apply_failure(
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


def _record_foreign_jobs(cluster: Cluster, read: sync.RoundRead) -> list[sync.ChangeRecord]:
    from gwm.operations.services import jobs_record_foreign

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
