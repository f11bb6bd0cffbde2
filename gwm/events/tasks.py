"""Celery's task shells of the tracker: the change log's purge, the webhook fan-out and
delivery. Services ring them by name after commit; beat rings them too
(settings.CELERY_BEAT_SCHEDULE) so a lost doorbell only delays."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from gwm.events.retention import changes_purge
from gwm.events.services import WEBHOOKS_TASK
from gwm.events.webhooks.rounds import deliver_round
from gwm.kit.enqueue import ring


@shared_task(name="events.purge_old_changes", ignore_result=True)
def purge_old_changes() -> int:
    cutoff = timezone.now() - timedelta(days=settings.GWM_CHANGES_RETENTION_DAYS)
    return changes_purge(older_than=cutoff)


@shared_task(name=WEBHOOKS_TASK, ignore_result=True)
def deliver_webhooks() -> None:
    """The webhook doorbell (every commit that writes changes, and beat): fan the new
    changes out, send what is due; ring again while work is left."""
    if deliver_round():
        ring(WEBHOOKS_TASK)
