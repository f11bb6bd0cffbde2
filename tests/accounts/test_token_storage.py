"""What gwm keeps of a token, and when: a keyed hash under a numbered pepper, never the text.

The token's text is in the answer that made it and nowhere in the database; its shape
and checksum let gwm refuse a typo without a query; peppers rotate without breaking the
tokens of the older one until it is dropped; lifetimes follow the settings; and
``last_used_at`` is written at most once a minute, so reads do not each write a row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gwm.accounts.models import ApiToken, AuditEntry
from gwm.accounts.tokens import ALPHABET, key_id_of

pytestmark = pytest.mark.django_db

JSON = "application/json"
SHAPE = re.compile(r"^gwm_[0-9A-Za-z]{50}$")
OLD = "old-pepper-xxxxxxxxxxxx"
NEW = "new-pepper-yyyyyyyyyyyy"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """Password hashing is not under test here; the default hasher would make it slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(name: str = "alice", password: str = "pw-alice-123", **extra: Any) -> User:
    return User.objects.create_user(name, f"{name}@localhost", password, **extra)


def _login(username: str = "alice", password: str = "pw-alice-123", **body: Any) -> Any:
    return Client().post(
        "/api/v1/auth/tokens",
        {"username": username, "password": password, **body},
        content_type=JSON,
    )


def _bearer(token: str, address: str = "127.0.0.1") -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"}, REMOTE_ADDR=address)


def _secret(token: str) -> str:
    return token[len("gwm_") + 12 : len("gwm_") + 12 + 32]


def _every_row() -> str:
    """Every row of every table, as text: what a copy of the database would hold."""
    dumped = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dumped.append(f"{table}: {cursor.fetchall()!r}")
    return "\n".join(dumped)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- storage ---------------------------------------------------------------------------


def test_no_row_of_any_table_holds_a_token_or_its_secret(settings: Any) -> None:
    settings.GWM_TOKEN_PEPPERS = {1: OLD}
    _user()
    assert not ApiToken.objects.exists()
    logged_in = _login(description="laptop")
    assert logged_in.status_code == 201, logged_in.content
    first = logged_in.json()["token"]
    # A token made with a token, and a refused write carrying one (its audit row).
    made = _bearer(first).post("/api/v1/auth/tokens", {"description": "ci"}, content_type=JSON)
    assert made.status_code == 201, made.content
    second = made.json()["token"]
    refused = _bearer(second).post("/api/v1/clusters", {"name": "x"}, content_type=JSON)
    assert refused.status_code in (403, 422), refused.content

    dump = _every_row()
    rows = list(ApiToken.objects.order_by("pk"))
    assert len(rows) == 2
    assert AuditEntry.objects.filter(action__in=["auth.login", "token.create"]).count() >= 2
    assert "token.create" in dump and "auth.login" in dump  # the audit rows are in it
    for token, row in zip((first, second), rows, strict=True):
        assert SHAPE.match(token), token
        assert row.prefix == token[4:16] and row.prefix in dump  # the dump does hold rows
        assert row.secret_hash in dump
        assert token not in dump
        assert _secret(token) not in dump
        # Not a plain digest: without the pepper the hash cannot be recomputed.
        assert row.secret_hash != hashlib.sha256(token.encode()).hexdigest()
        assert row.secret_hash != hashlib.sha256(_secret(token).encode()).hexdigest()
        assert row.pepper == 1
        keyed = hmac.new(OLD.encode(), token.encode(), hashlib.sha256).hexdigest()
        assert row.secret_hash == keyed


def test_a_token_has_the_documented_shape_and_a_typo_is_refused_without_a_query(
    django_assert_num_queries: Any,
) -> None:
    _user()
    token = _login().json()["token"]
    assert SHAPE.match(token), token
    with django_assert_num_queries(0):
        assert key_id_of(token) == token[4:16]
    for position in range(len(token)):
        other = next(c for c in ALPHABET + "_" if c != token[position])
        typo = token[:position] + other + token[position + 1 :]
        with django_assert_num_queries(0):
            assert key_id_of(typo) is None, f"a change at {position} passed the checksum"
    # Through the API: the typo is 401 and its lookup never reaches the token table.
    typo = token[:20] + ("a" if token[20] != "a" else "b") + token[21:]
    with CaptureQueriesContext(connection) as queries:
        refused = _bearer(typo).get("/api/v1/me")
    assert refused.status_code == 401
    assert not [q for q in queries.captured_queries if "accounts_apitoken" in q["sql"]]
    assert _bearer(token).get("/api/v1/me").status_code == 200


