"""`gwm token create|list|revoke`: API tokens, made by the server for any user."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from gwm.accounts.cli.shell import Json, cell, checked, command_group, shell, show

if TYPE_CHECKING:
    from gwm.accounts.models import ApiToken

token_app = command_group(
    "API tokens: create one (its secret is shown once), list them, revoke one."
)
COLUMNS: tuple[str, ...] = ("id", "user", "description", "prefix", "state", "expires_at")
COLUMNS += ("last_used_at", "read_only", "clusters", "networks")


def _state(token: ApiToken) -> str:
    from django.utils import timezone

    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return "expired"
    return "active"


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="the user the token acts as")],
    description: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    days: Annotated[
        int | None,
        typer.Option(min=1, help="days until it expires (default GWM_TOKEN_DEFAULT_DAYS)"),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="reads only, whatever its user may do")
    ] = False,
    cluster: Annotated[
        list[str] | None, typer.Option(help="only on this cluster (repeat for more)")
    ] = None,
    network: Annotated[
        list[str] | None, typer.Option(help="only from this network, CIDR (repeat for more)")
    ] = None,
    as_json: Json = False,
) -> None:
    """Create an API token for USER and print it: it is shown this once only."""
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.schemas import TokenRequest
        from gwm.accounts.selectors import render_token
        from gwm.accounts.services.directory import find
        from gwm.accounts.services.tokens import token_create as create

        body = checked(
            TokenRequest,
            user=user,
            description=description,
            expires_in_days=days,
            read_only=read_only,
            clusters=cluster or [],
            networks=network or [],
        )
        token, plaintext = create(
            actor=None,
            user=find(User, username=user),
            name=body.description,
            expires_in=timedelta(days=days) if days else None,
            read_only=body.read_only,
            clusters=body.clusters,
            networks=body.networks,
        )
        shown = {**render_token(token), "token": plaintext}
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(plaintext)  # alone on stdout: TOKEN=$(gwm token create admin)
    typer.echo(
        f"token {token.pk} of {user}, expires {cell('expires_at', shown['expires_at'])} "
        "UTC; it is not shown again",
        err=True,
    )


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="only this user's tokens")] = None,
    as_json: Json = False,
) -> None:
    """Every token (revoked and expired ones too), never a secret."""
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.models import ApiToken
        from gwm.accounts.selectors import render_token
        from gwm.accounts.services.directory import find

        tokens = ApiToken.objects.select_related("user").order_by("id")
        if user is not None:
            tokens = tokens.filter(user=find(User, username=user))
        rows = [{**render_token(t), "state": _state(t)} for t in tokens]
    show(rows, as_json, COLUMNS)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(metavar="ID", min=1)]) -> None:
    """Revoke a token: it stops working on its next request."""
    with shell():
        from gwm.accounts.models import ApiToken
        from gwm.accounts.services.directory import find
        from gwm.accounts.services.tokens import token_revoke as revoke

        token = find(ApiToken, pk=token_id)
        if token.revoked_at is not None:
            typer.echo(f"token {token_id} was revoked already")
            return
        revoke(token, actor=None)
    typer.echo(f"revoked token {token_id} ({token.name}) of {token.user.get_username()}")
