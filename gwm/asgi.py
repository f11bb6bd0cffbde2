"""The ASGI application `gwm serve` runs.

Two Django handlers behind one path check: ``/api/`` gets the API's own short
middleware list (``GWM_API_MIDDLEWARE``: bearer tokens need no sessions, CSRF,
messages or a lazy ``request.user``), everything else (the admin, its static
files) the full ``MIDDLEWARE``. Under ASGI each synchronous middleware step
costs a hop to a thread and back, which made the admin's middleware most of a
cached read's time. Both run on reused threads (gwm.kit.asgi_threads).
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application

from gwm.kit.asgi_threads import ReusedThreads
from gwm.serving import exit_with_parent

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")
exit_with_parent()  # an API process of `gwm serve` does not outlive it

site_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings need the env var above)
from django.core.handlers.asgi import ASGIHandler  # noqa: E402


def _api_handler() -> ASGIHandler:
    """Django's ASGI handler built with ``GWM_API_MIDDLEWARE`` (read once, at start)."""
    full = settings.MIDDLEWARE
    settings.MIDDLEWARE = settings.GWM_API_MIDDLEWARE
    try:
        return ASGIHandler()
    finally:
        settings.MIDDLEWARE = full


class _ByPath:
    def __init__(self, api: Any, site: Any) -> None:
        self.api, self.site = api, site

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = self.api if scope.get("path", "").startswith("/api/") else self.site
        await target(scope, receive, send)


# Static files go to the site handler, whose middleware starts with WhiteNoise's.
application = ReusedThreads(
    _ByPath(_api_handler(), site_application), keep=settings.GWM_REQUEST_THREADS
)
