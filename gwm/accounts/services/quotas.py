"""Quotas: what a user, or a group, may hold on one cluster; None is no limit.

What a user uses on a cluster is the instances there it owns: those bound to it
with the creator role (gwm.accounts.services.ownership). A group uses the
instances bound to the group or to any of its members. Instances being created
(PROVISIONING placeholders) count, with the sizes their create asked for; sizes a
create leaves to Ganeti are the cluster's default beparams (its stored /2/info),
or Ganeti's own defaults. Disks count their logical size. A request must fit every
quota that applies: the user's own and each of its groups'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Q, QuerySet

from gwm.accounts.models import Quota, RoleBinding, Scope
from gwm.accounts.services.audit import audit_record
from gwm.accounts.services.ownership import creator_role, instance_bindings
from gwm.clusters.models import Cluster, Instance
from gwm.errors import Conflict, ValidationFailed
from gwm.operations.models import Job

RESOURCES = ("instances", "vcpus", "memory_mb", "disk_mb")
# Ganeti's own defaults, for a cluster whose /2/info gwm has not stored (yet).
GANETI_VCPUS = 1
GANETI_MAXMEM_MB = 128
_UNITS = {"": 1, "m": 1, "g": 1024, "t": 1024 * 1024}
_SIZE = re.compile(r"^\s*(\d+)\s*([mgt]?)b?\s*$", re.IGNORECASE)


class QuotaExceeded(Conflict):
    code = "quota_exceeded"
    title = "Quota exceeded"


@dataclass(frozen=True)
class Usage:
    instances: int = 0
    vcpus: int = 0
    memory_mb: int = 0
    disk_mb: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def as_dict(self) -> dict[str, int]:
        return dict(zip(RESOURCES, astuple(self), strict=True))


# -- sizes ------------------------------------------------------------------------------


def _mib(value: Any, what: str) -> int:
    """A size as Ganeti takes it (MiB, or a string with an M/G/T unit), in MiB."""
    if isinstance(value, bool):
        raise ValidationFailed(f"{what} is not a size: {value!r}", code="bad_size")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationFailed(f"{what} is not a size: {value!r}", code="bad_size")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _count(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValidationFailed(f"{what} is not a number: {value!r}", code="bad_size")


def be_defaults(cluster: Cluster) -> tuple[int, int]:
    """The cluster's default vcpus and maxmem (from its stored /2/info)."""
    default = ((cluster.info or {}).get("beparams") or {}).get("default") or {}
    vcpus = _count(default.get("vcpus", GANETI_VCPUS), "the cluster's default vcpus")
    memory = default.get("maxmem", default.get("memory", GANETI_MAXMEM_MB))
    return vcpus, _mib(memory, "the cluster's default maxmem")


def _be(beparams: Mapping[str, Any], defaults: tuple[int, int]) -> tuple[int, int]:
    vcpus = _count(beparams["vcpus"], "beparams.vcpus") if "vcpus" in beparams else defaults[0]
    memory = beparams.get("maxmem", beparams.get("memory"))
    return vcpus, _mib(memory, "beparams.maxmem") if memory is not None else defaults[1]


def _disks_mb(disks: Iterable[Any]) -> int:
    return sum(
        _mib(d["size"], "a disk's size") for d in disks if isinstance(d, dict) and d.get("size")
    )


def create_size(cluster: Cluster, params: Mapping[str, Any]) -> Usage:
    """What a create (its body's parameters) will use."""
    vcpus, memory = _be(params.get("beparams") or {}, be_defaults(cluster))
    return Usage(1, vcpus, memory, _disks_mb(params.get("disks") or []))


def instance_size(
    row: Instance, defaults: tuple[int, int], asked: Mapping[str, Any] | None = None
) -> Usage:
    """What ``row`` uses: Ganeti's answer, or for a placeholder what its create asked
    (``asked``: the create job's parameters)."""
    vcpus, memory = _be(row.beparams or {}, defaults)
    if row.vcpus is not None:
        vcpus = row.vcpus
    if row.memory is not None:
        memory = row.memory
    disks = row.disks or (asked or {}).get("disks") or []
    return Usage(1, vcpus, memory, _disks_mb(disks))


