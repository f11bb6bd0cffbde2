"""``GWM_HTTP_TIMEOUT_SECONDS`` bounds every RAPI read gwm makes."""

from __future__ import annotations

import time

import pytest

from gwm.clusters.models import Cluster, ClusterStatus
from tests.clusters.helpers import full_sync, register
from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_cluster_that_stops_answering_fails_its_round_after_the_timeout(
    simulator, settings
) -> None:
    running = simulator(instances=2)
    cluster = register(running)
    full_sync(cluster)
    settings.GWM_HTTP_TIMEOUT_SECONDS = 1
    sim_admin(running, "PUT", "faults", {"latency": 4.0})
    started = time.monotonic()
    try:
        full_sync(cluster)
    finally:
        took = time.monotonic() - started
        sim_admin(running, "DELETE", "faults")
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.status == ClusterStatus.UNREACHABLE, cluster.error
    assert "no answer within 1 s" in cluster.error, cluster.error
    # One read of 1 s (the RAPI client retries idempotent reads a few times), not 4 s each.
    assert took < 4.0 * 2, took
