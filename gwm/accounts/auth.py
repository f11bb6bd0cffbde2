"""Who is calling: bearer tokens (and, when configured, Keystone tokens).

What the caller may do is gwm.accounts.permissions, from the grants of
gwm.accounts.grants; the token the caller came with rides on the request's
User instance (``attach_token``) so its scope narrows those grants.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import HttpBearer

from gwm.accounts.grants import attach_token
from gwm.accounts.keystone import keystone_auth
from gwm.accounts.services.tokens import token_authenticate


class AuthedRequest(HttpRequest):
    """A request :data:`token_auth` let through; ninja sets ``auth`` to the caller.

    Handlers annotate their ``request`` with it, so ``request.auth`` is typed.
    """

    auth: User


def client_address(request: HttpRequest) -> str | None:
    """The caller's address: the connection's peer, or what a trusted proxy's
    X-Forwarded-For names (GWM_TRUSTED_PROXIES, applied by uvicorn before Django)."""
    return request.META.get("REMOTE_ADDR") or None


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        api_token = token_authenticate(token, client_address(request))
        if api_token is None:
            return None
        user = api_token.user
        attach_token(user, api_token)
        request.user = user
        return user


token_auth = TokenAuth()
# Every endpoint that needs a caller accepts either: gwm's bearer tokens, or (when
# KEYSTONE_URL is set) Keystone tokens in X-Auth-Token.
caller_auth = [token_auth, keystone_auth]


def session_user(request: HttpRequest) -> User | None:
    """The signed-in user of a session request (the admin's), as an actor; None if anonymous."""
    return request.user if isinstance(request.user, User) else None
