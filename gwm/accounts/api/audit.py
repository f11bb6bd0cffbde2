"""/audit: the audit log, newest first, for global admins (every row) and cluster admins
(the rows of their clusters). Rows are written by gwm.audit_writes and the services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from ninja import Router
from ninja.params import functions as param

from gwm.accounts.api.audit_schemas import AuditPage
from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.accounts.grants import Grants
from gwm.accounts.models import AuditEntry
from gwm.clusters.models import Cluster
from gwm.errors import BadRequest, Forbidden
from gwm.kit.http import rfc3339
from gwm.kit.pagination import check_limit, paginate
from gwm.schemas import Problem

router = Router(auth=caller_auth)

OUTCOMES = frozenset({"success", "denied", "refused", "error"})
COLUMNS = [
    "id",
    "at",
    "username",
    "token_id",
    "address",
    "action",
    "method",
    "path",
    "cluster",
    "resource_type",
    "resource_name",
    "params",
    "outcome",
    "status",
    "detail",
    "job_id",
]


def _any_of(what: str) -> Any:
    return param.Query(
        None, description=f"{what}; a comma-separated list or a repeated parameter means any"
    )


ANY_USER = _any_of("user names")
ANY_CLUSTER = _any_of("cluster names")
ANY_RESOURCE = _any_of("`type` or `type:name`, e.g. `instance:web1`")
ANY_ACTION = _any_of('actions, e.g. "instance.reboot"')
ANY_OUTCOME = _any_of("outcomes: success, denied, refused, error")


def _parts(values: list[str] | None) -> list[str]:
    return [p.strip() for v in values or () for p in v.split(",") if p.strip()]


def _time(raw: str, name: str) -> datetime:
    try:
        value = parse_datetime(raw)
    except ValueError:  # well formed but no such time (month 13)
        value = None
    if value is not None and value.utcoffset() is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:  # before year 1 once in UTC
            value = None
    if value is None:
        raise BadRequest(
            f"{name} must be an RFC 3339 time, e.g. 2026-11-22T00:00:00Z", parameter=name
        )
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def visible_entries(request: AuthedRequest) -> QuerySet[AuditEntry]:
    """Global admins read every row; cluster admins the rows of their clusters; others 403."""
    ids = Grants.of(request.auth).cluster_ids("admin")
    if ids is None:
        return AuditEntry.objects.all()
    if not ids:
        raise Forbidden("only administrators read the audit log", verb="admin")
    names = list(Cluster.objects.filter(pk__in=ids).values_list("name", flat=True))
    return AuditEntry.objects.filter(cluster__in=names)


def _filtered(
    entries: QuerySet[AuditEntry],
    *,
    user: list[str],
    cluster: list[str],
    resource: list[str],
    action: list[str],
    outcome: list[str],
    since: str | None,
    until: str | None,
) -> QuerySet[AuditEntry]:
    if user:
        entries = entries.filter(username__in=user)
    if cluster:
        entries = entries.filter(cluster__in=cluster)
    if resource:
        any_resource = Q()
        for part in resource:
            kind, _, name = part.partition(":")
            if not kind:
                raise BadRequest("resource is type or type:name", parameter="resource")
            any_resource |= (
                Q(resource_type=kind, resource_name=name) if name else Q(resource_type=kind)
            )
        entries = entries.filter(any_resource)
    if action:
        entries = entries.filter(action__in=action)
    if outcome:
        unknown = set(outcome) - OUTCOMES
        if unknown:
            raise BadRequest(
                f"unknown outcome {', '.join(sorted(unknown))}; one of: "
                f"{', '.join(sorted(OUTCOMES))}",
                parameter="outcome",
            )
        entries = entries.filter(outcome__in=outcome)
    if since:
        entries = entries.filter(at__gte=_time(since, "since"))
    if until:
        entries = entries.filter(at__lt=_time(until, "until"))
    return entries


def _render(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in COLUMNS if k not in {"username", "at"}}
    out["user"] = row["username"]
    out["at"] = rfc3339(row["at"])
    return out


@router.get(
    "/audit",
    response={200: AuditPage, 400: Problem, 401: Problem, 403: Problem},
    summary="The audit log: who did what, when, from where, and how it ended; newest first",
    description=(
        "Every write request (its parameters with secrets removed), every login and token "
        "change. Global admins read every row; cluster admins the rows of their clusters. "
        "`since` is inclusive, `until` exclusive (RFC 3339)."
    ),
    operation_id="gwm_accounts_api_list_audit",
)
def list_audit(
    request: AuthedRequest,
    user: list[str] | None = ANY_USER,
    cluster: list[str] | None = ANY_CLUSTER,
    resource: list[str] | None = ANY_RESOURCE,
    action: list[str] | None = ANY_ACTION,
    outcome: list[str] | None = ANY_OUTCOME,
    since: str | None = None,
    until: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    entries = _filtered(
        visible_entries(request),
        user=_parts(user),
        cluster=_parts(cluster),
        resource=_parts(resource),
        action=_parts(action),
        outcome=_parts(outcome),
        since=since,
        until=until,
    )
    page = paginate(
        entries,
        columns=COLUMNS,
        order_column="id",
        descending=True,
        cursor=cursor,
        limit=check_limit(limit),
    )
    next_url = None
    if page.next_cursor is not None:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        next_url = f"{request.path}?{query.urlencode()}"
    return {"items": [_render(row) for row in page.rows], "next": next_url}
