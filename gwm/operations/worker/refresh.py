"""What to re-read from Ganeti when a job ends, so statuses return to what Ganeti says."""

from __future__ import annotations

import logging

from gwm.clusters.models import Cluster, Instance, Node
from gwm.clusters.services.cache import instance_placements
from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure
from gwm.ganeti.reads import RapiReader
from gwm.ganeti.rereads import read_refresh as read_touched
from gwm.operations.models import Job
from gwm.operations.services.lifecycle import Refresh

log = logging.getLogger(__name__)

#: gwm's actions that change which instances the nodes hold. An instance gwm creates is
#: cached before its job ends (PROVISIONING, on the node asked for), so only the action
#: tells; for other jobs (foreign ones) a change of placement does (``read_touched``).
MOVES_INSTANCES = {
    "instance.create",
    "instance.delete",
    "instance.migrate",
    "instance.failover",
    "instance.rename",
    "instance.modify",
}


def read_refresh(job: Job) -> Refresh | None:
    """Re-read at once what ``job`` touched; None when that cannot be read now."""
    cluster = Cluster.objects.filter(pk=job.cluster_id).first() if job.cluster_id else None
    if cluster is None:
        return None
    instances: list[str] = []
    nodes = groups = info = False
    if job.resource_type == "instance":
        instances = [job.resource_name]
        if job.params.get("new_name"):
            instances.append(job.params["new_name"])
        nodes = job.action in MOVES_INSTANCES
    elif job.resource_type == "node":
        # Every instance the node holds, as primary or secondary: evacuating
        # secondaries moves instances whose primary is elsewhere.
        nodes = True
        node = Node.objects.filter(cluster=cluster, name=job.resource_name).first()
        held = set(node.primary_instances + node.secondary_instances) if node else set()
        held |= set(
            Instance.objects.filter(cluster=cluster, primary_node=job.resource_name).values_list(
                "name", flat=True
            )
        )
        instances = sorted(held)
    elif job.resource_type in {"group", "network"}:
        groups = nodes = True
    elif job.resource_type == "cluster":
        info = True
    try:
        reader = RapiReader(client_for(cluster))
        try:
            read, gone = read_touched(
                reader,
                instances=instances,
                known=instance_placements(cluster.pk, instances),
                nodes=nodes,
                groups=groups,
                info=info,
            )
        finally:
            reader.close()
    except RoundFailure as failure:
        log.warning("job %s ended, but re-reading what it touched failed: %s", job.pk, failure)
        return None
    return Refresh(read=read, instances_gone=gone)
