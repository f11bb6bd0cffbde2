"""Registering a cluster asks Ganeti first; meanwhile other writes must not wait for it.

On SQLite a transaction holds the one write lock from its start, so a registration
whose probe ran inside the request's transaction stopped every writer (sync rounds,
job updates, other requests) for as long as Ganeti took to answer.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction

from gwm.accounts.models import AuditEntry
from gwm.clusters.models import Cluster
from gwm.events.services import ChangeRecord, changes_record
from tests.clusters.helpers import registration_body
from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db(transaction=True)


def test_other_writes_go_on_while_a_registration_waits_for_ganeti(simulator, api) -> None:
    running = simulator(instances=1)
    sim_admin(running, "PUT", "faults", {"latency": 2.0})
    answers: list[int] = []

    def register() -> None:
        try:
            answer = api.post(
                "/api/v1/clusters", registration_body(running), content_type="application/json"
            )
            answers.append(answer.status_code)
        finally:
            connections.close_all()

    registering = threading.Thread(target=register)
    registering.start()
    time.sleep(0.5)  # the probe is under way: Ganeti takes 2 s to answer
    started = time.monotonic()
    with transaction.atomic():
        changes_record(
            cluster_id=None,
            cluster_name="",
            records=[ChangeRecord("webhook", "1", "updated", ["state"], {"state": "healthy"})],
        )
    took = time.monotonic() - started
    registering.join(timeout=30)
    sim_admin(running, "DELETE", "faults")

    assert answers == [201]
    assert took < 1.0, f"a write waited {took:.1f} s for a registration's probe"
    assert Cluster.objects.filter(name="c1").exists()
    entry = AuditEntry.objects.get(action="cluster.create")
    assert (entry.status, entry.resource_name) == (201, "c1")
