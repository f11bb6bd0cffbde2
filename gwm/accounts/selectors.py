"""Reading the accounts domain as the API shows it: tokens, bindings, users, groups, roles."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models import QuerySet

from gwm.accounts.grants import Grant, Grants, token_of
from gwm.accounts.models import AccountSource, ApiToken, Profile, Role, RoleBinding
from gwm.errors import Forbidden, NotFound
from gwm.kit.http import rfc3339


def render_token(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "user": token.user.get_username(),
        "description": token.name,
        "prefix": token.prefix,
        "created_at": rfc3339(token.created_at),
        "expires_at": rfc3339(token.expires_at),
        "last_used_at": rfc3339(token.last_used_at),
        "last_used_from": token.last_used_from,
        "revoked_at": rfc3339(token.revoked_at),
        "read_only": token.read_only,
        "clusters": list(token.clusters),
        "networks": list(token.networks),
    }


def render_binding(binding: RoleBinding) -> dict[str, Any]:
    return {
        "id": binding.pk,
        "role": binding.role.name,
        "user": binding.user.get_username() if binding.user else None,
        "group": binding.group.name if binding.group else None,
        "scope": binding.scope,
        "cluster": binding.cluster.name if binding.cluster else None,
        "instance": binding.instance or None,
        "tag": binding.tag or None,
        "created_at": rfc3339(binding.created_at),
    }


def _profile(user: User) -> Profile:
    return Profile.objects.filter(user=user).first() or Profile(user=user)


def render_user(user: User) -> dict[str, Any]:
    profile = _profile(user)
    return {
        "username": user.get_username(),
        "email": user.email,
        "active": user.is_active,
        "superuser": user.is_superuser,
        "service": profile.service,
        "source": profile.source or AccountSource.LOCAL,
        "groups": sorted(g.name for g in user.groups.all()),
    }


def render_group(group: Group) -> dict[str, Any]:
    return {"name": group.name, "members": sorted(u.username for u in group.user_set.all())}


def render_role(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "description": role.description,
        "verbs": list(role.verbs),
        "builtin": role.builtin,
    }


def tokens_visible(user: User, owner: str | None) -> QuerySet[ApiToken]:
    """The caller's tokens; a global admin's choice of anyone's (``owner``, or everyone's)."""
    tokens = ApiToken.objects.select_related("user")
    admin = Grants.of(user).grant_for("admin", None) is not None
    if owner is not None and owner != user.get_username() and not admin:
        raise Forbidden("only global administrators see other users' tokens", verb="admin")
    if owner is not None:
        return tokens.filter(user__username=owner)
    return tokens if admin else tokens.filter(user=user)


def token_visible(user: User, token_id: int) -> ApiToken:
    token = tokens_visible(user, None).filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def binding_of(grant: Grant) -> dict[str, Any] | None:
    if grant.binding_id is None:
        return None
    binding = RoleBinding.objects.select_related("role", "user", "group", "cluster").get(
        pk=grant.binding_id
    )
    return render_binding(binding)


def me(user: User) -> dict[str, Any]:
    profile = _profile(user)
    token = token_of(user)
    bindings = RoleBinding.objects.filter(user=user) | RoleBinding.objects.filter(group__user=user)
    return {
        "username": user.get_username(),
        "superuser": user.is_superuser,
        "service": profile.service,
        "source": profile.source or AccountSource.LOCAL,
        "groups": sorted(g.name for g in user.groups.all()),
        "bindings": [
            render_binding(b)
            for b in bindings.select_related("role", "user", "group", "cluster").distinct()
        ],
        "token": render_token(token) if token is not None else None,
    }
