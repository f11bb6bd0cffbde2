"""The delivery task's round: fan the new changes out, send what is due, for a moment.

The task (events.deliver_webhooks) is rung after every commit that writes changes
and by beat every 2 s; a burst of commits rings it many times. One round runs per
process at a time: a doorbell that rings while one runs makes it go once more
instead of starting another, so nothing rung is missed and nothing piles up.
Several processes may run rounds at once: claims and row locks keep them apart.
"""

from __future__ import annotations

import threading
import time

from gwm.events.webhooks.deliver import deliver_due
from gwm.events.webhooks.fanout import BUDGET_SECONDS, fanout

ROUND_SECONDS = 1.5
_round_lock = threading.Lock()
_round = {"running": False, "again": False}


def deliver_round(budget: float = ROUND_SECONDS) -> bool:
    """Fan out and deliver until nothing is due, or for ``budget`` seconds; True when work
    was left (the task rings itself again)."""
    with _round_lock:
        if _round["running"]:
            _round["again"] = True
            return False
        _round["running"], _round["again"] = True, False
    deadline = time.monotonic() + budget
    try:
        while True:
            if not _until_idle(deadline):
                return True
            with _round_lock:
                if not _round["again"]:
                    _round["running"] = False
                    return False
                _round["again"] = False
    finally:
        with _round_lock:
            _round["running"] = False


def _until_idle(deadline: float) -> bool:
    """Whether nothing was left to do before ``deadline``."""
    while time.monotonic() < deadline:
        queued = fanout(budget=min(BUDGET_SECONDS, max(0.0, deadline - time.monotonic())))
        attempted = deliver_due(budget=max(0.0, deadline - time.monotonic()))
        if not queued and not attempted:
            return True
    return False
