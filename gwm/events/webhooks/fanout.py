"""The webhook fan-out: the change log read once, turned into one delivery per matching webhook.

Every active subscription (webhooks and hooks alike) has a ``cursor``: the last
change it has looked at. A batch reads the log once, from the lowest cursor,
matches each change against each webhook's filters and its owner's visibility
(the owner's grants now, not the token the webhook was made with), renders the
body as it is now (the full event, or the thin one) and, in the same
transaction, creates the deliveries and moves the cursors: a batch happens
whole or not at all, so a worker killed mid-way leaves nothing half done.

Two workers never fan out the same webhooks at once: a batch locks the rows of
the webhooks it serves (``select_for_update(skip_locked=True)``: on PostgreSQL a
second worker skips them instead of waiting; SQLite's IMMEDIATE transactions
admit one writer at a time anyway). No lock row, no lease to renew: the lock
ends with the batch's transaction, whatever happens to the worker. Should the
same changes be looked at twice anyway, the unique (webhook, seq) constraint
keeps one delivery each.

A replay (:func:`replay`) reads the same log with the same matching, from a
cursor the owner gives up to where the fan-out has got; its deliveries are
marked ``replay`` (the constraint leaves them out) and carry the original ids.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.clusters.models import Instance
from gwm.events.models import Change, Delivery, Payload, Webhook
from gwm.events.render import event_of, key_of, thin
from gwm.events.services import last_seq
from gwm.events.types import type_matches
from gwm.events.visibility import Visibility

BATCH = 500
#: How long one fanout() call reads the log before it lets the deliveries go out.
BUDGET_SECONDS = 1.0
#: A replay queues at most about this many deliveries per call (then it says where it stopped).
REPLAY_MAX = 10_000

TagIndex = dict[tuple[int | None, str], frozenset[str]]


class Owners:
    """Each owner's :class:`Visibility`, loaded once and reloaded after ``max_age`` seconds."""

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._seen: dict[int, tuple[float, Visibility | None]] = {}

    def visibility(self, owner_id: int) -> Visibility | None:
        """None for an owner that is gone (their webhooks go with them)."""
        loaded = self._seen.get(owner_id)
        if loaded is None or time.monotonic() - loaded[0] > self.max_age:
            user = User.objects.filter(pk=owner_id).first()
            loaded = (time.monotonic(), Visibility(user) if user is not None else None)
            self._seen[owner_id] = loaded
        return loaded[1]


def fanout(*, budget: float = BUDGET_SECONDS) -> int:
    """Queue the deliveries of the changes the active webhooks have not looked at yet.

    Runs batch after batch until every cursor reaches the end of the log or
    ``budget`` seconds pass; returns how many deliveries it queued.
    """
    deadline = time.monotonic() + budget
    owners = Owners()
    queued = 0
    while True:
        made, more = _batch(owners)
        queued += made
        if not more or time.monotonic() >= deadline:
            return queued


def _batch(owners: Owners) -> tuple[int, bool]:
    """One batch: (deliveries queued, whether some cursor is still behind)."""
    with transaction.atomic():
        # Read before the rows: every change up to it has committed (seq order is
        # commit order), so a row committing late is never skipped.
        last = last_seq()
        webhooks = list(
            Webhook.objects.select_for_update(skip_locked=True)
            .filter(active=True, cursor__lt=last)
            .order_by("cursor", "pk")
        )
        if not webhooks:
            return 0, False
        changes = list(
            Change.objects.filter(seq__gt=webhooks[0].cursor, seq__lte=last).order_by("seq")[:BATCH]
        )
        end = changes[-1].seq if len(changes) == BATCH else last
        deliveries = _matching(webhooks, changes, owners, timezone.now())
        Delivery.objects.bulk_create(deliveries, batch_size=500, ignore_conflicts=True)
        behind = [webhook.pk for webhook in webhooks if webhook.cursor < end]
        Webhook.objects.filter(pk__in=behind).update(cursor=end)
        return len(deliveries), end < last


