"""The Celery app. The broker is only a doorbell: tasks take ids and re-read the database."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")

app = Celery("gwm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The worker's start and stop (its lease identity and keeper): connected to Celery's signals.
import gwm.worker_process  # noqa: E402, F401
