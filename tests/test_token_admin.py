"""API tokens made in the Django admin: the secret is shown once and works; only a hash is kept."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from gwm.accounts.models import ApiToken
from gwm.accounts.tokens import key_id_of

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"gwm_[0-9A-Za-z]{50}")


def _add(client: Client, user_id: int, name: str) -> str:
    answer = client.post(
        "/admin/accounts/apitoken/add/",
        {"user": user_id, "name": name, "expires_at": ""},
        follow=True,
    )
    assert answer.status_code == 200, answer.content[:2000]
    shown = [str(message) for message in get_messages(answer.wsgi_request)]
    found = TOKEN.findall(answer.content.decode())
    assert len(found) == 1, f"the new token's secret was not shown once: {shown!r}"
    return found[0]


def test_admin_adds_tokens_that_work_and_shows_each_secret_once(admin_user) -> None:
    admin = Client()
    admin.force_login(admin_user)
    assert not ApiToken.objects.exists()
    first = _add(admin, admin_user.pk, "from-admin")
    second = _add(admin, admin_user.pk, "another")  # once a 500: two tokens with no secret
    assert first != second
    assert ApiToken.objects.count() == 2
    for plaintext in (first, second):
        answer = Client().get("/api/v1/clusters", headers={"Authorization": f"Bearer {plaintext}"})
        assert answer.status_code == 200, answer.content
        stored = ApiToken.objects.get(prefix=key_id_of(plaintext))
        assert plaintext not in stored.secret_hash and plaintext[16:] not in stored.secret_hash
    page = admin.get(f"/admin/accounts/apitoken/{stored.pk}/change/")
    assert page.status_code == 200
    assert plaintext.encode() not in page.content


def test_admin_revokes_a_token_and_it_stops_working(admin_user) -> None:
    admin = Client()
    admin.force_login(admin_user)
    plaintext = _add(admin, admin_user.pk, "to-revoke")
    bearer = {"Authorization": f"Bearer {plaintext}"}
    assert Client().get("/api/v1/clusters", headers=bearer).status_code == 200
    token = ApiToken.objects.get(prefix=key_id_of(plaintext))
    answer = admin.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert answer.status_code == 302
    refused = Client().get("/api/v1/clusters", headers=bearer)
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "Bearer"
