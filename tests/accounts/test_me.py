"""/me, /me/permissions and /authz/check: what the caller sees of themselves and their rights.

The answers are compared whole where they are small, so a verb, binding or group too
many (or missing) fails; each question is also asked where the answer differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Password hashing is not under test here; the default hasher would make it slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    a: Cluster
    b: Cluster
    instance: str  # one of a's instances, synced
    olga: User  # operator of cluster a
    binding: RoleBinding  # olga's


@pytest.fixture
def world(simulator: Callable[..., Running]) -> World:
    running = simulator(nodes=2, instances=3)
    a, b = register(running, name="a"), register(running, name="b")
    full_sync(a)
    olga = User.objects.create_user("olga", "olga@localhost", "pw-olga-123")
    binding = RoleBinding.objects.create(
        role=Role.objects.get(name="operator"), user=olga, scope="cluster", cluster=a
    )
    instance = sorted(running.sim.state.instances)[0]
    assert a.instances.filter(name=instance).exists()
    return World(a, b, instance, olga, binding)


def _client(user: User, **scope: Any) -> Client:
    _, token = token_create(actor=None, user=user, name="tests", **scope)
    return Client(headers={"Authorization": f"Bearer {token}"})


def _verbs(client: Client, query: str) -> Any:
    answer = client.get(f"/api/v1/me/permissions{query}")
    return answer.json()["verbs"] if answer.status_code == 200 else answer.status_code


def _check(client: Client, **body: Any) -> Any:
    return client.post("/api/v1/authz/check", body, content_type=JSON)


# -- /me -------------------------------------------------------------------------------


def test_me_lists_groups_bindings_and_the_tokens_scope(world: World) -> None:
    ops = Group.objects.create(name="ops")
    ops.user_set.add(world.olga)
    via_group = RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"), group=ops, scope="cluster", cluster=world.b
    )
    token, plaintext = token_create(
        actor=None,
        user=world.olga,
        name="scoped",
        read_only=True,
        clusters=["a"],
        networks=["127.0.0.0/8"],
    )
    answer = Client(headers={"Authorization": f"Bearer {plaintext}"}).get("/api/v1/me")
    assert answer.status_code == 200, answer.content
    me = answer.json()
    assert (me["username"], me["superuser"], me["service"], me["source"]) == (
        "olga",
        False,
        False,
        "local",
    )
    assert me["groups"] == ["ops"]
    bindings = sorted(
        (b["id"], b["role"], b["user"], b["group"], b["scope"], b["cluster"])
        for b in me["bindings"]
    )
    assert bindings == [
        (world.binding.pk, "operator", "olga", None, "cluster", "a"),
        (via_group.pk, "viewer", None, "ops", "cluster", "b"),
    ]
    assert me["token"]["id"] == token.pk
    assert me["token"]["description"] == "scoped"
    assert (me["token"]["read_only"], me["token"]["clusters"], me["token"]["networks"]) == (
        True,
        ["a"],
        ["127.0.0.0/8"],
    )
    assert plaintext not in answer.content.decode()
    # Another token of the same user: its own (unlimited) scope.
    other = _client(world.olga).get("/api/v1/me").json()["token"]
    assert other["id"] != token.pk and (other["read_only"], other["clusters"]) == (False, [])


# -- /me/permissions -------------------------------------------------------------------


def test_an_operators_verbs_on_an_instance_and_where_they_see_nothing(world: World) -> None:
    olga = _client(world.olga)
    everything = f"?cluster=a&instance={world.instance}"
    assert _verbs(olga, everything) == ["console", "migrate", "power", "view"]
    assert _verbs(olga, "?cluster=a") == ["console", "migrate", "power", "view"]
    assert _verbs(olga, "") == []  # nothing globally
    assert _verbs(olga, "?cluster=b") == 404  # exists, but not hers to see
    assert _verbs(olga, "?cluster=nowhere") == 404
    assert _verbs(olga, "?cluster=a&instance=no-such-instance") == 404
    assert _verbs(olga, f"?instance={world.instance}") == 422
    # The token narrows it: read-only keeps view; a token for b alone sees nothing of a.
    assert _verbs(_client(world.olga, read_only=True), everything) == ["view"]
    assert _verbs(_client(world.olga, clusters=["b"]), everything) == 404


def test_a_superusers_verbs_are_every_verb(world: World, api: Client) -> None:
    from gwm.accounts.verbs import VERBS

    assert _verbs(api, "?cluster=b") == sorted(VERBS)
    assert _verbs(api, "") == sorted(VERBS)


# -- /authz/check ----------------------------------------------------------------------


def test_a_check_for_yourself_names_the_role_and_its_binding(world: World) -> None:
    olga = _client(world.olga)
    allowed = _check(olga, verb="power", cluster="a", instance=world.instance)
    assert allowed.status_code == 200, allowed.content
    body = allowed.json()
    assert body["allowed"] is True
    assert "operator" in body["reason"]
    assert body["granted_by"]["id"] == world.binding.pk
    assert body["granted_by"]["role"] == "operator" and body["granted_by"]["cluster"] == "a"

    denied = _check(olga, verb="remove", cluster="a", instance=world.instance).json()
    assert denied["allowed"] is False and denied["granted_by"] is None
    assert "remove" in denied["reason"]
    assert _check(olga, verb="power", cluster="b").status_code == 404
    assert _check(olga, verb="power", user="olga", cluster="a").json()["allowed"] is True


def test_asking_about_another_user_is_for_global_admins(world: World, api: Client) -> None:
    bob = User.objects.create_user("bob", "bob@localhost", "pw-bob-12345")
    question = {"user": "bob", "verb": "power", "cluster": "a", "instance": world.instance}
    refused = _check(_client(world.olga), **question)
    assert refused.status_code == 403, refused.content
    assert refused.json()["verb"] == "admin"

    no = _check(api, **question)
    assert no.status_code == 200
    assert no.json()["allowed"] is False  # bob's answer, not the superuser's
    RoleBinding.objects.create(
        role=Role.objects.get(name="operator"), user=bob, scope="cluster", cluster=world.a
    )
    yes = _check(api, **question).json()
    assert yes["allowed"] is True and "operator" in yes["reason"]
    assert yes["granted_by"]["user"] == "bob"
    about_olga = _check(api, user="olga", verb="migrate", cluster="a").json()
    assert about_olga["granted_by"]["id"] == world.binding.pk
    assert _check(api, user="nobody", verb="view").status_code == 404


def test_an_unknown_verb_is_422(world: World) -> None:
    olga = _client(world.olga)
    answer = _check(olga, verb="teleport", cluster="a")
    assert answer.status_code == 422, answer.content
    assert answer.json()["code"] == "unknown_verb"
    assert "power" in answer.json()["known"]
    assert _check(olga, verb="view", cluster="a").json()["allowed"] is True
