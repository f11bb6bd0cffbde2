"""The URLs of gwm's resources, built in one place so every answer links the same way."""

from __future__ import annotations

API_ROOT = "/api/v1"

#: Resource kind (as jobs and change rows name it) → its collection under a cluster.
COLLECTIONS = {
    "instance": "instances",
    "node": "nodes",
    "group": "groups",
    "network": "networks",
}


def cluster_url(cluster: str) -> str:
    return f"{API_ROOT}/clusters/{cluster}"


def resource_url(kind: str, cluster: str, name: str) -> str | None:
    """The URL of ``name`` of ``kind`` in ``cluster``; the cluster's own for ``cluster``.

    ``None`` for a kind gwm does not serve (a foreign job on something else).
    """
    if kind == "cluster" or not name:
        return cluster_url(cluster)
    collection = COLLECTIONS.get(kind)
    if collection is None:
        return None
    return f"{cluster_url(cluster)}/{collection}/{name}"


def job_url(job_id: int) -> str:
    return f"{API_ROOT}/jobs/{job_id}"
