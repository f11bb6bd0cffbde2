"""GET /api/v1/instances/export: every instance at once, as JSON lines.

The export must be the instance list without pages: the same objects (filters,
fields, ordering, effective status) as a walk of every page, for a caller who
sees everything and for one who sees a single instance; bad input is a problem.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster, Instance
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(simulator: Any) -> Cluster:
    running = simulator(nodes=3, instances=25, time_scale=0.02)
    registered = register(running, name="c1")
    full_sync(registered)
    return registered


def _export(api: Client, query: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/instances/export?{query}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.content.decode().splitlines()]


def _walk(api: Client, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        response = api.get(f"/api/v1/instances?{query}&limit=7{cursor}")
        assert response.status_code == 200, response.content
        page = response.json()
        items += page["items"]
        if not page["next"]:
            return items
        cursor = f"&cursor={page['next']}"


@pytest.mark.parametrize(
    "query",
    ["fields=name,status", "", "fields=name,memory&ordering=-memory", "status=running,stopped"],
)
def test_the_export_is_the_list_without_pages(api: Client, cluster: Cluster, query: str) -> None:
    exported = _export(api, query)
    if "status" not in query:
        assert len(exported) == Instance.objects.filter(cluster=cluster).count() > 0
    assert exported and exported == _walk(api, query)


def test_a_stale_cluster_exports_unknown_status(api: Client, cluster: Cluster) -> None:
    assert {item["status"] for item in _export(api, "fields=status")} != {"UNKNOWN"}
    Cluster.objects.filter(pk=cluster.pk).update(synced_at=None)
    assert {item["status"] for item in _export(api, "fields=status")} == {"UNKNOWN"}


def test_a_caller_exports_only_what_it_may_read(
    api: Client, cluster: Cluster, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("one-instance")
    _, token = token_create(actor=None, user=user, name="export")
    own = Client(headers={"Authorization": f"Bearer {token}"})
    assert _export(own, "fields=name") == []
    chosen = Instance.objects.filter(cluster=cluster).order_by("name")[3]
    RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"),
        user=user,
        scope="instance",
        cluster=cluster,
        instance=chosen.name,
    )
    assert _export(own, "fields=name") == [{"name": chosen.name}]
    assert len(_export(api, "fields=name")) > 1


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("fields=nope", "fields"), ("ordering=nope", "ordering"), ("status=asleep", "status")],
)
def test_bad_input_is_a_problem(api: Client, cluster: Cluster, query: str, parameter: str) -> None:
    response = api.get(f"/api/v1/instances/export?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert parameter in response.content.decode()
