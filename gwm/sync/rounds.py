"""One sync round of one cluster: read the due tiers, write them, schedule the next.

Reading and writing are separate steps (no RAPI call inside a transaction):
gwm.ganeti.reads reads, gwm.clusters.services.cache writes what differs. The
fast and watch tiers' foreign jobs are written in the same transaction as their read.

While a cluster's job list is watched (``watch_interval`` > 0), the watch
replaces the fast round: every change made through Ganeti is a job, and what a
job touched is re-read when it ends; the slow round still reads every config
and the runtime sweep finds what no job did (a crash). Each tier is stretched
to stay within a share of one master core, and together they stay within
``REQUEST_BUDGET``: the watch gets what the slow and runtime tiers leave.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.utils import timezone

from gwm.clusters.models import Cluster, ClusterStatus
from gwm.clusters.services import cache
from gwm.events.services import ChangeRecord, last_seq
from gwm.ganeti import reads, rereads
from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure
from gwm.observability import context as log_context
from gwm.observability import metrics
from gwm.operations.services.foreign import jobs_record_foreign

log = logging.getLogger(__name__)

#: Share of one Ganeti master core gwm may spend; runtime sweeps get most of it.
RUNTIME_BUDGET = 0.03
FAST_BUDGET = 0.01
#: Of the watch's measured time: a back-off for a master slow to answer. That time
#: overstates the master's CPU 3-10 times (connecting: Ganeti's RAPI closes every
#: connection); the job query costs the master ~11 ms of CPU (sandbox, /proc), so the
#: request budget already holds the watch near 1 % of a core.
WATCH_BUDGET = 0.1
#: RAPI requests per second gwm may make of one cluster in steady state.
REQUEST_BUDGET = 1.0
RETRY_UNREACHABLE_SECONDS = 10.0


def _is_due(moment: datetime | None, now: datetime) -> bool:
    return moment is None or moment <= now


def run_due_tiers(cluster_id: int, *, force: bool = False) -> list[str]:
    """Run whichever tiers are due for one cluster; returns the tiers run."""
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return []
    with log_context.bound(cluster=cluster.name):  # its log lines, its RAPI figures
        return _run_due_tiers(cluster, force=force)


def _run_due_tiers(cluster: Cluster, *, force: bool) -> list[str]:
    cluster_id = cluster.pk
    now = timezone.now()
    slow = force or _is_due(cluster.next_slow_at, now)
    runtime = force or _is_due(cluster.next_runtime_at, now)
    fast = not slow and _is_due(cluster.next_fast_at, now)
    # A fast round reads the jobs itself; a forced round is a full sync, nothing else.
    watching = cluster.watch_interval > 0 and not (fast or force)
    clock = _WatchClock(cluster, due=cluster.next_watch_at) if watching else None
    ran: list[str] = []
    seconds: dict[str, float] = {}
    try:
        client = client_for(cluster)
    except RoundFailure as failure:
        metrics.sync_failed(cluster.name)
        cache.round_failure_write(
            cluster_id, error=str(failure), now=now, reachable=failure.reachable
        )
        return ran
    reader = reads.TimedReader(reads.RapiReader(client))
    try:
        _watch_if_due(clock, reader, ran)
        if slow:
            began = time.perf_counter()
            # What changed after this point (a job's end) is newer than the read.
            seen = last_seq()
            read = reads.read_slow_round(reader)
            cache.round_write(cluster_id, read, now=timezone.now(), tier="slow", read_after=seen)
            ran.append("slow")
            metrics.sync_tier_done(cluster.name, "slow", began)
        elif fast:
            began = time.perf_counter()
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
            seconds["fast"] = reader.seconds
            metrics.sync_tier_done(cluster.name, "fast", began)
        # A slow round takes a while: a watch that came due meanwhile goes before the sweep.
        _watch_if_due(clock, reader, ran)
        if runtime:
            began = time.perf_counter()
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
            metrics.sync_tier_done(cluster.name, "runtime", began)
    except RoundFailure as failure:
        log.warning("sync of cluster %s failed: %s", cluster.name, failure)
        metrics.sync_failed(cluster.name)
        cache.round_failure_write(
            cluster_id, error=str(failure), now=timezone.now(), reachable=failure.reachable
        )
        retry = now + timedelta(seconds=max(cluster.fast_interval, RETRY_UNREACHABLE_SECONDS))
        Cluster.objects.filter(pk=cluster_id).update(
            next_fast_at=retry,
            next_watch_at=retry,
            next_runtime_at=retry if runtime else cluster.next_runtime_at,
            next_slow_at=retry if slow else cluster.next_slow_at,
        )
        return ran
    finally:
        client.close()
    _schedule_next(cluster, ran, seconds=seconds, started=now, clock=clock)
    return ran


class _WatchClock:
    """When a cluster's watch is next due, kept through one round (which may watch
    before and between its other tiers)."""

    def __init__(self, cluster: Cluster, *, due: datetime | None) -> None:
        self.cluster = cluster
        self.due = due
        self.ticked = False

    def is_due(self) -> bool:
        return _is_due(self.due, timezone.now())

    def tick(self, started: datetime, job_seconds: float) -> None:
        """A watch started at ``started``: the next is one stretched interval from when
        this one was due (the dispatch's delay does not add up into the cadence),
        unless it fell a whole interval behind."""
        every = timedelta(seconds=watch_every(self.cluster, watch_seconds=job_seconds))
        on_time = self.due is not None and started - self.due < every
        self.due = (self.due if on_time and self.due is not None else started) + every
        self.ticked = True


def _watch_if_due(clock: _WatchClock | None, reader: reads.TimedReader, ran: list[str]) -> None:
    if clock is None or not clock.is_due():
        return
    started, began = timezone.now(), time.perf_counter()
    clock.tick(started, _watch(clock.cluster, reader))
    metrics.sync_tier_done(clock.cluster.name, "watch", began)
    if "watch" not in ran:
        ran.append("watch")


def _watch(cluster: Cluster, reader: reads.TimedReader) -> float:
    """Read the job list's news and what ended jobs touched; write only when there is
    news (most watches have none). Returns what the job query alone cost Ganeti:
    what the watch's schedule is stretched by (re-reads come with changes, not time)."""
    seen = last_seq()
    before = reader.seconds
    read = reads.read_jobs(
        reader, last_job_id=cluster.last_job_id, open_job_ids=list(cluster.open_job_ids)
    )
    job_seconds = reader.seconds - before
    quiet = (
        read.last_job_id == cluster.last_job_id
        and read.open_job_ids == cluster.open_job_ids
        and not read.foreign_jobs
        and cluster.status == ClusterStatus.AVAILABLE
    )
    if quiet:
        # _schedule_next stamps watch_synced_at with the next due time: one UPDATE.
        return job_seconds
    rereads.read_ended_jobs_objects(
        reader, read, known_instances=cache.instance_placements(cluster.pk)
    )
    cache.round_write(
        cluster.pk,
        read,
        now=timezone.now(),
        tier="watch",
        also=_record_foreign_jobs,
        read_after=seen,
    )
    # As written: a second watch in this round starts from here.
    cluster.last_job_id = read.last_job_id or cluster.last_job_id
    cluster.open_job_ids = read.open_job_ids or []
    cluster.status = ClusterStatus.AVAILABLE
    return job_seconds


def _fingerprints(cluster: Cluster) -> dict[str, tuple[object, ...]]:
    return {
        name: (serial_no, mtime, admin_state, pnode)
        for name, serial_no, mtime, admin_state, pnode in cluster.instances.values_list(
            "name", "serial_no", "mtime", "admin_state", "primary_node"
        )
    }


def _record_foreign_jobs(cluster: Cluster, read: reads.RoundRead) -> list[ChangeRecord]:
    return jobs_record_foreign(cluster, read.foreign_jobs)


def runtime_every(cluster: Cluster) -> float:
    """Seconds between runtime sweeps: the interval, stretched to the CPU budget."""
    return max(cluster.runtime_interval, cluster.runtime_cost / RUNTIME_BUDGET)


def watch_every(cluster: Cluster, *, watch_seconds: float) -> float:
    """Seconds between watches: the interval, stretched to what the CPU budget and the
    request budget leave once the slow round and the runtime sweep have had theirs."""
    others = (
        reads.SLOW_ROUND_REQUESTS / cluster.slow_interval
        + reads.RUNTIME_SWEEP_REQUESTS / runtime_every(cluster)
    )
    spare = REQUEST_BUDGET - others
    by_requests = reads.WATCH_REQUESTS / spare if spare > 0 else cluster.fast_interval
    return max(cluster.watch_interval, by_requests, watch_seconds / WATCH_BUDGET)


def _schedule_next(
    cluster: Cluster,
    ran: list[str],
    *,
    seconds: dict[str, float],
    started: datetime,
    clock: _WatchClock | None,
) -> None:
    """Next due times, counted from when this round started (so a change made just
    after a round is seen one interval later, however long the round took);
    runtime sweeps, fast rounds and watches are stretched to stay in budget.
    ``seconds``: what the round's fast read cost Ganeti; ``clock``: its watches."""
    cluster.refresh_from_db(
        fields=[
            "runtime_cost",
            "watch_interval",
            "fast_interval",
            "runtime_interval",
            "slow_interval",
        ]
    )
    now = started
    updates: dict[str, datetime] = {}
    watching = cluster.watch_interval > 0
    if ran:
        fast_every = max(cluster.fast_interval, seconds.get("fast", 0.0) / FAST_BUDGET)
        if watching:
            # Pushed on by every round: the watch does the fast round's work.
            fast_every = max(fast_every, cluster.slow_interval)
        updates["next_fast_at"] = now + timedelta(seconds=fast_every)
    if clock is not None and clock.ticked and clock.due is not None:
        updates["next_watch_at"] = clock.due
    elif watching and ("fast" in ran or (ran and cluster.next_watch_at is None)):
        # A fast round read the jobs; a first (forced) round starts the watch.
        every = watch_every(cluster, watch_seconds=0.0)
        updates["next_watch_at"] = now + timedelta(seconds=every)
    if "watch" in ran:
        updates["watch_synced_at"] = updates["synced_at"] = timezone.now()
    if "slow" in ran:
        updates["next_slow_at"] = now + timedelta(seconds=cluster.slow_interval)
    if "runtime" in ran:
        updates["next_runtime_at"] = now + timedelta(seconds=runtime_every(cluster))
    if updates:
        Cluster.objects.filter(pk=cluster.pk).update(**updates)
