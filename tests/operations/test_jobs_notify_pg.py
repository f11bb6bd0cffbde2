"""A waiter in this process woken by a job that another process moves (PostgreSQL LISTEN/NOTIFY).

The job is a real operation on the simulator. This process accepts it and
waits on ``GET /jobs/{id}/wait``; a separate Python process (as a `gwm worker`
would be) submits it to Ganeti and follows it to its end by calling the worker
tasks directly. That process's in-process wake-ups cannot reach this one: only
``pg_notify`` → this process's LISTEN thread can (gwm/events/notify.py).

PostgreSQL only (mark ``postgres``): scripts/run-tests leaves it out of its SQLite
pass (``-m "not postgres"``) and runs it in its PostgreSQL pass; run on another
database it fails, it never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from gwm.events.notify import broadcaster, job_channel
from gwm.operations.models import Job
from tests.clusters.helpers import full_sync, register
from tests.operations.distributed import ROOT, database_url, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WORKER = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from gwm.operations.models import Job
    from gwm.operations.tasks import submit_job, track_job

    job_id = int(sys.argv[1])
    submit_job(job_id)
    track_job(job_id)
    job = Job.objects.get(pk=job_id)
    print(f"{job.status} {job.ganeti_job_id}")
    """
)


def require_postgresql(request: pytest.FixtureRequest) -> None:
    if connection.vendor == "postgresql":
        return
    pytest.fail(
        f"needs PostgreSQL (LISTEN/NOTIFY), but the database is {connection.vendor}: set "
        "DATABASE_URL=postgresql://... (scripts/run-tests runs it in its PostgreSQL pass), "
        "or leave it out with -m 'not postgres'",
        pytrace=False,
    )


def _run_worker_process(job_id: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for variable in ("PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST", "GWM_FAILPOINTS"):
        env.pop(variable, None)
    env.update(DJANGO_SETTINGS_MODULE="gwm.settings", DATABASE_URL=database_url())
    return subprocess.run(
        [sys.executable, "-c", WORKER, str(job_id)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_waiter_here_is_woken_by_a_job_another_process_finishes(
    request: pytest.FixtureRequest, simulator: Any, api: Client
) -> None:
    require_postgresql(request)
    running = simulator(nodes=2, instances=12, time_scale=0.05, wait_timeout=1.0)
    cluster = register(running, name="sim", fast_interval=600.0, runtime_interval=600.0)
    full_sync(cluster)
    name = next(n for n, i in sorted(running.sim.state.instances.items()) if i.running_on)

    # Accepted here; no worker runs in this process, so nothing moves it but the other one.
    response = api.post(
        f"/api/v1/clusters/sim/instances/{name}/actions",
        {"action": "shutdown"},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    assert response.json()["status"] == "PENDING"

    answers: list[dict[str, Any]] = []

    def wait_until_final() -> None:
        client = Client(**api.defaults)
        try:
            status = "PENDING"
            while status not in {"SUCCESS", "ERROR", "CANCELED"}:
                started = time.monotonic()
                answer = client.get(f"/api/v1/jobs/{job_id}/wait?timeout=60&status={status}")
                body = answer.json()
                answers.append(
                    {"code": answer.status_code, "elapsed": time.monotonic() - started, **body}
                )
                if answer.status_code != 200 or not body["changed"]:
                    return
                status = body["job"]["status"]
        finally:
            connections.close_all()

    waiter = threading.Thread(target=wait_until_final, name="waiter")
    waiter.start()
    channel = job_channel(job_id)
    until(lambda: broadcaster.waiting(channel), timeout=10, what="the wait to subscribe")
    assert Job.objects.get(pk=job_id).status == "PENDING"  # still unmoved while it waits

    worker = _run_worker_process(job_id)
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert worker.stdout.split()[0] == "SUCCESS", worker.stdout

    waiter.join(timeout=90)
    assert not waiter.is_alive(), f"the waiter was never woken: {answers}"
    assert answers, "the wait returned nothing"
    assert all(a["code"] == 200 for a in answers), answers
    # Every wait returned because the other process changed the job, never by timeout.
    assert all(a["changed"] is True for a in answers), answers
    assert all(a["elapsed"] < 30 for a in answers), answers
    assert answers[-1]["job"]["status"] == "SUCCESS"
    assert answers[-1]["job"]["ganeti"]["job_id"] == int(worker.stdout.split()[1])
    assert running.sim.state.instances[name].running_on is None
