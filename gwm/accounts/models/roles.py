"""Roles (named sets of verbs) and role bindings (a user or group, a role, a scope)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class Role(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    verbs = models.JSONField(default=list, help_text="the verbs of gwm.accounts.verbs.VERBS")
    builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Scope(models.TextChoices):
    GLOBAL = "global", "every cluster"
    CLUSTER = "cluster", "one cluster"
    INSTANCE = "instance", "one instance"
    TAG = "tag", "a cluster's instances carrying a tag"


class RoleBinding(models.Model):
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="bindings")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="role_bindings"
    )
    scope = models.CharField(max_length=16, choices=Scope.choices)
    cluster = models.ForeignKey(
        "clusters.Cluster",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="role_bindings",
    )
    # By name: gwm's cache row of an instance is replaced when Ganeti's is.
    instance = models.CharField(max_length=255, blank=True, default="")
    tag = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                name="binding_has_one_subject",
                condition=(
                    models.Q(user__isnull=False, group__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False)
                ),
            )
        ]
        indexes = [models.Index(fields=["cluster", "scope"])]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        return f"{who}: {self.role} on {self.scope}"
