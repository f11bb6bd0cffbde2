"""The lease keeper renews the claims of running tasks, and only those.

A task whose release fails (SQLite's write lock held past its timeout, a database
restarting) used to leave its claim renewed by the keeper for as long as the worker
lived, so the sweeper never handed the job on: it stayed PENDING with no one on it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from gwm.kit import lease
from gwm.operations.models import Job, JobStatus
from gwm.operations.worker.lease import JOB_LEASE

# transaction=True: the keeper closes its connection after each tick, as its thread does.
pytestmark = pytest.mark.django_db(transaction=True)


def _job() -> Job:
    return Job.objects.create(
        action="instance.shutdown",
        resource_type="instance",
        resource_name="web1",
        cluster_name="gone",
        status=JobStatus.PENDING,
        next_attempt_at=timezone.now(),
    )


def _lease_until(job: Job) -> Any:
    return Job.objects.values_list("lease_until", flat=True).get(pk=job.pk)


def _expire_soon(job: Job) -> Any:
    soon = timezone.now() + timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(lease_until=soon)
    return soon


def test_a_running_task_s_claim_is_renewed() -> None:
    job = _job()
    owner = JOB_LEASE.claim(job.pk)
    assert owner is not None
    try:
        soon = _expire_soon(job)
        assert lease.LeaseKeeper([JOB_LEASE], every=60).renew_all() == 1
        assert _lease_until(job) > soon + timedelta(seconds=10)
    finally:
        JOB_LEASE.release(job.pk, owner)
    assert lease.LeaseKeeper([JOB_LEASE], every=60).renew_all() == 0


def test_a_claim_whose_release_failed_runs_out_and_the_sweeper_takes_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = _job()
    owner = JOB_LEASE.claim(job.pk)
    assert owner is not None
    real_filter = Job._default_manager.filter

    class Locked:
        def update(self, **_: Any) -> int:
            raise OperationalError("database is locked")

    monkeypatch.setattr(Job._default_manager, "filter", lambda *a, **k: Locked())
    with pytest.raises(OperationalError):
        JOB_LEASE.release(job.pk, owner)
    monkeypatch.setattr(Job._default_manager, "filter", real_filter)

    # Still leased in the database (the UPDATE failed), but no task of this process
    # holds it any more: the keeper leaves it to run out.
    assert Job.objects.get(pk=job.pk).lease_owner == owner
    soon = _expire_soon(job)
    assert lease.LeaseKeeper([JOB_LEASE], every=60).renew_all() == 0
    assert _lease_until(job) == soon
    # Once it ran out the sweeper's dispatch may take the job.
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert JOB_LEASE.dispatch(job.pk)
