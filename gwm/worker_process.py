"""What a worker process does when it starts and stops, embedded or distributed alike.

On ``worker_ready`` it takes its Celery node name as its lease identity, frees
what an earlier run under that name still held (that run is dead: a lock file
per node name on this host makes sure no live one shares the name), and starts
the lease keeper that renews its claims on clusters and jobs every third of a
lease. So a restarted worker resumes its own work at once, and another worker
takes a dead one's within a lease (docs/deployment.md#failover).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from pathlib import Path
from typing import IO, Any

from celery.signals import worker_ready, worker_shutdown

from gwm.kit import lease

log = logging.getLogger(__name__)

_running: dict[str, Any] = {}


def _name_lock(node: str) -> IO[str] | None:
    """Hold this host's lock for ``node``; None when a live process holds it already."""
    from django.conf import settings

    directory = Path(settings.DATA_DIR) / "workers"
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / (re.sub(r"[^A-Za-z0-9_.@-]", "_", node) + ".lock")).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def start(node: str) -> None:
    """This process is the worker ``node`` from now on (see the module's docstring)."""
    from gwm.operations.worker.lease import JOB_LEASE
    from gwm.sync.dispatch import CLUSTER_LEASE

    lease.set_node(node)
    held = _name_lock(node)
    if held is None:
        log.warning(
            "another live worker on this host is named %s: its leases are left alone; "
            "give each worker a name of its own (gwm worker --name)",
            node,
        )
    else:
        _running["lock"] = held
        lease.release_previous_lives([CLUSTER_LEASE.model, JOB_LEASE.model])
    leases = [CLUSTER_LEASE, JOB_LEASE]
    every = min(each.seconds() for each in leases) / 3
    _running["keeper"] = lease.LeaseKeeper(leases, every=every).start()


def stop() -> None:
    keeper = _running.pop("keeper", None)
    if keeper is not None:
        keeper.stop()
    held = _running.pop("lock", None)
    if held is not None:
        with contextlib.suppress(OSError):
            held.close()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    start(str(getattr(sender, "hostname", "") or "worker"))


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop()
