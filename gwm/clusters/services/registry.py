"""The cluster registry: register, change, unregister, sync now. Each one transaction
with its change rows; every one takes the acting user (``actor``), ready for audit.

Registering or re-pointing a cluster first checks that RAPI answers. That check
is the one place a request talks to Ganeti, and it runs before the
transaction opens, never inside it. Unregistering ends the cluster's jobs
(gwm.operations), so this module sits above operations in the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from gwm.clusters.models import Cluster, ClusterStatus
from gwm.errors import Conflict, ValidationFailed
from gwm.events.models import ChangeAction
from gwm.events.services import ChangeRecord, cause_of, changes_record
from gwm.ganeti.connect import build_client, ca_file_for, stored_password
from gwm.ganeti.failures import RoundFailure, registration_problem
from gwm.kit.audit_hook import audit_here
from gwm.kit.crypto import encrypt
from gwm.kit.enqueue import ring_after_commit
from gwm.operations.services.lifecycle import jobs_end_for_cluster
from gwm.rapi.errors import RapiError

SYNC_TASK = "sync.sync_cluster"

CONNECTION_FIELDS = (
    "rapi_url",
    "username",
    "password",
    "tls_ca_pem",
    "tls_fingerprint",
    "tls_verify",
)


class RapiCheckFailed(ValidationFailed):
    title = "Ganeti RAPI check failed"

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail, code=code)


@dataclass(frozen=True)
class Connection:
    rapi_url: str
    username: str
    password: str
    tls_ca_pem: str
    tls_fingerprint: str
    tls_verify: bool


def cluster_probe(connection: Connection) -> dict[str, Any]:
    """Ask RAPI for /2/info with these settings; a clear 422 when it does not answer right.

    A refused probe leaves no trace: the CA file it wrote for its client is
    removed again unless a registered cluster trusts that same CA.
    """
    try:
        return _probe(connection)
    except RapiCheckFailed:
        _forget_ca_file(connection.tls_ca_pem)
        raise


def _forget_ca_file(pem: str) -> None:
    if not pem or Cluster.objects.filter(tls_ca_pem=pem).exists():
        return
    path = Path(ca_file_for(pem))
    path.unlink(missing_ok=True)


def _probe(connection: Connection) -> dict[str, Any]:
    try:
        with build_client(**connection.__dict__, probe=True) as client:
            info = client.get_cluster_info()
    except RapiError as exc:
        raise RapiCheckFailed(*registration_problem(exc)) from None
    except ValueError as exc:  # contradictory TLS settings, malformed URL
        raise RapiCheckFailed("rapi_settings_invalid", str(exc)) from None
    if not info.name:
        raise RapiCheckFailed("not_ganeti", "RAPI answered /2/info without a cluster name")
    return info.model_dump(mode="json", exclude_none=True)


def _settings_change(cluster: Cluster, changed: list[str]) -> ChangeRecord:
    return ChangeRecord(
        "cluster",
        cluster.name,
        ChangeAction.UPDATED,
        sorted(changed),
        {name: getattr(cluster, name) for name in changed if name not in {"password"}},
    )


def _ring_sync(cluster_id: int) -> None:
    ring_after_commit(SYNC_TASK, cluster_id, force=True)


def cluster_create(
    *,
    actor: User | None,
    name: str,
    connection: Connection,
    description: str = "",
    intervals: dict[str, float] | None = None,
    check: bool = True,
) -> Cluster:
    if Cluster.objects.filter(name=name).exists():
        raise Conflict(f"a cluster named {name!r} is already registered", code="name_taken")
    if check:
        cluster_probe(connection)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: only the name can clash here
                cluster = Cluster.objects.create(
                    name=name,
                    description=description,
                    rapi_url=connection.rapi_url,
                    username=connection.username,
                    password_encrypted=encrypt(connection.password) if connection.password else "",
                    tls_ca_pem=connection.tls_ca_pem,
                    tls_fingerprint=connection.tls_fingerprint,
                    tls_verify=connection.tls_verify,
                    status=ClusterStatus.PROVISIONING,
                    **(intervals or {}),
                )
        except IntegrityError:
            raise Conflict(f"a cluster named {name!r} is already registered") from None
        changes_record(
            cluster_id=cluster.pk,
            cluster_name=cluster.name,
            cause=cause_of(actor),
            records=[
                ChangeRecord(
                    "cluster",
                    cluster.name,
                    ChangeAction.CREATED,
                    ["status"],
                    {"status": cluster.status, "rapi_url": cluster.rapi_url},
                )
            ],
        )
        audit_here()  # a request's row, with the change it describes
        _ring_sync(cluster.pk)
    return cluster


def cluster_update(
    cluster: Cluster, *, actor: User | None, changes: dict[str, Any], check: bool = True
) -> Cluster:
    """Change settings; new connection settings are checked against RAPI first."""
    connection_changes = {k: v for k, v in changes.items() if k in CONNECTION_FIELDS}
    if connection_changes and check:
        current = Connection(
            rapi_url=cluster.rapi_url,
            username=cluster.username,
            password=_current_password(cluster, changes),
            tls_ca_pem=cluster.tls_ca_pem,
            tls_fingerprint=cluster.tls_fingerprint,
            tls_verify=cluster.tls_verify,
        )
        cluster_probe(Connection(**{**current.__dict__, **connection_changes}))
    with transaction.atomic():
        locked = Cluster.objects.select_for_update(no_key=True).get(pk=cluster.pk)
        changed: list[str] = []
        for field, value in changes.items():
            if field == "password":
                locked.password_encrypted = encrypt(value) if value else ""
                changed.append("password")
            elif getattr(locked, field) != value:
                setattr(locked, field, value)
                changed.append(field)
        if not changed:
            return locked
        if connection_changes:
            # Point the next round at the new settings right away.
            locked.next_fast_at = locked.next_slow_at = locked.next_runtime_at = None
            _ring_sync(locked.pk)
        locked.save()
        changes_record(
            cluster_id=locked.pk,
            cluster_name=locked.name,
            records=[_settings_change(locked, changed)],
            cause=cause_of(actor),
        )
        audit_here()
    return locked


def _current_password(cluster: Cluster, changes: dict[str, Any]) -> str:
    if "password" in changes:
        return ""  # the new one is checked
    try:
        return stored_password(cluster)
    except RoundFailure as failure:
        raise ValidationFailed(str(failure), code="credentials_unreadable") from None


def cluster_delete(cluster: Cluster, *, actor: User | None) -> None:
    """Unregister: the cached objects go with it, and its unfinished jobs end now."""
    with transaction.atomic():
        jobs_end_for_cluster(cluster)
        changes_record(
            cluster_id=cluster.pk,  # its change rows lose the link when the row goes
            cluster_name=cluster.name,
            records=[ChangeRecord("cluster", cluster.name, ChangeAction.DELETED)],
            cause=cause_of(actor),
        )
        Cluster.objects.filter(pk=cluster.pk).delete()


def cluster_request_sync(cluster: Cluster, *, actor: User | None) -> None:
    """Make every tier due now and ring the doorbell after commit."""
    with transaction.atomic():
        now = timezone.now()
        Cluster.objects.filter(pk=cluster.pk).update(
            next_fast_at=now, next_runtime_at=now, next_slow_at=now
        )
        _ring_sync(cluster.pk)
