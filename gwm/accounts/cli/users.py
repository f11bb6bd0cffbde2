"""`gwm user ...` and `gwm group ...`: local users, service accounts, groups."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gwm.accounts.cli.shell import (
    Json,
    checked,
    command_group,
    fail,
    new_password,
    shell,
    show,
    users_named,
)

user_app = command_group("Users and service accounts.")
group_app = command_group("Groups of users (role bindings may name a group).")
USER_COLUMNS = ("username", "email", "active", "superuser", "service", "source", "groups")
GROUP_COLUMNS = ("name", "members")


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="the user name")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin's first line")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="no password: it may use tokens only")
    ] = False,
    email: Annotated[str, typer.Option(help="e-mail address")] = "",
    service: Annotated[
        bool,
        typer.Option("--service", help="a service account: no password, long-lived tokens"),
    ] = False,
    as_json: Json = False,
) -> None:
    """Create a local user (asks for a password on a terminal) or a service account."""
    if password_stdin and no_password:
        fail("give --password-stdin or --no-password, not both")
    if service and password_stdin:
        fail("a service account has no password (leave out --password-stdin)")
    if not (password_stdin or no_password or service or sys.stdin.isatty()):
        fail("give --password-stdin or --no-password (there is no terminal to ask on)")
    with shell():
        from gwm.accounts.schemas import UserIn
        from gwm.accounts.selectors import render_user
        from gwm.accounts.services.directory import user_create as create

        password = None if no_password or service else new_password()
        body = checked(UserIn, username=name, password=password, email=email, service=service)
        row = render_user(create(actor=None, **body.model_dump()))
    show(row, as_json, USER_COLUMNS)


@user_app.command("list")
def user_list(as_json: Json = False) -> None:
    """Every user: local, LDAP and Keystone ones, and service accounts."""
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.selectors import render_user

        users = User.objects.prefetch_related("groups").order_by("username")
        rows = [render_user(u) for u in users]
    show(rows, as_json, USER_COLUMNS)


@user_app.command("set-password")
def user_set_password(name: Annotated[str, typer.Argument(help="the user name")]) -> None:
    """Set a user's password, read from stdin's first line (asked twice on a terminal)."""
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.schemas import UserPatch
        from gwm.accounts.services.directory import find, user_update

        user = find(User, username=name)
        body = checked(UserPatch, password=new_password())
        user_update(user, actor=None, password=body.password)
    typer.echo(f"password of {name} set")


def _set_active(name: str, active: bool, as_json: bool) -> None:
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.selectors import render_user
        from gwm.accounts.services.directory import find, user_update

        row = render_user(user_update(find(User, username=name), actor=None, is_active=active))
    show(row, as_json, USER_COLUMNS)


@user_app.command("deactivate")
def user_deactivate(name: Annotated[str, typer.Argument()], as_json: Json = False) -> None:
    """Stop a user: its logins and tokens are refused until it is activated again."""
    _set_active(name, False, as_json)


@user_app.command("activate")
def user_activate(name: Annotated[str, typer.Argument()], as_json: Json = False) -> None:
    """Let a deactivated user (and its unexpired, unrevoked tokens) in again."""
    _set_active(name, True, as_json)


@user_app.command("delete")
def user_delete(name: Annotated[str, typer.Argument()]) -> None:
    """Delete a user, its tokens and its role bindings."""
    with shell():
        from django.contrib.auth.models import User

        from gwm.accounts.services.directory import find
        from gwm.accounts.services.directory import user_delete as delete

        delete(find(User, username=name), actor=None)
    typer.echo(f"deleted user {name}")


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="the group name")],
    member: Annotated[list[str] | None, typer.Option(help="a member (repeat for more)")] = None,
    as_json: Json = False,
) -> None:
    """Create a group, with members if given."""
    with shell():
        from gwm.accounts.schemas import UserGroupIn
        from gwm.accounts.selectors import render_group
        from gwm.accounts.services.directory import group_create as create

        body = checked(UserGroupIn, name=name, members=member or [])
        row = render_group(create(actor=None, name=body.name, members=users_named(body.members)))
    show(row, as_json, GROUP_COLUMNS)


@group_app.command("list")
def group_list(as_json: Json = False) -> None:
    """Every group and its members."""
    with shell():
        from django.contrib.auth.models import Group

        from gwm.accounts.selectors import render_group

        groups = Group.objects.prefetch_related("user_set").order_by("name")
        rows = [render_group(g) for g in groups]
    show(rows, as_json, GROUP_COLUMNS)


@group_app.command("set-members")
def group_set_members(
    name: Annotated[str, typer.Argument(help="the group name")],
    members: Annotated[
        list[str] | None, typer.Argument(metavar="USER", help="its members; none: empty it")
    ] = None,
    as_json: Json = False,
) -> None:
    """Make USER... the group's members, exactly (whoever else was in it is taken out)."""
    with shell():
        from django.contrib.auth.models import Group

        from gwm.accounts.selectors import render_group
        from gwm.accounts.services.directory import find
        from gwm.accounts.services.directory import group_set_members as set_members

        group = find(Group, name=name)
        row = render_group(set_members(group, users_named(members or []), actor=None))
    show(row, as_json, GROUP_COLUMNS)
