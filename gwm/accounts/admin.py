"""Admin pages for API tokens: created through the same service as ``gwm token create``.

A token's secret exists only at creation: the admin shows it once, in the page
that follows the save, and stores only its hash, like the command line does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from gwm.accounts.auth import session_user
from gwm.accounts.models import ApiToken
from gwm.accounts.services.login import IdentityUnavailable
from gwm.accounts.services.tokens import token_create, token_revoke

ADD_FIELDS = ("user", "name", "expires_at")


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login, saying so when the user's directory (LDAP) cannot be reached,
    where Django's own form would fail the page."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except IdentityUnavailable:
            raise ValidationError(
                "The directory that holds this user cannot be reached; try again later.",
                code="identity_unavailable",
            ) from None


admin.site.login_form = AdminLoginForm

if TYPE_CHECKING:  # generic for the type checker only; Django's class takes no parameter
    TokenModelAdmin = admin.ModelAdmin[ApiToken]
else:
    TokenModelAdmin = admin.ModelAdmin


@admin.register(ApiToken)
class ApiTokenAdmin(TokenModelAdmin):
    list_display = (
        "name",
        "user",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__username", "prefix")
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ADD_FIELDS
        return (*ADD_FIELDS, "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        if obj is None:
            return ()
        # The secret cannot be changed, only revoked and replaced by a new token.
        return ("user", "prefix", "created_at", "last_used_at", "revoked_at")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, plaintext = token_create(
            actor=session_user(request), user=obj.user, name=obj.name, expires_at=obj.expires_at
        )
        obj.pk, obj.prefix, obj.secret_hash = token.pk, token.prefix, token.secret_hash
        obj.created_at = token.created_at
        self.message_user(
            request,
            f"Token {token.name!r} created. Copy it now; it is not shown again: {plaintext}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            token_revoke(token, actor=session_user(request))
        self.message_user(request, f"Revoked {queryset.count()} token(s).")
