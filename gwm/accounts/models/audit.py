"""The audit log: who did what, when, from where, with which token, and how it ended."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(max_length=150, blank=True, default="", db_index=True)
    token = models.ForeignKey("accounts.ApiToken", null=True, blank=True, on_delete=models.SET_NULL)
    address = models.GenericIPAddressField(null=True, blank=True)
    # "auth.login", "token.create", "role_binding.delete", "instance.reboot", "cluster.update"...
    action = models.CharField(max_length=64, db_index=True)
    method = models.CharField(max_length=8, blank=True, default="")
    path = models.CharField(max_length=500, blank=True, default="")
    cluster = models.CharField(max_length=63, blank=True, default="", db_index=True)
    resource_type = models.CharField(max_length=32, blank=True, default="")
    resource_name = models.CharField(max_length=255, blank=True, default="")
    params = models.JSONField(default=dict, blank=True, help_text="secrets removed")
    # "success", "denied" (401/403/429), "refused" (other 4xx), "error" (5xx).
    outcome = models.CharField(max_length=16, db_index=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True, default="")
    job_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.outcome}"
