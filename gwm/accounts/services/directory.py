"""Users, groups, roles and role bindings, changed through the API or the server command.

No escalation: nobody makes a role or a binding that grants more than they hold.
A binding needs ``admin`` at its scope and every verb of its role there; a role
needs ``admin`` somewhere and all its verbs there. Users and groups are a
global admin's. Every change is audited in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction

from gwm.accounts.grants import Grants
from gwm.accounts.models import AccountSource, Profile, Role, RoleBinding, Scope
from gwm.accounts.services.audit import audit_record
from gwm.accounts.verbs import VERBS
from gwm.clusters.models import Cluster, Instance
from gwm.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gwm.events.notify import GRANTS_CHANNEL, publish_on_commit


def _audit(actor: User | None, action: str, kind: str, name: str, **params: Any) -> None:
    """Every directory write: its audit row, and (after commit) open streams re-read grants."""
    publish_on_commit(GRANTS_CHANNEL)
    audit_record(
        action=action,
        user=actor,
        status=200,
        resource_type=kind,
        resource_name=name,
        params=params,
        cluster=str(params.get("cluster") or ""),
    )


def require_global_admin(actor: User | None, what: str) -> None:
    """``actor`` None is the server's own shell, which may do anything."""
    if actor is not None and Grants.of(actor).grant_for("admin", None) is None:
        raise Forbidden(f"only global administrators may {what}", verb="admin")


# -- users and groups ------------------------------------------------------------------


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None = None,
    email: str = "",
    service: bool = False,
) -> User:
    """A local user (``password`` None: cannot log in with one) or a service account."""
    require_global_admin(actor, "create users")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"a user named {username!r} exists", code="user_exists")
    user = User.objects.create_user(username, email, password)
    Profile.objects.create(user=user, source=AccountSource.LOCAL, service=service)
    _audit(actor, "user.create", "user", username, service=service, email=email)
    return user


@transaction.atomic
def user_update(
    user: User,
    *,
    actor: User | None,
    password: str | None = None,
    is_active: bool | None = None,
    email: str | None = None,
) -> User:
    require_global_admin(actor, "change users")
    if password is not None:
        user.set_password(password)
    if is_active is not None:
        user.is_active = is_active
    if email is not None:
        user.email = email
    user.save()
    changed = {"password": password, "is_active": is_active, "email": email}
    _audit(
        actor,
        "user.update",
        "user",
        user.username,
        **{k: v for k, v in changed.items() if v is not None},
    )
    return user


@transaction.atomic
def user_delete(user: User, *, actor: User | None) -> None:
    require_global_admin(actor, "delete users")
    if actor is not None and actor.pk == user.pk:
        raise Conflict("you may not delete yourself", code="self_delete")
    _audit(actor, "user.delete", "user", user.username)
    user.delete()


@transaction.atomic
def group_create(*, actor: User | None, name: str, members: Sequence[User] = ()) -> Group:
    require_global_admin(actor, "create groups")
    try:
        with transaction.atomic():
            group = Group.objects.create(name=name)
    except IntegrityError:
        raise Conflict(f"a group named {name!r} exists", code="group_exists") from None
    group.user_set.set(members)
    _audit(actor, "group.create", "group", name, members=sorted(u.username for u in members))
    return group


@transaction.atomic
def group_set_members(group: Group, members: Sequence[User], *, actor: User | None) -> Group:
    require_global_admin(actor, "change groups")
    group.user_set.set(members)
    _audit(actor, "group.update", "group", group.name, members=sorted(u.username for u in members))
    return group


@transaction.atomic
def group_delete(group: Group, *, actor: User | None) -> None:
    require_global_admin(actor, "delete groups")
    _audit(actor, "group.delete", "group", group.name)
    group.delete()


# -- roles -----------------------------------------------------------------------------


def _admin_scopes_holding(actor: User, verbs: set[str]) -> bool:
    """Whether ``actor`` is admin at some scope where it also holds all of ``verbs``."""
    grants = Grants.of(actor)
    if grants.read_only:
        return False
    if grants.grant_for("admin", None) is not None:
        return verbs <= grants.verbs_at(None)
    for grant in grants.grants:
        if "admin" not in grant.verbs or grant.cluster_id is None:
            continue
        instance = grant.instance or None
        tags = [grant.tag] if grant.tag else []
        if verbs <= grants.verbs_at(grant.cluster_id, instance, tags):
            return True
    return False


@transaction.atomic
def role_create(
    *, actor: User | None, name: str, verbs: Sequence[str], description: str = ""
) -> Role:
    unknown = sorted(set(verbs) - set(VERBS))
    if unknown:
        raise ValidationFailed(
            f"unknown verbs: {', '.join(unknown)}", code="unknown_verb", known=sorted(VERBS)
        )
    if not verbs:
        raise ValidationFailed("a role needs at least one verb", code="no_verbs")
    if actor is not None and not _admin_scopes_holding(actor, set(verbs)):
        raise Forbidden(
            "a role may only hold verbs you hold, where you are an admin",
            code="escalation",
            verb="admin",
        )
    if Role.objects.filter(name=name).exists():
        raise Conflict(f"a role named {name!r} exists", code="role_exists")
    role = Role.objects.create(name=name, verbs=sorted(set(verbs)), description=description)
    _audit(actor, "role.create", "role", name, verbs=role.verbs)
    return role


