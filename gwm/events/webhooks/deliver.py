"""Sending due webhook deliveries: claimed, checked, signed, POSTed in parallel, recorded.

A worker runs a pipeline, not rounds: it claims as many due deliveries as it
has idle senders, hands each to a thread of its pool (the threads share one
transport.Sender, so one keep-alive pool) and records each outcome as soon as
it is back, then claims again. A slow receiver, or one slow resource, holds one
thread and never the others, and the next event of a resource is claimable the
moment the one before it is recorded.

Due means: pending, ``next_attempt_at`` passed, not claimed by a live worker,
of an active webhook, and the oldest pending delivery of its (webhook,
``ordering_key``). So each resource's events go out one at a time in seq order,
and a resource whose oldest event waits for a retry holds back that resource
only (no head-of-line blocking across the endpoint).

A claim is ``claimed_until``, set in the transaction that selected the rows
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two workers never claim one row;
SQLite: one writer at a time). It is twice the attempt timeout, and a worker
claims at most two deliveries per sender thread (one sending, one next), so a
claimed delivery starts within one attempt and the claim outlasts it. A worker
killed mid-send leaves the delivery pending and claimed; once the claim runs
out another worker sends it again, with the same webhook-id (at least once:
the receiver drops duplicates by id). Each attempt is signed afresh (a new
timestamp; one signature per secret still valid, so a rotation overlaps), and
right before it the owner's visibility is checked again: an event its owner may
no longer see is failed, never sent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from gwm.events.models import Change, Delivery, DeliveryStatus, Webhook
from gwm.events.render import event_id
from gwm.events.types import JOB_ENDS
from gwm.events.webhooks import selectors, services
from gwm.events.webhooks.backoff import next_delay
from gwm.events.webhooks.fanout import Owners
from gwm.events.webhooks.signing import signed_headers
from gwm.events.webhooks.targets import IPNetwork, allowed_networks_from_settings
from gwm.events.webhooks.transport import Outcome, Sender
from gwm.observability import metrics

log = logging.getLogger(__name__)

#: Parallel attempts per worker process (its senders share one connection pool).
THREADS = 32
#: Claimed at once: a thread's next delivery waits at most one attempt for it, so a
#: claim (two attempt timeouts) still outlasts it.
QUEUED = 2 * THREADS
#: After the first attempt of a wait comes back, how long to gather others before writing.
GATHER_SECONDS = 0.02
#: How long a webhook and its owner's grants, once read, are trusted by deliver_due().
RECENT_SECONDS = 1.0
LIMIT = 10_000
RECORDED = [
    "status", "attempts", "next_attempt_at", "claimed_until", "request_headers",
    "response_status", "response_excerpt", "error", "duration_ms", "attempted_at",
    "delivered_at",
]  # fmt: skip
#: The columns a claim loads: what is sent, and what record() reads before it writes RECORDED
#: (each RECORDED column not here is assigned before it is written).
CLAIMED = [
    "id", "webhook_id", "seq", "type", "ordering_key", "status", "attempts",
    "next_attempt_at", "delivered_at", "request_body",
]  # fmt: skip
#: What visibility needs of a change.
SEEN = ["seq", "cluster_id", "cluster_name", "resource", "name", "user_id", "data"]
HOOK_ENDS = frozenset(JOB_ENDS.values())


@dataclass
class Attempt:
    delivery: Delivery
    headers: dict[str, str]
    started: datetime


# -- the process's senders ---------------------------------------------------------------

_shared_lock = threading.Lock()
_shared: tuple[int, Sender, ThreadPoolExecutor] | None = None


def senders() -> tuple[Sender, ThreadPoolExecutor]:
    """This process's Sender and thread pool (made again after a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():
            pool = ThreadPoolExecutor(THREADS, thread_name_prefix="gwm-webhook")
            _shared = (os.getpid(), Sender(), pool)
        return _shared[1], _shared[2]


# -- claiming ----------------------------------------------------------------------------


def due(now: datetime) -> QuerySet[Delivery]:
    """Deliveries that may be sent now: see the module's docstring."""
    earlier = Delivery.objects.filter(
        webhook_id=OuterRef("webhook_id"),
        ordering_key=OuterRef("ordering_key"),
        status=DeliveryStatus.PENDING,
    ).filter(Q(seq__lt=OuterRef("seq")) | Q(seq=OuterRef("seq"), pk__lt=OuterRef("pk")))
    return (
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            webhook_id__in=Webhook.objects.filter(active=True).values("pk"),
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .filter(~Exists(earlier))
        .order_by("next_attempt_at")
    )


