"""Prometheus' multiprocess mode: every gwm process of a host writes its figures into one
directory, and whichever API process is scraped reads them all.

prometheus-client picks its mode when it is first imported, from
``PROMETHEUS_MULTIPROC_DIR``: `gwm serve` sets it to a ``metrics`` directory of its
run directory (gwm.serving) before Django starts, so its API processes and its
embedded worker share it; settings set it from ``GWM_METRICS_DIR`` for `gwm worker`
and `gwm beat` (docs/observability.md). Without it, each process counts in memory.

Each file in the directory is one process's (``counter_<pid>.db``...). :func:`tidy`,
run by each process before it makes its first figure, wipes what an earlier run
left: every file when no process that wrote one is alive any more (a new run: the
prometheus-client documentation's "wipe the directory at start"), else only the
live gauges of the dead ones (a restarted API process), whose counters stay so that
the sums Prometheus reads never go down while the run lasts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def directory() -> Path | None:
    raw = os.environ.get(ENV)
    return Path(raw) if raw else None


def active_directory() -> Path | None:
    """The directory, if this process writes its figures there (prometheus-client chose
    multiprocess mode when it was imported, which a later ``ENV`` cannot change)."""
    from prometheus_client import values

    path = directory()
    return path if path is not None and getattr(values.ValueClass, "_multiprocess", False) else None


def _pid_of(path: Path) -> int | None:
    tail = path.stem.rpartition("_")[2]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier process's files, whose pid this one was given again
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process (it exists)
    return True


def tidy(path: Path | None = None) -> None:
    """Remove the files of processes that are gone (see the module's docstring)."""
    path = path or directory()
    if path is None:
        return
    path.mkdir(parents=True, exist_ok=True)
    files = sorted(path.glob("*.db"))
    pids = {pid for pid in map(_pid_of, files) if pid is not None}
    alive = {pid for pid in pids if _alive(pid)}
    for file in files:
        pid = _pid_of(file)
        if pid in alive:
            continue
        if not alive or file.name.startswith("gauge_live"):
            with contextlib.suppress(FileNotFoundError):  # another process tidied it
                file.unlink()
