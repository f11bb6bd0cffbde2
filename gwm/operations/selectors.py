"""Reading jobs: the list with its filters, one job, and what wait returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from gwm.errors import BadRequest, NotFound
from gwm.kit.http import rfc3339
from gwm.kit.pagination import check_limit, paginate
from gwm.operations.models import Job, JobStatus

API = "/api/v1"
RESOURCE_PATHS = {
    "instance": "instances",
    "node": "nodes",
    "group": "groups",
    "network": "networks",
}


def job_get(job_id: int) -> Job:
    job = Job.objects.select_related("user").filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def _resource_url(job: Job) -> str | None:
    if job.resource_type == "cluster" or not job.resource_name:
        return f"{API}/clusters/{job.cluster_name}"
    plural = RESOURCE_PATHS.get(job.resource_type)
    if plural is None:
        return None
    return f"{API}/clusters/{job.cluster_name}/{plural}/{job.resource_name}"


def _log_entry(entry: list[Any]) -> dict[str, Any]:
    serial, stamp, kind, message = (list(entry) + [None] * 4)[:4]
    when = None
    if isinstance(stamp, list | tuple) and len(stamp) == 2:
        when = rfc3339(datetime.fromtimestamp(stamp[0] + stamp[1] / 1e6, tz=UTC))
    return {"serial": serial, "time": when, "type": kind, "message": message}


def job_detail(job: Job) -> dict[str, Any]:
    return {
        "id": job.pk,
        "url": f"{API}/jobs/{job.pk}",
        "cluster": job.cluster_name,
        "action": job.action,
        "resource": {
            "type": job.resource_type,
            "name": job.resource_name or None,
            "url": _resource_url(job),
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
    cluster: str | None = None,
    resource: str | None = None,
    status: str | None = None,
    user: str | None = None,
    action: str | None = None,
    foreign: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    queryset: QuerySet[Job] = Job.objects.all()
    if cluster:
        queryset = queryset.filter(cluster_name__in=_parts(cluster))
    if resource:
        any_resource = Q()
        for part in _parts(resource):
            kind, _, name = part.partition(":")
            if kind not in {*RESOURCE_PATHS, "cluster"}:
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
        statuses = {part.strip().upper() for part in status.split(",") if part.strip()}
        unknown = statuses - set(JobStatus.values)
        if unknown:
            raise BadRequest(f"unknown job status {', '.join(sorted(unknown))}", parameter="status")
        queryset = queryset.filter(status__in=statuses)
    if user:
        queryset = queryset.filter(user__username__in=_parts(user))
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
    jobs = Job.objects.select_related("user").in_bulk([row["id"] for row in page.rows])
    return {"items": [job_detail(jobs[row["id"]]) for row in page.rows], "next": page.next_cursor}
