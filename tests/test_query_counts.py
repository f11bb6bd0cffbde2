"""Every list costs a fixed number of SQL queries, however many rows it returns.

Each list endpoint is measured with 10 rows and with 1,000 (one page, limit=1000):
the two counts must be equal (no query per row, no N+1) and equal to the number
pinned in PINNED. A pinned number that changes is a decision: look at the
queries the failure lists, and pin the new number only if each one is needed.

The counts include authentication: one query reads the token with its user.
The token's ``last_used_at`` is written at most once a minute, so each test
warms up with one request first; the measured requests then never write it.

One allowance, for the database and not for gwm: SQLite binds at most 999
parameters per query, so Django's ``in_bulk()`` fetches a page of 1,000 ids in
two queries (on PostgreSQL, one). The endpoints in IN_BULK load their page that
way; for them the 1,000-row page may cost exactly those extra batches, no more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gwm.clusters.models import (
    Cluster,
    ClusterStatus,
    Instance,
    InstanceStatus,
    Network,
    Node,
    NodeGroup,
    NodeStatus,
)
from gwm.operations.models import Job, JobStatus

# endpoint -> queries one page of 10 rows costs, authentication included.
PINNED = {
    "instances": 3,  # token, the clusters' freshness (stale or not), the page
    "instances?fields=name,status": 3,  # the same, fewer columns
    "cluster instances": 4,  # token, the cluster, the clusters' freshness, the page
    "nodes": 4,  # token, the cluster, the clusters' freshness, the page
    "groups": 4,  # the same
    "networks": 4,  # the same
    "clusters": 5,  # token, the page's ids, its rows (in_bulk), node and instance counts
    "jobs": 3,  # token, the page's ids, its rows with their users (in_bulk)
}
IN_BULK = {"clusters", "jobs"}  # pages loaded by in_bulk(): batched by SQLite's 999 limit
SMALL, LARGE = 10, 1000
CLUSTERS = ("alpha", "beta", "gamma")  # the cross-cluster lists spread rows over these


def _cluster(name: str) -> Cluster:
    """An AVAILABLE cluster synced just now: not stale, so its objects keep their status."""
    return Cluster(
        name=name,
        rapi_url=f"https://{name}.example.org:5080",
        status=ClusterStatus.AVAILABLE,
        synced_at=timezone.now(),
    )


def _grow(model: Any, total: int, make: Callable[[int], Any]) -> None:
    """Add rows made by ``make(i)`` until ``model`` has ``total`` of them."""
    model.objects.bulk_create([make(i) for i in range(model.objects.count(), total)])


def _instances(total: int, clusters: list[Cluster]) -> None:
    _grow(
        Instance,
        total,
        lambda i: Instance(
            cluster=clusters[i % len(clusters)],
            name=f"vm{i:04}.example.org",
            status=InstanceStatus.RUNNING,
            ganeti_status="running",
            primary_node="node1.example.org",
            memory=1024,
            vcpus=2,
            tags=["web"],
            tag_index="\nweb\n",
            synced_at=timezone.now(),
        ),
    )


def _nodes(total: int, clusters: list[Cluster]) -> None:
    _grow(
        Node,
        total,
        lambda i: Node(
            cluster=clusters[0],
            name=f"node{i:04}.example.org",
            status=NodeStatus.ONLINE,
            synced_at=timezone.now(),
        ),
    )


def _groups(total: int, clusters: list[Cluster]) -> None:
    _grow(
        NodeGroup,
        total,
        lambda i: NodeGroup(cluster=clusters[0], name=f"group{i:04}", synced_at=timezone.now()),
    )


def _networks(total: int, clusters: list[Cluster]) -> None:
    _grow(
        Network,
        total,
        lambda i: Network(
            cluster=clusters[0],
            name=f"net{i:04}",
            network=f"10.{i // 256}.{i % 256}.0/24",
            synced_at=timezone.now(),
        ),
    )


def _clusters(total: int, clusters: list[Cluster]) -> None:
    _grow(Cluster, total, lambda i: _cluster(f"cluster{i:04}"))


def _jobs(total: int, clusters: list[Cluster]) -> None:
    users = [None, *get_user_model().objects.all()]  # the admin, the requester, and nobody
    _grow(
        Job,
        total,
        lambda i: Job(
            cluster=clusters[i % len(clusters)],
            cluster_name=clusters[i % len(clusters)].name,
            action="instance.start",
            resource_type="instance",
            resource_name=f"vm{i:04}.example.org",
            status=JobStatus.SUCCESS,
            foreign=i % 3 == 0,
            user=users[i % len(users)],
            ganeti_job_id=i + 1,
        ),
    )


FIRST = CLUSTERS[0]
ENDPOINTS: dict[str, tuple[str, Callable[[int, list[Cluster]], None]]] = {
    "instances": ("/api/v1/instances?limit=1000", _instances),
    "instances?fields=name,status": ("/api/v1/instances?limit=1000&fields=name,status", _instances),
    "cluster instances": (
        f"/api/v1/clusters/{FIRST}/instances?limit=1000",
        lambda total, clusters: _instances(total, clusters[:1]),
    ),
    "nodes": (f"/api/v1/clusters/{FIRST}/nodes?limit=1000", _nodes),
    "groups": (f"/api/v1/clusters/{FIRST}/groups?limit=1000", _groups),
    "networks": (f"/api/v1/clusters/{FIRST}/networks?limit=1000", _networks),
    "clusters": ("/api/v1/clusters?limit=1000", _clusters),
    "jobs": ("/api/v1/jobs?limit=1000", _jobs),
}


def _batches(rows: int) -> int:
    """Queries in_bulk() needs for ``rows`` ids on this database."""
    size = connection.features.max_query_params
    return -(-rows // size) if size else 1


def _queries(api: Client, url: str, items: int) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url)
    assert response.status_code == 200, response.content
    assert len(response.json()["items"]) == items
    return [query["sql"] for query in captured.captured_queries]


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """The admin's password is hashed in setup; a slow hasher would be most of these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clusters(db: None) -> list[Cluster]:
    made = Cluster.objects.bulk_create([_cluster(name) for name in CLUSTERS])
    get_user_model().objects.create_user("operator")  # a second requester of jobs
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_list_costs_the_same_queries_for_10_rows_as_for_1000(
    api: Client, clusters: list[Cluster], endpoint: str
) -> None:
    url, grow = ENDPOINTS[endpoint]
    api.get(url)  # warm-up: the token's last_used_at write happens here, not below
    grow(SMALL, clusters)
    small = _queries(api, url, SMALL)
    grow(LARGE, clusters)
    large = _queries(api, url, LARGE)
    extra = _batches(LARGE) - _batches(SMALL) if endpoint in IN_BULK else 0
    assert len(small) == PINNED[endpoint], (
        f"{endpoint}: {len(small)} queries, pinned {PINNED[endpoint]}:\n" + "\n".join(small)
    )
    assert len(large) == len(small) + extra, (
        f"{endpoint}: {len(small)} queries for {SMALL} rows, {len(large)} for {LARGE}"
        f" (in_bulk batches allow {extra} more):\n" + "\n".join(large)
    )


@pytest.mark.django_db
def test_fields_selects_only_those_fields(api: Client, clusters: list[Cluster]) -> None:
    _instances(SMALL, clusters)
    response = api.get("/api/v1/instances?limit=1000&fields=name,status")
    assert [set(item) for item in response.json()["items"]] == [{"name", "status"}] * SMALL
