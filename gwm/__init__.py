"""gwm: the redesigned Ganeti Web Manager."""

__version__ = "0.1.0"

# The Celery app must exist before any @shared_task module is imported, or
# tasks bind to Celery's default app (and its default broker).
from gwm.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
