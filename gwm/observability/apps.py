from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Wires the figures and the log context into every process that loads gwm's apps:
    RAPI requests are counted, Celery tasks get their log context, and a worker or beat
    started by Celery's own command logs in gwm's format (its handlers are dressed after
    Celery makes them, so its ``--loglevel`` and its "ready." line stay as they were)."""

    name = "gwm.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from celery import signals

        from gwm.observability import metrics, tasklog
        from gwm.rapi import observe

        observe.listen(metrics.rapi_request)
        signals.task_prerun.connect(tasklog.task_started, weak=False)
        signals.task_postrun.connect(tasklog.task_ended, weak=False)
        signals.after_setup_logger.connect(_dress, weak=False)
        signals.after_setup_task_logger.connect(_dress, weak=False)


def _dress(logger: Any = None, **_: Any) -> None:
    from django.conf import settings

    from gwm.observability.logs import dress

    if logger is not None:
        dress(logger, settings.GWM_LOG_FORMAT)
