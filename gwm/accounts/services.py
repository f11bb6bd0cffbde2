"""Issuing and checking API tokens. Writes take the acting user (``actor``), ready for audit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.accounts.models import ApiToken

TOKEN_PREFIX = "gwm"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def token_create(
    *,
    actor: User | None,
    user: User,
    name: str,
    expires_in: timedelta | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user``, made by ``actor`` (None: the server's own shell); returns the
    row and the plaintext, shown only now."""
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    if expires_in is not None:
        expires_at = timezone.now() + expires_in
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=_hash(secret),
        expires_at=expires_at,
    )
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


@transaction.atomic
def token_revoke(token: ApiToken, *, actor: User | None) -> None:
    """Revoked tokens stop working on the next request; the row stays for the record."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def token_authenticate(plaintext: str) -> ApiToken | None:
    """The live token ``plaintext`` names, or None (unknown, wrong, expired, revoked)."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(parts[2])):
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    # Touch last_used_at at most once a minute: reads must not each write a row.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
