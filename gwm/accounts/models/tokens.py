"""Who a caller is: API tokens, account profiles and failed logins.

A token's secret is never stored: only an HMAC of it under a numbered server
pepper (gwm.accounts.tokens), so a copy of the database cannot be replayed.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models


class AccountSource(models.TextChoices):
    LOCAL = "local", "gwm's own password"
    LDAP = "ldap", "LDAP directory"
    KEYSTONE = "keystone", "Keystone identity service"


class Profile(models.Model):
    """What gwm knows of a user beyond Django's: where it comes from, whether it is a service."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gwm_profile"
    )
    source = models.CharField(
        max_length=16, choices=AccountSource.choices, default=AccountSource.LOCAL
    )
    service = models.BooleanField(
        default=False, help_text="a service account: no password, long-lived tokens"
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.source})"


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="the token's description")
    # The token's public id (it is part of the token): finds the row without the secret.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    pepper = models.PositiveIntegerField(default=0, help_text="the number of the pepper it uses")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Scope: what the token may do is at most what its user may, narrowed by these.
    read_only = models.BooleanField(default=False)
    clusters = models.JSONField(
        default=list, blank=True, help_text="cluster names it is limited to; empty: all"
    )
    networks = models.JSONField(
        default=list, blank=True, help_text="source networks (CIDR) it is accepted from"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user}, gwm_{self.prefix}…)"

    def live(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class LoginFailure(models.Model):
    """A failed password login; recent ones throttle the user and the address."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.GenericIPAddressField(db_index=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"failed login of {self.username} from {self.address}"
