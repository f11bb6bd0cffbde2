"""When to try a failed webhook delivery again, and when to give up.

Attempt 1 is the first send. After attempt ``n`` fails, attempt ``n + 1``
comes ``SCHEDULE[n - 1]`` later (before jitter)::

    attempt fails   next attempt after   time since the first attempt
         1               5 s                    0:00:05
         2              30 s                    0:00:35
         3               2 min                  0:02:35
         4              10 min                  0:12:35
         5              30 min                  0:42:35
         6               1 h                    1:42:35
         7               2 h                    3:42:35
         8               4 h                    7:42:35
         9               8 h                   15:42:35
        10               8 h                   23:42:35
        11               8 h                   31:42:35
        12            give up (None)

Quick retries catch a blip (a receiver restarting); the long tail carries an
event over a receiver's day-long outage. Each wait is moved by up to ±20% at
random, so the deliveries of an endpoint that failed together do not all come
back in the same second; even with every wait 20% short the retries span
more than 25 hours, so a receiver down for a whole day still gets its events.

A ``Retry-After`` answer (seconds, or an HTTP date) is honoured as a floor:
gwm never comes back sooner than asked. It is capped at one hour, so a
receiver cannot park a delivery (and every later event of the same resource,
which waits behind it) for days; and it grants no extra attempts.

``settings.GWM_WEBHOOK_RETRY_SCALE`` (default 1.0) multiplies every delay,
Retry-After included, so tests and demos can run the whole schedule in seconds.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.conf import settings

SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800)
#: The first attempt and one retry per step of the schedule.
MAX_ATTEMPTS = len(SCHEDULE) + 1
JITTER = 0.2
RETRY_AFTER_CAP = 3600.0


def next_delay(
    attempt: int,
    *,
    retry_after: str | None = None,
    random: Callable[[], float] = random_module.random,
    now: datetime | None = None,
) -> float | None:
    """Seconds to wait after attempt number ``attempt`` failed; None to give up.

    ``random`` returns a float in [0, 1) (injectable for tests); ``retry_after``
    is the failed response's header, if any; ``now`` dates an HTTP-date one.
    """
    if attempt < 1:
        raise ValueError(f"attempts are counted from 1, not {attempt}")
    if attempt > len(SCHEDULE):
        return None
    delay = SCHEDULE[attempt - 1] * (1 + JITTER * (2 * random() - 1))
    asked = parse_retry_after(retry_after, now=now)
    if asked is not None:
        delay = max(delay, min(asked, RETRY_AFTER_CAP))
    return delay * retry_scale()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now``; None when absent or unreadable.

    RFC 9110 allows a number of seconds or an HTTP date; a date in the past is 0.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_scale() -> float:
    return float(getattr(settings, "GWM_WEBHOOK_RETRY_SCALE", 1.0))
