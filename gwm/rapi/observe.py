"""Who hears of every request a RAPI client sends: listeners an application registers.

The clients call :func:`sent` once per attempt, answered or not, with the request,
how long it took (send to decoded answer) and the error it ended in (``None``: it
succeeded); a listener that raises is logged and never fails the call. gwm's
metrics listen (gwm.observability.apps); a script using the client alone
registers nothing, and a call then costs one empty loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gwm.rapi.calls import RapiRequest
from gwm.rapi.errors import RapiError

log = logging.getLogger(__name__)

Listener = Callable[[RapiRequest, float, RapiError | None], None]

_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Call ``listener`` for every attempt of every client from now on (once per listener)."""
    if listener not in _listeners:
        _listeners.append(listener)


def stop_listening(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def sent(request: RapiRequest, seconds: float, error: RapiError | None) -> None:
    for listener in _listeners:
        try:
            listener(request, seconds, error)
        except Exception:  # a listener's bug must not fail the call it heard of
            log.exception("a RAPI listener failed")
