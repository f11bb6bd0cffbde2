"""A sync round that read Ganeti before a job ended must not undo what the job's end wrote.

A job's end re-reads what it touched and writes it (ARCHITECTURE.md, "Status
model"). A sync round that started reading before that and writes after it
holds older news about those objects: it must leave them for the next round.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from gwm.clusters import sync
from gwm.clusters.ganeti import RapiReader, client_for
from gwm.clusters.models import Instance
from gwm.events.services import last_seq

pytestmark = pytest.mark.django_db(transaction=True)


def _reader(live):
    return RapiReader(client_for(live.cluster))


def _fingerprints(live):
    return {
        name: (serial_no, mtime, admin_state, pnode)
        for name, serial_no, mtime, admin_state, pnode in Instance.objects.filter(
            cluster=live.cluster
        ).values_list("name", "serial_no", "mtime", "admin_state", "primary_node")
    }


def test_a_runtime_sweep_read_before_a_start_does_not_stop_it_again(live) -> None:
    name = live.stopped_names()[0]
    seen = last_seq()  # as run_due_tiers does before each read
    read = sync.read_runtime_sweep(_reader(live))  # says: stopped
    assert live.wait_done(live.action(name, "start").json())["status"] == "SUCCESS"
    assert live.instance(name)["status"] == "RUNNING"

    sync.apply_round(live.cluster.pk, read, now=timezone.now(), tier="runtime", read_after=seen)

    instance = live.instance(name)
    assert (instance["status"], instance["ganeti"]["status"]) == ("RUNNING", "running")


def test_a_round_read_before_a_create_does_not_delete_the_new_instance(live) -> None:
    node = sorted(live.running.sim.state.nodes)[0]
    seen = last_seq()
    read = sync.read_fast_round(
        _reader(live),
        known_fingerprints=_fingerprints(live),
        last_job_id=live.cluster.last_job_id,
        open_job_ids=[],
    )
    body = {
        "name": "fresh.example.test",
        "disk_template": "diskless",
        "os": live.sim_instance(live.running_names()[0]).os,
        "pnode": node,
        "name_check": False,
        "ip_check": False,
    }
    assert live.wait_done(live.post("/instances", body).json())["status"] == "SUCCESS"

    sync.apply_round(live.cluster.pk, read, now=timezone.now(), tier="fast", read_after=seen)

    assert live.api.get(live.url("/instances/fresh.example.test")).status_code == 200
    assert live.instance("fresh.example.test")["status"] == "RUNNING"


def test_a_round_read_before_a_delete_does_not_bring_the_instance_back(live) -> None:
    name = live.stopped_names()[0]
    seen = last_seq()
    read = sync.read_slow_round(_reader(live))
    response = live.api.delete(live.url(f"/instances/{name}"))
    assert live.wait_done(response.json())["status"] == "SUCCESS"

    sync.apply_round(live.cluster.pk, read, now=timezone.now(), tier="slow", read_after=seen)

    assert live.api.get(live.url(f"/instances/{name}")).status_code == 404


def test_the_next_round_still_writes_what_changed_later(live) -> None:
    """Only news older than a job's end is held back; a round read after it is written."""
    name = live.running_names()[0]
    assert live.wait_done(live.action(name, "shutdown").json())["status"] == "SUCCESS"
    live.running.sim.state.instances[name].admin_state = "up"  # gnt-instance start, say
    live.running.sim.state.instances[name].running_on = live.sim_instance(name).pnode
    seen = last_seq()
    read = sync.read_runtime_sweep(_reader(live))

    sync.apply_round(live.cluster.pk, read, now=timezone.now(), tier="runtime", read_after=seen)

    assert live.instance(name)["ganeti"]["status"] == "running"
