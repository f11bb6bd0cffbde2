"""The two answers that need Ganeti now: an operation's dry run, and a console.

Both ask Ganeti with bounded timeouts, keep nothing, and answer a problem
(502, 503, 504) when Ganeti cannot answer now.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from gwm.clusters.models import Cluster, Instance
from gwm.errors import Conflict, NotFound, ValidationFailed
from gwm.ganeti.connect import client_for
from gwm.ganeti.failures import RoundFailure, answer_problem, job_error_from_ganeti
from gwm.ganeti.vocabulary import DRY_RUN_REASON
from gwm.operations.actions import Action, SendRequest
from gwm.operations.services.submit import RETRY_AFTER_SECONDS, check_cluster, lock_target
from gwm.rapi.errors import RapiBadRequest, RapiError, RapiNotFound, RapiUnavailable

DRY_RUN_TIMEOUT = 30.0
#: Not in Ganeti yet (or any more): its RAPI would answer a bare 500.
NO_CONSOLE = {"PROVISIONING", "DELETING"}


def operation_dry_run(
    *,
    actor: User | None,
    cluster: Cluster,
    action: Action,
    resource_name: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Ask Ganeti's pre-checks (``?dry-run=1``); nothing is kept, in Ganeti or in gwm."""
    if not action.dry_run:
        raise ValidationFailed(
            f"Ganeti's RAPI has no dry run for {action.key}", code="dry_run_unsupported"
        )
    check_cluster(cluster)
    with transaction.atomic():
        lock_target(cluster, action, resource_name, params)
    request = SendRequest(name=resource_name, params=params, reason=DRY_RUN_REASON, dry_run=True)
    try:
        with client_for(cluster) as client:
            ganeti_job_id = action.send(client, request)
            final = client.wait_for_job(ganeti_job_id, timeout=DRY_RUN_TIMEOUT)
    except RapiBadRequest as exc:
        error = {"code": "wrong_input", "message": str(exc), "ganeti": exc.body}
        return {"action": action.key, "ok": False, "ganeti_job_id": None, "error": error, "log": []}
    except (RapiError, RoundFailure) as exc:
        raise answer_problem(cluster.name, exc) from None
    ok = str(final.status) == "success"
    return {
        "action": action.key,
        "ok": ok,
        "ganeti_job_id": ganeti_job_id,
        "error": None if ok else job_error_from_ganeti(final.error),
        "log": [list(entry) for ops_log in (final.oplog or []) for entry in ops_log],
    }


def instance_console(*, actor: User | None, cluster: Cluster, name: str) -> dict[str, Any]:
    """Console details come from Ganeti at the moment they are asked for."""
    instance = Instance.objects.filter(cluster=cluster, name=name).first()
    if instance is None:
        raise NotFound(f"cluster {cluster.name!r} has no instance named {name!r}")
    if instance.status in NO_CONSOLE:
        raise Conflict(
            f"no console for {name} while it is {instance.status}",
            code="console_unavailable",
            resource_status=instance.status,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    try:
        with client_for(cluster) as client:
            console = client.get_instance_console(name)
    except RapiUnavailable as exc:
        raise Conflict(
            f"no console for {name} now: {exc}",
            code="console_unavailable",
            resource_status=instance.status,
        ) from None
    except RapiNotFound:
        raise NotFound(f"Ganeti does not know instance {name!r}") from None
    except (RapiError, RoundFailure) as exc:
        raise answer_problem(cluster.name, exc) from None
    return console.model_dump(mode="json")