class Recent:
    """What one deliver_due() call trusts for a second: webhooks (URL, secrets), owners'
    visibility, and the health it wrote last (a busy endpoint's success is written once a
    second, not once per delivery)."""

    def __init__(self, max_age: float = RECENT_SECONDS) -> None:
        self.max_age = max_age
        self.owners = Owners(max_age=max_age)
        self._webhooks: dict[int, tuple[float, Webhook]] = {}
        self._success_written: dict[int, float] = {}

    def with_webhooks(self, deliveries: list[Delivery]) -> list[Delivery]:
        """``deliveries`` with their webhooks attached (those whose webhook is gone left out)."""
        now = time.monotonic()
        stale = {
            d.webhook_id
            for d in deliveries
            if now - self._webhooks.get(d.webhook_id, (-self.max_age, None))[0] >= self.max_age
        }
        for webhook in Webhook.objects.filter(pk__in=stale):
            self._webhooks[webhook.pk] = (now, webhook)
        kept = []
        for delivery in deliveries:
            if delivery.webhook_id in self._webhooks:
                delivery.webhook = self._webhooks[delivery.webhook_id][1]
                kept.append(delivery)
        return kept

    def successes_to_write(self, succeeded: set[int]) -> set[int]:
        now = time.monotonic()
        due = {pk for pk in succeeded if now - self._success_written.get(pk, -1e9) >= 1.0}
        self._success_written.update(dict.fromkeys(due, now))
        return due

    def forget_success(self, failed: set[int]) -> None:
        for pk in failed:
            self._success_written.pop(pk, None)


def claim(count: int, timeout: float, recent: Recent) -> list[Delivery]:
    """Take up to ``count`` due deliveries for this worker, with their webhooks."""
    now = timezone.now()
    with transaction.atomic():
        # What sending and record() read; the rest of the log entry is only written.
        rows = list(due(now).select_for_update(skip_locked=True).only(*CLAIMED)[:count])
        if not rows:
            return []
        until = now + timedelta(seconds=2 * timeout)
        Delivery.objects.filter(pk__in=[row.pk for row in rows]).update(claimed_until=until)
    return recent.with_webhooks(rows)


def _checked(batch: list[Delivery], owners: Owners) -> tuple[list[Delivery], list[Delivery]]:
    """(deliveries their owners may still see, the others marked failed)."""
    wanted = Change.objects.filter(seq__in={d.seq for d in batch}).only(*SEEN)
    changes = {change.seq: change for change in wanted}
    by_owner: dict[int, list[Change]] = {}
    for delivery in batch:
        if delivery.seq in changes:
            by_owner.setdefault(delivery.webhook.owner_id, []).append(changes[delivery.seq])
    for owner_id, seen in by_owner.items():
        visibility = owners.visibility(owner_id)
        if visibility is not None:
            visibility.prepare(seen)
    sendable, hidden = [], []
    for delivery in batch:
        change = changes.get(delivery.seq)
        visibility = owners.visibility(delivery.webhook.owner_id)
        if change is None:
            delivery.error = "the change was purged from the log before it could be sent"
        elif visibility is None or not visibility.sees(change):
            delivery.error = services.NOT_VISIBLE
        else:
            sendable.append(delivery)
            continue
        delivery.status, delivery.claimed_until = DeliveryStatus.FAILED, None
        hidden.append(delivery)
    return sendable, hidden


def _headers(delivery: Delivery, now: datetime) -> dict[str, str]:
    secrets = selectors.valid_secrets(delivery.webhook, now)
    signed = signed_headers(
        secrets, event_id(delivery.seq), int(time.time()), delivery.request_body.encode()
    )
    return {"content-type": "application/json", **signed}


# -- the pipeline ------------------------------------------------------------------------


def deliver_due(*, limit: int = LIMIT, budget: float | None = None) -> int:
    """Send what is due until nothing is, ``limit`` deliveries were claimed, or ``budget``
    seconds passed (what is in flight then is still waited for); returns attempts made."""
    sender, pool = senders()
    timeout = float(settings.GWM_WEBHOOK_TIMEOUT_SECONDS)
    allowed = allowed_networks_from_settings()
    deadline = None if budget is None else time.monotonic() + budget
    recent = Recent()
    inflight: dict[Future[Outcome], Attempt] = {}
    claimed = attempted = 0
    while True:
        room = min(QUEUED - len(inflight), limit - claimed)
        batch: list[Delivery] = []
        worth = room >= THREADS // 2 or (room > 0 and not inflight)
        if worth and (deadline is None or time.monotonic() < deadline):
            batch = claim(room, timeout, recent)
            claimed += len(batch)
            for attempt in _start(batch, recent.owners):
                inflight[_submit(pool, sender, attempt, timeout, allowed)] = attempt
        if not inflight:
            if not batch:
                return attempted
            continue
        finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
        if len(finished) < len(inflight):
            finished, _ = wait(inflight, timeout=GATHER_SECONDS)
        record([(inflight.pop(future), _outcome(future)) for future in finished], recent)
        attempted += len(finished)


