"""Every figure gwm keeps for Prometheus, and the one-line calls that move them.

Counters and histograms live here (prometheus-client; in multiprocess mode each
process writes its own file, gwm.observability.multiprocess); what is read from the
database at scrape time (sync lag, backlogs) is gwm.observability.collector's. The
list, with labels and meanings, is docs/observability.md; keep both in step.

Labels stay bounded: ``route`` is the URL pattern a request matched (never its path),
``cluster`` a registered cluster's name (``unknown`` for a cluster being registered),
``action`` an entry of the operations catalogue, ``tier`` one of the four sync tiers.
Every call here is a dictionary lookup and an increment or two: nothing blocks, and
none raises on a figure it does not know.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from gwm.observability import context, multiprocess

if TYPE_CHECKING:
    from django.http import HttpRequest

    from gwm.rapi.calls import RapiRequest
    from gwm.rapi.errors import RapiError

multiprocess.tidy()  # before this process writes its first figure

UNKNOWN_CLUSTER = "unknown"
UNMATCHED_ROUTE = "(unmatched)"

# -- HTTP ----------------------------------------------------------------------------

HTTP_SECONDS = Histogram(
    "gwm_http_request_duration_seconds",
    "Time the API took to answer (a stream: to its first byte), by URL pattern.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
#: (route, method, status class) → its histogram child: labels() takes a lock and
#: converts its arguments on every call, a dictionary lookup does neither.
_http_children: dict[tuple[str, str, str], Any] = {}


def http_request(request: HttpRequest, status: int, seconds: float) -> None:
    """One answered request, under the URL pattern it matched (unresolved: unmatched)."""
    match = getattr(request, "resolver_match", None)
    route = f"/{match.route}" if match is not None and match.route else UNMATCHED_ROUTE
    method = request.method if request.method in _METHODS else "OTHER"
    key = (route, method or "OTHER", _STATUS_CLASSES.get(status // 100, "other"))
    child = _http_children.get(key)
    if child is None:
        child = _http_children[key] = HTTP_SECONDS.labels(*key)
    child.observe(seconds)


# -- sync rounds ---------------------------------------------------------------------

ROUND_SECONDS = Histogram(
    "gwm_sync_round_duration_seconds",
    "One tier of one cluster's sync round: its RAPI reads and its cache write.",
    ["cluster", "tier"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
ROUND_FAILURES = Counter(
    "gwm_sync_round_failures_total",
    "Sync rounds that ended in a failure (cluster unreachable, bad answer, credentials).",
    ["cluster"],
)


def sync_tier_done(cluster: str, tier: str, began: float) -> None:
    """A tier of a round ended; ``began``: ``time.perf_counter()`` when it started."""
    ROUND_SECONDS.labels(cluster, tier).observe(time.perf_counter() - began)


def sync_failed(cluster: str) -> None:
    ROUND_FAILURES.labels(cluster).inc()


# -- RAPI ----------------------------------------------------------------------------

RAPI_REQUESTS = Counter(
    "gwm_rapi_requests_total",
    "RAPI requests sent (each attempt, answered or not).",
    ["cluster", "method"],
)
RAPI_ERRORS = Counter(
    "gwm_rapi_errors_total",
    "RAPI requests that failed, by the client's exception class.",
    ["cluster", "error"],
)
RAPI_SECONDS = Counter(
    "gwm_rapi_seconds_total",
    "Seconds spent waiting for RAPI answers: what gwm's requests cost a cluster.",
    ["cluster"],
)


def rapi_request(request: RapiRequest, seconds: float, error: RapiError | None) -> None:
    """A listener of gwm.rapi.observe: the cluster is the one this context works on."""
    cluster = str(context.current().get("cluster") or UNKNOWN_CLUSTER)
    RAPI_REQUESTS.labels(cluster, request.method).inc()
    RAPI_SECONDS.labels(cluster).inc(seconds)
    if error is not None:
        RAPI_ERRORS.labels(cluster, type(error).__name__).inc()


# -- jobs ----------------------------------------------------------------------------

_JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
JOB_QUEUE_SECONDS = Histogram(
    "gwm_job_queue_seconds",
    "From a job's acceptance (202) to Ganeti's job id: gwm's own delay.",
    ["action"],
    buckets=_JOB_BUCKETS,
)
JOB_GANETI_SECONDS = Histogram(
    "gwm_job_ganeti_seconds",
    "From the submission to Ganeti to the job's end as gwm recorded it.",
    ["action", "status"],
    buckets=_JOB_BUCKETS,
)
JOB_DURATION_SECONDS = Histogram(
    "gwm_job_duration_seconds",
    "From a job's acceptance to its end, whatever the end (also canceled before Ganeti).",
    ["action", "status"],
    buckets=_JOB_BUCKETS,
)


class JobTimes(Protocol):
    """What the job figures read of a job (gwm.operations.models.Job)."""

    action: str
    status: str
    foreign: bool
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


def job_submitted(job: JobTimes) -> None:
    if not job.foreign and job.submitted_at is not None:
        seconds = (job.submitted_at - job.created_at).total_seconds()
        JOB_QUEUE_SECONDS.labels(job.action).observe(max(0.0, seconds))


def job_ended(job: JobTimes) -> None:
    if job.foreign or job.finished_at is None:
        return
    total = (job.finished_at - job.created_at).total_seconds()
    JOB_DURATION_SECONDS.labels(job.action, job.status).observe(max(0.0, total))
    if job.submitted_at is not None:
        in_ganeti = (job.finished_at - job.submitted_at).total_seconds()
        JOB_GANETI_SECONDS.labels(job.action, job.status).observe(max(0.0, in_ganeti))


# -- streams and webhooks --------------------------------------------------------------

STREAM_CLIENTS = Gauge(
    "gwm_stream_clients",
    "Change streams (SSE) open now, over every API process.",
    multiprocess_mode="livesum",
)
WEBHOOK_ATTEMPTS = Counter(
    "gwm_webhook_attempts_total",
    "Webhook delivery attempts: delivered, failed (retried or given up) or gone (410).",
    ["outcome"],
)
_webhook_outcomes = {
    name: WEBHOOK_ATTEMPTS.labels(name) for name in ("delivered", "failed", "gone")
}


def stream_joined() -> None:
    STREAM_CLIENTS.inc()


def stream_left() -> None:
    STREAM_CLIENTS.dec()


def webhook_attempted(*, delivered: bool, status: int | None) -> None:
    outcome = "delivered" if delivered else "gone" if status == 410 else "failed"
    _webhook_outcomes[outcome].inc()
