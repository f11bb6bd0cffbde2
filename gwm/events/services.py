"""Writing the change log. Called inside the transaction that makes the change.

Each row gets its event type, the seq of the same resource's previous change
(``previous_seq``) and, for updates, the old values of the changed fields:
from the writer when it knows them, else from the previous change of the same
resource when that one carried the field (every change carries each field it
changed, so the newest one carrying a field holds its last value).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max

from gwm.events.models import Change, ChangeAction, ChangeCounter
from gwm.events.notify import CHANGES_CHANNEL, publish_on_commit
from gwm.events.types import event_type
from gwm.kit.enqueue import ring_after_commit

_LOOKUP_BATCH = 500
WEBHOOKS_TASK = "events.deliver_webhooks"


@dataclass(frozen=True)
class ChangeRecord:
    resource: str
    name: str
    action: str
    fields: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    # What caused it, when the writer knows better than the batch's default.
    job_id: int | None = None
    user_id: int | None = None
    user_name: str = ""


@dataclass(frozen=True)
class Cause:
    """Who or what made a batch of changes: a gwm job, a user's request, or neither (a sync)."""

    job_id: int | None = None
    user_id: int | None = None
    user_name: str = ""


NO_CAUSE = Cause()


def cause_of(actor: Any) -> Cause:
    """The cause of a user's direct write (``actor`` a User, or None for gwm itself)."""
    if actor is None or getattr(actor, "pk", None) is None:
        return NO_CAUSE
    return Cause(user_id=actor.pk, user_name=actor.username)


def last_seq() -> int:
    """The newest sequence number committed so far (0 before the first change)."""
    return ChangeCounter.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0


def seq_bounds() -> tuple[int, int]:
    """(floor, last): a cursor below ``floor`` points at purged changes."""
    row = ChangeCounter.objects.filter(pk=1).values_list("floor_seq", "last_seq").first()
    return (row[0], row[1]) if row else (0, 0)


def _allocate_seqs(count: int) -> int:
    """Reserve ``count`` sequence numbers; returns the first.

    The counter row stays locked until the caller's transaction commits, so
    no other writer can take a higher number and commit earlier.
    """
    counter = ChangeCounter.objects.select_for_update().filter(pk=1).first()
    if counter is None:
        counter = ChangeCounter.objects.create(pk=1, last_seq=0)
        counter = ChangeCounter.objects.select_for_update().get(pk=1)
    first = counter.last_seq + 1
    counter.last_seq += count
    counter.save(update_fields=["last_seq"])
    return first


def _previous(
    cluster_id: int | None, records: Sequence[ChangeRecord]
) -> dict[tuple[str, str], Change]:
    """The newest earlier change of each resource in ``records`` (one query per 500 names)."""
    names: dict[str, set[str]] = defaultdict(set)
    for record in records:
        names[record.resource].add(record.name)
    newest: list[int] = []
    for resource, wanted in names.items():
        ordered = sorted(wanted)
        for start in range(0, len(ordered), _LOOKUP_BATCH):
            newest += (
                Change.objects.filter(
                    cluster=cluster_id,
                    resource=resource,
                    name__in=ordered[start : start + _LOOKUP_BATCH],
                )
                .values("name")
                .annotate(newest=Max("seq"))
                .values_list("newest", flat=True)
            )
    found: dict[tuple[str, str], Change] = {}
    for start in range(0, len(newest), _LOOKUP_BATCH):
        for row in Change.objects.filter(seq__in=newest[start : start + _LOOKUP_BATCH]).only(
            "seq", "resource", "name", "action", "data"
        ):
            found[(row.resource, row.name)] = row
    return found


def _before(record: ChangeRecord, previous: Change | None) -> dict[str, Any]:
    if record.action != ChangeAction.UPDATED:
        return {}
    before = dict(record.before)
    if previous is not None and previous.action != ChangeAction.DELETED:
        for name in record.fields:
            if name not in before and name in previous.data:
                before[name] = previous.data[name]
    return before


def changes_record(
    *,
    cluster_id: int | None,
    cluster_name: str,
    records: Sequence[ChangeRecord],
    cause: Cause = NO_CAUSE,
) -> list[Change]:
    """Append ``records`` to the change log in the current transaction; wake the feed's
    readers (streams, long polls, the webhook fan-out) once it commits."""
    if not records:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changes must be recorded inside the transaction that makes them")
    first = _allocate_seqs(len(records))
    # After the counter is locked: no other writer can add a change of these resources
    # between this read and the commit.
    previous = _previous(cluster_id, records)
    rows = []
    for offset, record in enumerate(records):
        seq = first + offset
        key = (record.resource, record.name)
        before = previous.get(key)
        explicit = record.job_id is not None or record.user_id is not None
        rows.append(
            Change(
                seq=seq,
                cluster_id=cluster_id,
                cluster_name=cluster_name,
                resource=record.resource,
                name=record.name,
                action=record.action,
                type=event_type(record.resource, record.action, record.fields, record.data),
                previous_seq=before.seq if before is not None else None,
                fields=record.fields,
                data=record.data,
                before=_before(record, before),
                job_id=record.job_id if explicit else cause.job_id,
                user_id=record.user_id if explicit else cause.user_id,
                user_name=record.user_name if explicit else cause.user_name,
            )
        )
        # The next record of the same resource in this batch follows this one.
        previous[key] = rows[-1]
    publish_on_commit(CHANGES_CHANNEL)
    # The webhook fan-out reads the log itself; the doorbell only says it moved.
    ring_after_commit(WEBHOOKS_TASK)
    return Change.objects.bulk_create(rows, batch_size=500)
