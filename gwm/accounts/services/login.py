"""Exchanging a user name and password for a token, with failed logins throttled.

The password is checked by Django's authentication backends: gwm's own users,
and LDAP's when it is configured (gwm.settings_ldap). A backend that cannot
reach its directory raises :class:`IdentityUnavailable`, which answers 503
for that login only: local users still log in.

Throttling counts recent failures (``LoginFailure`` rows, so it holds across
processes) per user name and per source address; past either limit a login is
refused with 429 and ``Retry-After`` before any password is checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.accounts.models import ApiToken, LoginFailure
from gwm.accounts.services.audit import audit_record
from gwm.accounts.services.tokens import token_create
from gwm.errors import ServiceUnavailable, TooManyRequests, Unauthorized


class IdentityUnavailable(Exception):
    """An identity service (LDAP, Keystone) could not be asked; the caller gets 503."""


def _retry_after(username: str, address: str) -> int | None:
    """Seconds until this login may be tried again, or None when it may be tried now."""
    window = timedelta(seconds=settings.GWM_LOGIN_WINDOW_SECONDS)
    since = timezone.now() - window
    recent = LoginFailure.objects.filter(at__gte=since)
    waits = []
    for rows, limit in (
        (recent.filter(username=username), settings.GWM_LOGIN_MAX_FAILURES_PER_USER),
        (recent.filter(address=address), settings.GWM_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ):
        if rows.count() >= limit:
            # Free again when the oldest failure that counts leaves the window.
            oldest: datetime = rows.order_by("-at").values_list("at", flat=True)[limit - 1]
            waits.append(math.ceil((oldest + window - timezone.now()).total_seconds()))
    return max(1, *waits) if waits else None


def _refuse(username: str, address: str, status: int, detail: str) -> None:
    with transaction.atomic():
        if status == 401:
            LoginFailure.objects.create(username=username, address=address)
        audit_record(
            action="auth.login",
            user=None,
            username=username,
            status=status,
            address=address,
            path="/api/v1/auth/tokens",
            method="POST",
            detail=detail,
        )


def password_login(
    *,
    username: str,
    password: str,
    address: str,
    name: str,
    expires_in: timedelta | None = None,
    read_only: bool = False,
    clusters: Sequence[str] = (),
    networks: Sequence[str] = (),
) -> tuple[ApiToken, str]:
    """A new token for the user ``username`` names, if ``password`` is theirs."""
    wait = _retry_after(username, address)
    if wait is not None:
        _refuse(username, address, 429, "throttled")
        raise TooManyRequests(
            f"too many failed logins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
    try:
        user = authenticate(username=username, password=password)
    except IdentityUnavailable as exc:
        _refuse(username, address, 503, f"identity service unavailable: {exc}")
        raise ServiceUnavailable(
            "the directory that holds this user cannot be reached; try again later",
            code="identity_unavailable",
            headers={"Retry-After": "30"},
        ) from None
    if not isinstance(user, User) or not user.is_active:
        _refuse(username, address, 401, "bad credentials")
        raise Unauthorized(
            "wrong user name or password",
            code="bad_credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with transaction.atomic():
        token, plaintext = token_create(
            actor=user,
            user=user,
            name=name,
            expires_in=expires_in,
            read_only=read_only,
            clusters=clusters,
            networks=networks,
            address=address,
        )
        audit_record(
            action="auth.login",
            user=user,
            token=token,
            status=201,
            address=address,
            path="/api/v1/auth/tokens",
            method="POST",
        )
    return token, plaintext
