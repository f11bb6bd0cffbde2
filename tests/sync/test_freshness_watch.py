"""The watch tier: Ganeti's job list read about every second, what ended jobs touched re-read.

Against the simulator over real HTTPS: changes made outside gwm arrive with a
watch (no fast round), a quiet watch costs one request, and a watch that
cannot read Ganeti fails like any round.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gwm.clusters.models import Cluster, Instance, Node
from gwm.events.models import Change
from gwm.ganeti import reads
from gwm.simulator.server import Running
from gwm.sync import rounds
from gwm.sync.dispatch import dispatch_due_syncs
from gwm.sync.rounds import run_due_tiers
from tests.clusters.helpers import full_sync, gnt, register, runtime_sweep, wait_for_jobs
from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db


def _watch_only(cluster: Cluster) -> list[str]:
    """Run a round in which only the watch is due (no fast, runtime or slow round)."""
    later = timezone.now() + timedelta(hours=1)
    Cluster.objects.filter(pk=cluster.pk).update(
        next_watch_at=None, next_fast_at=later, next_runtime_at=later, next_slow_at=later
    )
    return run_due_tiers(cluster.pk)


def _requests(running: Running) -> dict[str, Any]:
    stats = running.sim.stats.to_dict()
    return {"total": stats["total"]["count"], "routes": stats["requests"]}


def _running_instance(running: Running, cluster: Cluster) -> str:
    name = next(n for n, i in running.sim.state.instances.items() if i.running_on)
    assert Instance.objects.get(cluster=cluster, name=name).status == "RUNNING"
    return name


def test_a_stop_outside_gwm_arrives_with_the_watch_in_three_requests(simulator) -> None:
    running = simulator(nodes=2, instances=6)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)  # the jobs from before gwm came
    victim = _running_instance(running, cluster)
    seq_before = Change.objects.order_by("-seq").values_list("seq", flat=True).first()

    gnt(running, "gnt-instance", "stop", victim)
    running.sim.stats.reset()
    assert _watch_only(cluster) == ["watch"]

    instance = Instance.objects.get(cluster=cluster, name=victim)
    assert instance.status == "STOPPED"
    assert instance.ganeti_status == "ADMIN_down"
    changed = Change.objects.filter(seq__gt=seq_before, resource="instance")
    assert set(changed.values_list("name", flat=True)) == {victim}
    # The job query, then the instance's config and runtime by name: no fingerprints
    # of every instance, no node read (a fast round makes five requests).
    cost = _requests(running)
    assert cost["total"] == 3
    assert cost["routes"]["PUT /2/query/{name}"]["count"] == 3
    cluster.refresh_from_db()
    assert cluster.watch_synced_at is not None
    assert cluster.last_job_id == max(running.sim.queue.jobs)
    assert cluster.open_job_ids == []


def test_a_job_still_running_is_followed_until_it_ends(simulator) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)
    victim = _running_instance(running, cluster)
    sim_admin(running, "PUT", "queue", {"hold": True})
    job_id = sim_admin(
        running, "POST", "exec", {"client": "gnt-instance", "command": "stop", "name": victim}
    )["job_id"]

    _watch_only(cluster)
    cluster.refresh_from_db()
    assert cluster.open_job_ids == [job_id]
    assert Instance.objects.get(cluster=cluster, name=victim).status == "RUNNING"

    sim_admin(running, "PUT", "queue", {"hold": False})
    wait_for_jobs(running)
    _watch_only(cluster)
    cluster.refresh_from_db()
    assert cluster.open_job_ids == []
    assert Instance.objects.get(cluster=cluster, name=victim).status == "STOPPED"


def test_a_migrate_outside_gwm_moves_the_instance_between_the_nodes_lists(simulator) -> None:
    """A migrate's opcode names no node: the watch reads the nodes because the
    instance's primary node changed, so both nodes' instance lists follow."""
    running = simulator(nodes=2, instances=12)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)
    victim = next(
        name
        for name, i in running.sim.state.instances.items()
        if i.running_on and i.disk_template == "drbd"
    )
    source = Instance.objects.get(cluster=cluster, name=victim).primary_node
    target = next(n for n in running.sim.state.nodes if n != source)
    assert victim in Node.objects.get(cluster=cluster, name=source).primary_instances

    gnt(running, "gnt-instance", "migrate", victim)
    wait_for_jobs(running)
    _watch_only(cluster)

    assert Instance.objects.get(cluster=cluster, name=victim).primary_node == target
    assert victim not in Node.objects.get(cluster=cluster, name=source).primary_instances
    assert victim in Node.objects.get(cluster=cluster, name=target).primary_instances


def test_an_instance_removed_outside_gwm_is_deleted_by_the_watch(simulator) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)
    victim = next(iter(running.sim.state.instances))
    assert Instance.objects.filter(cluster=cluster, name=victim).exists()

    gnt(running, "gnt-instance", "remove", victim)
    _watch_only(cluster)

    assert not Instance.objects.filter(cluster=cluster, name=victim).exists()
    assert Instance.objects.filter(cluster=cluster).count() == 3
    assert Change.objects.filter(resource="instance", name=victim, action="deleted").exists()


def test_each_tier_costs_the_requests_the_budget_counts_on(simulator) -> None:
    running = simulator(nodes=2, instances=6)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)
    changes = Change.objects.count()
    for tier, run, requests in [
        ("watch", _watch_only, reads.WATCH_REQUESTS),
        ("runtime", runtime_sweep, reads.RUNTIME_SWEEP_REQUESTS),
    ]:
        running.sim.stats.reset()
        assert tier in run(cluster)
        assert _requests(running)["total"] == requests, tier
    running.sim.stats.reset()
    later = timezone.now() + timedelta(hours=1)
    Cluster.objects.filter(pk=cluster.pk).update(
        next_slow_at=None, next_watch_at=later, next_runtime_at=later
    )
    assert run_due_tiers(cluster.pk) == ["slow"]
    assert _requests(running)["total"] == reads.SLOW_ROUND_REQUESTS
    assert Change.objects.count() == changes  # nothing changed: nothing written


def test_the_watch_stays_within_the_request_budget_with_the_other_tiers(simulator) -> None:
    running = simulator(instances=4)
    cluster = register(running)
    full_sync(cluster)
    cluster.refresh_from_db()
    every = rounds.watch_every(cluster, watch_seconds=0.015)
    steady = (
        reads.WATCH_REQUESTS / every
        + reads.RUNTIME_SWEEP_REQUESTS / rounds.runtime_every(cluster)
        + reads.SLOW_ROUND_REQUESTS / cluster.slow_interval
    )
    assert cluster.watch_interval <= every <= 1.5
    assert steady == pytest.approx(rounds.REQUEST_BUDGET)
    # A master slow to answer stretches the watch.
    assert rounds.watch_every(cluster, watch_seconds=0.5) == pytest.approx(
        0.5 / rounds.WATCH_BUDGET
    )
    # The first round scheduled the watch; the fast round is pushed on while watching.
    assert cluster.next_watch_at is not None and cluster.next_fast_at is not None
    assert cluster.next_fast_at - cluster.next_watch_at > timedelta(seconds=30)


def test_a_due_watch_is_dispatched(simulator) -> None:
    running = simulator(instances=2)
    cluster = register(running)
    full_sync(cluster)
    later = timezone.now() + timedelta(hours=1)
    Cluster.objects.filter(pk=cluster.pk).update(
        next_watch_at=later, next_fast_at=later, next_runtime_at=later, next_slow_at=later
    )
    assert dispatch_due_syncs() == 0
    Cluster.objects.filter(pk=cluster.pk).update(next_watch_at=timezone.now())
    assert dispatch_due_syncs() == 1


def test_without_a_watch_interval_fast_rounds_do_the_work(simulator) -> None:
    running = simulator(instances=2)
    cluster = register(running, watch_interval=0)
    full_sync(cluster)
    cluster.refresh_from_db()
    assert cluster.next_watch_at is None
    Cluster.objects.filter(pk=cluster.pk).update(next_fast_at=timezone.now())
    assert run_due_tiers(cluster.pk) == ["fast"]


def test_a_watch_that_cannot_read_ganeti_fails_like_a_round(simulator) -> None:
    running = simulator(instances=3)
    cluster = register(running)
    full_sync(cluster)
    _watch_only(cluster)
    cluster.refresh_from_db()
    assert cluster.status == "AVAILABLE"
    sim_admin(running, "PUT", "faults", {"master_unreachable": True})

    started = timezone.now()
    assert _watch_only(cluster) == []

    cluster.refresh_from_db()
    assert cluster.status == "UNREACHABLE"
    assert cluster.error
    assert Instance.objects.filter(cluster=cluster).count() == 3
    retry = timedelta(seconds=max(cluster.fast_interval, rounds.RETRY_UNREACHABLE_SECONDS))
    assert cluster.next_watch_at is not None and cluster.next_watch_at >= started + retry

    sim_admin(running, "DELETE", "faults")
    assert _watch_only(cluster) == ["watch"]
    cluster.refresh_from_db()
    assert cluster.status == "AVAILABLE"
    assert cluster.error == ""
