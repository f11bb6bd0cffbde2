"""Keystone tokens through the real API, validated by a stand-in Keystone over HTTP.

alice holds ``member`` and ``admin`` in the project ``ops``; bob holds ``reader``
there, which no rule maps. The rules put ``member`` of ``ops`` in ``ops-viewers``
and ``admin`` anywhere in ``keystone-admins``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from gwm.accounts.keystone import keystone_forget_all, parse_role_groups
from gwm.accounts.models import AccountSource, Profile, Role, RoleBinding
from tests.clusters.helpers import register
from tests.keystone_standin import KeystoneStandin

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
ALICE = "keystone:Default/alice"
RULES = "ops:member=ops-viewers,*:admin=keystone-admins"


@pytest.fixture
def keystone(settings: Any) -> Iterator[KeystoneStandin]:
    standin = KeystoneStandin()
    standin.add_user("gwm", password="gwm-secret")
    standin.set_roles("gwm", "service", {"service"})
    standin.add_user("alice")
    standin.set_roles("alice", "ops", {"member", "admin"})
    standin.add_user("bob")
    standin.set_roles("bob", "ops", {"reader"})
    settings.KEYSTONE_URL = standin.url
    settings.GWM_KEYSTONE_USER = "gwm"
    settings.GWM_KEYSTONE_PASSWORD = "gwm-secret"
    settings.GWM_KEYSTONE_ROLE_GROUPS = RULES
    settings.GWM_KEYSTONE_CACHE_SECONDS = 300
    keystone_forget_all()
    yield standin
    keystone_forget_all()
    standin.stop()


def _get(token: str, path: str = "/api/v1/clusters") -> Any:
    return Client().get(path, HTTP_X_AUTH_TOKEN=token)


def _groups(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "unauthorized"


def test_a_valid_token_is_let_in_and_its_user_made(keystone: KeystoneStandin) -> None:
    token = keystone.issue("alice", "ops")
    assert not User.objects.filter(username=ALICE).exists()

    response = _get(token)

    assert response.status_code == 200, response.content
    user = User.objects.get(username=ALICE)
    assert Profile.objects.get(user=user).source == AccountSource.KEYSTONE
    assert not user.has_usable_password()
    assert _groups(ALICE) == {"ops-viewers", "keystone-admins"}
    assert keystone.validations() == 1
    assert _get(token, "/api/v1/jobs").status_code == 200  # the jobs router takes it too
    # and the async long-poll: past authentication, to the unknown job's 404
    assert _get(token, "/api/v1/jobs/999/wait?timeout=1").status_code == 404


def test_a_second_request_within_the_lifetime_does_not_ask_keystone(
    keystone: KeystoneStandin,
) -> None:
    token = keystone.issue("alice", "ops")
    assert _get(token).status_code == 200
    assert (keystone.validations(), keystone.logins()) == (1, 1)

    assert _get(token).status_code == 200
    assert _get(token).status_code == 200

    assert (keystone.validations(), keystone.logins()) == (1, 1)
    assert User.objects.filter(username=ALICE).count() == 1


def test_a_revoked_token_works_only_until_its_cache_entry_ends(
    keystone: KeystoneStandin, settings: Any
) -> None:
    settings.GWM_KEYSTONE_CACHE_SECONDS = 1
    token = keystone.issue("alice", "ops")
    assert _get(token).status_code == 200
    keystone.revoke(token)

    assert _get(token).status_code == 200  # still believed: gwm did not ask
    assert keystone.validations() == 1
    time.sleep(1.2)

    _assert_401(_get(token))
    assert keystone.validations() == 2


def test_the_cache_never_outlives_the_token(keystone: KeystoneStandin) -> None:
    token = keystone.issue("alice", "ops", lifetime=1)  # the cache would keep it 300 s
    assert _get(token).status_code == 200
    time.sleep(1.2)

    _assert_401(_get(token))
    assert keystone.validations() == 2


def test_an_expired_or_unknown_token_is_401(keystone: KeystoneStandin) -> None:
    _assert_401(_get(keystone.issue("alice", "ops", lifetime=-5)))
    _assert_401(_get("gAAAAAnot-a-token"))
    assert keystone.validations() == 2  # both were asked about, not refused unseen
    assert not User.objects.filter(username__startswith="keystone:").exists()


def test_a_mapped_role_reads_clusters_and_an_unmapped_one_sees_none(
    keystone: KeystoneStandin, simulator: Any
) -> None:
    register(simulator(), name="c1")
    alice, bob = keystone.issue("alice", "ops"), keystone.issue("bob", "ops")
    assert _get(alice).json()["items"] == []  # no binding yet: the role alone grants nothing
    RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"),
        group=Group.objects.get(name="ops-viewers"),
        scope="global",
    )

    seen = _get(alice)
    unseen = _get(bob)

    assert seen.status_code == 200
    assert [c["name"] for c in seen.json()["items"]] == ["c1"]
    assert unseen.status_code == 200
    assert unseen.json()["items"] == []
    assert _groups("keystone:Default/bob") == set()


def test_a_role_removed_in_keystone_is_seen_at_the_next_validation(
    keystone: KeystoneStandin, simulator: Any, settings: Any
) -> None:
    settings.GWM_KEYSTONE_CACHE_SECONDS = 1
    register(simulator(), name="c1")
    admins = Group.objects.create(name="keystone-admins")
    RoleBinding.objects.create(role=Role.objects.get(name="viewer"), group=admins, scope="global")
    token = keystone.issue("alice", "ops")
    assert [c["name"] for c in _get(token).json()["items"]] == ["c1"]

    keystone.set_roles("alice", "ops", {"member"})
    time.sleep(1.2)
    response = _get(token)

    assert response.status_code == 200
    assert response.json()["items"] == []
    assert _groups(ALICE) == {"ops-viewers"}


def test_keystone_down_is_a_503_problem(keystone: KeystoneStandin) -> None:
    token = keystone.issue("alice", "ops")
    keystone.stop()

    response = _get(token)

    assert response.status_code == 503, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "identity_unavailable"
    assert not User.objects.filter(username=ALICE).exists()


def test_gwm_with_wrong_service_credentials_is_503(
    keystone: KeystoneStandin, settings: Any
) -> None:
    settings.GWM_KEYSTONE_PASSWORD = "wrong"
    response = _get(keystone.issue("alice", "ops"))
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "identity_unavailable"
    assert (keystone.logins(), keystone.validations()) == (1, 0)


def test_gwm_renews_its_own_token_when_keystone_stops_taking_it(
    keystone: KeystoneStandin,
) -> None:
    assert _get(keystone.issue("alice", "ops")).status_code == 200
    assert keystone.logins() == 1
    for service_token in list(keystone._tokens):
        if keystone._tokens[service_token].user.name == "gwm":
            keystone.revoke(service_token)

    assert _get(keystone.issue("bob", "ops")).status_code == 200

    assert keystone.logins() == 2
    assert keystone.validations() == 3  # refused once under the old token, then answered


def test_keystone_off_ignores_the_header(keystone: KeystoneStandin, settings: Any) -> None:
    token = keystone.issue("alice", "ops")
    assert _get(token).status_code == 200
    keystone_forget_all()
    settings.KEYSTONE_URL = ""

    _assert_401(_get(token))
    assert keystone.validations() == 1


def test_a_local_account_of_the_same_name_is_not_taken_over(keystone: KeystoneStandin) -> None:
    local = User.objects.create_user(ALICE, password="pw-local-123")
    _assert_401(_get(keystone.issue("alice", "ops")))
    assert not local.groups.exists()
    assert not Profile.objects.filter(user=local, source=AccountSource.KEYSTONE).exists()


def test_a_user_deactivated_in_gwm_is_refused_even_from_the_cache(
    keystone: KeystoneStandin,
) -> None:
    token = keystone.issue("alice", "ops")
    assert _get(token).status_code == 200
    User.objects.filter(username=ALICE).update(is_active=False)
    _assert_401(_get(token))
    assert keystone.validations() == 1


def test_the_rules_parse_and_refuse_what_is_not_a_rule() -> None:
    rules = parse_role_groups(" a:b:Member=g=1 , *:admin=admins,")
    assert [(r.project, r.role, r.group) for r in rules] == [
        ("a:b", "member", "g=1"),
        ("*", "admin", "admins"),
    ]
    for bad in ["ops=g", "ops:member", ":member=g", "ops:=g", "ops:member="]:
        with pytest.raises(ImproperlyConfigured):
            parse_role_groups(bad)
