"""The job RAPI resources: list, read, cancel, and wait for a change."""

from __future__ import annotations

from typing import Any

from gwm.simulator.app import Simulator
from gwm.simulator.fields.base import RS_NORMAL
from gwm.simulator.http import WRITERS, HttpError, Req, Resources, uri_list
from gwm.simulator.jobs import Job
from gwm.simulator.query import resolve

RESOURCES = Resources()

# The fields rlib2 answers /2/jobs?bulk=1 and /2/jobs/ID with.
J_FIELDS_BULK = ["id", "ops", "status", "summary", "opstatus", "received_ts", "start_ts", "end_ts"]
J_FIELDS = [*J_FIELDS_BULK, "oplog", "opresult"]


def job_info(sim: Simulator, job: Job | None, fields: list[str]) -> list[Any]:
    """The values of ``fields`` for a job (null where there are none)."""
    if job is None:
        return [None for _ in fields]
    c = sim.ctx()
    values = []
    for fd in resolve("job", fields):
        status, value = fd.getter(c, job)
        values.append(value if status == RS_NORMAL else None)
    return values


@RESOURCES.resource("/2/jobs", "jobs")
class RJobs:
    @staticmethod
    async def GET(r: Req) -> Any:
        jobs = r.sim.queue.live_jobs()
        if r.bulk:
            return [
                dict(zip(J_FIELDS_BULK, job_info(r.sim, j, J_FIELDS_BULK), strict=True))
                for j in jobs
            ]
        return uri_list([j.id for j in jobs], "/2/jobs/%s", "id")


@RESOURCES.resource("/2/jobs/{id}", "jobs_id")
class RJob:
    @staticmethod
    async def GET(r: Req) -> Any:
        r.sim.queue.archive_old()
        job_id = int(r.items[0])
        job = r.sim.queue.jobs.get(job_id)
        # luxid answers an unknown id with a row of nulls (but the id), not an error
        row = dict(zip(J_FIELDS, job_info(r.sim, job, J_FIELDS), strict=True))
        row["id"] = job_id
        return row

    @staticmethod
    async def DELETE(r: Req) -> Any:
        return r.sim.queue.cancel(int(r.items[0]))


def _wait_arguments(body: Any) -> tuple[list[str], list[Any] | None, int | None]:
    """The fields, previous job info and previous log serial of a wait, checked
    as rlib2 checks them."""
    if body is None:
        # rlib2 indexes the missing body: a TypeError, hence a 500
        raise HttpError(500, "'NoneType' object is not subscriptable")
    if not isinstance(body, dict):
        raise HttpError(500, "list indices must be integers or slices, not str")
    if "fields" not in body:
        raise HttpError(400, "Required parameter 'fields' is missing")
    fields = body["fields"]
    prev_info = body.get("previous_job_info")
    prev_serial = body.get("previous_log_serial")
    if not isinstance(fields, list):
        raise HttpError(400, "The 'fields' parameter should be a list")
    if not (prev_info is None or isinstance(prev_info, list)):
        raise HttpError(400, "The 'previous_job_info' parameter should be a list")
    if not (
        prev_serial is None or (isinstance(prev_serial, int) and not isinstance(prev_serial, bool))
    ):
        raise HttpError(400, "The 'previous_log_serial' parameter should be a number")
    return fields, prev_info, prev_serial


@RESOURCES.resource("/2/jobs/{id}/wait", "jobs_id_wait", get_access=WRITERS)
class RJobWait:
    @staticmethod
    async def GET(r: Req) -> Any:
        fields, prev_info, prev_serial = _wait_arguments(r.body)
        job_id = int(r.items[0])
        job = r.sim.queue.jobs.get(job_id)
        if job is None or job.archived:
            raise HttpError(500, "Can't load job file")
        result = await r.sim.queue.wait_for_change(
            job_id, fields, prev_info, prev_serial, lambda j, f: job_info(r.sim, j, f)
        )
        if result is None:
            raise HttpError(404)
        return result
