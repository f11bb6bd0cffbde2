"""Cursor paging while the cache changes underneath, and ETags across sync rounds.

Paging: a client walks /api/v1/instances page by page while rows are inserted
before and after its cursor and deleted (as sync rounds and creates do between
its requests). Every row that exists throughout must come exactly once; none
twice. Instances just created through the API are PROVISIONING with no memory,
vCPUs or mtime yet, so orderings by those columns meet NULLs.

ETags: a round that changed nothing keeps the body byte for byte and answers 304
to If-None-Match; a change made outside gwm gives a new body (checked) and a
new ETag.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from gwm.clusters.models import Cluster, Instance
from gwm.simulator.server import Running
from tests.clusters.helpers import fast_round, full_sync, gnt, register, runtime_sweep

pytestmark = pytest.mark.django_db

ORDERINGS = [
    "name",
    "-name",
    "memory",
    "-memory",
    "vcpus",
    "-vcpus",
    "status",
    "-status",
    "os",
    "mtime",
    "-mtime",
]


@pytest.fixture
def synced(simulator: Any) -> Iterator[tuple[Running, Cluster]]:
    running = simulator(nodes=3, instances=30, time_scale=0.02)
    cluster = register(running, name="c1")
    full_sync(cluster)
    cluster.refresh_from_db()
    yield running, cluster


def _create_provisioning(api: Client, running: Running, names: list[str]) -> None:
    """New instances, listed at once as PROVISIONING (no worker runs: they stay so)."""
    os_name = next(iter(running.sim.state.instances.values())).os
    node = sorted(running.sim.state.nodes)[0]
    for name in names:
        response = api.post(
            "/api/v1/clusters/c1/instances",
            {
                "name": name,
                "disk_template": "plain",
                "disks": [{"size": 1024}],
                "nics": [],
                "os": os_name,
                "pnode": node,
                "name_check": False,
                "ip_check": False,
            },
            content_type="application/json",
        )
        assert response.status_code == 202, response.content


def _insert(cluster: Cluster, name: str, like: Instance) -> None:
    """A row written by a sync round (an instance added outside gwm)."""
    Instance.objects.create(
        cluster=cluster,
        name=name,
        status=like.status,
        os=like.os,
        primary_node=like.primary_node,
        memory=like.memory,
        vcpus=like.vcpus,
        mtime=like.mtime,
        synced_at=timezone.now(),
    )


def _page(api: Client, ordering: str, cursor: str | None, limit: int) -> dict[str, Any]:
    url = f"/api/v1/instances?fields=name&limit={limit}&ordering={ordering}"
    if cursor:
        url += f"&cursor={cursor}"
    response = api.get(url)
    assert response.status_code == 200, response.content
    return dict(response.json())


@pytest.mark.parametrize("limit", [4, 2])
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_paging_never_repeats_or_skips_a_surviving_row(
    synced: tuple[Running, Cluster], api: Client, ordering: str, limit: int
) -> None:
    running, cluster = synced
    _create_provisioning(api, running, ["new-a.example.test", "new-b.example.test"])
    everything = api.get(f"/api/v1/instances?fields=name&limit=1000&ordering={ordering}").json()
    original = [item["name"] for item in everything["items"]]
    assert len(original) == 32 and everything["next"] is None

    seen: list[str] = []
    page = _page(api, ordering, None, limit)
    seen += [item["name"] for item in page["items"]]
    assert page["next"]

    # Between the first and the second page the cache changes.
    unseen = [name for name in original if name not in seen]
    deleted_unseen = unseen[len(unseen) // 2]
    deleted_seen = seen[-1]
    Instance.objects.filter(cluster=cluster, name__in=[deleted_unseen, deleted_seen]).delete()
    template = Instance.objects.get(cluster=cluster, name=unseen[-1])
    _insert(cluster, "aaa-before.example.test", template)
    _insert(cluster, "zzz-after.example.test", template)
    _create_provisioning(api, running, ["new-c.example.test"])

    pages = 1
    while page["next"]:
        page = _page(api, ordering, page["next"], limit)
        seen += [item["name"] for item in page["items"]]
        pages += 1
        assert pages < 60, f"paging does not end: {seen}"

    repeated = sorted({name for name in seen if seen.count(name) > 1})
    assert not repeated, f"rows returned twice: {repeated}"
    survivors = set(original) - {deleted_unseen, deleted_seen}
    skipped = sorted(survivors - set(seen))
    assert not skipped, f"rows never returned ({ordering}): {skipped}; got {seen}"
    assert deleted_unseen not in seen
    if ordering == "name":
        assert "zzz-after.example.test" in seen  # inserted after the cursor
        assert "aaa-before.example.test" not in seen  # before it: not sent back
    if ordering == "-name":
        assert "aaa-before.example.test" in seen
        assert "zzz-after.example.test" not in seen
    # What came back is in the order a single page gives now.
    now = api.get(f"/api/v1/instances?fields=name&limit=1000&ordering={ordering}").json()
    in_order = [item["name"] for item in now["items"] if item["name"] in set(seen)]
    assert [name for name in seen if name != deleted_seen] == in_order


# -- ETags ---------------------------------------------------------------------------------

LIST = "/api/v1/instances?fields=name,status,memory,vcpus,primary_node,os,tags&limit=1000"


def _get(api: Client, url: str, etag: str | None = None) -> Any:
    headers = {"If-None-Match": etag} if etag else None
    return api.get(url, headers=headers)


def test_etag_survives_rounds_that_changed_nothing_and_moves_with_the_body(
    synced: tuple[Running, Cluster], api: Client
) -> None:
    running, cluster = synced
    first = _get(api, LIST)
    assert first.status_code == 200
    etag, body = first["ETag"], first.content
    assert etag.startswith('W/"') and len(body) > 100  # weak: synced_at is left out
    victim = next(n for n, i in sorted(running.sim.state.instances.items()) if i.running_on)
    assert {"name": victim, "status": "RUNNING"}.items() <= next(
        item for item in first.json()["items"] if item["name"] == victim
    ).items()

    for round_ in (fast_round, runtime_sweep, full_sync):
        round_(cluster)
        unchanged = _get(api, LIST, etag)
        assert unchanged.status_code == 304, (round_.__name__, unchanged.content[:300])
        assert unchanged.content == b""
        assert unchanged["ETag"] == etag
        again = _get(api, LIST)
        assert again.content == body, round_.__name__
        assert again["ETag"] == etag

    gnt(running, "gnt-instance", "shutdown", victim)
    fast_round(cluster)

    changed = _get(api, LIST, etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    new_items = {item["name"]: item for item in changed.json()["items"]}
    old_items = {item["name"]: item for item in first.json()["items"]}
    assert new_items[victim]["status"] == "STOPPED"
    differing = sorted(name for name in old_items if old_items[name] != new_items[name])
    assert differing == [victim]
    fresh = _get(api, LIST, changed["ETag"])
    assert fresh.status_code == 304
    assert _get(api, LIST).content == changed.content


def test_instance_detail_etag(synced: tuple[Running, Cluster], api: Client) -> None:
    running, cluster = synced
    victim = next(n for n, i in sorted(running.sim.state.instances.items()) if i.running_on)
    url = f"/api/v1/clusters/c1/instances/{victim}"
    first = _get(api, url)
    assert first.status_code == 200 and first.json()["status"] == "RUNNING"
    assert _get(api, url, first["ETag"]).status_code == 304
    gnt(running, "gnt-instance", "shutdown", victim)
    fast_round(cluster)
    changed = _get(api, url, first["ETag"])
    assert changed.status_code == 200
    assert changed.json()["status"] == "STOPPED"
    assert changed["ETag"] != first["ETag"]
    assert _get(api, url, changed["ETag"]).status_code == 304


def test_default_representation_etag_survives_a_round_that_changed_nothing(
    synced: tuple[Running, Cluster], api: Client
) -> None:
    """The full representation too: a no-op round must not turn every 304 into a 200.

    Clients poll collections with If-None-Match; if each round (every fast_interval)
    changes the body of every object although nothing in Ganeti changed, the ETag
    never saves them a transfer.
    """
    _running, cluster = synced
    url = "/api/v1/instances?limit=1000"
    first = _get(api, url)
    assert first.status_code == 200
    fast_round(cluster)
    unchanged = _get(api, url, first["ETag"])
    if unchanged.status_code != 304:
        old = {item["name"]: item for item in first.json()["items"]}
        new = {item["name"]: item for item in unchanged.json()["items"]}
        moved = sorted({k for name in old for k in old[name] if old[name][k] != new[name][k]})
        pytest.fail(f"a round that changed nothing changed the body: fields {moved}")
