"""/me, /me/permissions and /authz/check: who the caller is and what they may do."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from ninja import Router

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.accounts.grants import Grants
from gwm.accounts.permissions import readable_clusters, readable_objects
from gwm.accounts.schemas import CheckIn, CheckOut, MeOut, PermissionsOut
from gwm.accounts.selectors import binding_of, me
from gwm.accounts.services.directory import find, require_global_admin
from gwm.accounts.verbs import VERBS
from gwm.clusters.models import Cluster, Instance
from gwm.errors import NotFound, ValidationFailed
from gwm.schemas import Problem

router = Router(auth=caller_auth)


@router.get(
    "/me",
    response={200: MeOut, 401: Problem},
    summary="You: your groups, your role bindings, and the scope of this token",
    operation_id="gwm_accounts_api_me",
)
def get_me(request: AuthedRequest) -> dict[str, Any]:
    return me(request.auth)


def _where(
    user: User, cluster: str | None, instance: str | None
) -> tuple[Cluster | None, Instance | None]:
    """The cluster and instance ``user`` asks about, if they may see them (404 otherwise)."""
    if cluster is None:
        if instance is not None:
            raise ValidationFailed(
                "an instance is named with its cluster", code="instance_without_cluster"
            )
        return None, None
    target = readable_clusters(user).filter(name=cluster).first()
    if target is None:
        raise NotFound(f"no cluster named {cluster!r}")
    if instance is None:
        return target, None
    row = readable_objects(user, Instance.objects.filter(cluster=target, name=instance)).first()
    if row is None:
        raise NotFound(f"no instance named {instance!r} in cluster {cluster!r}")
    return target, row


@router.get(
    "/me/permissions",
    response={200: PermissionsOut, 400: Problem, 401: Problem, 404: Problem, 422: Problem},
    summary="The verbs you hold globally, on a cluster, or on one of its instances",
    description="For a user interface to show or hide actions. Narrowed by this token's scope.",
    operation_id="gwm_accounts_api_my_permissions",
)
def my_permissions(
    request: AuthedRequest, cluster: str | None = None, instance: str | None = None
) -> dict[str, Any]:
    target, row = _where(request.auth, cluster, instance)
    verbs = Grants.of(request.auth).verbs_at(
        target.pk if target else None, row.name if row else None, row.tags if row else ()
    )
    return {"cluster": cluster, "instance": instance, "verbs": sorted(verbs)}


@router.post(
    "/authz/check",
    response={200: CheckOut, 400: Problem, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
    summary="May this user do this verb here? (admins may ask for another user)",
    operation_id="gwm_accounts_api_authz_check",
)
def authz_check(request: AuthedRequest, body: CheckIn) -> dict[str, Any]:
    if body.verb not in VERBS:
        raise ValidationFailed(
            f"unknown verb {body.verb!r}", code="unknown_verb", known=sorted(VERBS)
        )
    who = request.auth
    if body.user is not None and body.user != who.get_username():
        require_global_admin(who, "ask about other users")
        who = find(User, username=body.user)
    target, row = _where(request.auth, body.cluster, body.instance)
    grant = Grants.of(who).grant_for(
        body.verb, target.pk if target else None, row.name if row else None, row.tags if row else ()
    )
    if grant is None:
        place = body.instance or body.cluster or "every cluster"
        return {
            "allowed": False,
            "reason": f"no binding grants {body.verb} on {place}",
            "granted_by": None,
        }
    return {"allowed": True, "reason": grant.describe(), "granted_by": binding_of(grant)}
