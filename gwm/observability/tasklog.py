"""A Celery task's log context: its job, that job's cluster, and the request behind it.

Connected to Celery's ``task_prerun`` and ``task_postrun`` (gwm.observability.apps),
which run in the worker thread that runs the task. A job's task reads the job's
row once (one query by primary key): the request id stored when the job was
accepted, and its cluster. So the id survives what a doorbell does not: a lost
message, a sweeper's re-ring, a restart. Any other task takes the request id its
doorbell carried (the ``gwm_request_id`` header, gwm.kit.enqueue), if it had one.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError

from gwm.observability import context
from gwm.operations.models import Job

log = logging.getLogger(__name__)

#: The tasks whose first argument is a job's id (gwm.operations.tasks).
JOB_TASKS = frozenset({"operations.submit_job", "operations.track_job", "operations.cancel_job"})


def _header(task: Any) -> str | None:
    request = getattr(task, "request", None)
    value = getattr(request, context.TASK_HEADER, None) if request is not None else None
    if value is None and request is not None:
        value = (getattr(request, "headers", None) or {}).get(context.TASK_HEADER)
    return context.acceptable_request_id(value) if isinstance(value, str) else None


def task_started(task: Any = None, args: Any = None, **_: Any) -> None:
    name = getattr(task, "name", None)
    fields: dict[str, Any] = {"task": name, "request_id": _header(task)}
    if name in JOB_TASKS and args:
        job_id = args[0]
        fields["job_id"] = job_id
        try:
            row = Job.objects.filter(pk=job_id).values_list("request_id", "cluster_name").first()
        except DatabaseError:  # the task meets the same database and says so itself
            log.debug("no log context for job %s: its row could not be read", job_id)
            row = None
        if row is not None:
            stored, cluster = row
            fields["request_id"] = stored or fields["request_id"]
            fields["cluster"] = cluster or None
    context.replace(fields)


def task_ended(**_: Any) -> None:
    context.clear()
