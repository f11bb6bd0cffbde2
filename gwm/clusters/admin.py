"""Admin pages: clusters are registered through the same service as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from gwm.clusters import services
from gwm.clusters.models import Cluster, Instance, Network, Node, NodeGroup
from gwm.errors import AppError
from gwm.kit.crypto import decrypt


class ClusterForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="RAPI password; stored encrypted. Leave empty to keep the current one.",
    )

    class Meta:
        model = Cluster
        fields = [
            "name",
            "description",
            "rapi_url",
            "username",
            "password",
            "tls_ca_pem",
            "tls_fingerprint",
            "tls_verify",
            "fast_interval",
            "runtime_interval",
            "slow_interval",
            "stale_after",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        password = data.get("password") or ""
        if not password and self.instance.pk and self.instance.password_encrypted:
            password = decrypt(self.instance.password_encrypted)
        connection = services.Connection(
            rapi_url=data["rapi_url"],
            username=data.get("username", ""),
            password=password,
            tls_ca_pem=data.get("tls_ca_pem", ""),
            tls_fingerprint=data.get("tls_fingerprint", ""),
            tls_verify=data.get("tls_verify", True),
        )
        try:
            services.cluster_probe(connection)
        except AppError as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from None
        return data


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterForm
    list_display = ("name", "status", "rapi_url", "software_version", "synced_at", "error")
    list_filter = ("status",)
    search_fields = ("name", "rapi_url", "ganeti_name")
    readonly_fields = (
        "status",
        "error",
        "error_at",
        "ganeti_name",
        "master",
        "software_version",
        "synced_at",
        "fast_synced_at",
        "runtime_synced_at",
        "slow_synced_at",
    )
    actions = ["sync_now"]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        # The stock view wraps everything in one transaction; the form's RAPI
        # check must not run inside one, and the services open their own.
        return self._changeform_view(  # type: ignore[attr-defined]
            request, object_id, form_url, extra_context
        )

    def save_model(self, request: HttpRequest, obj: Cluster, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        password = data.pop("password", "")
        if change:
            changes = {k: data[k] for k in form.changed_data if k in data}
            if password:
                changes["password"] = password
            saved = services.cluster_update(
                Cluster.objects.get(pk=obj.pk), changes=changes, check=False
            )
        else:
            connection = services.Connection(
                rapi_url=data["rapi_url"],
                username=data["username"],
                password=password,
                tls_ca_pem=data["tls_ca_pem"],
                tls_fingerprint=data["tls_fingerprint"],
                tls_verify=data["tls_verify"],
            )
            saved = services.cluster_create(
                name=data["name"],
                connection=connection,
                description=data["description"],
                intervals={
                    k: data[k]
                    for k in ("fast_interval", "runtime_interval", "slow_interval", "stale_after")
                },
                check=False,
            )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Cluster) -> None:
        services.cluster_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for cluster in queryset:
            services.cluster_delete(cluster)

    @admin.action(description="Sync the selected clusters now")
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        for cluster in queryset:
            services.cluster_request_sync(cluster)
        messages.info(request, f"sync queued for {queryset.count()} cluster(s)")


class _CachedAdmin(admin.ModelAdmin):
    """Cached Ganeti state is read-only here: Ganeti is the source of truth."""

    search_fields = ("name",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Instance)
class InstanceAdmin(_CachedAdmin):
    list_display = ("name", "cluster", "status", "ganeti_status", "primary_node", "synced_at")
    list_filter = ("cluster", "status")


@admin.register(Node)
class NodeAdmin(_CachedAdmin):
    list_display = ("name", "cluster", "status", "role", "synced_at")
    list_filter = ("cluster", "status")


@admin.register(NodeGroup)
class NodeGroupAdmin(_CachedAdmin):
    list_display = ("name", "cluster", "alloc_policy", "synced_at")
    list_filter = ("cluster",)


@admin.register(Network)
class NetworkAdmin(_CachedAdmin):
    list_display = ("name", "cluster", "network", "synced_at")
    list_filter = ("cluster",)
