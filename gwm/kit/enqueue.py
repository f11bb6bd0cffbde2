"""Doorbells: ring a Celery task by name once the current transaction commits.

The broker is only a doorbell (tasks take ids and re-read the database), so a
doorbell rung before the commit could wake a worker that finds nothing yet,
and one rung for a transaction that rolled back would wake it for nothing.
Ringing by name keeps the layers one-way: a service never imports its tasks.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def ring_after_commit(task: str, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: ring(task, *args, **kwargs))


def ring(task: str, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` now (from a worker: the next step of work already committed)."""
    current_app.send_task(task, args=args, kwargs=kwargs)
