"""What the clusters domain's endpoints share: response tables, write parameters, the write.

A write to Ganeti (``submit``) finds the cluster (404 when the caller cannot
see it), checks the caller holds the action's verb there (403), and either asks
Ganeti's pre-checks now (``?dry_run=true``: 200 with the verdict, nothing kept)
or accepts the operation as a job (202 with the job,
its URL in ``Location``); it never calls Ganeti otherwise. ``?callback_url=``
gives the job a hook (gwm.events.hooks) written with it, linked from the 202.

The operationIds of /api/v1 are frozen (clients and links use them), so each
operation spells its own instead of ninja deriving one from where its handler
lives.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from ninja import Status
from ninja.params import functions as param
from pydantic import BaseModel

from gwm.accounts.auth import AuthedRequest
from gwm.accounts.permissions import require_on
from gwm.clusters.selectors.cache import cluster_get
from gwm.events.api.hooks import callback_of
from gwm.events.hook_schemas import URL_MAX, webhook_url
from gwm.events.hooks import hook_find, job_key
from gwm.kit.urls import job_url
from gwm.operations.actions import ACTIONS
from gwm.operations.schemas import DryRunOut, JobOut
from gwm.operations.selectors import job_detail
from gwm.operations.services.live import operation_dry_run
from gwm.operations.services.submit import operation_submit
from gwm.schemas import Problem

READ = {304: None, 400: Problem, 401: Problem}
READ_ONE = {304: None, 401: Problem, 404: Problem}
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
OPERATIONS = ["operations"]  # the tag of the action and console endpoints
IDEMPOTENCY_KEY_MAX = 255
IdempotencyKey = param.Header(
    None,
    alias="Idempotency-Key",
    max_length=IDEMPOTENCY_KEY_MAX,
    description=f"makes retries safe (at most {IDEMPOTENCY_KEY_MAX} characters)",
)
CallbackUrl = param.Query(
    None,
    max_length=URL_MAX,
    description="a URL gwm calls with the job's events, from job.created to its end: the 202's "
    '`Link: </api/v1/webhooks/{id}>; rel="callback"` is that hook; its signing secret is at '
    "`GET /api/v1/webhooks/{id}/secret`. A query parameter on every write, bodies or not: "
    "keep credentials out of it (requests are signed; access logs keep query strings).",
)
ACTION_BODY = param.Body(..., description='{"action": "<name>", ...its parameters}')


def submit(
    request: AuthedRequest,
    response: HttpResponse,
    cluster: str,
    action: str,
    name: str,
    params: BaseModel | dict[str, Any],
    *,
    dry_run: bool = False,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
) -> Status[dict[str, Any]]:
    """Ask Ganeti for ``action`` ("instance.start") on ``name`` in ``cluster``: the job (202),
    or with ``dry_run`` Ganeti's verdict (200)."""
    user = request.auth
    target = cluster_get(cluster, user=user)
    what = ACTIONS[action]
    require_on(user, what.verb, target, what.resource, name, creating=what.name == "create")
    values = params.model_dump(exclude={"action"}) if isinstance(params, BaseModel) else params
    # Checked on a dry run too: it answers whether the write would be accepted.
    callback = callback_of(callback_url) if callback_url else None
    if dry_run:
        verdict = operation_dry_run(
            actor=user, cluster=target, action=what, resource_name=name, params=values
        )
        return Status(200, verdict)
    job, _ = operation_submit(
        actor=user,
        cluster=target,
        action=what,
        resource_name=name,
        params=values,
        idempotency_key=(idempotency_key or "").strip(),
        callback=callback,
    )
    response["Location"] = job_url(job.pk)
    hook = hook_find(owner=user, key=job_key(job.pk)) if callback is not None else None
    if hook is not None:  # a replay links the first request's hook, if it asked for one
        response["Link"] = f'<{webhook_url(hook.pk)}>; rel="callback"'
    return Status(202, job_detail(job))
