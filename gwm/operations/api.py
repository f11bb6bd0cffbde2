"""Writes to Ganeti (202 + a job) and the job history, with long-poll wait.

A write validates, checks status and permission, writes the job in one
transaction and answers 202 with the job and its URL; it never calls Ganeti.
The exceptions say so: ``?dry_run=true`` and ``/console`` need Ganeti's answer
now, so they ask it with a bounded timeout and keep nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from ninja import Body, Header, Path, Query, Router, Status
from pydantic import BaseModel

from gwm.accounts.auth import require_staff, token_auth
from gwm.clusters.api import router as clusters_router
from gwm.clusters.selectors import cluster_get
from gwm.errors import BadRequest
from gwm.events.notify import broadcaster
from gwm.kit.pagination import INT_MAX
from gwm.operations import selectors, services
from gwm.operations.catalog import (
    ACTIONS,
    GroupCreate,
    GroupModify,
    InstanceCreate,
    InstanceModify,
    NetworkCreate,
    NetworkModify,
)
from gwm.operations.models import Job
from gwm.operations.schemas import (
    ClusterActionBody,
    ConsoleOut,
    DryRunOut,
    GroupActionBody,
    InstanceActionBody,
    JobOut,
    JobPage,
    JobsWait,
    JobWait,
    NetworkActionBody,
    NodeActionBody,
)
from gwm.schemas import Problem

router = Router(auth=token_auth, tags=["operations"])
# Writes on a path that also has a cached read (POST/PATCH/DELETE beside GET) must
# live on the same router as that read, or Django would route them to it.
shared_paths = clusters_router
jobs_router = Router(auth=token_auth, tags=["jobs"])

WRITE = {
    200: DryRunOut,
    202: JobOut,
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    409: Problem,
    422: Problem,
    502: Problem,
    503: Problem,
    504: Problem,
}
WRITE_DOC = (
    "Answers 202 with the job (its URL in `Location`); follow it with "
    "`GET /api/v1/jobs/{id}/wait`. 409 while the resource is PROVISIONING, BUSY, DELETING or "
    "UNKNOWN (with `Retry-After` and the job that holds it). `Idempotency-Key`: the same key "
    "and body within 24 h answer the first job again; another body is 422. "
    "`?dry_run=true` runs Ganeti's pre-checks only and answers 200 with the verdict (503/504 "
    "when the cluster cannot answer now)."
)
IDEMPOTENCY_KEY_MAX = 255
IdempotencyKey = Header(
    None,
    alias="Idempotency-Key",
    max_length=IDEMPOTENCY_KEY_MAX,
    description=f"makes retries safe (at most {IDEMPOTENCY_KEY_MAX} characters)",
)
JobId = Path(..., ge=1, le=INT_MAX, description="gwm's job id")
ACTION_BODY = Body(..., description='{"action": "<name>", ...its parameters}')

WAIT_DEFAULT = 30.0
WAIT_MAX = 120.0


def _submit(
    request: HttpRequest,
    response: HttpResponse,
    *,
    cluster: str,
    action_key: str,
    name: str,
    params: BaseModel | dict[str, Any],
    dry_run: bool,
    idempotency_key: str | None,
) -> Any:
    require_staff(request, "change Ganeti clusters")
    target = cluster_get(cluster)
    action = ACTIONS[action_key]
    values = params.model_dump(exclude={"action"}) if isinstance(params, BaseModel) else params
    if dry_run:
        return Status(
            200,
            services.operation_dry_run(
                cluster=target, action=action, resource_name=name, params=values
            ),
        )
    job, _ = services.operation_submit(
        user=request.auth,  # type: ignore[attr-defined]
        cluster=target,
        action=action,
        resource_name=name,
        params=values,
        idempotency_key=(idempotency_key or "").strip(),
    )
    response["Location"] = f"/api/v1/jobs/{job.pk}"
    return Status(202, selectors.job_detail(job))


# -- instances -------------------------------------------------------------------------


@shared_paths.post(
    "/clusters/{cluster}/instances",
    response=WRITE,
    summary="Create an instance",
    description=WRITE_DOC,
)
def create_instance(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    body: InstanceCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="instance.create",
        name=body.name,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@shared_paths.patch(
    "/clusters/{cluster}/instances/{instance}",
    response=WRITE,
    summary="Modify an instance (OpInstanceSetParams)",
    description=WRITE_DOC,
)
def modify_instance(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    body: InstanceModify,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="instance.modify",
        name=instance,
        params=body,
        dry_run=False,
        idempotency_key=idempotency_key,
    )


@shared_paths.delete(
    "/clusters/{cluster}/instances/{instance}",
    response=WRITE,
    summary="Delete an instance",
    description=WRITE_DOC,
)
def delete_instance(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    shutdown_timeout: int | None = None,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    params = {"shutdown_timeout": shutdown_timeout}
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="instance.delete",
        name=instance,
        params=params,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/clusters/{cluster}/instances/{instance}/actions",
    response=WRITE,
    summary="Start, shutdown, reboot, reinstall, migrate, failover, rename, ...",
    description=WRITE_DOC,
)
def instance_action(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    instance: str,
    body: InstanceActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key=f"instance.{body.action}",
        name=instance,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/clusters/{cluster}/instances/{instance}/console",
    response={
        200: ConsoleOut,
        401: Problem,
        404: Problem,
        409: Problem,
        502: Problem,
        503: Problem,
        504: Problem,
    },
    summary="Console details (asked of Ganeti now)",
)
def instance_console(request: HttpRequest, cluster: str, instance: str) -> Any:
    require_staff(request, "open consoles")
    return services.instance_console(cluster=cluster_get(cluster), name=instance)


# -- nodes ------------------------------------------------------------------------------


@router.post(
    "/clusters/{cluster}/nodes/{node}/actions",
    response=WRITE,
    summary="Drain, undrain, offline, online, set-role, evacuate, migrate, powercycle",
    description=WRITE_DOC,
)
def node_action(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    node: str,
    body: NodeActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key=f"node.{body.action}",
        name=node,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


# -- groups and networks ------------------------------------------------------------------


@shared_paths.post(
    "/clusters/{cluster}/groups",
    response=WRITE,
    summary="Create a node group",
    description=WRITE_DOC,
)
def create_group(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    body: GroupCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="group.create",
        name=body.name,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@shared_paths.patch(
    "/clusters/{cluster}/groups/{group}",
    response=WRITE,
    summary="Modify a node group",
    description=WRITE_DOC,
)
def modify_group(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    body: GroupModify,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="group.modify",
        name=group,
        params=body,
        dry_run=False,
        idempotency_key=idempotency_key,
    )


@shared_paths.delete(
    "/clusters/{cluster}/groups/{group}",
    response=WRITE,
    summary="Delete a node group",
    description=WRITE_DOC,
)
def delete_group(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="group.delete",
        name=group,
        params={},
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/clusters/{cluster}/groups/{group}/actions",
    response=WRITE,
    summary="Rename, assign nodes, tags",
    description=WRITE_DOC,
)
def group_action(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    group: str,
    body: GroupActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key=f"group.{body.action}",
        name=group,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@shared_paths.post(
    "/clusters/{cluster}/networks",
    response=WRITE,
    summary="Create a network",
    description=WRITE_DOC,
)
def create_network(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    body: NetworkCreate,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="network.create",
        name=body.name,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@shared_paths.patch(
    "/clusters/{cluster}/networks/{network}",
    response=WRITE,
    summary="Modify a network",
    description=WRITE_DOC,
)
def modify_network(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    body: NetworkModify,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="network.modify",
        name=network,
        params=body,
        dry_run=False,
        idempotency_key=idempotency_key,
    )


@shared_paths.delete(
    "/clusters/{cluster}/networks/{network}",
    response=WRITE,
    summary="Delete a network",
    description=WRITE_DOC,
)
def delete_network(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key="network.delete",
        name=network,
        params={},
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/clusters/{cluster}/networks/{network}/actions",
    response=WRITE,
    summary="Rename, connect, disconnect, tags",
    description=WRITE_DOC,
)
def network_action(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    network: str,
    body: NetworkActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key=f"network.{body.action}",
        name=network,
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/clusters/{cluster}/actions",
    response=WRITE,
    summary="Cluster actions: redistribute-config, tags",
    description=WRITE_DOC + " Ganeti's RAPI has no cluster verify, so neither has gwm.",
)
def cluster_action(
    request: HttpRequest,
    response: HttpResponse,
    cluster: str,
    body: ClusterActionBody = ACTION_BODY,
    dry_run: bool = False,
    idempotency_key: str | None = IdempotencyKey,
) -> Any:
    return _submit(
        request,
        response,
        cluster=cluster,
        action_key=f"cluster.{body.action}",
        name="",
        params=body,
        dry_run=dry_run,
        idempotency_key=idempotency_key,
    )


# -- jobs --------------------------------------------------------------------------------


def _any_of(what: str) -> Any:
    return Query(
        None, description=f"{what}; a comma-separated list or a repeated parameter means any"
    )


ANY_CLUSTER = _any_of("cluster names")
ANY_RESOURCE = _any_of("`type` or `type:name`")
ANY_STATUS = _any_of("job statuses")
ANY_USER = _any_of("user names")
ANY_ACTION = _any_of('actions, e.g. "instance.start"')


def _joined(values: list[str] | None) -> str | None:
    return ",".join(values) if values else None


@jobs_router.get(
    "/jobs",
    response={200: JobPage, 400: Problem, 401: Problem},
    summary="Job history (gwm's and foreign), newest first",
)
def list_jobs(
    request: HttpRequest,
    cluster: list[str] | None = ANY_CLUSTER,
    resource: list[str] | None = ANY_RESOURCE,
    status: list[str] | None = ANY_STATUS,
    user: list[str] | None = ANY_USER,
    action: list[str] | None = ANY_ACTION,
    foreign: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Any:
    return selectors.job_list(
        cluster=_joined(cluster),
        resource=_joined(resource),
        status=_joined(status),
        user=_joined(user),
        action=_joined(action),
        foreign=foreign,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


@jobs_router.get(
    "/jobs/wait",
    response={200: JobsWait, 400: Problem, 401: Problem, 404: Problem},
    summary="Wait for any of several jobs to change",
)
async def wait_jobs(
    request: HttpRequest,
    ids: str,
    timeout: float = WAIT_DEFAULT,
) -> Any:
    try:
        job_ids = [int(part) for part in ids.split(",") if part.strip()]
    except ValueError:
        raise BadRequest("ids is a comma-separated list of job ids", parameter="ids") from None
    if not all(1 <= job_id <= INT_MAX for job_id in job_ids):
        raise BadRequest(f"a job id is between 1 and {INT_MAX}", parameter="ids")
    if not 1 <= len(job_ids) <= 100:
        raise BadRequest("give between 1 and 100 job ids", parameter="ids")
    changed, jobs = await _wait(job_ids, _check_timeout(timeout), after_log=None, known=None)
    return {"changed": changed, "jobs": [selectors.job_detail(job) for job in jobs]}


@jobs_router.get(
    "/jobs/{job_id}",
    response={200: JobOut, 401: Problem, 404: Problem},
    summary="One job, with Ganeti's log lines and result",
)
def get_job(request: HttpRequest, job_id: int = JobId) -> Any:
    return selectors.job_detail(selectors.job_get(job_id))


@jobs_router.post(
    "/jobs/{job_id}/cancel",
    response={202: JobOut, 401: Problem, 403: Problem, 404: Problem, 409: Problem},
    summary="Cancel a job",
    description="A job not yet in Ganeti is canceled at once; one in Ganeti is "
    "CANCELING until Ganeti says how it ended (a running opcode may finish).",
)
def cancel_job(request: HttpRequest, job_id: int = JobId) -> Any:
    require_staff(request, "cancel jobs")
    job = services.job_cancel(selectors.job_get(job_id))
    return Status(202, selectors.job_detail(job))


@jobs_router.get(
    "/jobs/{job_id}/wait",
    response={200: JobWait, 400: Problem, 401: Problem, 404: Problem},
    summary="Long-poll a job",
    description=(
        "Returns as soon as the job's status differs from `status` (default: its status when "
        "the call starts) or it has log lines after `after_log`, or when `timeout` seconds "
        f"pass (default {WAIT_DEFAULT:g}, maximum {WAIT_MAX:g}) with `changed: false`. A "
        "finished job returns at once. Waiting holds no server thread."
    ),
)
async def wait_job(
    request: HttpRequest,
    job_id: int = JobId,
    timeout: float = WAIT_DEFAULT,
    after_log: int | None = None,
    status: str | None = None,
) -> Any:
    changed, jobs = await _wait(
        [job_id],
        _check_timeout(timeout),
        after_log=after_log,
        known=status.upper() if status else None,
    )
    return {"changed": changed, "job": selectors.job_detail(jobs[0])}


def _check_timeout(timeout: float) -> float:
    if not 0 <= timeout <= WAIT_MAX:
        raise BadRequest(f"timeout must be between 0 and {WAIT_MAX:g} seconds", parameter="timeout")
    return timeout


def _load(job_ids: list[int]) -> list[Job]:
    jobs = Job.objects.select_related("user").in_bulk(job_ids)
    missing = [job_id for job_id in job_ids if job_id not in jobs]
    if missing:
        from gwm.errors import NotFound

        raise NotFound(f"no job {', '.join(map(str, missing))}")
    return [jobs[job_id] for job_id in job_ids]


async def _wait(
    job_ids: list[int], timeout: float, *, after_log: int | None, known: str | None
) -> tuple[bool, list[Job]]:
    channels = [services.job_channel(job_id) for job_id in job_ids]
    subscriptions = [(channel, broadcaster.subscribe(channel)) for channel in channels]
    try:
        jobs = await sync_to_async(_load)(job_ids)
        baseline = {
            job.pk: (
                known or job.status,
                after_log if after_log is not None else selectors.last_log_serial(job),
            )
            for job in jobs
        }

        def moved(current: list[Job]) -> bool:
            for job in current:
                status, serial = baseline[job.pk]
                if job.status != status or selectors.last_log_serial(job) > serial:
                    return True
            return False

        if moved(jobs) or any(job.finished for job in jobs):
            return moved(jobs), jobs
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            events = [entry[1] for _, entry in subscriptions]
            waiters = [asyncio.ensure_future(event.wait()) for event in events]
            done, pending = await asyncio.wait(
                waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
            if not done:
                break
            for event in events:
                event.clear()
            jobs = await sync_to_async(_load)(job_ids)
            if moved(jobs):
                return True, jobs
        return False, jobs
    finally:
        for channel, entry in subscriptions:
            broadcaster.unsubscribe(channel, entry)
