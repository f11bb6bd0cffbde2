"""The change log: one row per change of anything gwm tracks (transactional outbox).

``seq`` is the change feed's cursor. It is allocated from a one-row counter
locked inside the writer's transaction, so sequence order equals commit order
and a reader paging ``seq > N`` never skips a row that commits late.
"""

from __future__ import annotations

from django.db import models


class ChangeAction(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class ChangeCounter(models.Model):
    """A single row holding the last sequence number handed out."""

    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"last change #{self.last_seq}"


class Change(models.Model):
    seq = models.BigIntegerField(unique=True)
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cluster_name = models.CharField(max_length=63, blank=True, default="")
    resource = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    action = models.CharField(max_length=16, choices=ChangeAction.choices)
    fields = models.JSONField(default=list, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["cluster", "resource", "name"], name="change_object")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.resource} {self.cluster_name}/{self.name}"
