"""/me/quota and /quotas: what a user or group may hold on a cluster, and what it holds.

Anyone sees their own quotas and usage; a cluster's admins (``admin`` on it) list,
set and remove the quotas on it. Changes are audited (gwm.accounts.services.quotas).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from ninja import Router, Status
from ninja.params import functions as param
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gwm.accounts.auth import AuthedRequest, token_auth
from gwm.accounts.grants import Grants
from gwm.accounts.models import Quota, RoleBinding, Scope
from gwm.accounts.permissions import readable_clusters, require
from gwm.accounts.services import quotas as service
from gwm.accounts.services.directory import find
from gwm.accounts.services.ownership import creator_role
from gwm.clusters.models import Cluster
from gwm.errors import NotFound
from gwm.kit.http import rfc3339
from gwm.kit.pagination import INT_MAX
from gwm.schemas import Problem

router = Router(auth=token_auth)
LISTED = 10000  # quotas are listed whole, up to this many
SMALL_MAX = 2**31 - 1  # the instances and vcpus columns are 32-bit
CHANGE = {400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem, 422: Problem}
QuotaId = param.Path(..., ge=1, le=INT_MAX)
ClusterName = param.Query(None, max_length=63, description="only this cluster")


class UsageOut(BaseModel):
    instances: int
    vcpus: int
    memory_mb: int
    disk_mb: int


class QuotaOut(BaseModel):
    id: int
    subject: str = Field(description='"user:<name>" or "group:<name>"')
    user: str | None
    group: str | None
    cluster: str
    instances: int | None = Field(description="None: no limit")
    vcpus: int | None
    memory_mb: int | None
    disk_mb: int | None
    used: UsageOut = Field(description="what the subject holds on the cluster now")
    updated_at: str | None


class QuotaPage(BaseModel):
    items: list[QuotaOut]


class MyClusterQuota(BaseModel):
    cluster: str
    usage: UsageOut = Field(description="the instances you own there, and their sizes")
    quotas: list[QuotaOut] = Field(description="yours and your groups'; all must fit")


class MyQuotaOut(BaseModel):
    items: list[MyClusterQuota]


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, max_length=150)
    group: str | None = Field(None, max_length=150)
    cluster: str = Field(max_length=63)
    instances: int | None = Field(None, ge=0, le=SMALL_MAX, description="None: no limit")
    vcpus: int | None = Field(None, ge=0, le=SMALL_MAX)
    memory_mb: int | None = Field(None, ge=0, le=INT_MAX)
    disk_mb: int | None = Field(None, ge=0, le=INT_MAX)

    @model_validator(mode="after")
    def _one_subject(self) -> QuotaIn:
        if (self.user is None) == (self.group is None):
            raise ValueError("name a user or a group")
        return self


def _render(quota: Quota) -> dict[str, Any]:
    used = service.usage(quota.cluster, user=quota.user, group=quota.group)
    return {
        "id": quota.pk,
        "subject": service.subject_of(quota),
        "user": quota.user.get_username() if quota.user else None,
        "group": quota.group.name if quota.group else None,
        "cluster": quota.cluster.name,
        **{resource: getattr(quota, resource) for resource in service.RESOURCES},
        "used": used.as_dict(),
        "updated_at": rfc3339(quota.updated_at),
    }


def _cluster(user: User, name: str) -> Cluster:
    """The cluster ``user`` names, if they may see it (404 otherwise)."""
    found = readable_clusters(user).filter(name=name).first()
    if found is None:
        raise NotFound(f"no cluster named {name!r}")
    return found


@router.get(
    "/me/quota",
    response={200: MyQuotaOut, 400: Problem, 401: Problem, 404: Problem, 422: Problem},
    summary="Your quotas and what you hold, per cluster",
    description="Clusters where a quota applies to you or you own instances; "
    "with `cluster`, that one only.",
    operation_id="gwm_accounts_api_my_quota",
)
def my_quota(request: AuthedRequest, cluster: str | None = ClusterName) -> dict[str, Any]:
    user = request.auth
    mine = service.quotas_of(user)
    if cluster is not None:
        clusters = [_cluster(user, cluster)]
    else:
        ids = set(mine.values_list("cluster_id", flat=True))
        role = creator_role()
        if role is not None:
            owned = RoleBinding.objects.filter(role=role, user=user, scope=Scope.INSTANCE)
            ids |= set(owned.values_list("cluster_id", flat=True))
        clusters = list(Cluster.objects.filter(pk__in=ids).order_by("name"))
    items = []
    for target in clusters:
        items.append(
            {
                "cluster": target.name,
                "usage": service.usage(target, user=user).as_dict(),
                "quotas": [_render(q) for q in mine.filter(cluster=target)],
            }
        )
    return {"items": items}


@router.get(
    "/quotas",
    response={200: QuotaPage, 400: Problem, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
    summary="Quotas on the clusters you administer",
    description="With `cluster`, that cluster's (403 unless you hold `admin` on it).",
    operation_id="gwm_accounts_api_list_quotas",
)
def list_quotas(request: AuthedRequest, cluster: str | None = ClusterName) -> dict[str, Any]:
    user = request.auth
    quotas = Quota.objects.select_related("user", "group", "cluster").order_by(
        "cluster__name", "group_id", "id"
    )
    if cluster is not None:
        target = _cluster(user, cluster)
        require(user, "admin", target)
        quotas = quotas.filter(cluster=target)
    else:
        ids = Grants.of(user).cluster_ids("admin")
        if ids is not None:
            quotas = quotas.filter(cluster_id__in=ids)
    return {"items": [_render(q) for q in quotas[:LISTED]]}


@router.put(
    "/quotas",
    response={200: QuotaOut, 201: QuotaOut, **CHANGE},
    summary="Set the quota of a user or group on a cluster",
    description="Creates it (201) or replaces all its limits (200); a limit left out or "
    "null is no limit. You must hold `admin` on the cluster. Usage above a lowered "
    "quota stays; only requests that add to it are refused.",
    operation_id="gwm_accounts_api_set_quota",
)
def set_quota(request: AuthedRequest, body: QuotaIn) -> Status[dict[str, Any]]:
    user = request.auth
    target = _cluster(user, body.cluster)
    require(user, "admin", target)
    quota, created = service.quota_set(
        actor=user,
        cluster=target,
        user=find(User, username=body.user) if body.user else None,
        group=find(Group, name=body.group) if body.group else None,
        limits={resource: getattr(body, resource) for resource in service.RESOURCES},
    )
    return Status(201 if created else 200, _render(quota))


@router.delete(
    "/quotas/{quota_id}",
    response={204: None, **CHANGE},
    summary="Remove a quota (its subject is then unlimited on that cluster)",
    operation_id="gwm_accounts_api_delete_quota",
)
def delete_quota(request: AuthedRequest, quota_id: int = QuotaId) -> Status[None]:
    user = request.auth
    quota = Quota.objects.select_related("user", "group", "cluster").filter(pk=quota_id).first()
    if quota is None or not readable_clusters(user).filter(pk=quota.cluster_id).exists():
        raise NotFound(f"no quota {quota_id}")
    require(user, "admin", quota.cluster)
    service.quota_delete(quota, actor=user)
    return Status(204, None)
