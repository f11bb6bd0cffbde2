"""A write that meets a database too busy for it (SQLite's write lock held past the busy
timeout) gets a 503 problem with Retry-After, never a 500, and changes nothing."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from django.db import OperationalError

import gwm.audit_writes
from gwm.operations.models import Job
from tests.operations.conftest import Live

pytestmark = pytest.mark.django_db(transaction=True)


def _busy_at_begin(monkeypatch: pytest.MonkeyPatch) -> None:
    """``BEGIN IMMEDIATE`` fails as SQLite fails it after its busy timeout."""

    @contextmanager
    def locked(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("database is locked")
        yield  # pragma: no cover

    monkeypatch.setattr(gwm.audit_writes.transaction, "atomic", locked)


def test_a_write_on_a_busy_database_is_a_503_and_changes_nothing(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    live.quiet()
    name = live.running_names()[0]
    assert live.instance(name)["status"] == "RUNNING"
    jobs_before = Job.objects.count()
    _busy_at_begin(monkeypatch)

    answer = live.action(name, "shutdown")

    assert answer.status_code == 503, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer["Retry-After"] == "1"
    assert answer.json()["code"] == "database_busy"
    monkeypatch.undo()
    assert Job.objects.count() == jobs_before
    assert live.instance(name)["status"] == "RUNNING"
    assert live.sim_instance(name).running_on  # Ganeti was not asked


def test_the_same_write_goes_through_once_the_database_is_free(live: Live) -> None:
    live.quiet()
    name = live.running_names()[0]
    answer = live.action(name, "shutdown")
    assert answer.status_code == 202, answer.content
    assert live.wait_done(answer.json())["status"] == "SUCCESS"
    assert live.instance(name)["status"] == "STOPPED"