def _start(batch: list[Delivery], owners: Owners) -> list[Attempt]:
    sendable, hidden = _checked(batch, owners)
    write(Delivery, hidden, ["status", "claimed_until", "error"])
    now = timezone.now()
    return [Attempt(delivery, _headers(delivery, now), now) for delivery in sendable]


def _submit(
    pool: ThreadPoolExecutor,
    sender: Sender,
    attempt: Attempt,
    timeout: float,
    allowed: list[IPNetwork],
) -> Future[Outcome]:
    body = attempt.delivery.request_body.encode()
    url = attempt.delivery.webhook.url
    return pool.submit(sender.post, url, body, attempt.headers, timeout=timeout, allowed=allowed)


def _outcome(future: Future[Outcome]) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # a bug, not the network (post() returns those): log, retry
        log.exception("a webhook attempt failed inside gwm")
        return Outcome(status=None, error=f"gwm failed to send it: {type(exc).__name__}")


# -- recording ---------------------------------------------------------------------------


def write(model: type[Delivery], rows: list[Delivery], fields: list[str]) -> None:
    """Save ``fields`` of ``rows`` in one statement: what bulk_update does, without its CASE
    expression per field and row (building those took most of a busy worker's time).

    PostgreSQL: one UPDATE joined to the rows' new values (a VALUES list); SQLite, where a
    statement costs no round trip: one UPDATE by id, run for every row.
    """
    if not rows:
        return
    columns = [field for field in model._meta.concrete_fields if field.name in fields]
    quote = connection.ops.quote_name
    table, names = quote(model._meta.db_table), [quote(str(column.column)) for column in columns]
    values = [
        [row.pk]
        + [column.get_db_prep_save(getattr(row, column.attname), connection) for column in columns]
        for row in rows
    ]
    # Names from the model's own metadata, values as parameters: nothing from outside.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            casts = ", ".join(f"CAST(%s AS {column.db_type(connection)})" for column in columns)
            tuples = ", ".join(f"(CAST(%s AS bigint), {casts})" for _ in rows)
            assignments = ", ".join(f"{name} = v.{name}" for name in names)
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM (VALUES {tuples}) "  # noqa: S608
                f"AS v(id, {', '.join(names)}) WHERE t.id = v.id",
                [value for row in values for value in row],
            )
        else:
            assignments = ", ".join(f"{name} = %s" for name in names)
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
                [[*row[1:], row[0]] for row in values],
            )


def record(results: list[tuple[Attempt, Outcome]], recent: Recent | None = None) -> None:
    """Write what the attempts got: delivered; gone (410: the endpoint is disabled); or a
    retry after the backoff, until the schedule gives up."""
    now = timezone.now()
    succeeded: set[int] = set()
    failed: set[int] = set()
    gone: dict[int, str] = {}
    ended_hooks: set[int] = set()
    for attempt, outcome in results:
        delivery = attempt.delivery
        webhook_id = delivery.webhook_id
        delivery.attempts += 1
        delivery.attempted_at, delivery.request_headers = attempt.started, attempt.headers
        delivery.response_status, delivery.response_excerpt = outcome.status, outcome.excerpt
        delivery.error, delivery.duration_ms = outcome.error[:500], outcome.duration_ms
        delivery.claimed_until = None
        metrics.webhook_attempted(delivered=outcome.delivered, status=outcome.status)
        if outcome.delivered:
            delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
            succeeded.add(webhook_id)
            if delivery.webhook.once and delivery.type in HOOK_ENDS:
                ended_hooks.add(webhook_id)
        elif outcome.status == 410:
            delivery.status = DeliveryStatus.FAILED
            gone[webhook_id] = "the receiver answered 410 Gone: it wants no more deliveries"
        else:
            failed.add(webhook_id)
            _retry_or_give_up(delivery, outcome, now)
    write(Delivery, [attempt.delivery for attempt, _ in results], RECORDED)
    if recent is not None:
        recent.forget_success(failed)
        succeeded = recent.successes_to_write(succeeded) | (succeeded & failed)
    services.health_record(succeeded=succeeded, failed=failed, now=now)
    for webhook_id, reason in gone.items():
        services.webhook_disable(webhook_id, reason)
    if ended_hooks:
        # A hook on a job ends with the job: its end was delivered.
        Webhook.objects.filter(pk__in=ended_hooks, once=True).delete()


def _retry_or_give_up(delivery: Delivery, outcome: Outcome, now: datetime) -> None:
    delay = next_delay(delivery.attempts, retry_after=outcome.retry_after)
    if delay is not None:
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        return
    delivery.status = DeliveryStatus.FAILED
    what = outcome.error or f"the receiver answered {outcome.status}"
    delivery.error = f"gave up after {delivery.attempts} attempts; the last: {what}"[:500]
