"""A sync round that read Ganeti before a job ended must not undo what the job's end wrote.

A job's end re-reads what it touched and writes it (docs/status-model.md). A sync
round that started reading before that and writes after it holds older news about
those objects: it must leave them for the next round.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from gwm.clusters.models import Instance
from gwm.clusters.services import cache
from gwm.events.services import last_seq
from gwm.ganeti import reads
from gwm.ganeti.connect import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def _reader(live):
    return reads.RapiReader(client_for(live.cluster))


def _fingerprints(live):
    return {
        name: (serial_no, mtime, admin_state, pnode)
        for name, serial_no, mtime, admin_state, pnode in Instance.objects.filter(
            cluster=live.cluster
        ).values_list("name", "serial_no", "mtime", "admin_state", "primary_node")
    }


def test_a_runtime_sweep_read_before_a_start_does_not_stop_it_again(live) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    seen = last_seq()  # as run_due_tiers does before each read
    read = reads.read_runtime_sweep(_reader(live))
    assert read.instances[name]["ganeti_status"] == "ADMIN_down"  # older news: stopped
    assert read.instances[name]["oper_state"] is False
    assert live.wait_done(live.action(name, "start").json())["status"] == "SUCCESS"
    assert live.instance(name)["status"] == "RUNNING"

    cache.round_write(live.cluster.pk, read, now=timezone.now(), tier="runtime", read_after=seen)

    instance = live.instance(name)
    assert (instance["status"], instance["ganeti"]["status"]) == ("RUNNING", "running")


def test_a_round_read_before_a_create_does_not_delete_the_new_instance(live) -> None:
    live.quiet()
    node = sorted(live.running.sim.state.nodes)[0]
    seen = last_seq()
    # A slow round's read names every instance: its deletion pass removes what it did
    # not see. (A fast round whose names match the cache skips that pass altogether,
    # so it could not show the new instance being deleted.)
    read = reads.read_slow_round(_reader(live))
    assert read.instance_names is not None
    assert "fresh.example.test" not in read.instance_names
    body = {
        "name": "fresh.example.test",
        "disk_template": "diskless",
        "os": live.sim_instance(live.running_names()[0]).os,
        "pnode": node,
        "name_check": False,
        "ip_check": False,
    }
    assert live.wait_done(live.post("/instances", body).json())["status"] == "SUCCESS"
    assert live.instance("fresh.example.test")["status"] == "RUNNING"

    cache.round_write(live.cluster.pk, read, now=timezone.now(), tier="slow", read_after=seen)

    assert live.api.get(live.url("/instances/fresh.example.test")).status_code == 200
    assert live.instance("fresh.example.test")["status"] == "RUNNING"


def test_a_round_read_before_a_delete_does_not_bring_the_instance_back(live) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    seen = last_seq()
    read = reads.read_slow_round(_reader(live))
    assert name in read.instances and name in (read.instance_names or set())
    response = live.api.delete(live.url(f"/instances/{name}"))
    assert live.wait_done(response.json())["status"] == "SUCCESS"
    assert live.api.get(live.url(f"/instances/{name}")).status_code == 404

    cache.round_write(live.cluster.pk, read, now=timezone.now(), tier="slow", read_after=seen)

    assert live.api.get(live.url(f"/instances/{name}")).status_code == 404


def test_the_next_round_still_writes_what_changed_later(live) -> None:
    """Only news older than a job's end is held back; a round read after it is written."""
    live.quiet()
    name = live.running_names()[0]
    assert live.wait_done(live.action(name, "shutdown").json())["status"] == "SUCCESS"
    assert live.instance(name)["ganeti"]["status"] == "ADMIN_down"
    live.running.sim.state.instances[name].admin_state = "up"  # gnt-instance start, say
    live.running.sim.state.instances[name].running_on = live.sim_instance(name).pnode
    seen = last_seq()
    read = reads.read_runtime_sweep(_reader(live))
    assert read.instances[name]["ganeti_status"] == "running"

    cache.round_write(live.cluster.pk, read, now=timezone.now(), tier="runtime", read_after=seen)

    assert live.instance(name)["ganeti"]["status"] == "running"


def test_a_foreign_job_refreshes_what_it_touched_without_the_runtime_sweep(simulator) -> None:
    """The watcher restarts a crashed instance: only the foreign job can tell the fast
    round (the restart leaves the configuration, and so the fingerprints, alone)."""
    from tests.clusters.helpers import fast_round, full_sync, gnt, register, runtime_sweep
    from tests.conftest import sim_admin

    running = simulator(instances=4)
    cluster = register(running)
    full_sync(cluster)
    name = next(n for n, i in sorted(running.sim.state.instances.items()) if i.running_on)
    serial = running.sim.state.instances[name].serial_no
    sim_admin(running, "POST", f"instances/{name}/crash")
    runtime_sweep(cluster)
    crashed = Instance.objects.get(cluster=cluster, name=name)
    assert (crashed.status, crashed.ganeti_status) == ("ERROR", "ERROR_down")

    gnt(running, "watcher", "restart", name)
    assert running.sim.state.instances[name].running_on
    assert running.sim.state.instances[name].serial_no == serial  # config untouched
    fast_round(cluster)

    restarted = Instance.objects.get(cluster=cluster, name=name)
    assert (restarted.status, restarted.ganeti_status) == ("RUNNING", "running")
