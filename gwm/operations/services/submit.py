"""Accepting an operation: check it may run now, hold its resource, write its job.

One transaction writes the job, the resource's held status and the change
rows, and rings the submit doorbell after commit; a request never calls
Ganeti. ``Idempotency-Key`` replays answer the first job again. A write's
``callback_url`` becomes the job's hook (gwm.events.hooks) in the same
transaction: it is neither a parameter sent to Ganeti nor part of the
idempotency hash, so a replay answers the first job and its first hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from gwm.accounts.services.ownership import owner_bind
from gwm.accounts.services.quotas import quota_check_change, quota_check_create
from gwm.clusters.models import Cluster, ClusterStatus, Instance, Network, Node, NodeGroup
from gwm.clusters.services.holds import hold_place, instance_placeholder
from gwm.errors import Conflict, NotFound, ValidationFailed
from gwm.events.hooks import Callback, job_hook_for_callback
from gwm.events.models import ChangeAction
from gwm.kit.enqueue import ring_after_commit
from gwm.kit.urls import job_url, resource_url
from gwm.operations.actions import Action
from gwm.operations.models import Job
from gwm.operations.services.changes import job_change, job_record

log = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
#: A resource showing one of these takes no new operation (409): a job holds it,
#: or gwm has not heard from its cluster recently enough to check anything.
REFUSING_STATUSES = {"PROVISIONING", "BUSY", "DELETING", "UNKNOWN"}
RETRY_AFTER_SECONDS = "5"
#: Parameters that name nodes; they must exist in the cluster.
NODE_PARAMS = ("pnode", "snode", "target_node", "remote_node")
SUBMIT_TASK = "operations.submit_job"
#: Actions that make an instance, or make one bigger: checked against quotas.
QUOTA_ACTIONS = frozenset({"instance.create", "instance.modify", "instance.grow-disk"})


class ResourceBusy(Conflict):
    code = "resource_busy"
    title = "Resource is busy"


def operation_submit(
    *,
    actor: User | None,
    cluster: Cluster,
    action: Action,
    resource_name: str,
    params: dict[str, Any],
    idempotency_key: str = "",
    callback: Callback | None = None,
) -> tuple[Job, bool]:
    """Accept an operation. Returns the job and whether it is new (False: idempotent replay).

    ``callback``: the caller's hook on the job, which then calls it from ``job.created``
    to the job's end."""
    request_hash = _request_hash(cluster, action, resource_name, params)
    if idempotency_key:
        replay = _idempotent_replay(actor, idempotency_key, request_hash)
        if replay is not None:
            return replay, False
    check_cluster(cluster)
    try:
        with transaction.atomic():
            if action.key in QUOTA_ACTIONS:
                # A quota check reads what the others on this cluster hold: one such
                # request at a time (NO KEY, as job_finish: inserting jobs needs KEY SHARE).
                list(Cluster.objects.select_for_update(no_key=True).filter(pk=cluster.pk))
            row = lock_target(cluster, action, resource_name, params)
            _check_quota(actor, cluster, action, params, row)
            job = Job.objects.create(
                cluster=cluster,
                cluster_name=cluster.name,
                action=action.key,
                resource_type=action.resource,
                resource_name=resource_name,
                params=params,
                user=actor,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                next_attempt_at=timezone.now(),
            )
            records = [job_change(job, ChangeAction.CREATED)]
            if action.key == "instance.create":
                owner_bind(actor=actor, cluster=cluster, instance=resource_name, job_id=job.pk)
            if action.holds is not None:
                if row is None:  # a new instance, listed at once
                    records.append(
                        instance_placeholder(
                            cluster,
                            resource_name,
                            status=action.holds,
                            job_id=job.pk,
                            params=params,
                        )
                    )
                else:
                    records.append(
                        hold_place(row, kind=action.resource, status=action.holds, job_id=job.pk)
                    )
            job_record(job, records)
            if callback is not None and actor is not None:
                job_hook_for_callback(job=job, owner=actor, callback=callback)
            ring_after_commit(SUBMIT_TASK, job.pk)
    except IntegrityError:
        # Two requests with one idempotency key raced; the other one won.
        replay = None
        if idempotency_key:
            replay = _idempotent_replay(actor, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay, False
    # The API's line of the operation: its request id (from the log context) joins
    # the workers' lines of the same job (docs/observability.md).
    log.info(
        "job %s (%s) accepted for %s %s on %s",
        job.pk,
        action.key,
        action.resource,
        resource_name,
        cluster.name,
        extra={"job_id": job.pk, "cluster": cluster.name},
    )
    return job, True


def _check_quota(
    actor: User | None,
    cluster: Cluster,
    action: Action,
    params: dict[str, Any],
    row: Instance | Node | None,
) -> None:
    """409 ``quota_exceeded`` when the operation would take someone past a quota."""
    if action.key == "instance.create":
        quota_check_create(actor=actor, cluster=cluster, params=params)
    elif action.key in QUOTA_ACTIONS and isinstance(row, Instance):
        quota_check_change(actor=actor, cluster=cluster, row=row, action=action.name, params=params)


def _request_hash(cluster: Cluster, action: Action, name: str, params: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"cluster": cluster.name, "action": action.key, "resource": name, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotent_replay(actor: User | None, key: str, request_hash: str) -> Job | None:
    job = (
        Job.objects.filter(
            user=actor, idempotency_key=key, created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW
        )
        .order_by("-id")
        .first()
    )
    if job is None:
        return None
    if job.request_hash != request_hash:
        raise ValidationFailed(
            "this Idempotency-Key was already used with another request",
            code="idempotency_key_reused",
            job=job_url(job.pk),
        )
    return job


# -- may it run now? ------------------------------------------------------------------


def stale(cluster: Cluster) -> bool:
    """gwm has not heard from ``cluster`` within its ``stale_after``: its objects read UNKNOWN."""
    horizon = timezone.now() - timedelta(seconds=cluster.stale_after)
    return cluster.synced_at is None or cluster.synced_at < horizon


def check_cluster(cluster: Cluster) -> None:
    """Refuse every operation on a cluster gwm does not know well enough now (409)."""
    if cluster.status == ClusterStatus.PROVISIONING:
        raise Conflict(
            f"cluster {cluster.name} is PROVISIONING: its first sync has not finished",
            code="resource_busy",
            resource_status="PROVISIONING",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if stale(cluster):
        # Its objects read UNKNOWN: checks against them (names taken, nodes that
        # exist, what is busy) would be checks against an old picture.
        raise Conflict(
            f"cluster {cluster.name} is UNKNOWN: gwm has not heard from it within "
            f"{cluster.stale_after:g} s; try again when it has",
            code="resource_busy",
            resource_status="UNKNOWN",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )


def _check_references(cluster: Cluster, params: dict[str, Any]) -> None:
    """Nodes and groups named in the parameters must exist (422, nothing written)."""
    named = [params[key] for key in NODE_PARAMS if params.get(key)]
    named += list(params.get("nodes") or [])
    if named:
        known = set(
            Node.objects.filter(cluster=cluster, name__in=named).values_list("name", flat=True)
        )
        unknown = sorted(set(named) - known)
        if unknown:
            raise ValidationFailed(
                f"cluster {cluster.name} has no node named {', '.join(unknown)}",
                code="unknown_node",
            )
    group = params.get("group")
    if group and not NodeGroup.objects.filter(cluster=cluster, name=group).exists():
        raise ValidationFailed(
            f"cluster {cluster.name} has no node group named {group}", code="unknown_group"
        )


def _taken(cluster: Cluster, kind: str, name: str) -> Conflict:
    return Conflict(f"{kind} {name} already exists in {cluster.name}", code="name_taken")


def _missing(cluster: Cluster, kind: str, name: str) -> NotFound:
    return NotFound(f"cluster {cluster.name!r} has no {kind} named {name!r}")


def lock_target(
    cluster: Cluster, action: Action, name: str, params: dict[str, Any]
) -> Instance | Node | None:
    """Check the target may take this action now; lock and return the row to hold."""
    _check_references(cluster, params)
    resource = action.resource
    if resource in {"instance", "node"}:
        model: type[Instance] | type[Node] = Instance if resource == "instance" else Node
        row = model._default_manager.select_for_update().filter(cluster=cluster, name=name).first()
        if action.name == "create":
            if row is not None:
                raise _taken(cluster, resource, name)
            return None
        if row is None:
            raise _missing(cluster, resource, name)
        status = "UNKNOWN" if stale(cluster) else row.status
        if status in REFUSING_STATUSES:
            raise _busy(resource, row, cluster, status)
        new_name = params.get("new_name")
        if (
            action.key == "instance.rename"
            and Instance.objects.filter(cluster=cluster, name=new_name).exists()
        ):
            raise _taken(cluster, "instance", str(new_name))
        return row
    other = {"group": NodeGroup, "network": Network}.get(resource)
    if other is not None:
        exists = other._default_manager.filter(cluster=cluster, name=name).exists()
        if action.name == "create" and exists:
            raise _taken(cluster, resource, name)
        if action.name != "create" and not exists:
            raise _missing(cluster, resource, name)
    return None


def _busy(kind: str, row: Instance | Node, cluster: Cluster, status: str) -> ResourceBusy:
    extra: dict[str, Any] = {
        "resource_status": status,
        "resource": resource_url(kind, cluster.name, row.name),
    }
    detail = f"{row.name} is {status}"
    if row.held_by_job is not None:
        holder = Job.objects.filter(pk=row.held_by_job).values_list("action", flat=True).first()
        extra["job"] = job_url(row.held_by_job)
        detail += f": job {row.held_by_job} ({holder}) holds it"
    elif status == "UNKNOWN":
        detail += ": gwm has not heard from its cluster recently; try again when it has"
    return ResourceBusy(detail, headers={"Retry-After": RETRY_AFTER_SECONDS}, **extra)
