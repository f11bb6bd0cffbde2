"""Keystone tokens (``X-Auth-Token``): validated with Keystone, mapped to a gwm user.

Off unless ``KEYSTONE_URL`` is set (gwm/settings_keystone.py). A caller's token
is validated with ``GET /v3/auth/tokens`` under gwm's own service token, which
gwm gets by password and renews when Keystone stops taking it. A validation is
believed for ``GWM_KEYSTONE_CACHE_SECONDS`` at most and never past the token's
``expires_at``: that bounds how long a token revoked in Keystone still works.

The caller becomes the Django user ``keystone:<domain>/<name>``, created on first
use with a Keystone profile; its groups are set from the token's project and
roles by ``GWM_KEYSTONE_ROLE_GROUPS`` at every validation, so a role removed in
Keystone is gone from gwm once the cached validation ends. What the groups may
do is their role bindings (gwm.accounts.grants), as for any other user.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest
from ninja.security import APIKeyHeader

from gwm.accounts.models import AccountSource, Profile
from gwm.errors import ServiceUnavailable

log = logging.getLogger(__name__)

USERNAME_PREFIX = "keystone:"
TOKENS_PATH = "/v3/auth/tokens"
_USERNAME_MAX = 150  # Django's User.username
_TOKEN_MAX = 8192  # longer is no Keystone token; it would only cost Keystone a look-up
_CACHE_MAX = 10_000  # validations kept at once; the oldest go first past this
_SERVICE_MARGIN = 30.0  # renew gwm's own token this many seconds before it expires


@dataclass(frozen=True)
class KeystoneIdentity:
    """What a valid token says of its holder."""

    user_id: str
    user_name: str
    domain_id: str
    domain_name: str
    project_id: str | None  # None: not scoped to a project (domain or system scope)
    project_name: str | None
    roles: frozenset[str]  # names, casefolded
    expires_at: datetime


@dataclass(frozen=True)
class RoleRule:
    """``<project>:<role>=<group>``: holders of ``role`` in ``project`` are in ``group``."""

    project: str  # a project's name or id; "*": any scope, project or not
    role: str  # casefolded; "*": any role
    group: str

    def matches(self, identity: KeystoneIdentity) -> bool:
        if self.project != "*" and self.project not in (
            identity.project_name,
            identity.project_id,
        ):
            return False
        if self.role == "*":
            return bool(identity.roles)
        return self.role in identity.roles


def parse_role_groups(raw: str) -> list[RoleRule]:
    """The rules of ``GWM_KEYSTONE_ROLE_GROUPS``, in order.

    Each item splits at its first ``=`` (group names may hold one), then the left
    side at its last ``:`` (project names may hold one; role names do not).
    """
    rules = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        left, eq, group = item.partition("=")
        project, colon, role = left.strip().rpartition(":")
        if not (eq and colon and project.strip() and role.strip() and group.strip()):
            raise ImproperlyConfigured(
                f"GWM_KEYSTONE_ROLE_GROUPS: {item!r} is not <project>:<role>=<gwm group>"
            )
        rules.append(RoleRule(project.strip(), role.strip().casefold(), group.strip()))
    return rules


def mapped_groups(identity: KeystoneIdentity, rules: list[RoleRule]) -> set[str]:
    return {rule.group for rule in rules if rule.matches(identity)}


def username_for(identity: KeystoneIdentity) -> str:
    """``keystone:<domain name>/<user name>``; by ids if that is too long for Django.

    The colon and slash are outside Django's username validator, so no local or
    LDAP account can already hold such a name.
    """
    name = f"{USERNAME_PREFIX}{identity.domain_name}/{identity.user_name}"
    if len(name) <= _USERNAME_MAX:
        return name
    return f"{USERNAME_PREFIX}{identity.domain_id}/{identity.user_id}"


# -- talking to Keystone ------------------------------------------------------------------


def _unavailable(detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(detail, code="identity_unavailable")


def _call(method: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    verify: str | bool = settings.GWM_KEYSTONE_CA_FILE or True
    try:
        with httpx.Client(verify=verify, timeout=settings.GWM_KEYSTONE_TIMEOUT_SECONDS) as client:
            return client.request(
                method, settings.KEYSTONE_URL + TOKENS_PATH, headers=headers, **kwargs
            )
    except httpx.HTTPError as exc:
        log.warning("Keystone at %s is unreachable: %s", settings.KEYSTONE_URL, exc)
        raise _unavailable("the identity service (Keystone) cannot be reached") from None


def _expiry(raw: object) -> datetime:
    if not isinstance(raw, str):
        raise ValueError("expires_at is not a string")
    when = datetime.fromisoformat(raw)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _seconds_left(expires_at: datetime) -> float:
    return (expires_at - datetime.now(UTC)).total_seconds()


class _ServiceToken:
    """gwm's own Keystone token, got by password and kept until shortly before it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None
        self._deadline = 0.0  # time.monotonic()

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._deadline:
                self._token, lifetime = self._login()
                self._deadline = time.monotonic() + max(lifetime - _SERVICE_MARGIN, 0.0)
            return self._token

    def forget(self, token: str | None = None) -> None:
        """Drop the token (only if it is still ``token``: another thread may have renewed it)."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def _login(self) -> tuple[str, float]:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": settings.GWM_KEYSTONE_USER,
                            "domain": {"name": settings.GWM_KEYSTONE_USER_DOMAIN},
                            "password": settings.GWM_KEYSTONE_PASSWORD,
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": settings.GWM_KEYSTONE_PROJECT,
                        "domain": {"name": settings.GWM_KEYSTONE_PROJECT_DOMAIN},
                    }
                },
            }
        }
        response = _call("POST", {}, json=body)
        if response.status_code in (401, 403):
            # gwm's configuration, not the caller, is wrong: say so loudly, answer 503.
            log.error(
                "Keystone refused gwm's service credentials (user %s, project %s): %s",
                settings.GWM_KEYSTONE_USER,
                settings.GWM_KEYSTONE_PROJECT,
                response.status_code,
            )
            raise _unavailable("gwm cannot authenticate itself to the identity service")
        token = response.headers.get("X-Subject-Token", "")
        try:
            response.raise_for_status()
            lifetime = _seconds_left(_expiry(response.json()["token"]["expires_at"]))
        except (httpx.HTTPStatusError, ValueError, KeyError, TypeError):
            log.warning("Keystone's token answer is not usable: %s", response.status_code)
            raise _unavailable("the identity service gave gwm no usable token") from None
        if not token:
            raise _unavailable("the identity service gave gwm no usable token")
        return token, lifetime


_service = _ServiceToken()


def _identity(body: Any) -> KeystoneIdentity:
    token = body["token"]
    user = token["user"]
    project = token.get("project") or {}
    return KeystoneIdentity(
        user_id=str(user["id"]),
        user_name=str(user["name"]),
        domain_id=str(user["domain"]["id"]),
        domain_name=str(user["domain"]["name"]),
        project_id=str(project["id"]) if project.get("id") else None,
        project_name=str(project["name"]) if project.get("name") else None,
        roles=frozenset(str(r["name"]).casefold() for r in token.get("roles") or ()),
        expires_at=_expiry(token["expires_at"]),
    )


def keystone_validate(token: str) -> KeystoneIdentity | None:
    """What Keystone says of ``token`` now; None when it is not a valid token.

    Raises ServiceUnavailable when Keystone cannot answer or refuses gwm itself.
    """
    if len(token) > _TOKEN_MAX or not token.isascii() or not token.isprintable():
        return None
    for attempt in (1, 2):
        service = _service.get()
        response = _call(
            "GET",
            {"X-Auth-Token": service, "X-Subject-Token": token},
            params={"nocatalog": "1"},  # the catalogue is large and gwm does not use it
        )
        if response.status_code == 401 and attempt == 1:
            # gwm's own token was revoked or expired early: get another, ask once more.
            _service.forget(service)
            continue
        break
    status = response.status_code
    if status in (400, 404):  # Keystone's answers for a malformed or an unknown token
        return None
    if status == 200:
        try:
            identity = _identity(response.json())
        except (ValueError, KeyError, TypeError):
            log.warning("Keystone's validation answer is not usable")
            raise _unavailable("the identity service answered something gwm cannot read") from None
        return identity if _seconds_left(identity.expires_at) > 0 else None
    if status in (401, 403):
        log.error("Keystone does not let gwm's service user validate tokens: %s", status)
        raise _unavailable("gwm may not validate tokens with the identity service")
    log.warning("Keystone answered %s to a token validation", status)
    raise _unavailable("the identity service failed to validate the token")


# -- the gwm user -------------------------------------------------------------------------


def keystone_user(identity: KeystoneIdentity) -> User | None:
    """The gwm user of ``identity``, created on first use, its groups set from its roles.

    None when the name belongs to an account of another source (it must not be
    taken over) or the account was deactivated in gwm.
    """
    rules = parse_role_groups(settings.GWM_KEYSTONE_ROLE_GROUPS)
    names = sorted(mapped_groups(identity, rules))
    username = username_for(identity)
    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=username, defaults={"password": make_password(None)}
        )
        if created:
            Profile.objects.create(user=user, source=AccountSource.KEYSTONE)
        elif not Profile.objects.filter(user=user, source=AccountSource.KEYSTONE).exists():
            log.warning("refused Keystone user %s: a gwm account not from Keystone", username)
            return None
        if not user.is_active:
            return None
        groups = [Group.objects.get_or_create(name=name)[0] for name in names]
        # Replaced, not added to: a role removed in Keystone takes its group away.
        user.groups.set(groups)
    return user


# -- the cache ----------------------------------------------------------------------------


class _Validations:
    """Validated tokens (by hash) to user ids, each until its deadline (time.monotonic())."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, int]] = {}

    def get(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if time.monotonic() >= entry[0]:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: str, user_id: int, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= _CACHE_MAX:
                for old in [k for k, (deadline, _) in self._entries.items() if deadline <= now]:
                    del self._entries[old]
            while len(self._entries) >= _CACHE_MAX:  # dicts keep insertion order
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (now + seconds, user_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_validations = _Validations()


def keystone_forget_all() -> None:
    """Drop every cached validation and gwm's service token (tests; changed settings)."""
    _validations.clear()
    _service.forget()


def keystone_authenticate(token: str) -> User | None:
    """The active gwm user of the Keystone ``token``, or None; a cached validation if any."""
    key = hashlib.sha256(token.encode()).hexdigest()
    user_id = _validations.get(key)
    if user_id is not None:
        return User.objects.filter(pk=user_id, is_active=True).first()
    identity = keystone_validate(token)
    if identity is None:
        return None
    user = keystone_user(identity)
    if user is None:
        return None
    seconds = min(float(settings.GWM_KEYSTONE_CACHE_SECONDS), _seconds_left(identity.expires_at))
    if seconds > 0:
        _validations.put(key, user.pk, seconds)
    return user


class KeystoneAuth(APIKeyHeader):
    """``X-Auth-Token: <Keystone token>``; ignored (None) while Keystone is off."""

    param_name = "X-Auth-Token"

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        if not settings.KEYSTONE_URL or not key:
            return None
        user = keystone_authenticate(key)
        if user is None:
            return None
        request.user = user
        return user


keystone_auth = KeystoneAuth()
