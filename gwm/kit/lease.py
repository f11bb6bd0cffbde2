"""Leases: one worker at a time on a row, taken by compare-and-set, given up by expiry.

A row with ``lease_owner`` and ``lease_until`` columns (a job, a cluster) is
worked on by whoever holds its lease. ``claim`` is one conditional UPDATE, so
two workers can never both win; a worker that dies simply stops renewing, and
the row is free again once ``lease_until`` passes. ``dispatch`` reserves a row
for the task a dispatcher (beat, the sweeper) is about to ring, so the next
tick does not ring it again; that task's ``claim`` takes the reservation over.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Model, Q
from django.utils import timezone

DISPATCHED = "dispatched"


def new_owner() -> str:
    """This process and thread, and a nonce: unique per claim."""
    return f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def free(now: datetime) -> Q:
    """Rows nobody holds: never leased, or the holder's lease ran out."""
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


@dataclass(frozen=True)
class Lease:
    model: type[Model]
    #: How long a claim holds before someone else may take the row.
    seconds: Callable[[], float]
    #: How long a dispatcher's reservation holds when its task never starts.
    dispatch_seconds: float = 30.0

    def claim(self, pk: int, condition: Q | None = None) -> str | None:
        """Take the row (free, or reserved for this task); the owner, or None if taken."""
        now = timezone.now()
        owner = new_owner()
        rows = self.model._default_manager.filter(pk=pk)
        if condition is not None:
            rows = rows.filter(condition)
        claimed = rows.filter(free(now) | Q(lease_owner=DISPATCHED)).update(
            lease_owner=owner, lease_until=now + timedelta(seconds=self.seconds())
        )
        return owner if claimed else None

    def renew(self, pk: int, owner: str) -> bool:
        """Extend ``owner``'s lease; False if it ran out and someone else holds the row now."""
        until = timezone.now() + timedelta(seconds=self.seconds())
        rows = self.model._default_manager.filter(pk=pk, lease_owner=owner)
        return bool(rows.update(lease_until=until))

    def release(self, pk: int, owner: str) -> None:
        rows = self.model._default_manager.filter(pk=pk, lease_owner=owner)
        rows.update(lease_owner="", lease_until=None)

    def dispatch(self, pk: int) -> bool:
        """Reserve a free row for the task about to be rung; False if someone holds it."""
        now = timezone.now()
        until = now + timedelta(seconds=min(self.dispatch_seconds, self.seconds()))
        rows = self.model._default_manager.filter(pk=pk).filter(free(now))
        return bool(rows.update(lease_owner=DISPATCHED, lease_until=until))
