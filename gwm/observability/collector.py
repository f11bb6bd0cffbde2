"""The figures read from the database at scrape time: sync lag, backlogs, queues.

They are the truth of what is waiting (the broker is only a doorbell), the same for
whichever process is scraped, so they are computed by the scraped one, not kept.
Three queries per scrape whatever the number of clusters, jobs or deliveries: one
over the cluster registry (lag, availability, overdue tiers), one aggregate over
the unfinished jobs, one grouped count of the pending and failed deliveries; each
on an index (a cluster's row, ``job_due``, ``delivery_due``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gwm.clusters.models import Cluster, ClusterStatus
from gwm.events.models import Delivery, DeliveryStatus
from gwm.operations.models import FINAL_STATUSES, Job, JobStatus

TIERS = ("watch", "fast", "runtime", "slow")
#: A tier whose due time passed this long ago, on a cluster no worker holds, is overdue:
#: the dispatcher looks every 0.25 s, so it waits for a free worker (or for beat).
OVERDUE_GRACE_SECONDS = 10.0
#: An IN list, not NOT IN: the ``job_due`` index then finds them among the finished history.
OPEN_STATUSES = [status.value for status in JobStatus if status not in FINAL_STATUSES]


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        yield from _clusters(now)
        yield from _jobs(now)
        yield from _deliveries(now)


def _clusters(now: datetime) -> Iterator[GaugeMetricFamily]:
    lag = GaugeMetricFamily(
        "gwm_sync_lag_seconds",
        "Seconds since a cluster's tier last synced (watch, fast, runtime, slow).",
        labels=["cluster", "tier"],
    )
    available = GaugeMetricFamily(
        "gwm_cluster_available",
        "1 when the cluster answered its last round (AVAILABLE), else 0.",
        labels=["cluster"],
    )
    overdue = GaugeMetricFamily(
        "gwm_sync_overdue_clusters",
        f"Clusters whose tier is due for more than {OVERDUE_GRACE_SECONDS:g} s and not running.",
        labels=["tier"],
    )
    late = dict.fromkeys(TIERS, 0)
    cutoff = now - timedelta(seconds=OVERDUE_GRACE_SECONDS)
    columns = ["name", "status", "watch_interval", "lease_until", "created_at"]
    columns += [f"{tier}_synced_at" for tier in TIERS] + [f"next_{tier}_at" for tier in TIERS]
    for row in Cluster.objects.order_by("name").values(*columns):
        name = row["name"]
        available.add_metric([name], 1.0 if row["status"] == ClusterStatus.AVAILABLE else 0.0)
        for tier in TIERS:
            synced = row[f"{tier}_synced_at"]
            if synced is not None:
                lag.add_metric([name, tier], max(0.0, (now - synced).total_seconds()))
        if row["lease_until"] is not None and row["lease_until"] > now:
            continue  # a round runs: what it does is not late yet
        for tier in TIERS:
            if tier == "watch" and row["watch_interval"] <= 0:
                continue
            due = row[f"next_{tier}_at"] or row["created_at"]  # never run: due since added
            if due < cutoff:
                late[tier] += 1
    for tier, count in late.items():
        overdue.add_metric([tier], count)
    yield from (lag, available, overdue)


def _jobs(now: datetime) -> Iterator[GaugeMetricFamily]:
    unsubmitted = Q(ganeti_job_id__isnull=True)
    found = Job.objects.filter(status__in=OPEN_STATUSES, foreign=False).aggregate(
        unsubmitted=Count("pk", filter=unsubmitted),
        tracked=Count("pk", filter=~unsubmitted),
        oldest=Min("created_at", filter=unsubmitted),
    )
    yield GaugeMetricFamily(
        "gwm_jobs_unsubmitted",
        "Operations accepted and not yet submitted to Ganeti (PENDING).",
        value=found["unsubmitted"],
    )
    oldest = found["oldest"]
    yield GaugeMetricFamily(
        "gwm_jobs_unsubmitted_oldest_seconds",
        "Age of the oldest operation not yet submitted to Ganeti (0: none).",
        value=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
    )
    yield GaugeMetricFamily(
        "gwm_jobs_tracked_open",
        "gwm's jobs in Ganeti that have not ended: what the trackers follow.",
        value=found["tracked"],
    )


def _deliveries(now: datetime) -> Iterator[GaugeMetricFamily]:
    rows = (
        Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
        .values("status")
        .annotate(count=Count("pk"), due=Min("next_attempt_at"))
        .order_by()
    )
    counts: dict[str, int] = {}
    due: datetime | None = None
    for row in rows:
        counts[row["status"]] = row["count"]
        if row["status"] == DeliveryStatus.PENDING:
            due = row["due"]
    deliveries = GaugeMetricFamily(
        "gwm_webhook_deliveries",
        "Webhook deliveries in the log: pending (to send or retry) and failed (given up).",
        labels=["status"],
    )
    for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        deliveries.add_metric([str(status)], counts.get(status, 0))
    yield deliveries
    yield GaugeMetricFamily(
        "gwm_webhook_pending_overdue_seconds",
        "How long the most overdue pending delivery has been due (0: none is).",
        value=max(0.0, (now - due).total_seconds()) if due is not None else 0.0,
    )
