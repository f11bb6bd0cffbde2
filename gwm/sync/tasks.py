"""Celery's task shells of the sync: each calls one function of gwm.sync.dispatch."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from gwm.sync import dispatch


@shared_task(name="sync.dispatch_due_syncs", ignore_result=True)
def dispatch_due_syncs() -> int:
    return dispatch.dispatch_due_syncs()


@shared_task(
    name="sync.sync_cluster",
    ignore_result=True,
    # SQLite answers "database is locked" when many clusters write at once;
    # try again shortly instead of waiting for the next dispatch.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def sync_cluster(cluster_id: int, force: bool = False) -> None:
    dispatch.sync_cluster(cluster_id, force=force)
