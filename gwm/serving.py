"""How `gwm serve` and `gwm demo` run: several API processes beside one worker.

One interpreter cannot serve requests in parallel, and an API that shares its
interpreter lock with sixteen worker threads and the sync loops answers slowly
under load. So the command's own process supervises: it runs migrations, the
embedded worker and beat (embedded mode; in distributed mode they are
`gwm worker` and `gwm beat` elsewhere), and starts ``GWM_API_PROCESSES`` API
processes with uvicorn's supervisor, which share one listening socket and are
restarted when they die. The API processes reach the worker through the
sockets of a private run directory (gwm.kit.localbus): doorbells to it,
wake-ups between all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: Tells an API process which process started it (it exits when that one dies).
PARENT_ENV = "GWM_SERVE_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def run_directory() -> Iterator[Path]:
    """A private directory for this run's sockets, as ``GWM_WAKE_DIR``, and its metrics.

    Entered before Django reads its settings, so this process and every API
    process it starts see it. Under /tmp with a short name: a Unix socket's path
    may not exceed 107 bytes, which a deep data directory would.
    """
    with tempfile.TemporaryDirectory(prefix="gwm-run-") as directory:
        os.environ["GWM_WAKE_DIR"] = directory
        # Prometheus' multiprocess mode (read when prometheus-client is first imported):
        # this run's own directory, unless the host shares one (GWM_METRICS_DIR).
        metrics = _METRICS_ENV not in os.environ
        if metrics:
            shared = os.environ.get("GWM_METRICS_DIR", "")
            os.environ[_METRICS_ENV] = shared or str(Path(directory) / "metrics")
            Path(os.environ[_METRICS_ENV]).mkdir(parents=True, exist_ok=True)
        try:
            yield Path(directory)
        finally:
            os.environ.pop("GWM_WAKE_DIR", None)
            if metrics:
                os.environ.pop(_METRICS_ENV, None)


@contextlib.contextmanager
def embedded_workers(run_dir: Path) -> Iterator[None]:
    """In embedded mode, the worker and beat in this process for the block, taking the
    API processes' doorbells; in distributed mode, nothing (they run elsewhere)."""
    from django.conf import settings

    if not settings.GWM_EMBEDDED:
        yield
        return
    from gwm.embedded import start_embedded_workers

    doorbell = run_dir / "doorbell.sock"
    workers = start_embedded_workers(doorbell=doorbell)
    # Read by the API processes' settings only: this process sends to its own broker.
    os.environ["GWM_DOORBELL_SOCKET"] = str(doorbell)
    try:
        yield
    finally:
        os.environ.pop("GWM_DOORBELL_SOCKET", None)
        workers.stop()


def serve_api(host: str, port: int, processes: int, *, log_level: str = "info") -> None:
    """Serve the API in ``processes`` processes until SIGINT or SIGTERM."""
    import uvicorn
    from django.conf import settings
    from uvicorn.supervisors import Multiprocess

    # X-Forwarded-For and X-Forwarded-Proto are believed from GWM_TRUSTED_PROXIES only
    # (uvicorn's proxy headers): from anyone else they would let a client choose the
    # address a token's allowed networks and the audit log see.
    trusted = settings.GWM_TRUSTED_PROXIES
    config = uvicorn.Config(
        "gwm.asgi:application",
        host=host,
        port=port,
        workers=processes,
        log_level=log_level,
        lifespan="off",
        access_log=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    os.environ[PARENT_ENV] = str(os.getpid())
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        os.environ.pop(PARENT_ENV, None)


def exit_with_parent() -> None:
    """In an API process: be sent SIGTERM when the supervising process dies, even by
    SIGKILL, so no orphan keeps serving the port (Linux; elsewhere a no-op)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
