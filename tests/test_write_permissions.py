"""A global viewer may read but every write is refused: 403 naming the verb, nothing written.

The endpoints come from tests/write_endpoints.py, which is checked against the
OpenAPI document (a new write endpoint fails until it has a sample here). For
each, the same request by an administrator is accepted and does write, so the
refusal is the permission check and not a bad request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from gwm.accounts.verbs import VERBS
from gwm.operations.actions import ACTIONS
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, register
from tests.write_endpoints import (
    ACTION_PATHS,
    BY_KEY,
    INSTANCE,
    PARAM_VALUES,
    SAMPLES,
    Sample,
    openapi_writes,
    send,
    snapshot,
)

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@dataclass
class World:
    running: Running
    api: Client
    reader: Client
    job_id: int  # an unfinished job (for cancel)


@pytest.fixture
def world(simulator: Any, api: Client, reader_api: Client) -> Iterator[World]:
    running = simulator(nodes=3, instances=12, time_scale=0.02)
    cluster = register(running, name="sim")
    full_sync(cluster)
    # An unfinished job to cancel, on an instance the samples do not touch. No worker
    # runs in these tests (nothing rings one), so it stays PENDING.
    other = next(n for n in sorted(running.sim.state.instances) if n != INSTANCE)
    response = api.post(
        f"/api/v1/clusters/sim/instances/{other}/actions",
        {"action": "add-tags", "tags": ["held"]},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    yield World(running, api, reader_api, response.json()["id"])


def _assert_forbidden(response: Any) -> dict[str, Any]:
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 403
    assert body["code"] == "forbidden"
    assert body["verb"] in VERBS and body["verb"] != "view"
    assert body["detail"].startswith(f"you may not {body['verb']} on ")
    assert body["instance"].startswith("/api/v1/")
    assert "id" not in body and "url" not in body  # no job came back
    return dict(body)


def test_every_openapi_write_endpoint_has_a_sample(client: Client) -> None:
    documented = openapi_writes(client)
    missing = sorted(documented - set(BY_KEY))
    assert not missing, (
        f"write endpoints without a sample request in tests/write_endpoints.py: {missing}; "
        "add one so the permission and cluster-state tests cover them"
    )
    stale = sorted(set(BY_KEY) - documented)
    assert not stale, f"samples for endpoints the API no longer has: {stale}"


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.key for s in SAMPLES])
def test_a_non_staff_write_is_refused_and_writes_nothing(world: World, sample: Sample) -> None:
    before = snapshot(world.running)

    _assert_forbidden(send(world.reader, sample, world.running, job_id=world.job_id))
    assert snapshot(world.running) == before
    if sample.dry_run:
        # A dry run reaches Ganeti even though it keeps nothing: refused too.
        _assert_forbidden(send(world.reader, sample, world.running, dry_run=True))
        assert snapshot(world.running) == before

    # The same request by an administrator is valid and does write.
    accepted = send(world.api, sample, world.running, job_id=world.job_id)
    assert accepted.status_code == sample.staff_status, accepted.content
    assert snapshot(world.running) != before


@pytest.mark.parametrize("resource", sorted(ACTION_PATHS))
def test_every_action_is_refused_for_non_staff(world: World, resource: str) -> None:
    sample = BY_KEY[f"POST {ACTION_PATHS[resource]}"]
    # create, delete and modify have endpoints of their own (in SAMPLES).
    actions = sorted(
        key
        for key, action in ACTIONS.items()
        if action.resource == resource and action.name not in {"create", "delete", "modify"}
    )
    assert actions
    before = snapshot(world.running)
    for key in actions:
        action = ACTIONS[key]
        required = [n for n, f in action.params.model_fields.items() if f.is_required()]
        unknown = [n for n in required if n not in PARAM_VALUES and n != "action"]
        assert not unknown, f"{key}: add a value for {unknown} to PARAM_VALUES"
        body = {"action": action.name, **{n: PARAM_VALUES[n] for n in required if n != "action"}}
        problem = _assert_forbidden(send(world.reader, sample, world.running, body=body))
        assert problem["status"] == 403, key
        if action.dry_run:
            _assert_forbidden(send(world.reader, sample, world.running, body=body, dry_run=True))
    assert snapshot(world.running) == before


def test_non_staff_may_still_read(world: World) -> None:
    assert world.reader.get("/api/v1/clusters/sim").status_code == 200
    assert world.reader.get(f"/api/v1/clusters/sim/instances/{INSTANCE}").status_code == 200
    assert world.reader.get(f"/api/v1/jobs/{world.job_id}").json()["status"] == "PENDING"