def _matching(
    webhooks: Sequence[Webhook],
    changes: Sequence[Change],
    owners: Owners,
    now: datetime,
    *,
    replay: bool = False,
) -> list[Delivery]:
    """The deliveries of ``changes`` to each of ``webhooks`` after its cursor (a replay: all)."""
    tags = tags_of(changes) if any(webhook.tags for webhook in webhooks) else {}
    bodies = Bodies()
    deliveries = []
    for webhook in webhooks:
        wanted = [
            change
            for change in changes
            if (replay or change.seq > webhook.cursor) and matches(webhook, change, tags)
        ]
        visibility = owners.visibility(webhook.owner_id) if wanted else None
        if visibility is None:
            continue
        visibility.prepare(wanted)
        deliveries += [
            delivery_of(webhook, change, bodies.body(change, webhook.payload), now, replay=replay)
            for change in wanted
            if visibility.sees(change)
        ]
    return deliveries


def matches(webhook: Webhook, change: Change, tags: TagIndex) -> bool:
    """Whether ``change`` passes ``webhook``'s filters (each empty filter passes everything).

    ``resources`` entries are resource keys (``instance:prod/web1``, ``job:12``) or a
    kind alone (``node``); ``tags`` select instances carrying one of them now.
    """
    if not type_matches(webhook.types, change.type):
        return False
    if webhook.clusters and change.cluster_name not in webhook.clusters:
        return False
    if webhook.resources and not (
        key_of(change) in webhook.resources or change.resource in webhook.resources
    ):
        return False
    if webhook.tags:
        carried = tags.get((change.cluster_id, change.name), frozenset())
        return change.resource == "instance" and not carried.isdisjoint(webhook.tags)
    return True


def tags_of(changes: Iterable[Change]) -> TagIndex:
    """The current tags of the instances ``changes`` are about (one query per cluster)."""
    names: dict[int, set[str]] = defaultdict(set)
    for change in changes:
        if change.resource == "instance" and change.cluster_id is not None:
            names[change.cluster_id].add(change.name)
    found: TagIndex = {}
    for cluster_id, wanted in names.items():
        rows = Instance.objects.filter(cluster_id=cluster_id, name__in=sorted(wanted))
        for name, tags in rows.values_list("name", "tags"):
            found[(cluster_id, name)] = frozenset(tags or ())
    return found


class Bodies:
    """Request bodies, each change rendered once per batch whatever the number of webhooks."""

    def __init__(self) -> None:
        self._events: dict[int, dict[str, Any]] = {}

    def body(self, change: Change, payload: str) -> str:
        event = self._events.get(change.seq)
        if event is None:
            event = self._events[change.seq] = event_of(change)
        return body_of(event, payload)


def body_of(event: dict[str, Any], payload: str) -> str:
    """The JSON a webhook receives: the event, or its thin form (also when the full one is
    over GWM_WEBHOOK_MAX_PAYLOAD_BYTES: then with ``"truncated": true``)."""
    if payload == Payload.THIN:
        return _json(thin(event))
    full = _json(event)
    if len(full.encode()) > settings.GWM_WEBHOOK_MAX_PAYLOAD_BYTES:
        return _json({**thin(event), "truncated": True})
    return full


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def delivery_of(
    webhook: Webhook, change: Change, body: str, now: datetime, *, replay: bool = False
) -> Delivery:
    return Delivery(
        webhook=webhook,
        seq=change.seq,
        type=change.type,
        ordering_key=key_of(change),
        next_attempt_at=now,
        request_body=body,
        replay=replay,
    )


@dataclass(frozen=True)
class Replayed:
    queued: int
    next_since: int  # where a further replay call starts
    more: bool


def replay(webhook: Webhook, since: int, *, limit: int = REPLAY_MAX) -> Replayed:
    """Queue again what ``webhook`` matches after ``since``, up to its cursor (the fan-out
    brings what is newer), as its owner may see it now. Call inside a transaction."""
    owners, until, cursor, queued = Owners(), webhook.cursor, since, 0
    now = timezone.now()
    while cursor < until and queued < limit:
        changes = list(
            Change.objects.filter(seq__gt=cursor, seq__lte=until).order_by("seq")[:BATCH]
        )
        deliveries = _matching([webhook], changes, owners, now, replay=True)
        Delivery.objects.bulk_create(deliveries, batch_size=500)
        queued += len(deliveries)
        cursor = changes[-1].seq if len(changes) == BATCH else until
    return Replayed(queued=queued, next_since=max(cursor, since), more=cursor < until)
