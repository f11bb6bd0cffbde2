"""/auth/tokens: log in for a token, list your tokens, revoke one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth, client_address, token_auth
from gwm.accounts.grants import token_of
from gwm.accounts.schemas import TokenCreated, TokenOut, TokenPage, TokenRequest
from gwm.accounts.selectors import render_token, token_visible, tokens_visible
from gwm.accounts.services.directory import find, require_global_admin
from gwm.accounts.services.login import password_login
from gwm.accounts.services.tokens import token_create, token_revoke
from gwm.errors import Unauthorized, ValidationFailed
from gwm.kit.pagination import INT_MAX
from gwm.schemas import Problem

router = Router()
TokenId = param.Path(..., ge=1, le=INT_MAX)


@router.post(
    "/auth/tokens",
    response={
        201: TokenCreated,
        400: Problem,
        401: Problem,
        403: Problem,
        404: Problem,
        422: Problem,
        429: Problem,
        503: Problem,
    },
    auth=None,
    summary="Get a token: log in with a user name and password, or make one with a token",
    description=(
        "With `username` and `password` (no bearer token needed): a login. Failed logins are "
        "throttled per user and per address (429 with `Retry-After`); 503 when the user's "
        "directory (LDAP) cannot be reached. With a bearer token and `user`: a new token for "
        "yourself, or, for global admins, for anyone (service accounts), never wider than the "
        "token you ask with (its limits and expiry are kept; asking for more is 422). The "
        "token is in this answer only; gwm keeps a keyed hash of it."
    ),
    operation_id="gwm_accounts_api_create_token",
)
def create_token(request: HttpRequest, body: TokenRequest) -> Status[dict[str, Any]]:
    expires_in = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    address = client_address(request) or "0.0.0.0"
    if body.username is not None or body.password is not None:
        if body.username is None or body.password is None or body.user is not None:
            raise ValidationFailed("a login gives username and password (and no user)")
        token, plaintext = password_login(
            username=body.username,
            password=body.password,
            address=address,
            name=body.description or "login",
            expires_in=expires_in,
            read_only=body.read_only,
            clusters=body.clusters,
            networks=body.networks,
        )
        return Status(201, {**render_token(token), "token": plaintext})
    actor = _bearer(request)
    owner = actor if body.user in (None, actor.get_username()) else None
    if owner is None:
        require_global_admin(actor, "make tokens for other users")
        owner = find(User, username=body.user)
    token, plaintext = token_create(
        actor=actor,
        user=owner,
        name=body.description or "api",
        expires_in=expires_in,
        address=address,
        read_only=body.read_only,
        clusters=body.clusters,
        networks=body.networks,
        parent=token_of(actor),
    )
    return Status(201, {**render_token(token), "token": plaintext})


def _bearer(request: HttpRequest) -> User:
    user = token_auth(request)
    if not isinstance(user, User):
        raise Unauthorized(
            "give username and password, or a valid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


@router.get(
    "/auth/tokens",
    response={200: TokenPage, 400: Problem, 401: Problem, 403: Problem},
    auth=caller_auth,
    summary="Your tokens (global admins: anyone's, or `?user=`)",
    operation_id="gwm_accounts_api_list_tokens",
)
def list_tokens(request: AuthedRequest, user: str | None = None) -> dict[str, Any]:
    tokens = tokens_visible(request.auth, user)[:1000]
    return {"items": [render_token(t) for t in tokens]}


@router.get(
    "/auth/tokens/{token_id}",
    response={200: TokenOut, 401: Problem, 404: Problem},
    auth=caller_auth,
    summary="One of your tokens (never its secret)",
    operation_id="gwm_accounts_api_get_token",
)
def get_token(request: AuthedRequest, token_id: int = TokenId) -> dict[str, Any]:
    return render_token(token_visible(request.auth, token_id))


@router.delete(
    "/auth/tokens/{token_id}",
    response={204: None, 401: Problem, 403: Problem, 404: Problem},
    auth=caller_auth,
    summary="Revoke a token; it stops working on the next request",
    operation_id="gwm_accounts_api_revoke_token",
)
def revoke_token(request: AuthedRequest, token_id: int = TokenId) -> Status[None]:
    token = token_visible(request.auth, token_id)
    token_revoke(token, actor=request.auth, address=client_address(request))
    return Status(204, None)
