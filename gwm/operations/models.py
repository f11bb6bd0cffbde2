"""Jobs: every change gwm asked of Ganeti, and the jobs others ran (foreign).

A gwm job is the durable record of an operation: what, on what, by whom,
with which parameters, and then everything Ganeti said about it. The row is
written in the same transaction as the resource's new status; workers only
ever move it forward. It outlives Ganeti's own job archive.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from gwm.observability.context import job_request_id


class JobStatus(models.TextChoices):
    PENDING = "PENDING"  # accepted, not yet in Ganeti
    QUEUED = "QUEUED"
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    CANCELING = "CANCELING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELED = "CANCELED"


FINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED})
#: Ganeti's job status → gwm's.
FROM_GANETI = {
    "queued": JobStatus.QUEUED,
    "waiting": JobStatus.WAITING,
    "waitlock": JobStatus.WAITING,
    "running": JobStatus.RUNNING,
    "canceling": JobStatus.CANCELING,
    "success": JobStatus.SUCCESS,
    "error": JobStatus.ERROR,
    "canceled": JobStatus.CANCELED,
}


class Job(models.Model):
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    cluster_name = models.CharField(max_length=63)
    action = models.CharField(max_length=64, help_text='e.g. "instance.start"')
    resource_type = models.CharField(max_length=16)
    resource_name = models.CharField(max_length=255, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.PENDING)
    foreign = models.BooleanField(default=False, help_text="run by someone else than gwm")
    source = models.CharField(
        max_length=128, blank=True, default="", help_text="who ran a foreign job (reason trail)"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    request_hash = models.CharField(max_length=64, blank=True, default="")
    # The X-Request-ID of the request that created it, for the workers' log lines
    # (the doorbell's header is lost with the doorbell; this is not).
    request_id = models.CharField(max_length=128, blank=True, default=job_request_id)

    # Ganeti's side.
    ganeti_job_id = models.BigIntegerField(null=True, blank=True)
    ganeti_status = models.CharField(max_length=16, blank=True, default="")
    summary = models.JSONField(default=list, blank=True)
    opstatus = models.JSONField(default=list, blank=True)
    opresult = models.JSONField(default=list, blank=True)
    log = models.JSONField(default=list, blank=True)
    error = models.JSONField(null=True, blank=True)
    ganeti_received_at = models.DateTimeField(null=True, blank=True)
    ganeti_started_at = models.DateTimeField(null=True, blank=True)
    ganeti_ended_at = models.DateTimeField(null=True, blank=True)

    # Delivery: attempts to submit, and the worker currently on it.
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    submit_floor = models.BigIntegerField(
        null=True, blank=True, help_text="Ganeti job ids above this may be ours (adoption)"
    )
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "ganeti_job_id"],
                condition=models.Q(ganeti_job_id__isnull=False),
                name="job_unique_ganeti_id",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="job_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="job_due"),
            models.Index(fields=["cluster", "resource_type", "resource_name"], name="job_resource"),
            models.Index(fields=["created_at"], name="job_created"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} {self.action} {self.cluster_name}/{self.resource_name}"

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES
