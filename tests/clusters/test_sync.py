"""The sync engine against the simulator over real HTTPS (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from gwm.clusters.models import Cluster, Instance, Network, Node, NodeGroup
from gwm.events.models import Change
from gwm.sync.dispatch import sync_cluster
from tests.clusters.helpers import fast_round, full_sync, gnt, register, runtime_sweep
from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db


def _sync_in_thread(cluster_id: int) -> None:
    """What a worker thread does: one task, then its database connection is closed."""
    try:
        sync_cluster(cluster_id, force=True)
    finally:
        connections.close_all()


def _instances(cluster: Cluster) -> dict[str, Instance]:
    return {i.name: i for i in Instance.objects.filter(cluster=cluster)}


def test_initial_import_mirrors_the_whole_cluster(simulator) -> None:
    running = simulator(nodes=3, instances=25)
    cluster = register(running)
    assert cluster.status == "PROVISIONING"

    assert full_sync(cluster) == ["slow", "runtime"]

    cluster.refresh_from_db()
    state = running.sim.state
    assert cluster.status == "AVAILABLE"
    assert cluster.ganeti_name == state.info["name"]
    assert cluster.software_version
    assert set(Node.objects.filter(cluster=cluster).values_list("name", flat=True)) == set(
        state.nodes
    )
    cached = _instances(cluster)
    assert set(cached) == set(state.instances)
    assert NodeGroup.objects.filter(cluster=cluster).count() == len(state.groups)
    assert Network.objects.filter(cluster=cluster).count() == len(state.networks)
    for name, sim_instance in state.instances.items():
        mine = cached[name]
        assert mine.os == sim_instance.os
        assert mine.primary_node == state.node_by_uuid(sim_instance.pnode).name
        assert mine.serial_no == sim_instance.serial_no
        assert mine.tags == sim_instance.tags
        assert len(mine.disks) == len(sim_instance.disks)
        assert len(mine.nics) == len(sim_instance.nics)
        expected = "RUNNING" if sim_instance.running_on else "STOPPED"
        assert mine.status == expected, name
        assert mine.ganeti_status in {"running", "ADMIN_down"}
        assert mine.memory is not None and mine.vcpus is not None
    # History starts here: one created change per object and one for the cluster.
    created = Change.objects.filter(cluster=cluster, action="created")
    assert created.filter(resource="instance").count() == 25
    assert created.filter(resource="node").count() == 3


def test_a_round_with_nothing_changed_writes_nothing(simulator) -> None:
    running = simulator(instances=8)
    cluster = register(running)
    full_sync(cluster)
    before = Change.objects.count()
    fast_round(cluster)
    runtime_sweep(cluster)
    assert Change.objects.count() == before


def test_changes_made_outside_gwm_arrive_in_one_fast_round(simulator) -> None:
    running = simulator(nodes=2, instances=6)
    cluster = register(running)
    full_sync(cluster)
    state = running.sim.state
    victim = next(name for name, i in state.instances.items() if i.running_on)
    seq_before = Change.objects.order_by("-seq").values_list("seq", flat=True).first()

    gnt(running, "gnt-instance", "shutdown", victim)
    fast_round(cluster)

    instance = Instance.objects.get(cluster=cluster, name=victim)
    assert instance.status == "STOPPED"
    assert instance.ganeti_status == "ADMIN_down"
    assert instance.admin_state == "down"
    changes = Change.objects.filter(seq__gt=seq_before, resource="instance")
    assert set(changes.values_list("name", flat=True)) == {victim}
    assert "status" in changes.get().fields

    gnt(running, "gnt-instance", "startup", victim)
    fast_round(cluster)
    instance.refresh_from_db()
    assert instance.status == "RUNNING"


def test_migration_added_and_removed_instances(simulator) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running)
    full_sync(cluster)
    state = running.sim.state
    names = sorted(state.instances)

    # Migration: a config change (primary node), seen by the fingerprint.
    target = (
        next(n for n in names if state.instances[n].disk_template in {"drbd"})
        if any(state.instances[n].disk_template == "drbd" for n in names)
        else None
    )
    removed = names[0]
    gnt(running, "gnt-instance", "remove", removed)
    gnt(
        running,
        "gnt-instance",
        "add",
        "fresh.example.test",
        mode="create",
        disk_template="diskless",
        os_type=state.instances[names[1]].os,
        disks=[],
        nics=[],
        pnode=next(iter(state.nodes)),
        beparams={"memory": 128},
        name_check=False,
        ip_check=False,
        start=True,
    )
    if target is not None:
        gnt(running, "gnt-instance", "migrate", target)
    fast_round(cluster)

    cached = _instances(cluster)
    assert removed not in cached
    assert "fresh.example.test" in cached
    assert cached["fresh.example.test"].status == "RUNNING"
    assert Change.objects.filter(resource="instance", name=removed, action="deleted").exists()
    if target is not None:
        assert cached[target].primary_node == state.node_by_uuid(state.instances[target].pnode).name


def test_crash_is_seen_by_the_runtime_sweep(simulator) -> None:
    running = simulator(instances=4)
    cluster = register(running)
    full_sync(cluster)
    name = next(n for n, i in running.sim.state.instances.items() if i.running_on)
    sim_admin(running, "POST", f"instances/{name}/crash")

    fast_round(cluster)  # config did not change: the fast tier cannot know
    assert Instance.objects.get(cluster=cluster, name=name).status == "RUNNING"
    runtime_sweep(cluster)
    instance = Instance.objects.get(cluster=cluster, name=name)
    assert instance.status == "ERROR"
    assert instance.ganeti_status == "ERROR_down"


def test_node_going_down_surfaces_as_error_nodedown(simulator) -> None:
    running = simulator(nodes=2, instances=6)
    cluster = register(running)
    full_sync(cluster)
    state = running.sim.state
    node = next(iter(state.nodes))
    on_node = [n for n, i in state.instances.items() if i.pnode == state.nodes[node].uuid]
    assert on_node
    sim_admin(running, "PUT", f"nodes/{node}", {"unreachable": True})

    runtime_sweep(cluster)

    assert Node.objects.get(cluster=cluster, name=node).status == "UNKNOWN"
    for name in on_node:
        instance = Instance.objects.get(cluster=cluster, name=name)
        assert instance.ganeti_status == "ERROR_nodedown"
        assert instance.status == "ERROR"

    sim_admin(running, "PUT", f"nodes/{node}", {"unreachable": False, "offline": True})
    fast_round(cluster)
    runtime_sweep(cluster)
    assert Node.objects.get(cluster=cluster, name=node).status == "OFFLINE"


def test_unreachable_cluster_keeps_its_objects_then_reads_unknown_then_recovers(
    simulator, api
) -> None:
    running = simulator(instances=5)
    cluster = register(running, stale_after=60)
    full_sync(cluster)
    sim_admin(running, "PUT", "faults", {"master_unreachable": True})

    full_sync(cluster)

    cluster.refresh_from_db()
    assert cluster.status == "UNREACHABLE"
    assert "502" in cluster.error or "master" in cluster.error.lower()
    assert Instance.objects.filter(cluster=cluster).count() == 5
    listing = api.get("/api/v1/instances?fields=name,status").json()["items"]
    assert {item["status"] for item in listing} <= {"RUNNING", "STOPPED"}

    # Past the staleness bound every object reads UNKNOWN, and filters agree.
    Cluster.objects.filter(pk=cluster.pk).update(synced_at=timezone.now() - timedelta(minutes=5))
    listing = api.get("/api/v1/instances?fields=name,status").json()["items"]
    assert {item["status"] for item in listing} == {"UNKNOWN"}
    assert len(api.get("/api/v1/instances?status=UNKNOWN").json()["items"]) == 5

    sim_admin(running, "DELETE", "faults")
    full_sync(cluster)
    cluster.refresh_from_db()
    assert cluster.status == "AVAILABLE"
    assert cluster.error == ""
    listing = api.get("/api/v1/instances?fields=name,status").json()["items"]
    assert "UNKNOWN" not in {item["status"] for item in listing}


def test_a_stopped_rapi_is_unreachable_with_the_cause(simulator) -> None:
    running = simulator(instances=2)
    cluster = register(running)
    full_sync(cluster)
    running.stop()
    full_sync(cluster)
    cluster.refresh_from_db()
    assert cluster.status == "UNREACHABLE"
    assert "connect" in cluster.error


@pytest.mark.django_db(transaction=True)
def test_a_hung_cluster_does_not_delay_another(simulator) -> None:
    """Two clusters synced by worker threads; one hangs, the other finishes first."""
    hung_sim = simulator(instances=3)
    healthy_sim = simulator(instances=3, seed=7)
    hung = register(hung_sim, name="hung")
    healthy = register(healthy_sim, name="healthy")
    sim_admin(hung_sim, "PUT", "faults", {"hang": 8})

    started = time.monotonic()
    threads = [threading.Thread(target=_sync_in_thread, args=(c.pk,)) for c in (hung, healthy)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=20)
    healthy_done = time.monotonic() - started

    healthy.refresh_from_db()
    hung.refresh_from_db()
    assert healthy.status == "AVAILABLE"
    assert healthy_done < 5, healthy_done
    assert hung.status == "PROVISIONING"  # still waiting on its hung RAPI
    threads[0].join(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_one_cluster_is_synced_by_one_worker_at_a_time(simulator) -> None:
    running = simulator(instances=3)
    cluster = register(running)
    sim_admin(running, "PUT", "faults", {"latency": 0.5})
    threads = [threading.Thread(target=_sync_in_thread, args=(cluster.pk,)) for _ in range(3)]
    running.sim.stats.reset()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # One round of the slow tier reads /2/info once; three concurrent tasks, one lease.
    info_calls = sum(
        route["count"]
        for key, route in running.sim.stats.to_dict()["requests"].items()
        if "/2/info" in key
    )
    assert info_calls == 1
    cluster.refresh_from_db()
    assert cluster.lease_owner == ""
