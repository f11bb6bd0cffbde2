"""Operations on a cluster gwm cannot vouch for are refused: 409, a problem body, nothing written.

A cluster still PROVISIONING (its first sync has not finished) and a stale one
(not heard from within ``stale_after``) refuse every operation endpoint (from
tests/write_endpoints.py, checked against the OpenAPI document). After the
cluster is synced (or fresh again) the same request is accepted, so the 409 was
the cluster's state. Registry writes (settings, unregister, sync) stay allowed:
they are how an operator fixes such a cluster.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from gwm.clusters.models import Cluster
from tests.clusters.helpers import full_sync, register
from tests.write_endpoints import SAMPLES, Sample, send, snapshot

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
OPERATIONS = [sample for sample in SAMPLES if sample.operation]


def _assert_conflict(response: Any, status: str) -> dict[str, Any]:
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 409
    assert body["code"] == "resource_busy", body
    assert body["resource_status"] == status, body
    assert body["detail"]
    assert response["Retry-After"]
    assert "id" not in body  # no job came back
    return dict(body)


@pytest.mark.parametrize("sample", OPERATIONS, ids=[s.key for s in OPERATIONS])
def test_operations_on_a_provisioning_cluster_are_409(
    simulator: Any, api: Client, sample: Sample
) -> None:
    running = simulator(nodes=3, instances=12, time_scale=0.02)
    cluster = register(running, name="sim")
    assert Cluster.objects.get(pk=cluster.pk).status == "PROVISIONING"
    before = snapshot(running)

    body = _assert_conflict(send(api, sample, running), "PROVISIONING")
    assert "PROVISIONING" in body["detail"]
    assert snapshot(running) == before
    if sample.dry_run:
        _assert_conflict(send(api, sample, running, dry_run=True), "PROVISIONING")
        assert snapshot(running) == before

    full_sync(cluster)
    assert Cluster.objects.get(pk=cluster.pk).status == "AVAILABLE"
    accepted = send(api, sample, running)
    assert accepted.status_code == 202, accepted.content


@pytest.mark.parametrize("sample", OPERATIONS, ids=[s.key for s in OPERATIONS])
def test_operations_on_a_stale_cluster_are_409(simulator: Any, api: Client, sample: Sample) -> None:
    running = simulator(nodes=3, instances=12, time_scale=0.02)
    cluster = register(running, name="sim")
    full_sync(cluster)
    cluster.refresh_from_db()
    old = timezone.now() - timedelta(seconds=cluster.stale_after + 60)
    Cluster.objects.filter(pk=cluster.pk).update(synced_at=old)
    # Reads say so: what gwm knows of this cluster is UNKNOWN now.
    assert api.get("/api/v1/clusters/sim/instances?fields=status").json()["items"][0] == {
        "status": "UNKNOWN"
    }
    before = snapshot(running)

    _assert_conflict(send(api, sample, running), "UNKNOWN")
    assert snapshot(running) == before
    if sample.dry_run:
        _assert_conflict(send(api, sample, running, dry_run=True), "UNKNOWN")
        assert snapshot(running) == before

    Cluster.objects.filter(pk=cluster.pk).update(synced_at=timezone.now())
    accepted = send(api, sample, running)
    assert accepted.status_code == 202, accepted.content


@pytest.mark.parametrize("sync_first", [False, True], ids=["provisioning", "stale"])
def test_registry_writes_stay_allowed(simulator: Any, api: Client, sync_first: bool) -> None:
    running = simulator(nodes=3, instances=12, time_scale=0.02)
    cluster = register(running, name="sim")
    if sync_first:
        full_sync(cluster)
        Cluster.objects.filter(pk=cluster.pk).update(
            synced_at=timezone.now() - timedelta(seconds=cluster.stale_after + 60)
        )
    patched = api.patch(
        "/api/v1/clusters/sim", {"description": "fixing it"}, content_type="application/json"
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["description"] == "fixing it"
    assert api.post("/api/v1/clusters/sim/sync").status_code == 202
