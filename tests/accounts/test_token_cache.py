"""The per-process token cache (GWM_TOKEN_CACHE_SECONDS): it saves the token query, and
never lets a token through that gwm knows is no longer good.

The suite turns the cache off (tests/conftest.py); each test here turns it on for
itself. Tests run with committed transactions: the cache is emptied by the grants
channel after a commit, which a test inside one rolled-back transaction never has.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gwm.accounts.models import ApiToken, Role
from gwm.accounts.services.directory import binding_create, user_update
from gwm.accounts.services.tokens import token_authenticate, token_create, token_revoke

pytestmark = pytest.mark.django_db(transaction=True)

CACHE_SECONDS = 1.0
ME = "/api/v1/me"


@pytest.fixture
def cache_on(settings: Any) -> None:
    settings.GWM_TOKEN_CACHE_SECONDS = CACHE_SECONDS


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def someone(fast_passwords: None) -> User:
    return User.objects.create_user("someone", "someone@localhost", "pw-someone-1")


def _client_of(user: User) -> tuple[ApiToken, Client]:
    token, plaintext = token_create(
        actor=None, user=user, name="cache", expires_in=timedelta(hours=1)
    )
    return token, Client(headers={"Authorization": f"Bearer {plaintext}"})


def _token_reads(client: Client, path: str = ME) -> int:
    """How many SELECTs of the token table one request made (and it must answer 200)."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT")
        and ApiToken._meta.db_table in query["sql"]
    )


def _warm(client: Client) -> None:
    """A first request: it reads the token and stamps its last use (which empties the
    cache once: the copies kept hold the old stamp); the one after reads it again."""
    for _ in range(2):
        assert client.get(ME).status_code == 200


def test_a_cached_token_is_not_read_again(cache_on: None, someone: User) -> None:
    _, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0
    assert _token_reads(client) == 0


def test_without_the_cache_every_request_reads_the_token(settings: Any, someone: User) -> None:
    settings.GWM_TOKEN_CACHE_SECONDS = 0
    _, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 1
    assert _token_reads(client) == 1


def test_the_second_request_reads_no_token(cache_on: None, someone: User) -> None:
    """The very next request after a token's first one is served from the cache."""
    _, client = _client_of(someone)
    assert client.get(ME).status_code == 200
    assert _token_reads(client) == 0


def test_an_entry_expires_after_the_cache_time(cache_on: None, someone: User) -> None:
    _, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0
    time.sleep(CACHE_SECONDS + 0.1)
    assert _token_reads(client) == 1


def test_a_revocation_through_the_service_is_refused_on_the_next_request(
    cache_on: None, someone: User
) -> None:
    token, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0  # it is served from the cache now
    token_revoke(token, actor=None)
    assert client.get(ME).status_code == 401


def test_a_revocation_through_the_api_is_refused_on_the_next_request(
    cache_on: None, someone: User
) -> None:
    token, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0
    response = client.delete(f"/api/v1/auth/tokens/{token.pk}")
    assert response.status_code == 204, response.content
    assert client.get(ME).status_code == 401


def test_a_revocation_behind_gwms_back_is_refused_after_the_cache_time(
    cache_on: None, someone: User
) -> None:
    token, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    # The cache may still let it through for up to its time; not longer.
    time.sleep(CACHE_SECONDS + 0.1)
    assert client.get(ME).status_code == 401


def test_a_user_deactivated_through_the_directory_is_refused_at_once(
    cache_on: None, someone: User
) -> None:
    _, client = _client_of(someone)
    _warm(client)
    assert _token_reads(client) == 0
    user_update(someone, actor=None, is_active=False)
    assert client.get(ME).status_code == 401


def test_each_request_gets_its_own_token_and_user(cache_on: None, someone: User) -> None:
    token, plaintext = token_create(actor=None, user=someone, name="cache")
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())  # no stamp due
    first = token_authenticate(plaintext)
    second = token_authenticate(plaintext)
    third = token_authenticate(plaintext)
    assert first is not None and second is not None and third is not None
    assert len({id(first), id(second), id(third)}) == 3
    assert len({id(first.user), id(second.user), id(third.user)}) == 3


def _global_verbs(client: Client) -> list[str]:
    response = client.get("/api/v1/me/permissions")
    assert response.status_code == 200, response.content
    return list(response.json()["verbs"])


def test_permissions_follow_a_binding_made_through_the_service(
    cache_on: None, someone: User
) -> None:
    _, client = _client_of(someone)
    _warm(client)
    assert _global_verbs(client) == []
    assert _token_reads(client) == 0  # the next request is served from the cache
    binding_create(actor=None, role=Role.objects.get(name="viewer"), user=someone, scope="global")
    assert _global_verbs(client) == ["view"]


def test_permissions_follow_a_binding_made_behind_gwms_back(cache_on: None, someone: User) -> None:
    """No grants channel here: only the token row is cached, never what it may do, so a
    request's grants never come from an earlier request's user."""
    from gwm.accounts.models import RoleBinding

    _, client = _client_of(someone)
    _warm(client)
    assert _global_verbs(client) == []
    assert _token_reads(client) == 0
    RoleBinding.objects.create(role=Role.objects.get(name="viewer"), user=someone, scope="global")
    assert _token_reads(client) == 0  # still from the cache...
    assert _global_verbs(client) == ["view"]  # ...and yet its grants are read afresh
