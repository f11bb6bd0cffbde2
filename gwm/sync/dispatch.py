"""Which clusters are due, and the lease that lets one worker at a time sync a cluster.

Beat rings ``dispatch_due_syncs`` four times a second (a watched job list is due
about every second): one query, then
one reserved ``sync_cluster`` doorbell per cluster that has a tier due and is
not being synced. The round's task takes the cluster's lease by
compare-and-set, so a second copy returns at once, and a worker that dies
leaves a lease that simply expires.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from gwm.clusters.models import Cluster
from gwm.kit.enqueue import ring
from gwm.kit.lease import Lease, free
from gwm.sync.rounds import run_due_tiers

log = logging.getLogger(__name__)

#: A dead worker's clusters are free after this; a live one's lease keeper renews its
#: claims every third of it (gwm.kit.lease), however long a round takes.
LEASE_SECONDS = 20.0
CLUSTER_LEASE = Lease(Cluster, lambda: LEASE_SECONDS, dispatch_seconds=30.0)
SYNC_TASK = "sync.sync_cluster"


def _due(now: datetime) -> Q:
    return (
        Q(next_fast_at__isnull=True)
        | Q(next_fast_at__lte=now)
        | Q(next_watch_at__lte=now, watch_interval__gt=0)
        | Q(next_runtime_at__lte=now)
        | Q(next_slow_at__lte=now)
    )


def dispatch_due_syncs() -> int:
    """Ring a round for every due cluster nobody syncs; returns how many were rung."""
    now = timezone.now()
    dispatched = 0
    for cluster_id in Cluster.objects.filter(_due(now) & free(now)).values_list("pk", flat=True):
        if CLUSTER_LEASE.dispatch(cluster_id):
            ring(SYNC_TASK, cluster_id)
            dispatched += 1
    return dispatched


def sync_cluster(cluster_id: int, force: bool = False) -> None:
    """Run the cluster's due tiers (all of them with ``force``) while holding its lease."""
    owner = CLUSTER_LEASE.claim(cluster_id)
    if owner is None:
        return
    try:
        run_due_tiers(cluster_id, force=force)
    except Cluster.DoesNotExist:
        # Unregistered while this round read it: there is nothing left to write.
        log.info("cluster %s was unregistered during its sync round", cluster_id)
    finally:
        CLUSTER_LEASE.release(cluster_id, owner)