def test_peppers_rotate_old_tokens_work_until_their_pepper_is_dropped(settings: Any) -> None:
    _user()
    settings.GWM_TOKEN_PEPPERS = {1: OLD}
    t1 = _login().json()["token"]
    assert _bearer(t1).get("/api/v1/me").status_code == 200

    settings.GWM_TOKEN_PEPPERS = {1: OLD, 2: NEW}
    assert _bearer(t1).get("/api/v1/me").status_code == 200
    answer = _login()
    assert answer.status_code == 201
    t2 = answer.json()["token"]
    assert ApiToken.objects.get(pk=answer.json()["id"]).pepper == 2
    assert ApiToken.objects.get(prefix=t1[4:16]).pepper == 1
    assert _bearer(t2).get("/api/v1/me").status_code == 200

    settings.GWM_TOKEN_PEPPERS = {2: NEW}
    dropped = _bearer(t1).get("/api/v1/me")
    assert dropped.status_code == 401
    assert dropped["WWW-Authenticate"] == "Bearer"
    assert _bearer(t2).get("/api/v1/me").status_code == 200


# -- lifetimes -------------------------------------------------------------------------


def test_the_default_lifetime_is_the_setting(settings: Any) -> None:
    settings.GWM_TOKEN_DEFAULT_DAYS = 7
    _user()
    before = timezone.now()
    answer = _login()
    assert answer.status_code == 201
    expires = _when(answer.json()["expires_at"])
    assert before + timedelta(days=7) - timedelta(seconds=5) <= expires
    assert expires <= timezone.now() + timedelta(days=7, seconds=5)


def test_a_lifetime_beyond_the_maximum_is_422_with_the_maximum(settings: Any) -> None:
    settings.GWM_TOKEN_MAX_DAYS = 90
    _user()
    too_long = _login(expires_in_days=91)
    assert too_long.status_code == 422, too_long.content
    assert too_long["Content-Type"] == "application/problem+json"
    assert too_long.json()["max_days"] == 90
    assert too_long.json()["code"] == "expiry_too_far"
    assert not ApiToken.objects.exists()
    assert _login(expires_in_days=90).status_code == 201


def test_service_accounts_may_get_longer_tokens(api: Client, settings: Any) -> None:
    settings.GWM_TOKEN_MAX_DAYS = 365
    settings.GWM_SERVICE_TOKEN_MAX_DAYS = 3650
    made = api.post("/api/v1/users", {"username": "backup-bot", "service": True}, content_type=JSON)
    assert made.status_code == 201, made.content
    assert made.json()["service"] is True
    _user("bob", "pw-bob-12345")

    def mint(user: str, days: float) -> Any:
        body = {"user": user, "expires_in_days": days, "description": "long"}
        return api.post("/api/v1/auth/tokens", body, content_type=JSON)

    person = mint("bob", 3000)
    assert person.status_code == 422 and person.json()["max_days"] == 365
    service = mint("backup-bot", 3000)
    assert service.status_code == 201, service.content
    assert _when(service.json()["expires_at"]) > timezone.now() + timedelta(days=2999)
    assert service.json()["user"] == "backup-bot"
    beyond = mint("backup-bot", 3651)
    assert beyond.status_code == 422 and beyond.json()["max_days"] == 3650


def test_an_expired_token_is_401_with_a_bearer_challenge() -> None:
    _user()
    answer = _login().json()
    client = _bearer(answer["token"])
    assert client.get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(pk=answer["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    expired = client.get("/api/v1/me")
    assert expired.status_code == 401
    assert expired["WWW-Authenticate"] == "Bearer"
    assert expired.json()["status"] == 401


# -- last used -------------------------------------------------------------------------


def _token_updates(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].upper().startswith("UPDATE") and "accounts_apitoken" in q["sql"]
    ]


def test_last_used_is_written_at_most_once_a_minute() -> None:
    _user()
    answer = _login().json()
    row = ApiToken.objects.get(pk=answer["id"])
    assert row.last_used_at is None and row.last_used_from is None

    client = _bearer(answer["token"], address="192.0.2.10")
    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/me").status_code == 200
    assert len(_token_updates(first)) == 1
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_from == "192.0.2.10"
    used = row.last_used_at

    with CaptureQueriesContext(connection) as again:
        assert client.get("/api/v1/me").status_code == 200
    assert _token_updates(again) == []
    row.refresh_from_db()
    assert row.last_used_at == used

    ApiToken.objects.filter(pk=row.pk).update(last_used_at=used - timedelta(minutes=2))
    later = _bearer(answer["token"], address="192.0.2.11")
    with CaptureQueriesContext(connection) as after:
        assert later.get("/api/v1/me").status_code == 200
    assert len(_token_updates(after)) == 1
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_at > used - timedelta(minutes=1)
    assert row.last_used_from == "192.0.2.11"
    shown = client.get(f"/api/v1/auth/tokens/{row.pk}").json()
    assert shown["last_used_from"] == "192.0.2.11" and shown["last_used_at"]
