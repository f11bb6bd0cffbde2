"""Reading jobs, for one user: the list with its filters, one job, several for a wait.

Every read takes the requesting ``user`` and reads only the jobs
gwm.accounts.permissions lets that user read; another job is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from gwm.accounts.permissions import readable_jobs
from gwm.errors import BadRequest, NotFound
from gwm.kit.http import rfc3339
from gwm.kit.pagination import check_limit, paginate
from gwm.kit.urls import COLLECTIONS, job_url, resource_url
from gwm.operations.models import Job, JobStatus

RESOURCE_KINDS = (*COLLECTIONS, "cluster")


def _jobs(user: User) -> QuerySet[Job]:
    return readable_jobs(user, Job.objects.select_related("user"))


def job_get(job_id: int, *, user: User) -> Job:
    job = _jobs(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def jobs_get(job_ids: list[int], *, user: User) -> list[Job]:
    """The jobs ``job_ids`` in that order; 404 naming every one that is missing."""
    jobs = _jobs(user).in_bulk(job_ids)
    missing = [job_id for job_id in job_ids if job_id not in jobs]
    if missing:
        raise NotFound(f"no job {', '.join(map(str, missing))}")
    return [jobs[job_id] for job_id in job_ids]


def _log_entry(entry: list[Any]) -> dict[str, Any]:
    serial, stamp, kind, message = (list(entry) + [None] * 4)[:4]
    when = None
    if isinstance(stamp, list | tuple) and len(stamp) == 2:
        when = rfc3339(datetime.fromtimestamp(stamp[0] + stamp[1] / 1e6, tz=UTC))
    return {"serial": serial, "time": when, "type": kind, "message": message}


def job_detail(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk,
        "url": job_url(job.pk),
        "cluster": job.cluster_name,
        "action": job.action,
        "resource": {
            "type": job.resource_type,
            "name": job.resource_name or None,
            "url": resource_url(job.resource_type, job.cluster_name, job.resource_name),
        },
        "status": job.status,
        "foreign": job.foreign,
        "source": job.source or ("gwm" if not job.foreign else None),
        "requested_by": job.user.get_username() if job.user else None,
        "params": job.params,
        "attempts": job.attempts,
        "last_error": job.last_error or None,
        "next_attempt_at": rfc3339(job.next_attempt_at) if job.ganeti_job_id is None else None,
        "error": job.error,
        "log": [_log_entry(entry) for entry in job.log],
        "ganeti": {
            "job_id": job.ganeti_job_id,
            "status": job.ganeti_status or None,
            "summary": job.summary,
            "opstatus": job.opstatus,
            "opresult": job.opresult,
            "received_at": rfc3339(job.ganeti_received_at),
            "started_at": rfc3339(job.ganeti_started_at),
            "ended_at": rfc3339(job.ganeti_ended_at),
        },
        "created_at": rfc3339(job.created_at),
        "submitted_at": rfc3339(job.submitted_at),
        "finished_at": rfc3339(job.finished_at),
        "updated_at": rfc3339(job.updated_at),
    }


def last_log_serial(job: Job) -> int:
    return max((int(entry[0]) for entry in job.log), default=0)


def _time(raw: str, name: str) -> datetime:
    try:
        value = parse_datetime(raw)
    except ValueError:  # well formed but no such time: month 13, day 45
        value = None
    if value is not None and value.utcoffset() is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            value = None
    if value is None:
        raise BadRequest(
            f"{name} must be an RFC 3339 time, e.g. 2026-11-22T00:00:00Z", parameter=name
        )
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parts(raw: str) -> list[str]:
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def job_list(
    *,
    user: User,
    cluster: str | None = None,
    resource: str | None = None,
    status: str | None = None,
    requested_by: str | None = None,
    action: str | None = None,
    foreign: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """One page of the jobs ``user`` may read, newest first (JobPage); filters are
    comma-separated lists meaning any of them."""
    queryset = readable_jobs(user, Job.objects.all())
    if cluster:
        queryset = queryset.filter(cluster_name__in=_parts(cluster))
    if resource:
        any_resource = Q()
        for part in _parts(resource):
            kind, _, name = part.partition(":")
            if kind not in RESOURCE_KINDS:
                raise BadRequest(
                    "resource is type or type:name, type one of instance, node, group, "
                    "network, cluster",
                    parameter="resource",
                )
            any_resource |= (
                Q(resource_type=kind, resource_name=name) if name else Q(resource_type=kind)
            )
        queryset = queryset.filter(any_resource)
    if status:
        statuses = {part.upper() for part in _parts(status)}
        unknown = statuses - set(JobStatus.values)
        if unknown:
            raise BadRequest(f"unknown job status {', '.join(sorted(unknown))}", parameter="status")
        queryset = queryset.filter(status__in=statuses)
    if requested_by:
        queryset = queryset.filter(user__username__in=_parts(requested_by))
    if action:
        queryset = queryset.filter(action__in=_parts(action))
    if foreign is not None:
        queryset = queryset.filter(foreign=foreign)
    if since:
        queryset = queryset.filter(created_at__gte=_time(since, "since"))
    if until:
        queryset = queryset.filter(created_at__lt=_time(until, "until"))
    page = paginate(
        queryset,
        columns=["id"],
        order_column="id",
        descending=True,
        cursor=cursor,
        limit=check_limit(limit),
    )
    jobs = _jobs(user).in_bulk([row["id"] for row in page.rows])
    return {"items": [job_detail(jobs[row["id"]]) for row in page.rows], "next": page.next_cursor}
