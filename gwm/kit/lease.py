"""Leases: one worker at a time on a row, taken by compare-and-set, given up by expiry.

A row with ``lease_owner`` and ``lease_until`` columns (a job, a cluster) is
worked on by whoever holds its lease. ``claim`` is one conditional UPDATE, so
two workers can never both win; a worker that dies simply stops renewing, and
the row is free again once ``lease_until`` passes. ``dispatch`` reserves a row
for the task a dispatcher (beat, the sweeper) is about to ring, so the next
tick does not ring it again; that task's ``claim`` takes the reservation over.

An owner is ``<worker node>/<boot>/<thread>:<nonce>``. A worker process renews
the leases of its running tasks from one thread (``LeaseKeeper``), so leases can be short
and a dead worker's are free within one lease; and a worker that starts again
under the same node name frees what its previous life held at once
(``release_previous_lives``) instead of waiting for the leases to run out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Model, Q
from django.utils import timezone

DISPATCHED = "dispatched"
#: Room left in ``lease_owner`` (128) for the boot, thread and nonce.
_NODE_MAX = 80

log = logging.getLogger(__name__)


class _Identity:
    """Who this process is in its leases: set once its worker knows its node name."""

    def __init__(self) -> None:
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.boot = uuid.uuid4().hex[:8]

    @property
    def process(self) -> str:
        return f"{self.node}/{self.boot}"


IDENTITY = _Identity()


def set_node(name: str) -> None:
    """This process's worker node name (a Celery node name: unique per running worker)."""
    IDENTITY.node = name.replace("/", "_")[:_NODE_MAX]


def new_owner() -> str:
    """This process and thread, and a nonce: unique per claim."""
    return f"{IDENTITY.process}/{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class _Held:
    """The claims of this process whose task still runs: what the keeper renews.

    A claim leaves it when its task releases it, even when the release's UPDATE
    fails (the database locked or gone): the row then keeps its lease until it runs
    out and the sweeper hands it on, instead of a keeper renewing it for as long as
    this process lives with no task working on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: set[str] = set()

    def add(self, owner: str) -> None:
        with self._lock:
            self._owners.add(owner)

    def discard(self, owner: str) -> None:
        with self._lock:
            self._owners.discard(owner)

    def snapshot(self) -> list[str]:
        with self._lock:
            return sorted(self._owners)


HELD = _Held()


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
        if not claimed:
            return None
        HELD.add(owner)
        return owner

    def renew(self, pk: int, owner: str) -> bool:
        """Extend ``owner``'s lease; False if it ran out and someone else holds the row now."""
        until = timezone.now() + timedelta(seconds=self.seconds())
        rows = self.model._default_manager.filter(pk=pk, lease_owner=owner)
        return bool(rows.update(lease_until=until))

    def release(self, pk: int, owner: str) -> None:
        HELD.discard(owner)  # first: a failing UPDATE must not leave it renewed forever
        rows = self.model._default_manager.filter(pk=pk, lease_owner=owner)
        rows.update(lease_owner="", lease_until=None)

    def dispatch(self, pk: int) -> bool:
        """Reserve a free row for the task about to be rung; False if someone holds it."""
        now = timezone.now()
        until = now + timedelta(seconds=min(self.dispatch_seconds, self.seconds()))
        rows = self.model._default_manager.filter(pk=pk).filter(free(now))
        return bool(rows.update(lease_owner=DISPATCHED, lease_until=until))


def release_previous_lives(models: Sequence[type[Model]]) -> int:
    """Free the rows that an earlier process under this node name held: it is dead (the
    caller made sure no other live process has this name). Returns how many."""
    mine = Q(lease_owner__startswith=f"{IDENTITY.node}/")
    this_life = Q(lease_owner__startswith=f"{IDENTITY.process}/")
    freed = 0
    for model in models:
        rows = model._default_manager.filter(mine & ~this_life)
        freed += rows.update(lease_owner="", lease_until=None)
    if freed:
        log.info("took over %d lease(s) of this worker's previous run at once", freed)
    return freed


class LeaseKeeper:
    """A thread renewing the claims of this process's running tasks (``HELD``) every
    ``every`` seconds: one UPDATE per leased table, so a claim outlives its task's
    slowest step while the process lives, and lasts one lease after it dies."""

    def __init__(self, leases: Sequence[Lease], every: float) -> None:
        self.leases = leases
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gwm-lease-keeper", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def renew_all(self) -> int:
        from django.db import connection

        owners = HELD.snapshot()
        if not owners:
            return 0
        renewed = 0
        now = timezone.now()
        try:
            for lease in self.leases:
                rows = lease.model._default_manager.filter(lease_owner__in=owners)
                renewed += rows.update(lease_until=now + timedelta(seconds=lease.seconds()))
        finally:
            connection.close()  # this thread's: not held between ticks
        return renewed

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.renew_all()
            except Exception:  # a database hiccup: the next tick tries again
                log.warning("renewing this worker's leases failed", exc_info=True)
