"""Tokens that stopped being valid answer 401 with a Bearer challenge and a problem body.

Each token works first (so the 401 is caused by what the test changed), then is
expired, revoked, or its user deactivated, and is refused on a read, on a write
and on the async long-poll alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import ApiToken
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _expire(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _revoke(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())


def _deactivate(token: ApiToken) -> None:
    User.objects.filter(pk=token.user_id).update(is_active=False)


def _assert_401(response: Any) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "unauthorized"
    assert body["title"] and body["detail"]
    assert body["type"].endswith("/unauthorized")
    assert "items" not in body  # nothing of the data leaks into the refusal


@pytest.mark.parametrize(
    "invalidate", [_expire, _revoke, _deactivate], ids=["expired", "revoked", "inactive-user"]
)
@pytest.mark.parametrize("staff", [False, True], ids=["reader", "staff"])
def test_a_token_that_stopped_being_valid_is_401(
    django_user_model: Any, invalidate: Callable[[ApiToken], None], staff: bool
) -> None:
    user = django_user_model.objects.create_user(
        "someone", "someone@localhost", "pw-someone-1", is_staff=staff
    )
    token, plaintext = token_create(
        actor=None, user=user, name="tests", expires_in=timedelta(hours=1)
    )
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})

    # It works before.
    before = client.get("/api/v1/clusters")
    assert before.status_code == 200, before.content
    assert before.json() == {"items": [], "next": None}
    assert client.get("/api/v1/jobs/wait?ids=1&timeout=0").status_code == 404  # authenticated

    invalidate(token)

    _assert_401(client.get("/api/v1/clusters"))
    _assert_401(client.get("/api/v1/instances"))
    _assert_401(client.get("/api/v1/jobs/1"))
    _assert_401(client.get("/api/v1/jobs/wait?ids=1&timeout=0"))  # async view
    _assert_401(client.get("/api/v1/jobs/1/wait?timeout=0"))
    write = client.post(
        "/api/v1/clusters",
        {"name": "c1", "rapi_url": "https://127.0.0.1:1", "username": "u", "password": "p"},
        content_type="application/json",
    )
    _assert_401(write)  # refused as unauthenticated, not as forbidden or invalid
    _assert_401(client.post("/api/v1/jobs/1/cancel"))
    assert not Cluster.objects.exists()


def test_an_expiry_in_the_future_still_works_and_a_garbled_token_does_not(
    django_user_model: Any,
) -> None:
    user = django_user_model.objects.create_user("someone", "someone@localhost", "pw-someone-1")
    _token, plaintext = token_create(
        actor=None, user=user, name="tests", expires_in=timedelta(minutes=5)
    )
    ok = Client(headers={"Authorization": f"Bearer {plaintext}"}).get("/api/v1/clusters")
    assert ok.status_code == 200
    prefix, secret = plaintext.rsplit("_", 1)
    wrong_secret = f"{prefix}_{'x' * len(secret)}"
    for header in (f"Bearer {wrong_secret}", f"Bearer {plaintext}x", "Bearer ", plaintext):
        _assert_401(Client(headers={"Authorization": header}).get("/api/v1/clusters"))
