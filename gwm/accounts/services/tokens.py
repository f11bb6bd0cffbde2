"""Issuing, checking and revoking API tokens (their text and hash: gwm.accounts.tokens)."""

from __future__ import annotations

import copy
import hmac
import ipaddress
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from gwm.accounts.models import ApiToken, Profile
from gwm.accounts.services.audit import audit_record
from gwm.accounts.tokens import key_id_of, new_token, newest_pepper, token_hash
from gwm.errors import ValidationFailed
from gwm.events.notify import GRANTS_CHANNEL, broadcaster, publish_on_commit

LAST_USED_EVERY = timedelta(minutes=1)  # touch last_used_at at most this often


def is_service_account(user: User) -> bool:
    return Profile.objects.filter(user=user, service=True).exists()


def max_lifetime(user: User) -> timedelta:
    days = (
        settings.GWM_SERVICE_TOKEN_MAX_DAYS
        if is_service_account(user)
        else settings.GWM_TOKEN_MAX_DAYS
    )
    return timedelta(days=days)


def _networks(raw: Sequence[str]) -> list[str]:
    found = []
    for item in raw:
        try:
            found.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise ValidationFailed(
                f"{item!r} is not a network (CIDR, e.g. 10.0.0.0/8)", code="bad_network"
            ) from None
    return found


