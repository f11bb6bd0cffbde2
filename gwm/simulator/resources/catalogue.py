"""Every RAPI resource the simulator serves, as one table."""

from __future__ import annotations

from gwm.simulator.http import Resources
from gwm.simulator.resources import cluster, groups, instances, jobs, networks, nodes, queries, tags

RESOURCES = Resources(
    cluster.RESOURCES,
    tags.RESOURCES,
    instances.RESOURCES,
    nodes.RESOURCES,
    groups.RESOURCES,
    networks.RESOURCES,
    jobs.RESOURCES,
    queries.RESOURCES,
)
