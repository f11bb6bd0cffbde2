"""The two log formats (``GWM_LOG_FORMAT``): plain lines for a terminal, JSON for a shipper.

Both carry the context of gwm.observability.context: plain as ``[<request id or ->
job_id=.. cluster=..]`` after the logger's name, JSON as the fields ``request_id``,
``job_id``, ``cluster`` and ``task`` (null when not known) beside ``time`` (ISO 8601,
UTC), ``level``, ``logger``, ``message`` and ``process``; an exception adds
``exc_info``. settings.LOGGING builds them with :func:`plain_formatter` and
:func:`json_formatter`; a Celery worker started by its own command, which installs
its own handlers, gets the same through :func:`dress` (gwm.observability.apps).
"""

from __future__ import annotations

import logging

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gwm.observability.context import FIELDS, ContextFilter

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(context)s]: %(message)s"
JSON_FORMAT = " ".join(
    f"%({name})s" for name in ("levelname", "name", "message", *FIELDS, "process")
)
FORMATS = ("plain", "json")


def plain_formatter() -> logging.Formatter:
    # The default covers a record that reached the handler without the filter.
    return logging.Formatter(PLAIN_FORMAT, defaults={"context": "-"})


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        JSON_FORMAT,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        # ``context`` is the plain format's; the JSON has the fields themselves.
        reserved_attrs=[*RESERVED_ATTRS, "context"],
    )


def formatter(kind: str) -> logging.Formatter:
    return json_formatter() if kind == "json" else plain_formatter()


def dress(logger: logging.Logger, kind: str) -> None:
    """Give ``logger``'s handlers gwm's format and context (after Celery made them)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(kind))
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
