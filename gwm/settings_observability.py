"""Logging and metrics settings from the environment (docs/observability.md).

``GWM_LOG_FORMAT``
    ``plain`` (a person at a terminal: the default in embedded mode, `make demo`) or
    ``json`` (a log shipper: the default in distributed mode, production). Both
    carry the request id, and the job and cluster a line is about.
``GWM_METRICS_TOKEN``
    the bearer token a Prometheus scraper sends to ``/metrics`` (16 characters or
    more); unset, ``/metrics`` answers 404: its figures name every cluster.
``GWM_METRICS_DIR``
    where the gwm processes of one host (`gwm api`/`gwm serve`, `gwm worker`, `gwm
    beat`) keep their figures for the API processes to serve: prometheus-client's
    multiprocess mode, which reads ``PROMETHEUS_MULTIPROC_DIR`` when it is first
    imported (after these settings). `gwm serve` and `gwm api` without it use a
    directory of their own run (gwm.serving).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["GWM_METRICS_DIR", "GWM_METRICS_TOKEN"]

LOG_FORMATS = ("plain", "json")


def log_format(*, embedded: bool) -> str:
    chosen = os.environ.get("GWM_LOG_FORMAT", "").strip().lower() or (
        "plain" if embedded else "json"
    )
    if chosen not in LOG_FORMATS:
        raise ImproperlyConfigured(f"GWM_LOG_FORMAT={chosen!r} is not plain or json")
    return chosen


def logging_config(*, level: str, kind: str) -> dict[str, Any]:
    """settings.LOGGING: one console handler in format ``kind``, with the log context."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "gwm.observability.context.ContextFilter"}},
        "formatters": {
            "plain": {"()": "gwm.observability.logs.plain_formatter"},
            "json": {"()": "gwm.observability.logs.json_formatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": kind,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            # One line per RAPI request drowns everything else; gwm logs failures itself.
            "httpx": {"level": "WARNING"},
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
            "celery.beat": {"level": "WARNING"},
        },
    }


GWM_METRICS_TOKEN = os.environ.get("GWM_METRICS_TOKEN", "")
if GWM_METRICS_TOKEN and len(GWM_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("GWM_METRICS_TOKEN is shorter than 16 characters")
GWM_METRICS_DIR = os.environ.get("GWM_METRICS_DIR", "")
if GWM_METRICS_DIR:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", GWM_METRICS_DIR)
