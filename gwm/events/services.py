"""Writing the change log. Called inside the transaction that makes the change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from gwm.events.models import Change, ChangeCounter


@dataclass(frozen=True)
class ChangeRecord:
    resource: str
    name: str
    action: str
    fields: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def last_seq() -> int:
    """The newest sequence number committed so far (0 before the first change)."""
    return ChangeCounter.objects.filter(pk=1).values_list("last_seq", flat=True).first() or 0


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


def changes_record(
    *, cluster_id: int | None, cluster_name: str, records: Sequence[ChangeRecord]
) -> list[Change]:
    """Append ``records`` to the change log in the current transaction."""
    if not records:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changes must be recorded inside the transaction that makes them")
    first = _allocate_seqs(len(records))
    rows = [
        Change(
            seq=first + offset,
            cluster_id=cluster_id,
            cluster_name=cluster_name,
            resource=record.resource,
            name=record.name,
            action=record.action,
            fields=record.fields,
            data=record.data,
        )
        for offset, record in enumerate(records)
    ]
    return Change.objects.bulk_create(rows)
