"""The live stream of changes (GET /api/v1/changes/stream): Server-Sent Events.

One hub per event loop reads each new change once and hands it to every
open stream (:mod:`.hub`); each stream catches up from its cursor, then
sends what its caller may see as it happens (:mod:`.session`), in frames
whose text is :mod:`.frames`. The HTTP edge only checks the request and
returns :func:`stream_response`.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import StreamingHttpResponse

from gwm.events.feed import Filters
from gwm.events.stream.hub import hubs
from gwm.events.stream.session import stream_of

CONTENT_TYPE = "text/event-stream"


def stats() -> dict[str, int]:
    """Open streams in this process: subscribers in a hub's fan-out, and their callers."""
    every = hubs()
    return {
        "subscribers": sum(hub.subscribers for hub in every),
        "callers": sum(hub.callers for hub in every),
    }


def stream_response(user: User, filters: Filters, cursor: int | None) -> StreamingHttpResponse:
    """The stream of ``user``'s changes after ``cursor`` (None: from now on)."""
    response = StreamingHttpResponse(stream_of(user, filters, cursor), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each frame on at once
    return response
