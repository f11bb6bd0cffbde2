"""No escalation through /api/v1/roles and /api/v1/role-bindings: nobody binds a role, or
makes one, that holds more than they hold where they are an admin; users and groups are
a global admin's.

Bindings the tests start from are made in the database (the arrangement); every
change under test goes through the API, and each refusal is checked to have left
nothing behind and against an allowed request of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster
from gwm.simulator.server import Running
from tests.clusters.helpers import register

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Password hashing is not under test here; the default hasher would make it slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clusters(simulator: Callable[..., Running]) -> tuple[Cluster, Cluster]:
    running = simulator(nodes=2, instances=2)
    return register(running, name="a"), register(running, name="b")


def _user(name: str) -> User:
    return User.objects.create_user(name, f"{name}@localhost", f"pw-{name}-123")


def _bind(user: User, role: str, cluster: Cluster | None = None, instance: str = "") -> None:
    scope = "instance" if instance else "cluster" if cluster else "global"
    RoleBinding.objects.create(
        role=Role.objects.get(name=role), user=user, scope=scope, cluster=cluster, instance=instance
    )


def _client(user: User, **scope: Any) -> Client:
    _, token = token_create(actor=None, user=user, name="tests", **scope)
    return Client(headers={"Authorization": f"Bearer {token}"})


def _post_binding(client: Client, role: str, user: str = "bob", **where: Any) -> Any:
    body = {"role": role, "user": user, **where}
    body.setdefault("scope", "cluster" if "cluster" in where else "global")
    return client.post("/api/v1/role-bindings", body, content_type=JSON)


def _bindings_of(name: str) -> list[tuple[str, str, str | None]]:
    return [
        (b.role.name, b.scope, b.cluster.name if b.cluster else None)
        for b in RoleBinding.objects.filter(user__username=name).select_related("role", "cluster")
    ]


def _forbidden(answer: Any, code: str = "forbidden") -> dict[str, Any]:
    assert answer.status_code == 403, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == code
    return dict(answer.json())


# -- bindings --------------------------------------------------------------------------


def test_a_cluster_admin_binds_on_their_cluster_only(clusters: tuple[Cluster, Cluster]) -> None:
    a, b = clusters
    alice, bob = _user("alice"), _user("bob")
    _bind(alice, "admin", a)
    admin_a = _client(alice)
    bob_client = _client(bob)
    assert bob_client.get("/api/v1/clusters/a").status_code == 404

    made = _post_binding(admin_a, "operator", cluster="a")
    assert made.status_code == 201, made.content
    assert made.json()["role"] == "operator" and made.json()["cluster"] == "a"
    assert _bindings_of("bob") == [("operator", "cluster", "a")]
    assert bob_client.get("/api/v1/clusters/a").status_code == 200

    # Cluster b is not hers to see: 404, as for a cluster that does not exist.
    other = _post_binding(admin_a, "operator", cluster="b")
    assert other.status_code == 404, other.content
    assert _post_binding(admin_a, "operator", cluster="nowhere").status_code == 404
    _forbidden(_post_binding(admin_a, "operator", scope="global"))
    _forbidden(_post_binding(admin_a, "viewer", scope="global"))
    assert _bindings_of("bob") == [("operator", "cluster", "a")]

    # Once she may see b (a viewer there), binding on it is 403: she is not its admin.
    _bind(alice, "viewer", b)
    refused = _forbidden(_post_binding(_client(alice), "viewer", cluster="b"))
    assert refused["verb"] == "admin"
    assert _bindings_of("bob") == [("operator", "cluster", "a")]


def test_an_operator_binds_nothing(clusters: tuple[Cluster, Cluster]) -> None:
    a, _b = clusters
    olga, _bob = _user("olga"), _user("bob")
    _bind(olga, "operator", a)
    operator = _client(olga)
    for role in ("viewer", "operator", "admin"):
        _forbidden(_post_binding(operator, role, cluster="a"))
    _forbidden(_post_binding(operator, "viewer", scope="instance", cluster="a", instance="x1"))
    _forbidden(_post_binding(operator, "viewer", user="olga", cluster="a"))
    assert _bindings_of("bob") == []
    assert _bindings_of("olga") == [("operator", "cluster", "a")]


def test_an_admin_without_power_cannot_bind_a_role_with_power(
    clusters: tuple[Cluster, Cluster],
) -> None:
    a, _b = clusters
    Role.objects.create(name="lookout", verbs=["admin", "view"])
    carl, _bob = _user("carl"), _user("bob")
    _bind(carl, "lookout", a)
    lookout = _client(carl)
    refused = _forbidden(_post_binding(lookout, "operator", cluster="a"), code="escalation")
    assert refused["verb"] in {"console", "migrate", "power"}
    assert "power" in refused["detail"]
    _forbidden(_post_binding(lookout, "admin", cluster="a"), code="escalation")
    assert _bindings_of("bob") == []
    assert _post_binding(lookout, "viewer", cluster="a").status_code == 201
    assert _post_binding(lookout, "lookout", cluster="a").status_code == 201
    assert _bindings_of("bob") == [("viewer", "cluster", "a"), ("lookout", "cluster", "a")]


def test_an_instance_owner_binds_nothing_on_its_cluster_or_instance(
    clusters: tuple[Cluster, Cluster],
) -> None:
    a, _b = clusters
    owen, _bob = _user("owen"), _user("bob")
    _bind(owen, "instance-owner", a, instance="web1")
    owner = _client(owen)
    _forbidden(_post_binding(owner, "viewer", cluster="a"))
    _forbidden(_post_binding(owner, "instance-owner", cluster="a"))
    _forbidden(_post_binding(owner, "viewer", scope="instance", cluster="a", instance="web1"))
    _forbidden(_post_binding(owner, "viewer", scope="tag", cluster="a", tag="web"))
    assert _bindings_of("bob") == []


def test_a_narrowed_superuser_token_binds_nothing_beyond_its_scope(
    clusters: tuple[Cluster, Cluster],
) -> None:
    root = User.objects.create_superuser("root", "root@localhost", "pw-root-123")
    _user("bob")
    _forbidden(_post_binding(_client(root, read_only=True), "viewer", cluster="a"))
    only_a = _client(root, clusters=["a"])
    _forbidden(_post_binding(only_a, "viewer", scope="global"))
    assert _post_binding(only_a, "viewer", cluster="b").status_code == 404
    assert _bindings_of("bob") == []
    assert _post_binding(only_a, "admin", cluster="a").status_code == 201
    assert _bindings_of("bob") == [("admin", "cluster", "a")]


# -- roles -----------------------------------------------------------------------------


def test_a_role_holds_only_verbs_its_maker_holds_where_they_are_admin(
    clusters: tuple[Cluster, Cluster],
) -> None:
    a, _b = clusters
    Role.objects.create(name="lookout", verbs=["admin", "view"])
    carl, olga = _user("carl"), _user("olga")
    _bind(carl, "lookout", a)
    _bind(olga, "operator", a)

    def create(client: Client, name: str, verbs: list[str]) -> Any:
        return client.post("/api/v1/roles", {"name": name, "verbs": verbs}, content_type=JSON)

    _forbidden(create(_client(carl), "rebooter", ["view", "power"]), code="escalation")
    _forbidden(create(_client(olga), "rebooter", ["view", "power"]), code="escalation")
    assert not Role.objects.filter(name="rebooter").exists()
    made = create(_client(carl), "watcher", ["view"])
    assert made.status_code == 201, made.content
    assert made.json() == {
        "name": "watcher",
        "description": "",
        "verbs": ["view"],
        "builtin": False,
    }

    _bind(carl, "admin", a)  # an admin of a holds every verb there
    assert create(_client(carl), "rebooter", ["view", "power"]).status_code == 201


def test_a_role_with_an_unknown_verb_is_422(api: Client) -> None:
    answer = api.post(
        "/api/v1/roles", {"name": "odd", "verbs": ["view", "teleport"]}, content_type=JSON
    )
    assert answer.status_code == 422, answer.content
    assert answer.json()["code"] == "unknown_verb"
    assert "teleport" in answer.json()["detail"]
    assert not Role.objects.filter(name="odd").exists()
    ok = api.post("/api/v1/roles", {"name": "odd", "verbs": ["view"]}, content_type=JSON)
    assert ok.status_code == 201


def test_built_in_roles_and_roles_in_use_are_not_deleted(
    api: Client, clusters: tuple[Cluster, Cluster]
) -> None:
    a, _b = clusters
    for name in ("viewer", "operator", "instance-owner", "admin"):
        answer = api.delete(f"/api/v1/roles/{name}")
        assert answer.status_code == 409, answer.content
        assert answer.json()["code"] == "builtin_role"
        assert Role.objects.filter(name=name, builtin=True).exists()
    Role.objects.create(name="lookout", verbs=["admin", "view"])
    Role.objects.create(name="spare", verbs=["view"])
    _bind(_user("carl"), "lookout", a)
    in_use = api.delete("/api/v1/roles/lookout")
    assert in_use.status_code == 409 and in_use.json()["code"] == "role_in_use"
    assert Role.objects.filter(name="lookout").exists()
    assert api.delete("/api/v1/roles/spare").status_code == 204
    assert not Role.objects.filter(name="spare").exists()


# -- users and groups ------------------------------------------------------------------


def test_only_global_admins_create_users_and_groups(
    api: Client, clusters: tuple[Cluster, Cluster]
) -> None:
    a, _b = clusters
    alice = _user("alice")
    _bind(alice, "admin", a)
    admin_a = _client(alice)
    user = {"username": "mallory", "password": "pw-mallory-1"}
    _forbidden(admin_a.post("/api/v1/users", user, content_type=JSON))
    _forbidden(
        admin_a.post("/api/v1/users", {"username": "svc", "service": True}, content_type=JSON)
    )
    group = {"name": "ops", "members": ["alice"]}
    _forbidden(admin_a.post("/api/v1/groups", group, content_type=JSON))
    _forbidden(admin_a.patch("/api/v1/users/alice", {"active": False}, content_type=JSON))
    assert not User.objects.filter(username__in=["mallory", "svc"]).exists()
    assert not Group.objects.exists()
    assert User.objects.get(username="alice").is_active

    assert api.post("/api/v1/users", user, content_type=JSON).status_code == 201
    assert api.post("/api/v1/groups", group, content_type=JSON).status_code == 201
    assert list(Group.objects.get(name="ops").user_set.values_list("username", flat=True)) == [
        "alice"
    ]
