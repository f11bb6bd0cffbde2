"""Who may do what: the one place gwm decides it, from the caller's grants
(gwm.accounts.grants).

Reads: every selector narrows what it reads through :func:`readable_clusters`,
:func:`readable_objects` or :func:`readable_jobs`. Whoever holds ``view``
everywhere (a global binding, a superuser) gets the queryset as it is: no join,
no subquery, no extra query. Others get a filter built from their bindings in
memory. What a caller may not read answers 404, like what does not exist.

Writes: a handler finds the object through the readable querysets (404 when the
caller may not see it), then calls :func:`require`, which answers 403 naming
the verb when the caller may see the object but not do that to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.contrib.auth.models import User
from django.db.models import Model, Q, QuerySet

from gwm.accounts.grants import Grant, Grants
from gwm.clusters.models import Cluster, Instance
from gwm.errors import Forbidden, NotFound
from gwm.operations.models import Job

M = TypeVar("M", bound=Model)
NOTHING = Q(pk__in=[])


def readable_clusters(user: User) -> QuerySet[Cluster]:
    """The clusters ``user`` sees: those where any of their bindings applies."""
    ids = Grants.of(user).visible_cluster_ids()
    clusters = Cluster.objects.all()
    return clusters if ids is None else clusters.filter(pk__in=ids)


def _instances_q(grants: Grants, verb: str, prefix: str = "") -> Q | None:
    """Which instances ``verb`` holds on, as a filter (None: all)."""
    ids = grants.cluster_ids(verb)
    if ids is None:
        return None
    where = Q(**{f"{prefix}cluster_id__in": ids}) if ids else NOTHING
    names, tags = grants.instance_refs(verb)
    for cluster_id, named in names.items():
        where |= Q(**{f"{prefix}cluster_id": cluster_id, f"{prefix}name__in": sorted(named)})
    for cluster_id, tagged in tags.items():
        for tag in sorted(tagged):
            where |= Q(
                **{f"{prefix}cluster_id": cluster_id, f"{prefix}tag_index__contains": f"\n{tag}\n"}
            )
    return where


def readable_objects(user: User, objects: QuerySet[M]) -> QuerySet[M]:
    """``objects`` (nodes, groups, networks or instances) narrowed to those ``user`` may read.

    Instances are readable through instance and tag bindings too; nodes, groups and
    networks only through a cluster (or global) one.
    """
    grants = Grants.of(user)
    if objects.model is Instance:
        where = _instances_q(grants, "view")
        return objects if where is None else objects.filter(where)
    ids = grants.cluster_ids("view")
    return objects if ids is None else objects.filter(cluster_id__in=ids)


def readable_jobs(user: User, jobs: QuerySet[Job]) -> QuerySet[Job]:
    """``jobs`` narrowed to those ``user`` may read: on what they may view, or their own."""
    grants = Grants.of(user)
    ids = grants.cluster_ids("view")
    if ids is None:
        return jobs
    where = Q(cluster_id__in=ids) if ids else NOTHING
    if grants.token_clusters is None:
        where |= Q(user=user)
    else:
        where |= Q(user=user, cluster_id__in=grants.token_clusters)
    names, tags = grants.instance_refs("view")
    for cluster_id, named in names.items():
        where |= Q(cluster_id=cluster_id, resource_type="instance", resource_name__in=named)
    for cluster_id, tagged in tags.items():
        carrying = Q()
        for tag in tagged:
            carrying |= Q(tag_index__contains=f"\n{tag}\n")
        tagged_names = Instance.objects.filter(carrying, cluster_id=cluster_id).values("name")
        where |= Q(cluster_id=cluster_id, resource_type="instance", resource_name__in=tagged_names)
    return jobs.filter(where)


def grant_for(
    user: User,
    verb: str,
    cluster: Cluster | None,
    instance: str | None = None,
    tags: Iterable[str] = (),
) -> Grant | None:
    """The grant that lets ``user`` do ``verb`` there, or None."""
    return Grants.of(user).grant_for(verb, cluster.pk if cluster else None, instance, tags)


def require(
    user: User,
    verb: str,
    cluster: Cluster | None = None,
    *,
    instance: Instance | None = None,
    what: str = "",
) -> Grant:
    """403 unless ``user`` may ``verb`` on ``instance`` (or ``cluster``, or everywhere).

    ``what`` names the object in the refusal ("instance web1 on cluster prod").
    """
    grants = Grants.of(user)
    name, tags = (instance.name, instance.tags) if instance is not None else (None, ())
    grant = grants.grant_for(verb, cluster.pk if cluster else None, name, tags)
    if grant is not None:
        return grant
    where = what or (f"cluster {cluster.name}" if cluster else "every cluster")
    reason = "the token is read-only" if grants.read_only and verb != "view" else ""
    raise Forbidden(
        f"you may not {verb} on {where}" + (f" ({reason})" if reason else ""),
        code="forbidden",
        verb=verb,
    )


def sees_cluster_wide(user: User, cluster: Cluster) -> bool:
    """Whether ``user`` views ``cluster`` as a whole (its nodes, groups, networks, counts)."""
    return Grants.of(user).grant_for("view", cluster.pk) is not None


def require_on(
    user: User,
    verb: str,
    cluster: Cluster,
    resource_type: str,
    name: str,
    *,
    creating: bool = False,
) -> Grant:
    """``require`` for a write on ``resource_type`` ``name`` of ``cluster`` (already found
    readable): 404 when the caller may not see that object, 403 when they may see it but
    not ``verb`` it. ``creating``: the object does not exist yet, so only the cluster's
    verb counts (403 without it).

    Instances are seen through instance and tag bindings too; anything else (and creating
    anything) needs a binding on the whole cluster.
    """
    label = (
        f"{resource_type} {name} on cluster {cluster.name}" if name else f"cluster {cluster.name}"
    )
    if creating:
        return require(user, verb, cluster, what=f"cluster {cluster.name}")
    if resource_type == "instance":
        instance = readable_objects(
            user, Instance.objects.filter(cluster=cluster, name=name)
        ).first()
        if instance is None and not sees_cluster_wide(user, cluster):
            raise NotFound(f"no instance named {name!r} in cluster {cluster.name!r}")
        return require(user, verb, cluster, instance=instance, what=label)
    if resource_type != "cluster" and not sees_cluster_wide(user, cluster):
        raise NotFound(f"no {resource_type} named {name!r} in cluster {cluster.name!r}")
    return require(user, verb, cluster, what=label)


def require_job_control(user: User, job: Job, verb: str) -> None:
    """403 unless ``user`` may cancel ``job`` (already found readable): its submitter may,
    and whoever holds ``verb`` (the verb of the job's action) on what it changes."""
    grants = Grants.of(user)
    if grants.read_only:
        raise Forbidden("the token is read-only", verb=verb)
    if job.user_id == user.pk:
        return
    if job.cluster is None:
        require(user, "admin", what="every cluster (a job of an unregistered cluster)")
        return
    require_on(user, verb, job.cluster, job.resource_type, job.resource_name)
