"""A write that meets a database too busy for it (SQLite's write lock held past the busy
timeout) gets a 503 problem with Retry-After, never a 500, and changes nothing."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError

import gwm.audit_writes
import gwm.kit.enqueue
from gwm.operations.models import Job
from gwm.operations.tasks import sweep
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


@pytest.mark.parametrize(
    "cut",
    [
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
    ],
    ids=["restarted", "closed"],
)
def test_a_connection_cut_by_a_database_restart_is_a_503(
    live: Live, monkeypatch: pytest.MonkeyPatch, cut: Exception
) -> None:
    """A pooled connection PostgreSQL cut when it restarted: a moment's trouble, not a bug."""
    live.quiet()
    name = live.running_names()[0]

    @contextmanager
    def gone(*args: Any, **kwargs: Any) -> Any:
        raise cut
        yield  # pragma: no cover

    monkeypatch.setattr(gwm.audit_writes.transaction, "atomic", gone)
    answer = live.action(name, "shutdown")
    assert answer.status_code == 503, answer.content
    assert answer["Retry-After"] == "1"
    assert answer.json()["code"] == "database_busy"
    monkeypatch.undo()
    assert live.instance(name)["status"] == "RUNNING"


def test_a_write_while_the_broker_is_down_is_accepted_and_runs_once_it_is_back(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is a committed row before its doorbell rings: a broker refusing the
    doorbell delays the job until the sweeper rings it again, and is not a 500."""
    live.quiet()
    name = live.running_names()[0]
    refused: list[str] = []

    def broker_down(task: str, *args: Any, **kwargs: Any) -> None:
        refused.append(task)
        raise KombuOperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(gwm.kit.enqueue.current_app, "send_task", broker_down)
    answer = live.action(name, "shutdown")
    assert answer.status_code == 202, answer.content
    assert "operations.submit_job" in refused
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == "PENDING" and job.attempts == 0
    monkeypatch.undo()
    sweep()  # what beat rings every 5 s
    assert live.wait_done(answer.json())["status"] == "SUCCESS"
    assert live.instance(name)["status"] == "STOPPED"
    assert not live.sim_instance(name).running_on
