"""The job lease: which worker works on a job now (see gwm.kit.lease)."""

from __future__ import annotations

from django.conf import settings

from gwm.kit.lease import Lease
from gwm.operations.models import Job

#: One tracking task follows a job at most this long, then hands over to a fresh task.
TRACK_SLICE_SECONDS = 45


def lease_seconds() -> float:
    """How long a claim holds (``GWM_JOB_LEASE_SECONDS``); a dead worker's expires then."""
    return float(settings.GWM_JOB_LEASE_SECONDS)


def track_slice_seconds() -> float:
    """A tracking slice ends well within its lease, or the sweeper would ring a second tracker."""
    return min(TRACK_SLICE_SECONDS, lease_seconds() / 2)


JOB_LEASE = Lease(Job, lease_seconds, dispatch_seconds=30.0)
