"""The text of a Server-Sent Events stream: event frames, comments and the control events.

An event frame is ``id: <seq>``, ``event: <type>`` and ``data: <the event as one line
of JSON>``; the browser's EventSource (and any SSE client) remembers the last ``id``
and sends it back as ``Last-Event-ID`` when it reconnects. Comments (``: seq=N``) and
the control events (``reset``, ``overflow``, ``revoked``, ``error``) carry no ``id``,
so they never move what a client resumes from.
"""

from __future__ import annotations

import json
from typing import Any

#: Sent when the stream reads from the retention floor on (the client relists).
RESET = "reset"
#: The last frame of a client that fell further behind than its buffer.
OVERFLOW = "overflow"
#: The last frame once the caller may no longer read what the stream was sending.
REVOKED = "revoked"
#: The last frame after a failure of the server's (resume with ``Last-Event-ID``).
ERROR = "error"
CONTROL_EVENTS = (RESET, OVERFLOW, REVOKED, ERROR)


def _json(value: Any) -> str:
    # json.dumps escapes every newline inside strings, so the data is one line.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event_frame(event: dict[str, Any]) -> bytes:
    """One change: ``id`` is its seq, ``event`` its type, ``data`` the event itself."""
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {_json(event)}\n\n".encode()


def heartbeat(seq: int) -> bytes:
    """A comment: every event up to ``seq`` that is for this client has been sent."""
    return f": seq={seq}\n\n".encode()


def control(name: str, data: dict[str, Any]) -> bytes:
    """A frame of the stream's own (no ``id``): a reset, or why the stream ends."""
    return f"event: {name}\ndata: {_json(data)}\n\n".encode()


def reset(floor: int, detail: str) -> bytes:
    return control(RESET, {"floor": floor, "detail": detail})


def overflow(last_seq_sent: int) -> bytes:
    return control(
        OVERFLOW,
        {
            "last_seq_sent": last_seq_sent,
            "detail": "this client fell too far behind the stream and was disconnected; "
            f"reconnect with Last-Event-ID: {last_seq_sent} to go on without a gap",
        },
    )


def ended(name: str, detail: str, last_seq_sent: int) -> bytes:
    """The last frame of a stream that ends for the caller's rights (or a failure)."""
    return control(name, {"detail": detail, "last_seq_sent": last_seq_sent})
