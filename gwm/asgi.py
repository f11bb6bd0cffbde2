import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")

application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings need the env var above)

if settings.GWM_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
