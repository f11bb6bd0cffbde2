"""Logging in for a token, the throttle on failed logins, revoking tokens, and what a
token's scope (networks, read-only, clusters) lets it do, all through /api/v1.

Every refusal is checked against the same request succeeding before (or from
elsewhere), so a test fails when the refusal has another cause.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import ApiToken, LoginFailure
from gwm.clusters.models import Cluster
from gwm.simulator.server import Running
from tests.clusters.helpers import register

pytestmark = pytest.mark.django_db

JSON = "application/json"
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Password hashing is not under test here; the default hasher would make it slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(name: str, **extra: Any) -> User:
    return User.objects.create_user(name, f"{name}@localhost", f"pw-{name}-123", **extra)


def _login(
    username: str, password: str | None = None, address: str = "127.0.0.1", **body: Any
) -> Any:
    return Client(REMOTE_ADDR=address).post(
        "/api/v1/auth/tokens",
        {"username": username, "password": password or f"pw-{username}-123", **body},
        content_type=JSON,
    )


def _token(username: str, **body: Any) -> dict[str, Any]:
    answer = _login(username, **body)
    assert answer.status_code == 201, answer.content
    return dict(answer.json())


def _bearer(token: str, address: str = "127.0.0.1") -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"}, REMOTE_ADDR=address)


def _refused_login(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 401, answer.content
    assert answer["Content-Type"] == PROBLEM
    assert answer["WWW-Authenticate"] == "Bearer"
    assert "token" not in answer.json()
    return dict(answer.json())


# -- the exchange ----------------------------------------------------------------------


def test_a_login_gives_a_token_once_and_it_works() -> None:
    _user("alice")
    assert Client().get("/api/v1/me").status_code == 401
    answer = _login("alice", description="laptop")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    token = body["token"]
    assert body["user"] == "alice" and body["description"] == "laptop"

    client = _bearer(token)
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.content
    assert me.json()["username"] == "alice"
    assert me.json()["token"]["id"] == body["id"]

    one = client.get(f"/api/v1/auth/tokens/{body['id']}")
    listed = client.get("/api/v1/auth/tokens")
    assert one.status_code == 200 and listed.status_code == 200
    assert one.json()["prefix"] == token[4:16]
    assert [t["id"] for t in listed.json()["items"]] == [body["id"]]
    for shown in (one, listed):
        assert token not in shown.content.decode()
        assert token[16:48] not in shown.content.decode()
    assert "token" not in one.json()


def test_a_wrong_password_an_unknown_user_and_an_inactive_user_look_the_same() -> None:
    _user("alice")
    _user("carol", is_active=False)
    wrong = _refused_login(_login("alice", "not-her-password"))
    unknown = _refused_login(_login("nobody-here", "whatever-password"))
    inactive = _refused_login(_login("carol"))
    assert wrong == unknown == inactive  # nothing tells which user names exist
    assert wrong["code"] == "bad_credentials" and wrong["status"] == 401
    assert not ApiToken.objects.exists()
    assert _login("alice").status_code == 201


# -- throttling ------------------------------------------------------------------------


def test_failures_for_one_user_lock_that_user_out_with_retry_after(settings: Any) -> None:
    settings.GWM_LOGIN_MAX_FAILURES_PER_USER = 3
    settings.GWM_LOGIN_MAX_FAILURES_PER_ADDRESS = 100
    _user("alice")
    _user("bob")
    for _ in range(3):
        assert _login("alice", "wrong-password", address="192.0.2.1").status_code == 401
    assert LoginFailure.objects.filter(username="alice").count() == 3

    locked = _login("alice", address="192.0.2.1")  # the right password, too late
    assert locked.status_code == 429, locked.content
    assert locked["Content-Type"] == PROBLEM
    wait = locked["Retry-After"]
    assert wait.isdigit() and 0 < int(wait) <= settings.GWM_LOGIN_WINDOW_SECONDS
    assert locked.json()["status"] == 429 and locked.json()["detail"]
    assert "token" not in locked.json()
    assert _login("alice", address="198.51.100.9").status_code == 429  # per user, anywhere
    assert _login("bob", address="198.51.100.9").status_code == 201
    assert not ApiToken.objects.filter(user__username="alice").exists()


def test_failures_from_one_address_lock_that_address_out(settings: Any) -> None:
    settings.GWM_LOGIN_MAX_FAILURES_PER_USER = 100
    settings.GWM_LOGIN_MAX_FAILURES_PER_ADDRESS = 6
    _user("dave")
    for n in range(6):
        answer = _login(f"guess{n % 3}", "wrong-password", address="203.0.113.5")
        assert answer.status_code == 401
    locked = _login("dave", address="203.0.113.5")
    assert locked.status_code == 429, locked.content
    assert int(locked["Retry-After"]) > 0
    assert _login("dave", address="203.0.113.6").status_code == 201


def test_the_lock_ends_when_the_failures_leave_the_window(settings: Any) -> None:
    settings.GWM_LOGIN_MAX_FAILURES_PER_USER = 2
    settings.GWM_LOGIN_WINDOW_SECONDS = 60
    _user("alice")
    for _ in range(2):
        assert _login("alice", "wrong-password").status_code == 401
    assert _login("alice").status_code == 429
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=61))
    assert _login("alice").status_code == 201


# -- revocation ------------------------------------------------------------------------


def test_an_owner_revokes_a_token_and_it_stops_working() -> None:
    _user("alice")
    first, second = _token("alice"), _token("alice")
    client = _bearer(first["token"])
    assert client.get("/api/v1/me").status_code == 200
    gone = _bearer(second["token"]).delete(f"/api/v1/auth/tokens/{first['id']}")
    assert gone.status_code == 204, gone.content
    refused = client.get("/api/v1/me")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
    assert _bearer(second["token"]).get("/api/v1/me").status_code == 200
    shown = _bearer(second["token"]).get(f"/api/v1/auth/tokens/{first['id']}").json()
    assert shown["revoked_at"]


def test_a_user_cannot_see_or_revoke_another_users_token() -> None:
    _user("alice")
    _user("bob")
    alices, bobs = _token("alice"), _token("bob")
    bob = _bearer(bobs["token"])
    assert bob.get(f"/api/v1/auth/tokens/{alices['id']}").status_code == 404
    assert alices["id"] not in [t["id"] for t in bob.get("/api/v1/auth/tokens").json()["items"]]
    assert bob.get("/api/v1/auth/tokens?user=alice").status_code == 403
    refused = bob.delete(f"/api/v1/auth/tokens/{alices['id']}")
    assert refused.status_code == 404, refused.content
    assert _bearer(alices["token"]).get("/api/v1/me").status_code == 200
    assert ApiToken.objects.get(pk=alices["id"]).revoked_at is None


def test_a_global_admin_lists_and_revokes_anyones_token(api: Client) -> None:
    _user("alice")
    alices = _token("alice")
    listed = api.get("/api/v1/auth/tokens?user=alice")
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [alices["id"]]
    assert api.delete(f"/api/v1/auth/tokens/{alices['id']}").status_code == 204
    assert _bearer(alices["token"]).get("/api/v1/me").status_code == 401


# -- scope: networks, read-only, clusters ----------------------------------------------


def test_a_token_limited_to_networks_works_only_from_them() -> None:
    _user("alice")
    token = _token("alice", networks=["10.0.0.0/8"])["token"]
    assert _bearer(token, address="10.1.2.3").get("/api/v1/me").status_code == 200
    outside = _bearer(token, address="192.0.2.7").get("/api/v1/me")
    assert outside.status_code == 401 and outside["WWW-Authenticate"] == "Bearer"
    bad = _login("alice", networks=["10.0.0.0/33"])
    assert bad.status_code == 422, bad.content
    assert bad.json()["code"] == "bad_network"
    assert ApiToken.objects.count() == 1


@pytest.fixture
def two_clusters(simulator: Callable[..., Running]) -> tuple[Cluster, Cluster]:
    running = simulator(nodes=2, instances=2)
    return register(running, name="a"), register(running, name="b")


def test_a_read_only_token_of_a_superuser_reads_but_does_not_write(
    two_clusters: tuple[Cluster, Cluster],
) -> None:
    User.objects.create_superuser("root", "root@localhost", "pw-root-123")
    full = _bearer(_token("root")["token"])
    read_only = _bearer(_token("root", read_only=True)["token"])
    assert read_only.get("/api/v1/clusters/a").status_code == 200
    assert {c["name"] for c in read_only.get("/api/v1/clusters").json()["items"]} == {"a", "b"}
    refused = read_only.post("/api/v1/clusters/a/sync")
    assert refused.status_code == 403, refused.content
    assert refused["Content-Type"] == PROBLEM
    assert full.post("/api/v1/clusters/a/sync").status_code == 202


@pytest.mark.parametrize(
    "scope",
    [{"read_only": True}, {"clusters": ["a"]}, {"networks": ["10.0.0.0/8"]}],
    ids=["read-only", "clusters", "networks"],
)
def test_a_narrowed_token_cannot_mint_a_wider_one(
    two_clusters: tuple[Cluster, Cluster], scope: dict[str, Any]
) -> None:
    """A token's scope narrows what it may do; a token it makes must not widen it again:
    either the new token is refused, or it is at most as wide as the one that made it."""
    User.objects.create_superuser("root", "root@localhost", "pw-root-123")
    inside = "10.1.2.3"
    narrow = _bearer(_token("root", address=inside, **scope)["token"], address=inside)
    assert narrow.get("/api/v1/clusters/a").status_code == 200
    minted = narrow.post("/api/v1/auth/tokens", {"description": "wider"}, content_type=JSON)
    if minted.status_code != 201:
        assert minted.status_code == 403, minted.content
        return
    token = minted.json()["token"]
    if "read_only" in scope:
        assert _bearer(token).post("/api/v1/clusters/a/sync").status_code == 403
    if "clusters" in scope:
        assert _bearer(token).get("/api/v1/clusters/b").status_code == 404
    if "networks" in scope:
        assert _bearer(token, address="192.0.2.7").get("/api/v1/me").status_code == 401


def test_a_token_for_another_user_is_a_global_admins(api: Client) -> None:
    _user("alice")
    _user("bob")
    bob = _bearer(_token("bob")["token"])
    refused = bob.post("/api/v1/auth/tokens", {"user": "alice"}, content_type=JSON)
    assert refused.status_code == 403, refused.content
    assert not ApiToken.objects.filter(user__username="alice").exists()
    made = api.post("/api/v1/auth/tokens", {"user": "alice"}, content_type=JSON)
    assert made.status_code == 201 and made.json()["user"] == "alice"
    assert _bearer(made.json()["token"]).get("/api/v1/me").json()["username"] == "alice"


def test_a_token_limited_to_a_cluster_sees_only_that_cluster(
    two_clusters: tuple[Cluster, Cluster],
) -> None:
    User.objects.create_superuser("root", "root@localhost", "pw-root-123")
    everywhere = _bearer(_token("root")["token"])
    only_a = _bearer(_token("root", clusters=["a"])["token"])
    assert everywhere.get("/api/v1/clusters/b").status_code == 200
    assert only_a.get("/api/v1/clusters/a").status_code == 200
    assert only_a.get("/api/v1/clusters/b").status_code == 404
    assert [c["name"] for c in only_a.get("/api/v1/clusters").json()["items"]] == ["a"]
    assert only_a.post("/api/v1/clusters/a/sync").status_code == 202
    assert only_a.post("/api/v1/clusters/b/sync").status_code == 404