def modify_delta(cluster: Cluster, row: Instance, action: str, params: Mapping[str, Any]) -> Usage:
    """How much more ``row`` uses after ``action`` ("modify" or "grow-disk")."""
    now = instance_size(row, be_defaults(cluster))
    if action == "grow-disk":
        index = _count(params.get("disk", 0), "disk")
        amount = _mib(params.get("amount", 0), "amount")
        if params.get("absolute"):
            sizes = [d.get("size") for d in row.disks or [] if isinstance(d, dict)]
            current = sizes[index] if index < len(sizes) and sizes[index] else 0
            amount -= _mib(current, "the disk's size")
        return Usage(disk_mb=amount)
    beparams = params.get("beparams") or {}
    vcpus = _count(beparams["vcpus"], "beparams.vcpus") - now.vcpus if "vcpus" in beparams else 0
    new_memory = beparams.get("maxmem", beparams.get("memory"))
    memory = _mib(new_memory, "beparams.maxmem") - now.memory_mb if new_memory is not None else 0
    added = 0
    for change in params.get("disks") or []:
        # Ganeti's forms: ["add", {...}] and ["add", index, {...}].
        if isinstance(change, list | tuple) and change and change[0] == "add":
            added += _disks_mb([change[-1]])
    return Usage(vcpus=vcpus, memory_mb=memory, disk_mb=added)


# -- usage and the check ----------------------------------------------------------------


def subject_of(quota: Quota) -> str:
    if quota.user is not None:
        return f"user:{quota.user.get_username()}"
    assert quota.group is not None
    return f"group:{quota.group.name}"


def owned_instances(
    cluster: Cluster, *, user: User | None = None, group: Group | None = None
) -> QuerySet[Instance]:
    """The instances of ``cluster`` owned by ``user`` (bound the creator role on them), or
    by ``group`` (bound to the group itself or to any of its members)."""
    role = creator_role()
    if role is None:
        return Instance.objects.none()
    bindings = RoleBinding.objects.filter(role=role, scope=Scope.INSTANCE, cluster=cluster)
    if user is not None:
        bindings = bindings.filter(user=user)
    else:
        bindings = bindings.filter(Q(group=group) | Q(user__groups=group))
    return Instance.objects.filter(cluster=cluster, name__in=bindings.values("instance"))


def usage(cluster: Cluster, *, user: User | None = None, group: Group | None = None) -> Usage:
    """What ``user`` or ``group`` uses on ``cluster`` now."""
    rows = list(owned_instances(cluster, user=user, group=group))
    placeholders = [r.held_by_job for r in rows if r.serial_no is None and r.held_by_job]
    asked = dict(Job.objects.filter(pk__in=placeholders).values_list("pk", "params"))
    defaults = be_defaults(cluster)
    total = Usage()
    for row in rows:
        total += instance_size(row, defaults, asked.get(row.held_by_job or 0))
    return total


def quotas_of(user: User, cluster: Cluster | None = None) -> QuerySet[Quota]:
    """The quotas that apply to ``user``: its own and its groups' (on ``cluster``)."""
    quotas = Quota.objects.filter(Q(user=user) | Q(group__user=user)).distinct()
    if cluster is not None:
        quotas = quotas.filter(cluster=cluster)
    return quotas.select_related("user", "group", "cluster").order_by(
        "cluster__name", "group_id", "id"
    )


def _owners_quotas(cluster: Cluster, instance: str) -> list[Quota]:
    role = creator_role()
    if role is None:
        return []
    owners = instance_bindings(cluster.pk, instance).filter(role=role)
    users = owners.exclude(user=None).values("user_id")
    groups = owners.exclude(group=None).values("group_id")
    where = Q(user_id__in=users) | Q(group_id__in=groups) | Q(group__user__in=users)
    found = Quota.objects.filter(where, cluster=cluster).distinct()
    return list(found.select_related("user", "group").order_by("group_id", "id"))


def _applying(actor: User | None, cluster: Cluster, instance: str) -> list[Quota]:
    if instance:
        return _owners_quotas(cluster, instance)
    if actor is not None and actor.pk:
        return list(quotas_of(actor, cluster))
    return []


