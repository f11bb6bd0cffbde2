"""/api/v1/jobs: the job history, one job, cancel, and the long-polls on jobs.

The writes that make jobs are on the paths of what they change (gwm.clusters.api).
A wait holds no server thread (gwm.events.waiting).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.accounts.permissions import require_job_control
from gwm.errors import BadRequest
from gwm.events.notify import job_channel
from gwm.events.waiting import wait_until_moved
from gwm.kit.pagination import INT_MAX
from gwm.operations import selectors
from gwm.operations.actions import ACTIONS
from gwm.operations.models import Job
from gwm.operations.schemas import JobOut, JobPage, JobsWait, JobWait
from gwm.operations.services.lifecycle import job_cancel
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["jobs"])

JobId = param.Path(..., ge=1, le=INT_MAX, description="gwm's job id")
WAIT_DEFAULT = 30.0
WAIT_MAX = 120.0
WAIT_IDS_MAX = 100


def _any_of(what: str) -> Any:
    return param.Query(
        None, description=f"{what}; a comma-separated list or a repeated parameter means any"
    )


ANY_CLUSTER = _any_of("cluster names")
ANY_RESOURCE = _any_of("`type` or `type:name`")
ANY_STATUS = _any_of("job statuses")
ANY_USER = _any_of("user names")
ANY_ACTION = _any_of('actions, e.g. "instance.start"')


def _joined(values: list[str] | None) -> str | None:
    return ",".join(values) if values else None


@router.get(
    "/jobs",
    response={200: JobPage, 400: Problem, 401: Problem},
    summary="Job history (gwm's and foreign), newest first",
    operation_id="gwm_operations_api_list_jobs",
)
def list_jobs(
    request: AuthedRequest,
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
) -> dict[str, Any]:
    return selectors.job_list(
        user=request.auth,
        cluster=_joined(cluster),
        resource=_joined(resource),
        status=_joined(status),
        requested_by=_joined(user),
        action=_joined(action),
        foreign=foreign,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/jobs/wait",
    response={200: JobsWait, 400: Problem, 401: Problem, 404: Problem},
    summary="Wait for any of several jobs to change",
    operation_id="gwm_operations_api_wait_jobs",
)
async def wait_jobs(
    request: AuthedRequest, ids: str, timeout: float = WAIT_DEFAULT
) -> dict[str, Any]:
    changed, jobs = await _wait(request.auth, _job_ids(ids), timeout, after_log=None, status=None)
    return {"changed": changed, "jobs": [selectors.job_detail(job) for job in jobs]}


@router.get(
    "/jobs/{job_id}",
    response={200: JobOut, 401: Problem, 404: Problem},
    summary="One job, with Ganeti's log lines and result",
    operation_id="gwm_operations_api_get_job",
)
def get_job(request: AuthedRequest, job_id: int = JobId) -> dict[str, Any]:
    return selectors.job_detail(selectors.job_get(job_id, user=request.auth))


@router.post(
    "/jobs/{job_id}/cancel",
    response={202: JobOut, 401: Problem, 403: Problem, 404: Problem, 409: Problem},
    summary="Cancel a job",
    description="A job not yet in Ganeti is canceled at once; one in Ganeti is "
    "CANCELING until Ganeti says how it ended (a running opcode may finish).",
    operation_id="gwm_operations_api_cancel_job",
)
def cancel_job(request: AuthedRequest, job_id: int = JobId) -> Status[dict[str, Any]]:
    job = selectors.job_get(job_id, user=request.auth)
    action = ACTIONS.get(job.action)
    require_job_control(request.auth, job, action.verb if action else "admin")
    job = job_cancel(job, actor=request.auth)
    return Status(202, selectors.job_detail(job))


@router.get(
    "/jobs/{job_id}/wait",
    response={200: JobWait, 400: Problem, 401: Problem, 404: Problem},
    summary="Long-poll a job",
    description=(
        "Returns as soon as the job's status differs from `status` (default: its status when "
        "the call starts) or it has log lines after `after_log`, or when `timeout` seconds "
        f"pass (default {WAIT_DEFAULT:g}, maximum {WAIT_MAX:g}) with `changed: false`. A "
        "finished job returns at once. Waiting holds no server thread."
    ),
    operation_id="gwm_operations_api_wait_job",
)
async def wait_job(
    request: AuthedRequest,
    job_id: int = JobId,
    timeout: float = WAIT_DEFAULT,
    after_log: int | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    changed, jobs = await _wait(request.auth, [job_id], timeout, after_log=after_log, status=status)
    return {"changed": changed, "job": selectors.job_detail(jobs[0])}


def _job_ids(ids: str) -> list[int]:
    """``?ids=4,7``: between 1 and WAIT_IDS_MAX job ids."""
    try:
        job_ids = [int(part) for part in ids.split(",") if part.strip()]
    except ValueError:
        raise BadRequest("ids is a comma-separated list of job ids", parameter="ids") from None
    if not all(1 <= job_id <= INT_MAX for job_id in job_ids):
        raise BadRequest(f"a job id is between 1 and {INT_MAX}", parameter="ids")
    if not 1 <= len(job_ids) <= WAIT_IDS_MAX:
        raise BadRequest(f"give between 1 and {WAIT_IDS_MAX} job ids", parameter="ids")
    return job_ids


async def _wait(
    user: User, job_ids: list[int], timeout: float, *, after_log: int | None, status: str | None
) -> tuple[bool, list[Job]]:
    """Until a job's status differs from ``status`` (default: its first) or it logs after
    ``after_log`` (default: its first last line); at once when every job is finished."""
    if not 0 <= timeout <= WAIT_MAX:
        raise BadRequest(f"timeout must be between 0 and {WAIT_MAX:g} seconds", parameter="timeout")
    known = status.upper() if status else None

    def moved(first: list[Job], current: list[Job]) -> bool:
        for was, job in zip(first, current, strict=True):
            serial = after_log if after_log is not None else selectors.last_log_serial(was)
            if job.status != (known or was.status) or selectors.last_log_serial(job) > serial:
                return True
        return False

    return await wait_until_moved(
        [job_channel(job_id) for job_id in job_ids],
        lambda: selectors.jobs_get(job_ids, user=user),
        moved,
        timeout=timeout,
        settled=lambda jobs: any(job.finished for job in jobs),
    )
