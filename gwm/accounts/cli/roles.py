"""`gwm role ...` and `gwm role-binding ...`: who may do what, and where."""

from __future__ import annotations

from typing import Annotated

import typer

from gwm.accounts.cli.shell import Json, checked, command_group, fail, shell, show

role_app = command_group("Roles: named sets of verbs.")
binding_app = command_group("Role bindings: a user or group given a role on a scope.")
ROLE_COLUMNS = ("name", "builtin", "verbs", "description")
BINDING_COLUMNS = ("id", "role", "user", "group", "scope", "cluster", "instance", "tag")


@role_app.command("list")
def role_list(as_json: Json = False) -> None:
    """Every role, built-in and custom, with its verbs."""
    with shell():
        from gwm.accounts.models import Role
        from gwm.accounts.selectors import render_role

        rows = [render_role(r) for r in Role.objects.order_by("name")]
    show(rows, as_json, ROLE_COLUMNS)


@role_app.command("create")
def role_create(
    name: Annotated[str, typer.Argument(help="lower case letters, digits, - and _")],
    verbs: Annotated[list[str], typer.Argument(metavar="VERB", help="what the role allows")],
    description: Annotated[str, typer.Option(help="what the role is for")] = "",
    as_json: Json = False,
) -> None:
    """Create a custom role holding VERB... (`gwm role list` shows the built-in ones)."""
    with shell():
        from gwm.accounts.schemas import RoleIn
        from gwm.accounts.selectors import render_role
        from gwm.accounts.services.directory import role_create as create

        body = checked(RoleIn, name=name, verbs=verbs, description=description)
        row = render_role(create(actor=None, **body.model_dump()))
    show(row, as_json, ROLE_COLUMNS)


def _scope(cluster: str | None, instance: str | None, tag: str | None) -> str:
    """The scope the options name: the narrowest thing given."""
    if instance and tag:
        fail("give --instance or --tag, not both")
    if (instance or tag) and cluster is None:
        fail("--instance and --tag need the --cluster they are on")
    if cluster is None:
        return "global"
    return "instance" if instance else "tag" if tag else "cluster"


@binding_app.command("create")
def binding_create(
    role: Annotated[str, typer.Argument(help="the role to give")],
    user: Annotated[str | None, typer.Option(help="to this user")] = None,
    group: Annotated[str | None, typer.Option(help="to this group's members")] = None,
    cluster: Annotated[str | None, typer.Option(help="on this cluster (none: everywhere)")] = None,
    instance: Annotated[str | None, typer.Option(help="on this instance of --cluster")] = None,
    tag: Annotated[str | None, typer.Option(help="on --cluster's instances tagged so")] = None,
    as_json: Json = False,
) -> None:
    """Give a user or a group ROLE: everywhere, on a cluster, an instance or tagged instances."""
    if (user is None) == (group is None):
        fail("give --user or --group (one of them)")
    scope = _scope(cluster, instance, tag)
    with shell():
        from django.contrib.auth.models import Group, User

        from gwm.accounts.models import Role
        from gwm.accounts.schemas import BindingIn
        from gwm.accounts.selectors import render_binding
        from gwm.accounts.services.directory import binding_create as create
        from gwm.accounts.services.directory import find
        from gwm.clusters.models import Cluster

        fields = {"user": user, "group": group, "cluster": cluster, "instance": instance}
        body = checked(BindingIn, role=role, scope=scope, tag=tag, **fields)
        binding = create(
            actor=None,
            role=find(Role, name=body.role),
            user=find(User, username=body.user) if body.user else None,
            group=find(Group, name=body.group) if body.group else None,
            scope=body.scope,
            cluster=find(Cluster, name=body.cluster) if body.cluster else None,
            instance=body.instance or "",
            tag=body.tag or "",
        )
        row = render_binding(binding)
    show(row, as_json, BINDING_COLUMNS)


@binding_app.command("list")
def binding_list(
    cluster: Annotated[str | None, typer.Option(help="only the bindings on this cluster")] = None,
    as_json: Json = False,
) -> None:
    """Every role binding (global ones too, unless --cluster is given)."""
    with shell():
        from gwm.accounts.models import RoleBinding
        from gwm.accounts.selectors import render_binding
        from gwm.accounts.services.directory import find
        from gwm.clusters.models import Cluster

        bindings = RoleBinding.objects.select_related("role", "user", "group", "cluster")
        if cluster is not None:
            bindings = bindings.filter(cluster=find(Cluster, name=cluster))
        rows = [render_binding(b) for b in bindings.order_by("id")]
    show(rows, as_json, BINDING_COLUMNS)


@binding_app.command("delete")
def binding_delete(binding_id: Annotated[int, typer.Argument(metavar="ID", min=1)]) -> None:
    """Delete a role binding (its ID is in `gwm role-binding list`)."""
    with shell():
        from gwm.accounts.models import RoleBinding
        from gwm.accounts.services.directory import binding_delete as delete
        from gwm.accounts.services.directory import find

        binding = find(RoleBinding, pk=binding_id)
        delete(binding, actor=None)
    typer.echo(f"deleted role binding {binding_id} ({binding})")
