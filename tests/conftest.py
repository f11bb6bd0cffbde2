"""Fixtures shared by every suite: simulated clusters over real HTTPS, API clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.test import Client

from gwm.simulator.app import DEFAULT_USERS, Simulator
from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.server import Running, serve_in_thread


@pytest.fixture
def simulator() -> Iterator[Callable[..., Running]]:
    """Start simulated clusters (HTTPS, fast time scale); all stopped after the test."""
    started: list[Running] = []

    def start(
        nodes: int = 2, instances: int = 10, time_scale: float = 0.02, seed: int = 0, **config: Any
    ) -> Running:
        state = generate_cluster(nodes=nodes, instances=instances, seed=seed)
        sim = Simulator(state, SimConfig(time_scale=time_scale, **config), dict(DEFAULT_USERS))
        running = serve_in_thread(sim)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def sim_admin(running: Running, method: str, path: str, body: Any = None) -> Any:
    """Call the simulator's admin API (/__sim__), as an operator on the master would act."""
    response = httpx.request(
        method, f"{running.url}/__sim__/{path}", json=body, verify=False, timeout=10
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@localhost", "pw-root-123")


@pytest.fixture
def api(admin_user: Any) -> Client:
    """A Django test client carrying an administrator's bearer token."""
    from gwm.accounts.services.tokens import token_create

    _, token = token_create(actor=None, user=admin_user, name="tests")
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def reader_api(django_user_model: Any) -> Client:
    """A client whose user may read everything (a global viewer) and change nothing."""
    from gwm.accounts.models import Role, RoleBinding
    from gwm.accounts.services.tokens import token_create

    user = django_user_model.objects.create_user("viewer", "viewer@localhost", "pw-viewer-1")
    RoleBinding.objects.create(role=Role.objects.get(name="viewer"), user=user, scope="global")
    _, token = token_create(actor=None, user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` group ``xdist_group`` tests again under pytest 9.

    pytest-xdist 3.8 marks a grouped test by assigning ``item._nodeid =
    "<id>@<group>"`` on the worker; pytest 9 keeps the id in ``item._id``
    instead, so the suffix was lost and grouped tests (the real Ganeti
    sandbox's) ran on every worker at once. Do what xdist meant to do.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(groups))}")


def pytest_configure(config: pytest.Config) -> None:
    """Every event (feed, stream, webhooks) and every JSON response the suite renders is
    checked against its schema; a token is read on every request (tests change tokens
    behind gwm's back; tests/accounts/test_token_cache.py turns the cache on)."""
    from django.conf import settings

    settings.GWM_VALIDATE_EVENTS = True
    settings.GWM_VALIDATE_RESPONSES = True
    settings.GWM_TOKEN_CACHE_SECONDS = 0
