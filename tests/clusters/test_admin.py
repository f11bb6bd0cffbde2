"""The cluster registry from the Django admin goes through the same checks as the API."""

from __future__ import annotations

import pytest
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.events.models import Change

pytestmark = pytest.mark.django_db


def _form(running, **overrides) -> dict:
    data = {
        "name": "from-admin",
        "description": "",
        "rapi_url": running.url,
        "username": "gwm",
        "password": "gwm",
        "tls_ca_pem": running.cert_path.read_text(),
        "tls_fingerprint": "",
        "tls_verify": "on",
        "fast_interval": "5",
        "runtime_interval": "15",
        "slow_interval": "60",
        "stale_after": "180",
    }
    data.update(overrides)
    return data


def test_admin_registers_a_cluster_after_checking_rapi(simulator, admin_user) -> None:
    running = simulator()
    client = Client()
    client.force_login(admin_user)
    refused = client.post("/admin/clusters/cluster/add/", _form(running, password="wrong"))
    assert refused.status_code == 200  # the form again, with the reason
    assert b"authentication failed" in refused.content.lower()
    assert not Cluster.objects.exists()

    added = client.post("/admin/clusters/cluster/add/", _form(running))
    assert added.status_code == 302, added.content[:2000]
    cluster = Cluster.objects.get(name="from-admin")
    assert cluster.status == "PROVISIONING"
    assert cluster.password_encrypted and cluster.password_encrypted != "gwm"
    assert Change.objects.filter(resource="cluster", name="from-admin", action="created").exists()
