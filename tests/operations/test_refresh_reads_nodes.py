"""A job's end re-reads the nodes when one of its instances came, went or moved.

Nodes list their instances by name (``primary_instances``/``secondary_instances``),
so a migrate's end must refresh the nodes as well as the instance, whether gwm
submitted it or an operator ran ``gnt-instance migrate`` (a foreign job, whose
action gwm does not know). Against the simulator over real HTTPS.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from gwm.clusters.models import Instance, Node
from gwm.clusters.services import cache
from gwm.operations.models import Job
from gwm.operations.worker.refresh import read_refresh
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, gnt, register

pytestmark = pytest.mark.django_db


def _running_drbd(running: Running) -> str:
    return next(
        name
        for name, i in running.sim.state.instances.items()
        if i.running_on and i.disk_template == "drbd"
    )


def _foreign_job(cluster, ganeti_job_id: int, name: str, action: str) -> Job:
    return Job.objects.create(
        cluster=cluster,
        cluster_name=cluster.name,
        ganeti_job_id=ganeti_job_id,
        foreign=True,
        action=action,
        resource_type="instance",
        resource_name=name,
        status="SUCCESS",
    )


def test_a_foreign_migrate_refreshes_both_nodes_lists(simulator) -> None:
    running = simulator(nodes=2, instances=12)
    cluster = register(running)
    full_sync(cluster)
    victim = _running_drbd(running)
    source = Instance.objects.get(cluster=cluster, name=victim).primary_node
    assert victim in Node.objects.get(cluster=cluster, name=source).primary_instances

    job_id = gnt(running, "gnt-instance", "migrate", victim)
    job = _foreign_job(cluster, job_id, victim, "ganeti.instance-migrate")
    refresh = read_refresh(job)

    assert refresh is not None
    assert refresh.read.node_names is not None, "the nodes were not re-read"
    cache.refresh_write(cluster.pk, refresh.read, gone_instances=[], now=timezone.now())
    target = Instance.objects.get(cluster=cluster, name=victim).primary_node
    assert target != source
    assert victim not in Node.objects.get(cluster=cluster, name=source).primary_instances
    assert victim in Node.objects.get(cluster=cluster, name=target).primary_instances
    # drbd: the old primary is now the secondary.
    assert victim in Node.objects.get(cluster=cluster, name=source).secondary_instances


def test_a_stop_re_reads_the_instance_and_not_the_nodes(simulator) -> None:
    running = simulator(nodes=2, instances=4)
    cluster = register(running)
    full_sync(cluster)
    victim = next(n for n, i in running.sim.state.instances.items() if i.running_on)

    job_id = gnt(running, "gnt-instance", "stop", victim)
    running.sim.stats.reset()
    refresh = read_refresh(_foreign_job(cluster, job_id, victim, "ganeti.instance-shutdown"))

    assert refresh is not None
    assert refresh.read.instances[victim]["ganeti_status"] == "ADMIN_down"
    assert refresh.read.node_names is None
    assert running.sim.stats.to_dict()["total"]["count"] == 2  # config and runtime
