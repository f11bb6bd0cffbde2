"""PUT/GET/DELETE .../instances/{i}/hook, .../nodes/{n}/hook and /jobs/{id}/hook.

A hook is "call me when this changes" (a job: "when it ends"): one per caller
and resource, delivered like a webhook (gwm.events.hooks). Setting one needs
what changing the resource needs, since the hook follows the caller's changes
of it: ``power`` on an instance (the operator's verb, the least one that
changes an instance), ``manage_nodes`` on a node, and on a job the right to
cancel it (its submitter, or the verb of its action). Reading one needs only
seeing the resource; removing one's own hook, a token that may write. What the
caller cannot see answers 404; a read-only token 403.

The URL is checked here, not in the service: gwm.events.webhooks ranks above
the services that write hooks (see gwm.events.hooks).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from ninja import Router, Status
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.accounts.grants import Grants
from gwm.accounts.permissions import readable_objects, require_job_control, require_on
from gwm.clusters.models import Cluster, Instance, Node
from gwm.clusters.selectors.cache import cluster_get
from gwm.errors import Forbidden, NotFound, ValidationFailed
from gwm.events import hooks
from gwm.events.hook_schemas import HookIn, HookOut, hook_out
from gwm.events.render import resource_key
from gwm.events.webhooks.signing import new_secret
from gwm.events.webhooks.targets import TargetRefused, allowed_networks_from_settings, check_target
from gwm.kit.pagination import INT_MAX
from gwm.operations.actions import ACTIONS
from gwm.operations.selectors import job_get
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["hooks"])

#: The verb a caller needs on a resource to set its hook (see the module's docstring).
CHANGE_VERBS = {"instance": "power", "node": "manage_nodes"}
MODELS: dict[str, type[Instance] | type[Node]] = {"instance": Instance, "node": Node}
JobId = param.Path(..., ge=1, le=INT_MAX, description="gwm's job id")
PUT_DOC = (
    "Creates (201) or replaces (200) your hook on it: one per caller and resource. Replacing "
    "changes the URL and types and keeps the secret, the cursor and the delivery log. Events "
    "are signed and retried like webhooks; read the secret at `secret_url`, the deliveries at "
    "`deliveries_url`. A URL gwm will not call (a private address...) is 422 `target_refused`."
)
READ = {200: HookOut, 401: Problem, 404: Problem}
PUT = {200: HookOut, 201: HookOut, 401: Problem, 403: Problem, 404: Problem, 422: Problem}
GONE = {204: None, 401: Problem, 403: Problem, 404: Problem}


def callback_of(url: str) -> hooks.Callback:
    """A URL gwm may call (else 422 ``target_refused``), with the secret a new hook gets."""
    try:
        check_target(url, allowed_networks_from_settings())
    except TargetRefused as refused:
        raise ValidationFailed(
            f"gwm will not call {url}: {refused.reason}", code="target_refused"
        ) from None
    return hooks.Callback(url=url, secret=new_secret())


def _seen(user: User, cluster: str, kind: str, name: str) -> tuple[Cluster, str]:
    """The cluster and key of ``name`` (of ``kind``) if ``user`` sees it, else 404."""
    target = cluster_get(cluster, user=user)
    found = MODELS[kind]._default_manager.filter(cluster=target, name=name)
    if not readable_objects(user, found).exists():
        raise NotFound(f"cluster {target.name!r} has no {kind} named {name!r}")
    return target, resource_key(kind, target.name, name)


def _changeable(user: User, cluster: str, kind: str, name: str) -> str:
    """The key of what ``user`` may change (404 unseen, 403 without its verb)."""
    target, key = _seen(user, cluster, kind, name)
    require_on(user, CHANGE_VERBS[kind], target, kind, name)
    return key


def _may_write(user: User) -> None:
    if Grants.of(user).read_only:
        raise Forbidden("the token is read-only", verb="hook")


def _put(user: User, key: str, body: HookIn, **job: Any) -> Status[dict[str, Any]]:
    callback = callback_of(body.url)
    hook, created = hooks.hook_put(
        owner=user, key=key, url=callback.url, types=body.types, secret=callback.secret, **job
    )
    return Status(201 if created else 200, hook_out(hook))


def _delete(user: User, key: str) -> Status[None]:
    _may_write(user)
    hooks.hook_delete(owner=user, key=key)
    return Status(204, None)


# -- instances and nodes ------------------------------------------------------------

INSTANCE_HOOK = "/clusters/{cluster}/instances/{instance}/hook"
NODE_HOOK = "/clusters/{cluster}/nodes/{node}/hook"


@router.put(
    INSTANCE_HOOK,
    response=PUT,
    summary="Call a URL whenever this instance changes",
    description=PUT_DOC + " Needs `power` on the instance.",
    operation_id="gwm_events_api_put_instance_hook",
)
def put_instance_hook(
    request: AuthedRequest, cluster: str, instance: str, body: HookIn
) -> Status[dict[str, Any]]:
    return _put(request.auth, _changeable(request.auth, cluster, "instance", instance), body)


@router.get(
    INSTANCE_HOOK,
    response=READ,
    summary="Your hook on this instance",
    operation_id="gwm_events_api_get_instance_hook",
)
def get_instance_hook(request: AuthedRequest, cluster: str, instance: str) -> dict[str, Any]:
    _, key = _seen(request.auth, cluster, "instance", instance)
    return hook_out(hooks.hook_get(owner=request.auth, key=key))


@router.delete(
    INSTANCE_HOOK,
    response=GONE,
    summary="Remove your hook on this instance",
    operation_id="gwm_events_api_delete_instance_hook",
)
def delete_instance_hook(request: AuthedRequest, cluster: str, instance: str) -> Status[None]:
    _, key = _seen(request.auth, cluster, "instance", instance)
    return _delete(request.auth, key)


@router.put(
    NODE_HOOK,
    response=PUT,
    summary="Call a URL whenever this node changes",
    description=PUT_DOC + " Needs `manage_nodes` on the cluster.",
    operation_id="gwm_events_api_put_node_hook",
)
def put_node_hook(
    request: AuthedRequest, cluster: str, node: str, body: HookIn
) -> Status[dict[str, Any]]:
    return _put(request.auth, _changeable(request.auth, cluster, "node", node), body)


@router.get(
    NODE_HOOK,
    response=READ,
    summary="Your hook on this node",
    operation_id="gwm_events_api_get_node_hook",
)
def get_node_hook(request: AuthedRequest, cluster: str, node: str) -> dict[str, Any]:
    _, key = _seen(request.auth, cluster, "node", node)
    return hook_out(hooks.hook_get(owner=request.auth, key=key))


@router.delete(
    NODE_HOOK,
    response=GONE,
    summary="Remove your hook on this node",
    operation_id="gwm_events_api_delete_node_hook",
)
def delete_node_hook(request: AuthedRequest, cluster: str, node: str) -> Status[None]:
    _, key = _seen(request.auth, cluster, "node", node)
    return _delete(request.auth, key)


# -- jobs ---------------------------------------------------------------------------


@router.put(
    "/jobs/{job_id}/hook",
    response={**PUT, 409: Problem},
    summary="Call a URL when this job changes and ends",
    description=PUT_DOC + " Sends the job's events (`job.*` by default) and is removed once its "
    "final event was delivered; a job that has ended already is 409 `job_finished`. Needs "
    "what cancelling the job needs: being its submitter, or the verb of its action.",
    operation_id="gwm_events_api_put_job_hook",
)
def put_job_hook(
    request: AuthedRequest, body: HookIn, job_id: int = JobId
) -> Status[dict[str, Any]]:
    job = job_get(job_id, user=request.auth)
    action = ACTIONS.get(job.action)
    require_job_control(request.auth, job, action.verb if action else "admin")
    return _put(request.auth, hooks.job_key(job.pk), body, job=job)


@router.get(
    "/jobs/{job_id}/hook",
    response=READ,
    summary="Your hook on this job",
    operation_id="gwm_events_api_get_job_hook",
)
def get_job_hook(request: AuthedRequest, job_id: int = JobId) -> dict[str, Any]:
    job = job_get(job_id, user=request.auth)
    return hook_out(hooks.hook_get(owner=request.auth, key=hooks.job_key(job.pk)))


@router.delete(
    "/jobs/{job_id}/hook",
    response=GONE,
    summary="Remove your hook on this job",
    operation_id="gwm_events_api_delete_job_hook",
)
def delete_job_hook(request: AuthedRequest, job_id: int = JobId) -> Status[None]:
    job = job_get(job_id, user=request.auth)
    return _delete(request.auth, hooks.job_key(job.pk))
