"""The change log: one row per change of anything gwm tracks (transactional outbox).

``seq`` is the change feed's cursor, the stream's event id and every webhook
delivery's event id. It is allocated from a one-row counter locked inside the
writer's transaction, so sequence order equals commit order and a reader
paging ``seq > N`` never skips a row that commits late. ``previous_seq`` is
the seq of the same resource's change before this one, so a consumer that
sees a gap knows exactly what it missed.
"""

from __future__ import annotations

from django.db import models


class ChangeAction(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class ChangeCounter(models.Model):
    """A single row holding the last sequence number handed out, and the retention floor:
    rows up to ``floor_seq`` were purged, so a cursor below it cannot be served."""

    last_seq = models.BigIntegerField(default=0)
    floor_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"last change #{self.last_seq} (floor #{self.floor_seq})"


class Change(models.Model):
    seq = models.BigIntegerField(unique=True)
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cluster_name = models.CharField(max_length=63, blank=True, default="")
    resource = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    action = models.CharField(max_length=16, choices=ChangeAction.choices)
    # The event type, "instance.status_changed" say (gwm.events.types).
    type = models.CharField(max_length=48, default="")
    previous_seq = models.BigIntegerField(null=True, blank=True)
    fields = models.JSONField(default=list, blank=True)
    data = models.JSONField(default=dict, blank=True)  # the changed fields' new values
    before = models.JSONField(default=dict, blank=True)  # ... and their old ones, when known
    # What caused it, when known: a gwm job, and the user behind the request or job.
    job_id = models.BigIntegerField(null=True, blank=True)
    user_id = models.IntegerField(null=True, blank=True)
    user_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["cluster", "resource", "name", "seq"], name="change_object_seq"),
            models.Index(fields=["created_at"], name="change_created"),
        ]

    def __str__(self) -> str:
        what = self.type or f"{self.resource}.{self.action}"
        return f"#{self.seq} {what} {self.cluster_name}/{self.name}"
