"""Who is calling, and may they. The only place gwm decides permissions.

Until per-cluster role bindings exist, the rule is: any active user with a
valid token may read; staff users may change gwm's configuration (clusters).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from gwm.accounts.services import token_authenticate
from gwm.errors import Forbidden


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_token = token_authenticate(token)
        if api_token is None:
            return None
        request.user = api_token.user
        return api_token.user


token_auth = TokenAuth()


def require_staff(request: HttpRequest, action: str) -> None:
    user = request.auth  # type: ignore[attr-defined]
    if not (user.is_staff or user.is_superuser):
        raise Forbidden(f"only administrators may {action}")
