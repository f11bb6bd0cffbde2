"""Failpoints: named places where a test can make this process die on purpose.

``GWM_FAILPOINTS=operations.after_submit`` makes the process SIGKILL itself
when it reaches ``failpoint("operations.after_submit")``: the crash a
durability test needs, at the one instant that matters (after Ganeti
accepted a job, before gwm recorded its id). Unset in production; costs one
environment lookup.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    armed = os.environ.get("GWM_FAILPOINTS", "")
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
