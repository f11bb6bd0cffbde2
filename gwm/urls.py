from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from gwm.api import api
from gwm.health import healthz, readyz
from gwm.observability.endpoint import metrics

admin.site.site_header = "gwm administration"
admin.site.site_title = "gwm"
admin.site.index_title = "Ganeti clusters, operations and accounts"

urlpatterns = [
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
]