def quota_check(
    *,
    actor: User | None,
    cluster: Cluster,
    add_instances: int = 0,
    add_vcpus: int = 0,
    add_memory_mb: int = 0,
    add_disk_mb: int = 0,
    instance: str = "",
    quotas: list[Quota] | None = None,
) -> None:
    """409 ``quota_exceeded`` unless the request fits every quota that applies.

    A create counts against ``actor`` (who will own it) and its groups; a change of
    an existing ``instance`` against that instance's owners, whoever asks for it.
    Call it inside the write's transaction, after the cluster row is locked, so two
    requests read each other's usage in turn. A request that adds nothing always fits
    (so one that shrinks an instance passes even above a lowered quota).
    """
    if quotas is None:
        quotas = _applying(actor, cluster, instance)
    requested = Usage(add_instances, add_vcpus, add_memory_mb, add_disk_mb).as_dict()
    if not quotas or not any(v > 0 for v in requested.values()):
        return
    for quota in quotas:
        used = usage(cluster, user=quota.user, group=quota.group).as_dict()
        for resource in RESOURCES:
            allowed = getattr(quota, resource)
            asked = requested[resource]
            if allowed is None or asked <= 0 or used[resource] + asked <= allowed:
                continue
            subject = subject_of(quota)
            raise QuotaExceeded(
                f"the quota of {subject.replace(':', ' ')} on cluster {cluster.name} allows "
                f"{allowed} {resource}; {used[resource]} are used and {asked} more were asked for",
                quota={
                    "subject": subject,
                    "cluster": cluster.name,
                    "resource": resource,
                    "used": used[resource],
                    "requested": asked,
                    "allowed": allowed,
                },
            )


def quota_check_create(*, actor: User | None, cluster: Cluster, params: Mapping[str, Any]) -> None:
    """``quota_check`` for a create with these parameters (sized only when a quota applies)."""
    quotas = _applying(actor, cluster, "")
    if quotas:
        size = create_size(cluster, params)
        quota_check(
            actor=actor,
            cluster=cluster,
            add_instances=size.instances,
            add_vcpus=size.vcpus,
            add_memory_mb=size.memory_mb,
            add_disk_mb=size.disk_mb,
            quotas=quotas,
        )


def quota_check_change(
    *, actor: User | None, cluster: Cluster, row: Instance, action: str, params: Mapping[str, Any]
) -> None:
    """``quota_check`` for ``action`` ("modify", "grow-disk") on the locked ``row``."""
    quotas = _applying(actor, cluster, row.name)
    if quotas:
        delta = modify_delta(cluster, row, action, params)
        quota_check(
            actor=actor,
            cluster=cluster,
            add_vcpus=delta.vcpus,
            add_memory_mb=delta.memory_mb,
            add_disk_mb=delta.disk_mb,
            instance=row.name,
            quotas=quotas,
        )


# -- managing quotas --------------------------------------------------------------------


def _audit_quota(action: str, quota: Quota, *, actor: User | None, **params: Any) -> None:
    audit_record(
        action=action,
        user=actor,
        status=200,
        cluster=quota.cluster.name,
        resource_type="quota",
        resource_name=str(quota.pk),
        params={"subject": subject_of(quota), **params},
    )


@transaction.atomic
def quota_set(
    *,
    actor: User | None,
    cluster: Cluster,
    user: User | None = None,
    group: Group | None = None,
    limits: Mapping[str, int | None],
) -> tuple[Quota, bool]:
    """Set (create or replace) the quota of ``user`` or ``group`` on ``cluster``; a limit
    None is no limit. The caller checked ``actor`` is an admin of ``cluster``.
    Returns the quota and whether it is new."""
    if (user is None) == (group is None):
        raise ValidationFailed("a quota names a user or a group", code="bad_subject")
    unknown = sorted(set(limits) - set(RESOURCES))
    if unknown:
        raise ValidationFailed(f"unknown quota resources: {', '.join(unknown)}", code="bad_quota")
    quota, created = Quota.objects.select_for_update().get_or_create(
        cluster=cluster, user=user, group=group, defaults=dict(limits)
    )
    if not created:
        for resource in RESOURCES:
            setattr(quota, resource, limits.get(resource))
        quota.save()
    _audit_quota(
        "quota.create" if created else "quota.update",
        quota,
        actor=actor,
        **{r: getattr(quota, r) for r in RESOURCES},
    )
    return quota, created


@transaction.atomic
def quota_delete(quota: Quota, *, actor: User | None) -> None:
    """Remove a quota (its subject is then unlimited there). The caller checked ``admin``."""
    _audit_quota("quota.delete", quota, actor=actor)
    quota.delete()
