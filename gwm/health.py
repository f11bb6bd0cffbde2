"""Liveness (/healthz) and readiness (/readyz) probes, outside the versioned API."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

from gwm.errors import PROBLEM_CONTENT_TYPE, problem_body


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database answers, migrations are applied, the broker is reachable."""
    checks: dict[str, Any] = {
        "database": _check_database(),
        "broker": _check_broker(),
    }
    failed = {name: result for name, result in checks.items() if result != "ok"}
    if not failed:
        return JsonResponse({"status": "ok", "checks": checks})
    body = problem_body(
        status=503,
        code="not_ready",
        title="Not ready",
        detail="; ".join(f"{name}: {result}" for name, result in failed.items()),
        instance=request.path,
        checks=checks,
    )
    response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
    response["Retry-After"] = "5"
    return response


def _check_database() -> str:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return f"unreachable ({exc.__class__.__name__}: {exc})".strip()
    if pending:
        return f"{len(pending)} migrations not applied (run: gwm migrate)"
    return "ok"


def _check_broker() -> str:
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        return "ok"
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many transport-specific types
        return f"unreachable ({exc.__class__.__name__}: {exc})"
    return "ok"
