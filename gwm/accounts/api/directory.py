"""/users, /groups, /roles and /role-bindings: who exists and who may do what.

Users and groups are managed by global admins; anyone who is an admin somewhere
may list them (to bind them). Roles and bindings follow the no-escalation rules
of gwm.accounts.services.directory.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.accounts.grants import Grants
from gwm.accounts.models import Role
from gwm.accounts.schemas import (
    BindingIn,
    BindingOut,
    BindingPage,
    RoleIn,
    RoleOut,
    RolePage,
    UserGroupIn,
    UserGroupOut,
    UserGroupPage,
    UserGroupPatch,
    UserIn,
    UserOut,
    UserPage,
    UserPatch,
)
from gwm.accounts.selectors import render_binding, render_group, render_role, render_user
from gwm.accounts.services import directory
from gwm.accounts.verbs import VERBS
from gwm.clusters.models import Cluster
from gwm.errors import Forbidden, NotFound
from gwm.kit.pagination import INT_MAX
from gwm.schemas import Problem

router = Router(auth=caller_auth)
LISTED = 10000  # users and groups are listed whole, up to this many
ONE = {401: Problem, 403: Problem, 404: Problem}
CHANGE = {400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem}
BindingId = param.Path(..., ge=1, le=INT_MAX)


def _some_admin(user: User) -> None:
    grants = Grants.of(user)
    if not (grants.superuser or any("admin" in g.verbs for g in grants.grants)) or grants.read_only:
        raise Forbidden("only administrators list users and groups", verb="admin")


def _users(names: list[str]) -> list[User]:
    found = {u.username: u for u in User.objects.filter(username__in=names)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise NotFound(f"no user {', '.join(missing)}")
    return [found[n] for n in names]


@router.get(
    "/users",
    response={200: UserPage, 401: Problem, 403: Problem},
    summary="Users",
    operation_id="gwm_accounts_api_list_users",
)
def list_users(request: AuthedRequest) -> dict[str, Any]:
    _some_admin(request.auth)
    users = User.objects.prefetch_related("groups").order_by("username")[:LISTED]
    return {"items": [render_user(u) for u in users]}


@router.post(
    "/users",
    response={201: UserOut, **CHANGE},
    summary="Create a user or service account",
    operation_id="gwm_accounts_api_create_user",
)
def create_user(request: AuthedRequest, body: UserIn) -> Status[dict[str, Any]]:
    user = directory.user_create(actor=request.auth, **body.model_dump())
    return Status(201, render_user(user))


@router.get(
    "/users/{username}",
    response={200: UserOut, **ONE},
    summary="A user",
    operation_id="gwm_accounts_api_get_user",
)
def get_user(request: AuthedRequest, username: str) -> dict[str, Any]:
    if username != request.auth.get_username():
        _some_admin(request.auth)
    return render_user(directory.find(User, username=username))


@router.patch(
    "/users/{username}",
    response={200: UserOut, **CHANGE},
    summary="Change a user's password, e-mail or whether it is active",
    operation_id="gwm_accounts_api_update_user",
)
def update_user(request: AuthedRequest, username: str, body: UserPatch) -> dict[str, Any]:
    user = directory.find(User, username=username)
    changes = body.model_dump(exclude_unset=True)
    user = directory.user_update(
        user,
        actor=request.auth,
        password=changes.get("password"),
        is_active=changes.get("active"),
        email=changes.get("email"),
    )
    return render_user(user)


@router.delete(
    "/users/{username}",
    response={204: None, **CHANGE},
    summary="Delete a user",
    operation_id="gwm_accounts_api_delete_user",
)
def delete_user(request: AuthedRequest, username: str) -> Status[None]:
    directory.user_delete(directory.find(User, username=username), actor=request.auth)
    return Status(204, None)


@router.get(
    "/groups",
    response={200: UserGroupPage, 401: Problem, 403: Problem},
    summary="Groups",
    operation_id="gwm_accounts_api_list_groups",
)
def list_groups(request: AuthedRequest) -> dict[str, Any]:
    _some_admin(request.auth)
    groups = Group.objects.prefetch_related("user_set").order_by("name")[:LISTED]
    return {"items": [render_group(g) for g in groups]}


@router.post(
    "/groups",
    response={201: UserGroupOut, **CHANGE},
    summary="Create a group",
    operation_id="gwm_accounts_api_create_group",
)
def create_group(request: AuthedRequest, body: UserGroupIn) -> Status[dict[str, Any]]:
    group = directory.group_create(actor=request.auth, name=body.name, members=_users(body.members))
    return Status(201, render_group(group))


@router.get(
    "/groups/{name}",
    response={200: UserGroupOut, **ONE},
    summary="A group",
    operation_id="gwm_accounts_api_get_group",
)
def get_group(request: AuthedRequest, name: str) -> dict[str, Any]:
    _some_admin(request.auth)
    return render_group(directory.find(Group, name=name))


@router.patch(
    "/groups/{name}",
    response={200: UserGroupOut, **CHANGE},
    summary="Set a group's members",
    operation_id="gwm_accounts_api_update_group",
)
def update_group(request: AuthedRequest, name: str, body: UserGroupPatch) -> dict[str, Any]:
    group = directory.find(Group, name=name)
    return render_group(
        directory.group_set_members(group, _users(body.members), actor=request.auth)
    )


@router.delete(
    "/groups/{name}",
    response={204: None, **CHANGE},
    summary="Delete a group",
    operation_id="gwm_accounts_api_delete_group",
)
def delete_group(request: AuthedRequest, name: str) -> Status[None]:
    directory.group_delete(directory.find(Group, name=name), actor=request.auth)
    return Status(204, None)


@router.get(
    "/roles",
    response={200: RolePage, 401: Problem},
    summary="Roles, and every verb",
    operation_id="gwm_accounts_api_list_roles",
)
def list_roles(request: AuthedRequest) -> dict[str, Any]:
    return {"items": [render_role(r) for r in Role.objects.all()], "verbs": VERBS}


@router.post(
    "/roles",
    response={201: RoleOut, **CHANGE},
    summary="Create a custom role",
    operation_id="gwm_accounts_api_create_role",
)
def create_role(request: AuthedRequest, body: RoleIn) -> Status[dict[str, Any]]:
    role = directory.role_create(actor=request.auth, **body.model_dump())
    return Status(201, render_role(role))


@router.delete(
    "/roles/{name}",
    response={204: None, **CHANGE},
    summary="Delete a custom role",
    operation_id="gwm_accounts_api_delete_role",
)
def delete_role(request: AuthedRequest, name: str) -> Status[None]:
    directory.role_delete(directory.find(Role, name=name), actor=request.auth)
    return Status(204, None)


@router.get(
    "/role-bindings",
    response={200: BindingPage, 401: Problem},
    summary="Role bindings: yours, and those on the scopes you administer",
    operation_id="gwm_accounts_api_list_bindings",
)
def list_bindings(request: AuthedRequest, cluster: str | None = None) -> dict[str, Any]:
    bindings = directory.bindings_administered(request.auth)
    if cluster is not None:
        bindings = bindings.filter(cluster__name=cluster)
    return {"items": [render_binding(b) for b in bindings[:LISTED]]}


@router.post(
    "/role-bindings",
    response={201: BindingOut, **CHANGE},
    summary="Bind a user or group to a role at a scope",
    description="You must be an admin of the scope and hold every verb of the role there.",
    operation_id="gwm_accounts_api_create_binding",
)
def create_binding(request: AuthedRequest, body: BindingIn) -> Status[dict[str, Any]]:
    cluster = None
    if body.cluster is not None:
        cluster = directory.find(Cluster, name=body.cluster)
        visible = Grants.of(request.auth).visible_cluster_ids()
        if visible is not None and cluster.pk not in visible:
            raise NotFound(f"no cluster named {body.cluster!r}")
    binding = directory.binding_create(
        actor=request.auth,
        role=directory.find(Role, name=body.role),
        user=directory.find(User, username=body.user) if body.user else None,
        group=directory.find(Group, name=body.group) if body.group else None,
        scope=body.scope,
        cluster=cluster,
        instance=body.instance or "",
        tag=body.tag or "",
    )
    return Status(201, render_binding(binding))


@router.delete(
    "/role-bindings/{binding_id}",
    response={204: None, **CHANGE},
    summary="Remove a role binding",
    operation_id="gwm_accounts_api_delete_binding",
)
def delete_binding(request: AuthedRequest, binding_id: int = BindingId) -> Status[None]:
    binding = directory.bindings_administered(request.auth).filter(pk=binding_id).first()
    if binding is None:
        raise NotFound(f"no role binding {binding_id}")
    directory.binding_delete(binding, actor=request.auth)
    return Status(204, None)
