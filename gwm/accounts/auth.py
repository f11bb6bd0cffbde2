"""Who is calling: bearer tokens. What the caller may do is gwm.accounts.permissions."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import HttpBearer

from gwm.accounts.services import token_authenticate


class AuthedRequest(HttpRequest):
    """A request :data:`token_auth` let through; ninja sets ``auth`` to the caller.

    Handlers annotate their ``request`` with it, so ``request.auth`` is typed.
    """

    auth: User


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        request.user = api_token.user
        return api_token.user


token_auth = TokenAuth()


def session_user(request: HttpRequest) -> User | None:
    """The signed-in user of a session request (the admin's), as an actor; None if anonymous."""
    return request.user if isinstance(request.user, User) else None
