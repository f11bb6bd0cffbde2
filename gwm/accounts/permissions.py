"""Who may do what: the one place gwm decides it.

Today's rule: every active user with a valid token may read everything;
staff users (and superusers) may change anything, in gwm and in Ganeti.

Reads: every selector narrows what it reads through :func:`readable_clusters`,
:func:`readable_objects` or :func:`readable_jobs`, so role bindings change
this module and no selector. While a rule lets everyone through, its filter
returns the queryset as it is: no join, no subquery, no extra query. Whatever
the rule becomes, an object is readable only when its cluster is (the
selectors render objects through their readable cluster), and what a user
may not read answers 404, like what does not exist.

Writes: handlers call :func:`require_staff` before they look anything up, so
a caller who may not write learns nothing from a 404.
"""

from __future__ import annotations

from typing import TypeVar

from django.contrib.auth.models import User
from django.db.models import Model, QuerySet

from gwm.clusters.models import Cluster
from gwm.errors import Forbidden
from gwm.operations.models import Job

M = TypeVar("M", bound=Model)


def readable_clusters(user: User) -> QuerySet[Cluster]:
    """The clusters ``user`` may read (today: all of them)."""
    return Cluster.objects.all()


def readable_objects(user: User, objects: QuerySet[M]) -> QuerySet[M]:
    """``objects`` (nodes, groups, networks or instances) narrowed to those ``user`` may read."""
    return objects


def readable_jobs(user: User, jobs: QuerySet[Job]) -> QuerySet[Job]:
    """``jobs`` narrowed to those ``user`` may read (today: all of them)."""
    return jobs


def require_staff(user: User, action: str) -> None:
    """403 unless ``user`` may write; ``action`` says what was refused ("register clusters")."""
    if not (user.is_staff or user.is_superuser):
        raise Forbidden(f"only administrators may {action}")
