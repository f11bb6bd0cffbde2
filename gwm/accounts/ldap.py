"""LDAP logins: django-auth-ldap's backend, made to say when the directory is away.

Settings are gwm.settings_ldap's (off unless ``GWM_LDAP_URI`` is set), and this
backend comes after Django's ModelBackend in ``AUTHENTICATION_BACKENDS``. So:

* a local user (its Profile is not an LDAP one, or it has no Profile) is
  ModelBackend's alone: this backend does not ask the directory for it at all.
  A local user therefore logs in while the directory is down, a wrong local
  password is a plain 401, and an LDAP entry that happens to share a local
  user's name (``admin``) can never log in as that user;
* any other name is looked up in the directory. Django users made here get an
  unusable password (so ModelBackend never takes them) and a Profile with
  source ``ldap``, in the same transaction as the user, so a failed first login
  leaves neither behind;
* when the directory cannot answer (not reachable, too slow, gwm's search
  account refused), django-auth-ldap would log it and return None, and the
  caller would be told their password is wrong. Its ``ldap_error`` signal lets
  a receiver raise instead: ours raises IdentityUnavailable, which the login
  answers with 503.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend, ldap_error

from gwm.accounts.models import AccountSource, Profile
from gwm.accounts.services.login import IdentityUnavailable

log = logging.getLogger(__name__)

# django-auth-ldap's names for where an error happened. In each of these the
# directory could not say whether the password is right (a wrong password is
# not an error there: it is caught before); elsewhere (group permissions, which
# gwm does not use) an error only costs permissions, as django-auth-ldap intends.
_LOGIN_CONTEXTS = {"authenticate", "search_for_user_dn", "mirror_groups", "populate_user"}


def _is_local(user: User) -> bool:
    """``user`` is not the directory's: ModelBackend's to check, never this backend's."""
    return not Profile.objects.filter(user=user, source=AccountSource.LDAP).exists()


class LdapBackend(LDAPBackend):  # type: ignore[misc]  # django-auth-ldap is untyped
    """django-auth-ldap for gwm: local users left alone, an unreachable directory raised."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None:
            return None
        name = self.ldap_to_django_username(username.strip())
        # django-auth-ldap finds the Django user case-insensitively: so does this check.
        holders = User.objects.filter(username__iexact=name)
        if any(_is_local(user) for user in holders):
            return None
        user: User | None = super().authenticate(request, username, password, **kwargs)
        return user

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> User | None:
        # One transaction: a login that fails after the user was saved (groups not
        # readable) leaves no user without its LDAP profile, which would look local.
        with transaction.atomic():
            user: User | None = super().authenticate_ldap_user(ldap_user, password)
            if user is not None:
                _mark(user)
        return user

    def populate_user(self, username: str) -> User | None:
        with transaction.atomic():
            user: User | None = super().populate_user(username)
            if user is not None:
                _mark(user)
        return user

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[User, bool]:
        user, built = super().get_or_build_user(username, ldap_user)
        if not built and _is_local(user):
            # Made local between authenticate's check and here: still not ours to take.
            log.warning("refused LDAP login as %s: a gwm account not from LDAP", user)
            raise PermissionDenied("not an LDAP account")
        return user, built


def _mark(user: User) -> None:
    Profile.objects.get_or_create(user=user, defaults={"source": AccountSource.LDAP})


def _unavailable(sender: type, context: str, exception: Exception, **_: Any) -> None:
    if not (isinstance(sender, type) and issubclass(sender, LdapBackend)):
        return
    if context not in _LOGIN_CONTEXTS:
        return
    log.warning("LDAP directory unavailable (%s): %r", context, exception)
    raise IdentityUnavailable(f"LDAP: {type(exception).__name__}")


ldap_error.connect(_unavailable, dispatch_uid="gwm.accounts.ldap.unavailable")
