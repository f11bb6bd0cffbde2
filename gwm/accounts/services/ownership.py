"""Instance ownership: gwm binds ``settings.GWM_CREATOR_ROLE`` ("instance-owner"; ""
turns it off) to whoever creates an instance, at the scope of that instance, in the
create's own transaction. The binding is the system's rule, not a user's grant, so it
is written directly: the creator need not hold ``admin``. Quotas
(gwm.accounts.services.quotas) count what each subject owns through these bindings.

Bindings name instances, and a name can be used again: so what is bound to a name
must end with the instance. A create removes the creator-role bindings left on its
(free) name; ``lifecycle`` calls ``owner_forget_failed_create`` when a create
fails and ``bindings_rename_instance`` when a rename succeeds; the cache's writes
call ``bindings_forget_instances`` whenever an instance leaves it (a delete, or a
removal outside gwm).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from gwm.accounts.models import Role, RoleBinding, Scope
from gwm.accounts.services.audit import audit_record
from gwm.clusters.models import Cluster
from gwm.operations.models import Job

log = logging.getLogger(__name__)


def creator_role() -> Role | None:
    name = settings.GWM_CREATOR_ROLE
    if not name:
        return None
    role = Role.objects.filter(name=name).first()
    if role is None:
        log.warning("GWM_CREATOR_ROLE=%r names no role: creators get no binding", name)
    return role


def instance_bindings(cluster_id: int, instance: str) -> QuerySet[RoleBinding]:
    return RoleBinding.objects.filter(
        scope=Scope.INSTANCE, cluster_id=cluster_id, instance=instance
    )


def _audit_binding(
    action: str, binding: RoleBinding, *, actor: User | None, job_id: int | None, detail: str
) -> None:
    audit_record(
        action=action,
        user=actor,
        status=200,
        cluster=binding.cluster.name if binding.cluster else "",
        resource_type="role_binding",
        resource_name=str(binding.pk),
        params={
            "role": binding.role.name,
            "user": binding.user.get_username() if binding.user else None,
            "group": binding.group.name if binding.group else None,
            "scope": binding.scope,
            "instance": binding.instance,
        },
        detail=detail,
        job_id=job_id,
    )


def owner_bind(
    *, actor: User | None, cluster: Cluster, instance: str, job_id: int
) -> RoleBinding | None:
    """Bind the creator role to ``actor`` on the new ``instance`` (inside the create's
    transaction, after the name was found free).

    No instance of that name exists, so creator-role bindings on it to anyone else
    are left from an earlier instance of the name (a failed create, a removal
    outside gwm): they go, or their holders would own this one.
    """
    role = creator_role()
    if role is None or actor is None or not actor.pk:
        return None
    owners = instance_bindings(cluster.pk, instance).filter(role=role)
    for stale in owners.exclude(user=actor).select_related("role", "user", "group", "cluster"):
        _audit_binding(
            "role_binding.delete",
            stale,
            actor=None,
            job_id=job_id,
            detail=f"owner of an earlier instance named {instance}; a new one is being created",
        )
        stale.delete()
    existing = owners.filter(user=actor).first()
    if existing is not None:
        return existing
    binding = RoleBinding.objects.create(
        role=role,
        user=actor,
        scope=Scope.INSTANCE,
        cluster=cluster,
        instance=instance,
        created_by=actor,
    )
    _audit_binding(
        "role_binding.create", binding, actor=actor, job_id=job_id, detail="creator of the instance"
    )
    return binding


def owner_forget_failed_create(job: Job) -> int:
    """The create ``job`` made no instance: remove the owner binding it made (not one
    that existed before it). For ``lifecycle`` when such a job ends; returns how many."""
    role = creator_role()
    if role is None or job.user_id is None or job.cluster_id is None:
        return 0
    made = instance_bindings(job.cluster_id, job.resource_name).filter(
        role=role, user_id=job.user_id, created_by_id=job.user_id, created_at__gte=job.created_at
    )
    return _remove(made, job_id=job.pk, detail=f"the create job {job.pk} made no instance")


def bindings_forget_instances(
    cluster_id: int, instances: Iterable[str], *, job_id: int | None
) -> int:
    """``instances`` are gone (a delete gwm ran, or sync found them gone from Ganeti): every
    instance-scope binding on their names goes with them, so a later instance of such a
    name starts with no grants. Returns how many."""
    names = list(instances)
    if not names:
        return 0
    return _remove(
        RoleBinding.objects.filter(scope=Scope.INSTANCE, cluster_id=cluster_id, instance__in=names),
        job_id=job_id,
        detail="instance removed",
    )


def bindings_rename_instance(cluster_id: int, old: str, new: str, *, job_id: int | None) -> int:
    """``old`` is now called ``new``: its instance-scope bindings follow it."""
    moved = 0
    for binding in instance_bindings(cluster_id, old).select_related("role", "user", "group"):
        binding.instance = new
        binding.save(update_fields=["instance"])
        _audit_binding(
            "role_binding.update",
            binding,
            actor=None,
            job_id=job_id,
            detail=f"instance {old} renamed to {new}",
        )
        moved += 1
    return moved


def _remove(bindings: QuerySet[RoleBinding], *, job_id: int | None, detail: str) -> int:
    removed = 0
    for binding in bindings.select_related("role", "user", "group", "cluster"):
        _audit_binding("role_binding.delete", binding, actor=None, job_id=job_id, detail=detail)
        binding.delete()
        removed += 1
    return removed
