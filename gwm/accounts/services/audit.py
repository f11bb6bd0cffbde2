"""Writing the audit log. A write's row goes in the write's own transaction; a refused or
failed write's row is written on its own, after the write rolled back."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib.auth.models import User

from gwm.accounts.models import ApiToken, AuditEntry

# Keys whose values are secrets, wherever they are in a body (compared lower-cased).
SECRET_KEYS = frozenset(
    {"password", "new_password", "token", "secret", "rapi_password", "api_key", "x-auth-token"}
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by ``[redacted]``, at any depth, and every NUL
    character by U+FFFD (a refused body may carry one; PostgreSQL stores neither a NUL in
    text nor ``\u0000`` in JSON, and the row must still be written)."""
    if isinstance(value, dict):
        return {
            _text(k): (REDACTED if str(k).lower() in SECRET_KEYS else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _text(value)
    return value


def _text(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403, 429):
        return "denied"
    return "refused" if status < 500 else "error"


def _address(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    user: User | None,
    status: int,
    token: ApiToken | None = None,
    username: str = "",
    address: str | None = None,
    method: str = "",
    path: str = "",
    cluster: str = "",
    resource_type: str = "",
    resource_name: str = "",
    params: dict[str, Any] | None = None,
    detail: str = "",
    job_id: int | None = None,
) -> AuditEntry:
    """One audit row; ``params`` are stored with their secrets removed."""
    return AuditEntry.objects.create(
        user=user if user is not None and user.pk else None,
        username=_text(username or (user.get_username() if user is not None else "")),
        token=token,
        address=_address(address),
        action=action,
        method=method,
        path=_text(path[:500]),
        cluster=_text(cluster[:63]),
        resource_type=_text(resource_type[:32]),
        resource_name=_text(resource_name[:255]),
        params=redact(params or {}),
        outcome=outcome_of(status),
        status=status,
        detail=_text(detail[:500]),
        job_id=job_id,
    )
