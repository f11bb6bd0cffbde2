"""Admin pages: clusters are registered through the same service as the API.

The stock change form runs in one transaction, and a RAPI check must never
run inside one (on SQLite it would hold the write lock while Ganeti answers).
So the check runs first, before the admin's view opens its transaction, and
the form inside only reads its verdict.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse

from gwm.accounts.auth import session_user
from gwm.clusters.models import Cluster, Instance, Network, Node, NodeGroup
from gwm.clusters.services import registry
from gwm.errors import AppError
from gwm.ganeti.connect import stored_password
from gwm.ganeti.failures import RoundFailure

#: Where the RAPI check's verdict waits for the form, on the request.
VERDICT = "gwm_rapi_verdict"


class ClusterForm(forms.ModelForm):  # type: ignore[type-arg]  # not subscriptable at run time
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

    #: (connection checked, error or None), set by the admin before its transaction.
    rapi_verdict: ClassVar[tuple[registry.Connection, AppError | None] | None] = None

    def connection(self) -> registry.Connection | None:
        """The connection the form's fields describe; None while those fields have errors."""
        data = self.cleaned_data
        if self.errors or "rapi_url" not in data:
            return None
        password = data.get("password") or ""
        if not password and self.instance.pk:
            try:
                password = stored_password(self.instance)
            except RoundFailure as failure:
                raise forms.ValidationError(str(failure), code="credentials_unreadable") from None
        return registry.Connection(
            rapi_url=data["rapi_url"],
            username=data.get("username", ""),
            password=password,
            tls_ca_pem=data.get("tls_ca_pem", ""),
            tls_fingerprint=data.get("tls_fingerprint", ""),
            tls_verify=data.get("tls_verify", True),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        connection = self.connection()
        if connection is None or self.rapi_verdict is None:
            return data  # the check ran before (ClusterAdmin.changeform_view)
        checked, error = self.rapi_verdict
        if checked != connection:
            raise forms.ValidationError("the RAPI settings changed while checked; save again")
        if error is not None:
            raise forms.ValidationError(error.detail, code=error.code)
        return data


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # as above
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
    ) -> HttpResponse:
        if request.method == "POST":
            setattr(request, VERDICT, self._check_rapi(request, object_id))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _check_rapi(
        self, request: HttpRequest, object_id: str | None
    ) -> tuple[registry.Connection, AppError | None] | None:
        """Ask RAPI about the posted settings, outside any transaction."""
        instance = Cluster.objects.filter(pk=object_id).first() if object_id else None
        form = ClusterForm(request.POST, instance=instance)
        if not form.is_valid():
            return None  # the admin shows the form's errors; nothing to check yet
        connection = form.connection()
        if connection is None:
            return None
        try:
            registry.cluster_probe(connection)
        except AppError as exc:
            return connection, exc
        return connection, None

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        verdict = getattr(request, VERDICT, None)
        return type(form.__name__, (form,), {"rapi_verdict": verdict})

    def save_model(self, request: HttpRequest, obj: Cluster, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        password = data.pop("password", "")
        if change:
            changes = {k: data[k] for k in form.changed_data if k in data}
            if password:
                changes["password"] = password
            saved = registry.cluster_update(
                Cluster.objects.get(pk=obj.pk),
                actor=session_user(request),
                changes=changes,
                check=False,
            )
        else:
            connection = registry.Connection(
                rapi_url=data["rapi_url"],
                username=data["username"],
                password=password,
                tls_ca_pem=data["tls_ca_pem"],
                tls_fingerprint=data["tls_fingerprint"],
                tls_verify=data["tls_verify"],
            )
            saved = registry.cluster_create(
                actor=session_user(request),
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
        registry.cluster_delete(obj, actor=session_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for cluster in queryset:
            registry.cluster_delete(cluster, actor=session_user(request))

    @admin.action(description="Sync the selected clusters now")
    def sync_now(self, request: HttpRequest, queryset: Any) -> None:
        for cluster in queryset:
            registry.cluster_request_sync(cluster, actor=session_user(request))
        messages.info(request, f"sync queued for {queryset.count()} cluster(s)")


class _CachedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # as above
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
