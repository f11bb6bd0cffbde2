"""Embedded mode: the Celery worker and beat run as threads of one process.

`gwm serve` runs them in its supervising process, beside (not inside) its API
processes, so requests never share an interpreter lock with sync rounds. With
the in-memory broker a message only exists inside this process: the API
processes' doorbells reach it as datagrams on ``doorbell`` (gwm.kit.localbus),
and it sends them on. Everything else is the same code as distributed mode:
tasks still only read ids from the database, so nothing is lost when the
process stops (the sweeper re-rings overdue work on the next start).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from celery.beat import EmbeddedService
from celery.worker import WorkController

from gwm import worker_process
from gwm.kit.enqueue import ring_from_doorbell
from gwm.kit.localbus import Listener

log = logging.getLogger(__name__)

#: The embedded worker's node name: one per data directory (gwm.worker_process locks it).
EMBEDDED_NODE = "embedded@gwm"


class Beat(Protocol):
    """Celery's embedded beat service (a thread here: ``EmbeddedService(thread=True)``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class EmbeddedWorkers:
    worker: WorkController
    beat: Beat
    thread: threading.Thread
    doorbell: Listener | None = None

    def stop(self) -> None:
        if self.doorbell is not None:
            self.doorbell.close()
        self.beat.stop()
        self.worker.stop()
        self.thread.join(timeout=10)
        worker_process.stop()


def start_embedded_workers(
    concurrency: int | None = None, *, doorbell: Path | None = None
) -> EmbeddedWorkers:
    """The worker and beat as threads of this process; ``doorbell``: also take other
    processes' doorbells on that socket."""
    from django.conf import settings

    from gwm.celery import app

    concurrency = concurrency or settings.GWM_WORKER_THREADS
    app.conf.beat_schedule_filename = str(settings.DATA_DIR / "celerybeat-schedule")
    worker = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        hostname=EMBEDDED_NODE,
        # Remote-control and cluster events mean nothing inside one process.
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
    )
    # Celery sends worker_ready from its command-line worker only: start the leases here.
    worker_process.start(EMBEDDED_NODE)
    thread = threading.Thread(target=worker.start, name="gwm-embedded-worker", daemon=True)
    thread.start()
    beat: Beat = EmbeddedService(app, thread=True)  # type: ignore[assignment]  # a _Threaded
    beat.start()
    listener = Listener(doorbell, ring_from_doorbell) if doorbell is not None else None
    log.info("embedded workers started (%d threads) with beat", concurrency)
    return EmbeddedWorkers(worker=worker, beat=beat, thread=thread, doorbell=listener)