@transaction.atomic
def role_delete(role: Role, *, actor: User | None) -> None:
    if role.builtin:
        raise Conflict(f"{role.name} is a built-in role", code="builtin_role")
    require_global_admin(actor, "delete roles")
    if role.bindings.exists():
        raise Conflict(
            f"role {role.name} is still bound; delete its bindings first", code="role_in_use"
        )
    _audit(actor, "role.delete", "role", role.name)
    role.delete()


# -- bindings --------------------------------------------------------------------------


def _scope_point(
    scope: str, cluster: Cluster | None, instance: str, tag: str
) -> tuple[int | None, str | None, list[str]]:
    """Where a binding applies, as (cluster id, instance name, tags) for Grants.grant_for.

    A tag binding may match any instance of its cluster, so granting one needs what a
    cluster binding would.
    """
    if scope == Scope.GLOBAL:
        return None, None, []
    assert cluster is not None
    if scope == Scope.INSTANCE:
        row = Instance.objects.filter(cluster=cluster, name=instance).first()
        return cluster.pk, instance, list(row.tags) if row else []
    return cluster.pk, None, []


def _check_shape(scope: str, cluster: Cluster | None, instance: str, tag: str) -> None:
    needs = {
        Scope.GLOBAL: (False, False, False),
        Scope.CLUSTER: (True, False, False),
        Scope.INSTANCE: (True, True, False),
        Scope.TAG: (True, False, True),
    }[Scope(scope)]
    if (cluster is not None, bool(instance), bool(tag)) != needs:
        raise ValidationFailed(
            f"a {scope} binding takes "
            + (
                ", ".join(
                    n for n, need in zip(("cluster", "instance", "tag"), needs, strict=True) if need
                )
                or "no cluster, instance or tag"
            ),
            code="bad_scope",
        )


def _require_admin_at(
    actor: User | None, scope: str, point: tuple[int | None, str | None, list[str]], what: str
) -> Grants | None:
    if actor is None:
        return None
    grants = Grants.of(actor)
    if grants.grant_for("admin", point[0], point[1], point[2]) is None:
        raise Forbidden(f"you are not an admin of {what}", verb="admin")
    return grants


def _describe(scope: str, cluster: Cluster | None, instance: str, tag: str) -> str:
    if scope == Scope.GLOBAL:
        return "every cluster"
    assert cluster is not None
    if scope == Scope.INSTANCE:
        return f"instance {instance} on cluster {cluster.name}"
    if scope == Scope.TAG:
        return f"instances tagged {tag} on cluster {cluster.name}"
    return f"cluster {cluster.name}"


@transaction.atomic
def binding_create(
    *,
    actor: User | None,
    role: Role,
    user: User | None = None,
    group: Group | None = None,
    scope: str,
    cluster: Cluster | None = None,
    instance: str = "",
    tag: str = "",
) -> RoleBinding:
    if (user is None) == (group is None):
        raise ValidationFailed("a binding names a user or a group", code="bad_subject")
    _check_shape(scope, cluster, instance, tag)
    point = _scope_point(scope, cluster, instance, tag)
    where = _describe(scope, cluster, instance, tag)
    grants = _require_admin_at(actor, scope, point, where)
    if grants is not None:
        missing = sorted(set(role.verbs) - grants.verbs_at(*point))
        if missing:
            raise Forbidden(
                f"role {role.name} grants {', '.join(missing)}, which you do not hold on {where}",
                code="escalation",
                verb=missing[0],
            )
    binding = RoleBinding.objects.create(
        role=role,
        user=user,
        group=group,
        scope=scope,
        cluster=cluster,
        instance=instance,
        tag=tag,
        created_by=actor,
    )
    _audit(
        actor,
        "role_binding.create",
        "role_binding",
        str(binding.pk),
        role=role.name,
        user=user.username if user else None,
        group=group.name if group else None,
        scope=scope,
        cluster=cluster.name if cluster else None,
        instance=instance,
        tag=tag,
    )
    return binding


@transaction.atomic
def binding_delete(binding: RoleBinding, *, actor: User | None) -> None:
    point = _scope_point(binding.scope, binding.cluster, binding.instance, binding.tag)
    _require_admin_at(
        actor,
        binding.scope,
        point,
        _describe(binding.scope, binding.cluster, binding.instance, binding.tag),
    )
    _audit(
        actor,
        "role_binding.delete",
        "role_binding",
        str(binding.pk),
        role=binding.role.name,
        scope=binding.scope,
        cluster=binding.cluster.name if binding.cluster else None,
    )
    binding.delete()


def bindings_administered(actor: User) -> Any:
    """The bindings ``actor`` may see and manage: on the scopes where they are admin, and theirs."""
    from django.db.models import Q

    grants = Grants.of(actor)
    if grants.everywhere("admin"):
        return RoleBinding.objects.select_related("role", "user", "group", "cluster")
    ids = grants.cluster_ids("admin") or set()
    where = Q(cluster_id__in=ids) | Q(user=actor) | Q(group__user=actor)
    names, _ = grants.instance_refs("admin")
    for cluster_id, named in names.items():
        where |= Q(cluster_id=cluster_id, scope=Scope.INSTANCE, instance__in=named)
    return (
        RoleBinding.objects.filter(where)
        .select_related("role", "user", "group", "cluster")
        .distinct()
    )


def find(model: Any, **lookup: Any) -> Any:
    found = model.objects.filter(**lookup).first()
    if found is None:
        raise NotFound(f"no {model._meta.verbose_name} {next(iter(lookup.values()))!r}")
    return found