@transaction.atomic
def token_create(
    *,
    actor: User | None,
    user: User,
    name: str,
    expires_in: timedelta | None = None,
    expires_at: datetime | None = None,
    read_only: bool = False,
    clusters: Sequence[str] = (),
    networks: Sequence[str] = (),
    address: str | None = None,
    parent: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user``, made by ``actor`` (None: the server's own shell); returns the
    row and the plaintext, shown only now.

    Without an expiry it gets the default lifetime; more than the maximum (the service
    maximum for service accounts) is refused. A token made with another (``parent``) is
    never wider than it: it keeps the parent's limits, and a token of the same user
    expires no later (else a token could renew itself forever; a global admin making a
    service account's token gives it that account's lifetime).
    """
    now = timezone.now()
    if expires_in is not None:
        expires_at = now + expires_in
    if expires_at is None:
        expires_at = now + timedelta(days=settings.GWM_TOKEN_DEFAULT_DAYS)
    networks = _networks(networks)
    if parent is not None:
        read_only, clusters, networks, expires_at = _within(
            parent, read_only, clusters, networks, expires_at, same_user=parent.user_id == user.pk
        )
    longest = max_lifetime(user)
    if expires_at <= now:
        raise ValidationFailed("the expiry is in the past", code="bad_expiry")
    if expires_at > now + longest + timedelta(seconds=5):
        raise ValidationFailed(
            f"a token of {user.get_username()} lives at most {longest.days} days",
            code="expiry_too_far",
            max_days=longest.days,
        )
    text = new_token()
    pepper = newest_pepper()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=text.key_id,
        secret_hash=token_hash(text.plaintext, pepper) or "",
        pepper=pepper,
        created_by=actor,
        expires_at=expires_at,
        read_only=read_only,
        clusters=sorted(set(clusters)),
        networks=networks,
    )
    audit_record(
        action="token.create",
        user=actor,
        status=201,
        address=address,
        resource_type="token",
        resource_name=f"{token.pk}",
        params={
            "user": user.get_username(),
            "name": name,
            "read_only": read_only,
            "clusters": token.clusters,
            "networks": token.networks,
            "expires_at": expires_at.isoformat(),
        },
    )
    return token, text.plaintext


def _within(
    parent: ApiToken,
    read_only: bool,
    clusters: Sequence[str],
    networks: list[str],
    expires_at: datetime,
    *,
    same_user: bool,
) -> tuple[bool, list[str], list[str], datetime]:
    """The scope asked for, narrowed to ``parent``'s; 422 when it asks for more."""
    if parent.clusters:
        wider = sorted(set(clusters) - set(parent.clusters))
        if wider:
            raise ValidationFailed(
                f"this token is limited to {', '.join(parent.clusters)}; it cannot make one "
                f"for {', '.join(wider)}",
                code="wider_than_token",
            )
        clusters = list(clusters) or list(parent.clusters)
    if parent.networks:
        allowed = [ipaddress.ip_network(net) for net in parent.networks]
        for net in networks:
            asked = ipaddress.ip_network(net)
            if not any(
                asked.version == ok.version and asked.subnet_of(ok)  # type: ignore[arg-type]
                for ok in allowed
            ):
                raise ValidationFailed(
                    f"this token is limited to {', '.join(parent.networks)}; {net} is not in them",
                    code="wider_than_token",
                )
        networks = networks or list(parent.networks)
    if same_user and parent.expires_at is not None:
        expires_at = min(expires_at, parent.expires_at)
    return read_only or parent.read_only, list(clusters), networks, expires_at


@transaction.atomic
def token_revoke(token: ApiToken, *, actor: User | None, address: str | None = None) -> None:
    """Revoked tokens stop working on the next request; the row stays for the record."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    publish_on_commit(GRANTS_CHANNEL)  # the streams this token feeds end
    audit_record(
        action="token.revoke",
        user=actor,
        status=204,
        address=address,
        resource_type="token",
        resource_name=f"{token.pk}",
        params={"user": token.user.get_username(), "name": token.name},
    )


def _from_allowed_network(token: ApiToken, address: str | None) -> bool:
    if not token.networks:
        return True
    try:
        where = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(where in ipaddress.ip_network(net) for net in token.networks)


class _SeenTokens:
    """The tokens this process read in the last ``GWM_TOKEN_CACHE_SECONDS``, by key id.

    Reading a token costs a query per request; under load that is most of a
    cached read. An entry is only a copy of the row: the secret is still checked
    against its hash, and expiry, the user's state and the address on every use.
    Every write that changes who may do what (a revocation, a user deactivated:
    GRANTS_CHANNEL, from any process) empties it, and an entry is never older than
    the setting (1 s), which bounds a change made behind gwm's back (the admin site).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[float, ApiToken]] = {}
        self._listening = False

    def get(self, key_id: str) -> ApiToken | None:
        with self._lock:
            seen = self._rows.get(key_id)
        if seen is None or time.monotonic() - seen[0] > settings.GWM_TOKEN_CACHE_SECONDS:
            return None
        token = copy.copy(seen[1])  # each request gets its own token and user instances
        token.user = copy.copy(seen[1].user)
        return token

    def put(self, key_id: str, token: ApiToken) -> None:
        if settings.GWM_TOKEN_CACHE_SECONDS <= 0:
            return
        if not self._listening:
            broadcaster.on_publish(GRANTS_CHANNEL, self.clear)
            self._listening = True
        with self._lock:
            self._rows[key_id] = (time.monotonic(), token)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


_seen = _SeenTokens()


def _token_row(key_id: str) -> ApiToken | None:
    token = _seen.get(key_id)
    if token is None:
        token = ApiToken.objects.select_related("user").filter(prefix=key_id).first()
        if token is not None:
            _seen.put(key_id, token)
    return token


def token_authenticate(plaintext: str, address: str | None = None) -> ApiToken | None:
    """The live token ``plaintext`` names, used from ``address``; None when it is unknown,
    wrong, expired, revoked, its user inactive, or ``address`` is outside its networks."""
    key_id = key_id_of(plaintext)
    if key_id is None:
        return None
    token = _token_row(key_id)
    if token is None:
        return None
    expected = token_hash(plaintext, token.pepper)
    if expected is None or not hmac.compare_digest(token.secret_hash, expected):
        return None
    now = timezone.now()
    if not token.live(now):
        return None
    if not token.user.is_active or not _from_allowed_network(token, address):
        return None
    # Reads must not each write a row: last_used is written at most once a minute.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_from=address)
        token.last_used_at, token.last_used_from = now, address
        _seen.put(key_id, token)  # the kept copy holds the old stamp
    return token
