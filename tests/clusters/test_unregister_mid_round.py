"""A cluster unregistered while its sync round reads Ganeti: the round ends quietly."""

from __future__ import annotations

from typing import Any

import pytest

from gwm.clusters.models import Cluster, Instance
from gwm.clusters.services import cache, registry
from gwm.sync import tasks
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_round_whose_cluster_was_unregistered_meanwhile_writes_nothing(
    simulator, monkeypatch, caplog
) -> None:
    running = simulator(instances=4)
    cluster = register(running)
    full_sync(cluster)
    assert Instance.objects.filter(cluster=cluster).count() == 4
    write = cache.round_write

    def unregister_then_write(cluster_id: int, *args: Any, **kwargs: Any) -> int:
        # The race, injected: the round has read Ganeti, then the admin unregisters.
        registry.cluster_delete(Cluster.objects.get(pk=cluster_id), actor=None)
        return write(cluster_id, *args, **kwargs)

    monkeypatch.setattr(cache, "round_write", unregister_then_write)
    Cluster.objects.filter(pk=cluster.pk).update(next_fast_at=None)
    tasks.sync_cluster(cluster.pk)  # raised Cluster.DoesNotExist into the worker
    assert not Cluster.objects.exists()
    assert not Instance.objects.exists()
    assert "unregistered during its sync round" in caplog.text
