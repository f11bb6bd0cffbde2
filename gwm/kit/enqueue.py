"""Doorbells: ring a Celery task by name once the current transaction commits.

The broker is only a doorbell (tasks take ids and re-read the database), so a
doorbell rung before the commit could wake a worker that finds nothing yet,
and one rung for a transaction that rolled back would wake it for nothing.
Ringing by name keeps the layers one-way: a service never imports its tasks.

In an API process of `gwm serve` (embedded mode) the worker lives in another
process with an in-memory broker, so the doorbell goes to that process as a
datagram (``GWM_DOORBELL_SOCKET``, gwm.kit.localbus), which sends the task
there. A doorbell that does not arrive is re-rung by the sweepers.

A doorbell carries the request id of the context that rings it (the Celery header
``gwm_request_id``), so the task's log lines show the request that caused it; a job's
tasks also find it on the job's row (gwm.observability.tasklog), which a re-ring keeps.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import KombuError

from gwm.kit import localbus
from gwm.observability.context import task_headers

log = logging.getLogger(__name__)


def ring_after_commit(task: str, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: ring(task, *args, **kwargs))


def ring(task: str, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` now (from a worker: the next step of work already committed)."""
    headers = task_headers()
    if settings.GWM_DOORBELL_SOCKET:
        message = {"task": task, "args": args, "kwargs": kwargs, "headers": headers}
        doorbell = json.dumps(message).encode()
        if not localbus.send(Path(settings.GWM_DOORBELL_SOCKET), doorbell, wait=True):
            log.warning(
                "the worker process did not take the doorbell for %s; the sweeper will", task
            )
        return
    try:
        current_app.send_task(task, args=args, kwargs=kwargs, headers=headers or None)
    except (KombuError, OSError) as exc:
        # The broker is down: the work is already a row (committed), and a doorbell is
        # a hint the sweepers ring again once it is back. Not the request's failure:
        # the client's job exists and will run, so it must not read a 500.
        log.warning("the broker did not take the doorbell for %s (%s); the sweeper will", task, exc)


def ring_from_doorbell(payload: bytes) -> None:
    """In the worker process: send the task an API process's doorbell names."""
    doorbell = json.loads(payload)
    current_app.send_task(
        doorbell["task"],
        args=doorbell["args"],
        kwargs=doorbell["kwargs"],
        headers=doorbell.get("headers") or None,
    )
