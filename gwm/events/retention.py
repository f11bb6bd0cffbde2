"""The change log's retention: old changes are purged and the floor moves up.

A reader whose cursor is below the floor gets ``410 Gone`` (the feed) or a
``reset`` event (the stream) and relists. Webhooks keep what they still have
to fan out: the floor never passes the cursor of an active webhook, so a
receiver that is down for a while loses nothing its retries could still bring.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Min

from gwm.events.models import Change, ChangeCounter, Webhook

PURGE_BATCH = 5000


def changes_purge(*, older_than: datetime) -> int:
    """Delete the changes made before ``older_than`` (those webhooks still need stay)."""
    newest_old = (
        Change.objects.filter(created_at__lt=older_than)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if newest_old is None:
        return 0
    held = Webhook.objects.filter(active=True).aggregate(lowest=Min("cursor"))["lowest"]
    floor = newest_old if held is None else min(newest_old, held)
    deleted = 0
    while True:
        with transaction.atomic():
            counter = ChangeCounter.objects.select_for_update().filter(pk=1).first()
            if counter is None or floor <= counter.floor_seq:
                return deleted
            batch = list(
                Change.objects.filter(seq__lte=floor)
                .order_by("seq")
                .values_list("seq", flat=True)[:PURGE_BATCH]
            )
            if batch:
                Change.objects.filter(seq__in=batch).delete()
                deleted += len(batch)
            if len(batch) < PURGE_BATCH:
                # Readers see the new floor only once every row below it is gone.
                counter.floor_seq = floor
                counter.save(update_fields=["floor_seq"])
                return deleted
