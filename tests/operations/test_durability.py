"""Fault injection: operations survive dead workers, an unreachable RAPI and Ganeti's archive.

What docs/operations.md ("Durability") promises, tried for real: the simulator
over HTTPS, and — where the test is about a worker dying — `celery -A gwm
worker` processes on RabbitMQ sharing the test database, SIGKILLed at the
worst moments. Every test counts Ganeti jobs by their reason trail
(``gwm:op:<id>``): an operation must reach Ganeti exactly once.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from gwm.clusters.models import Cluster
from gwm.operations.models import FINAL_STATUSES, Job, JobStatus
from gwm.operations.tasks import sweep
from gwm.simulator.server import Running
from tests.clusters.helpers import full_sync, register
from tests.conftest import sim_admin
from tests.operations.distributed import (
    Distributed,
    Worker,
    distributed_mode,
    restart_simulator,
    stop_simulator,
    until,
)

pytestmark = pytest.mark.django_db(transaction=True)

#: Short leases, so a dead worker's job is taken over in seconds, not 90.
LEASE_SECONDS = 3
MARK = "gwm:op:"
FAILPOINT = "operations.after_submit"


@pytest.fixture
def distributed(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[Distributed]:
    """Worker processes on RabbitMQ; this process rings their doorbells and sweeps."""
    settings.GWM_JOB_LEASE_SECONDS = LEASE_SECONDS
    yield from distributed_mode(logs=tmp_path, lease_seconds=LEASE_SECONDS)


def _cluster(simulator: Any, instances: int = 6, nodes: int = 2) -> tuple[Running, Cluster]:
    running = simulator(nodes=nodes, instances=instances, time_scale=0.05, wait_timeout=1.0)
    # Long sync intervals: nothing but the operations under test talks to Ganeti.
    cluster = register(running, name="sim", fast_interval=600.0, runtime_interval=600.0)
    full_sync(cluster)
    cluster.refresh_from_db()
    return running, cluster


def ganeti_jobs(running: Running, job_id: int) -> list[Any]:
    """The simulator's jobs (archived ones too) whose reason trail names gwm job ``job_id``."""
    marker = f"{MARK}{job_id}"
    return [
        job
        for job in list(running.sim.queue.jobs.values())
        if any(str(entry[1]) == marker for op in job.ops for entry in op.input.get("reason", []))
    ]


def gwm_reasons(running: Running) -> Counter[int]:
    """gwm job id → how many Ganeti jobs carry it in their reason trail."""
    counts: Counter[int] = Counter()
    for job in list(running.sim.queue.jobs.values()):
        ids = {
            int(str(entry[1])[len(MARK) :])
            for op in job.ops
            for entry in op.input.get("reason", [])
            if str(entry[1]).startswith(MARK)
        }
        counts.update(ids)
    return counts


def sweep_until_final(job_id: int, *, timeout: float, harness: Distributed | None = None) -> Job:
    """Run the sweeper (as `gwm beat` does, but every 0.3 s) until the job ends."""

    def ended() -> Job | None:
        sweep()
        job = Job.objects.get(pk=job_id)
        return job if job.status in FINAL_STATUSES else None

    try:
        return until(ended, timeout=timeout, interval=0.3, what=f"job {job_id} to end")
    except AssertionError:
        job = Job.objects.get(pk=job_id)
        logs = harness.logs_tail() if harness else ""
        raise AssertionError(
            f"job {job_id} still {job.status} (attempts={job.attempts}, "
            f"ganeti_job_id={job.ganeti_job_id}, last_error={job.last_error!r})\n{logs}"
        ) from None


def _post(api: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/api/v1/clusters/sim{path}", body, content_type="application/json")
    assert response.status_code == 202, response.content
    return dict(response.json())


# -- 1. a worker killed between Ganeti accepting the job and gwm recording its id ---------


def test_worker_killed_after_submit_is_adopted_not_duplicated(
    simulator: Any, api: Client, distributed: Distributed
) -> None:
    running, _ = _cluster(simulator)
    doomed = distributed.start_worker(failpoints=FAILPOINT)
    node = sorted(running.sim.state.nodes)[0]
    name = "adopted.example.test"
    job = _post(
        api,
        "/instances",
        {
            "name": name,
            "disk_template": "plain",
            "disks": [{"size": 1024}],
            "os": next(iter(running.sim.state.instances.values())).os,
            "pnode": node,
            "name_check": False,
            "ip_check": False,
        },
    )

    # The failpoint: the worker SIGKILLs itself right after Ganeti answered with a job id.
    assert doomed.wait_exit(30) == -signal.SIGKILL, doomed.log_tail()
    submitted = ganeti_jobs(running, job["id"])
    assert len(submitted) == 1
    row = Job.objects.get(pk=job["id"])
    assert row.status == JobStatus.PENDING
    assert row.ganeti_job_id is None  # gwm never learnt the id
    assert row.attempts == 1
    assert api.get(f"/api/v1/clusters/sim/instances/{name}").json()["status"] == "PROVISIONING"

    distributed.start_worker()
    done = sweep_until_final(job["id"], timeout=30, harness=distributed)

    assert done.status == JobStatus.SUCCESS, (done.error, done.last_error)
    creates = [
        j
        for j in list(running.sim.queue.jobs.values())
        if j.ops[0].input["OP_ID"] == "OP_INSTANCE_CREATE"
        and j.ops[0].input.get("instance_name") == name
    ]
    assert len(creates) == 1, "the operation reached Ganeti twice"
    assert ganeti_jobs(running, job["id"]) == creates
    assert done.ganeti_job_id == creates[0].id
    assert done.attempts == 1  # adopted: never sent again
    assert "adopted" in done.last_error
    assert name in running.sim.state.instances
    seen = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert seen["status"] == "SUCCESS"
    assert seen["ganeti"]["job_id"] == creates[0].id
    assert "adopted" in seen["last_error"]
    assert api.get(f"/api/v1/clusters/sim/instances/{name}").json()["status"] == "RUNNING"


# -- 2. RAPI down while submitting -----------------------------------------------------
# Nothing dies here, so gwm runs embedded (workers and beat in this process: `live`).

#: outage → (what gwm's last_error says, the RAPI fault that makes it)
OUTAGES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "master_unreachable": ("master daemon", {"master_unreachable": True}),
    "bad_gateway_502": ("502", {"force_status": 502, "force_count": None}),
    "queue_drained_503": ("drained", {"queue_drained": True}),
    "connection_refused": ("refused", None),  # None: the simulator is stopped entirely
}


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_rapi_down_during_submit_leaves_the_job_pending_then_it_runs_once(
    live: Any, outage: str
) -> None:
    said, fault = OUTAGES[outage]
    running = live.running
    name = live.stopped_names()[0]
    if fault is None:
        stop_simulator(running)
    else:
        sim_admin(running, "PUT", "faults", fault)
    restarted: Running | None = None
    try:
        job = live.action(name, "start").json()

        def failed_once() -> dict[str, Any] | None:
            seen = dict(live.api.get(f"/api/v1/jobs/{job['id']}").json())
            assert seen["status"] == "PENDING", f"an unreachable RAPI ended the job: {seen}"
            return seen if seen["attempts"] >= 1 and seen["last_error"] else None

        first = until(failed_once, timeout=20, what="a failed submission attempt")
        assert first["status"] == "PENDING"
        assert first["ganeti"]["job_id"] is None
        assert first["next_attempt_at"] is not None
        assert said in first["last_error"].lower(), first["last_error"]
        assert live.instance(name)["status"] == "BUSY"  # still held by the job

        # Still down: the sweeper keeps retrying (with backoff); the job stays PENDING.
        def retried() -> bool:
            sweep()
            seen = live.api.get(f"/api/v1/jobs/{job['id']}").json()
            return bool(seen["updated_at"] != first["updated_at"])

        until(retried, timeout=20, interval=0.3, what="a retry while the RAPI is down")
        again = live.api.get(f"/api/v1/jobs/{job['id']}").json()
        assert again["status"] == "PENDING"
        assert again["last_error"]
        assert ganeti_jobs(running, job["id"]) == []

        if fault is None:
            restarted = restart_simulator(running)
        else:
            sim_admin(running, "DELETE", "faults")
        done = sweep_until_final(job["id"], timeout=30)

        assert done.status == JobStatus.SUCCESS, (done.error, done.last_error)
        assert done.attempts >= 2
        reached = ganeti_jobs(running, job["id"])
        assert len(reached) == 1, "the operation reached Ganeti more than once"
        assert done.ganeti_job_id == reached[0].id
        assert running.sim.state.instances[name].running_on
        assert live.instance(name)["status"] == "RUNNING"
    finally:
        if restarted is not None:
            restarted.stop()


# -- 3. Ganeti archived the job while no worker was following it ------------------------


def test_job_archived_while_workers_were_down_still_ends_right(
    simulator: Any, api: Client, distributed: Distributed
) -> None:
    running, _ = _cluster(simulator)
    name = sorted(n for n, i in running.sim.state.instances.items() if i.running_on)[0]
    sim_admin(running, "PUT", "queue", {"hold": True})  # Ganeti accepts it but does not run it
    worker = distributed.start_worker()
    job = _post(api, f"/instances/{name}/actions", {"action": "shutdown"})
    recorded = until(
        lambda: Job.objects.filter(pk=job["id"], ganeti_job_id__isnull=False).first(),
        timeout=20,
        what="the Ganeti job id to be recorded",
    )
    worker.kill()  # every gwm worker is gone while Ganeti runs the job and archives it

    sim_admin(running, "PUT", "queue", {"hold": False})
    ganeti_job = running.sim.queue.jobs[recorded.ganeti_job_id]
    until(lambda: ganeti_job.finalized, timeout=10, what="Ganeti to run the job")
    assert sim_admin(running, "PUT", "queue", {"archive": True})["archived"] >= 1
    assert ganeti_job.archived
    assert Job.objects.get(pk=job["id"]).status not in FINAL_STATUSES

    distributed.start_worker()
    done = sweep_until_final(job["id"], timeout=30, harness=distributed)

    assert done.status == JobStatus.SUCCESS, (done.error, done.last_error)
    assert done.ganeti_status == "success"
    assert done.error is None
    assert done.ganeti_ended_at is not None
    assert done.opstatus == ["success"]
    assert ganeti_jobs(running, job["id"]) == [ganeti_job]
    assert running.sim.state.instances[name].running_on is None
    instance = api.get(f"/api/v1/clusters/sim/instances/{name}").json()
    assert instance["status"] == "STOPPED"


def test_job_ganeti_no_longer_knows_at_all_ends_error_job_lost(simulator: Any) -> None:
    """The archive fallback is bounded: a job purged from the archive too ends ERROR."""
    from gwm.operations.tasks import track_job

    running, cluster = _cluster(simulator)
    name = sorted(running.sim.state.instances)[0]
    job = Job.objects.create(
        cluster=cluster,
        cluster_name=cluster.name,
        action="instance.reboot",
        resource_type="instance",
        resource_name=name,
        status=JobStatus.QUEUED,
        ganeti_job_id=4242,
    )
    track_job(job.pk)  # run here, synchronously
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR
    assert job.error is not None and job.error["code"] == "job_lost"


# -- 4. a hundred operations while workers keep dying ------------------------------------

CHAOS_INSTANCES = 25
CHAOS_OPS_PER_INSTANCE = 4  # 100 operations
CHAOS_SEED = 20261122
OPCODES = {
    "start": "OP_INSTANCE_STARTUP",
    "shutdown": "OP_INSTANCE_SHUTDOWN",
    "reboot": "OP_INSTANCE_REBOOT",
}


def _plan(
    rng: random.Random, running_now: dict[str, bool]
) -> tuple[dict[str, list[str]], dict[str, bool]]:
    """Per instance, a chain of actions each valid in the state the previous one leaves."""
    plan: dict[str, list[str]] = {}
    final: dict[str, bool] = {}
    for name, up in running_now.items():
        chain = []
        for _ in range(CHAOS_OPS_PER_INSTANCE):
            action = rng.choice(["shutdown", "reboot"]) if up else "start"
            up = action != "shutdown"
            chain.append(action)
        plan[name], final[name] = chain, up
    return plan, final


@dataclass
class Monkey:
    """Keeps two worker processes running and SIGKILLs one at random moments.

    One of the first two workers and every second replacement (``arm_limit``
    in all, while ``may_arm``) start with the failpoint armed: such a worker
    dies by itself right after its first submission to Ganeti, so it is never
    picked to be killed.
    """

    harness: Distributed
    rng: random.Random
    slots: list[Worker] = field(default_factory=list)
    restart_at: dict[int, float] = field(default_factory=dict)
    next_kill: float = 0.0
    kills: int = 0
    replacements: int = 0
    armed: int = 0
    arm_limit: int = 3

    def start(self) -> None:
        self.slots = [
            self.harness.start_worker(wait=False),
            self.harness.start_worker(failpoints=FAILPOINT, wait=False),
        ]
        self.armed = 1
        self.next_kill = time.monotonic() + self.rng.uniform(1.0, 2.0)

    def step(self, now: float, *, chaos: bool, may_arm: bool) -> None:
        if chaos and now >= self.next_kill:
            victims = [w for w in self.slots if w.alive and not w.failpoints]
            if victims:
                self.rng.choice(victims).kill()
                self.kills += 1
            self.next_kill = now + self.rng.uniform(0.7, 2.0)
        for index, worker in enumerate(self.slots):
            if worker.alive:
                continue
            if index not in self.restart_at:
                self.restart_at[index] = now + self.rng.uniform(0.2, 1.0)
            if now < self.restart_at[index]:
                continue
            del self.restart_at[index]
            self.replacements += 1
            arm = (
                chaos
                and may_arm
                and self.replacements % 2 == 0
                and self.armed < self.arm_limit
                and not any(w.alive and w.failpoints for w in self.slots)
            )
            self.armed += arm
            failpoints = FAILPOINT if arm else ""
            self.slots[index] = self.harness.start_worker(failpoints=failpoints, wait=False)

    def failpoint_deaths(self) -> int:
        return sum(
            1 for w in self.harness.workers if w.failpoints and w.process.poll() == -signal.SIGKILL
        )


def _stuck(job_ids: list[int]) -> list[dict[str, Any]]:
    fields = ("id", "status", "attempts", "last_error", "ganeti_job_id", "lease_until")
    return list(Job.objects.filter(pk__in=job_ids).values(*fields))


@pytest.mark.slow
def test_a_hundred_operations_with_random_worker_kills_each_end_exactly_once(
    simulator: Any, api: Client, distributed: Distributed
) -> None:
    rng = random.Random(CHAOS_SEED)
    running, _ = _cluster(simulator, instances=CHAOS_INSTANCES + 5, nodes=3)
    names = sorted(running.sim.state.instances)[:CHAOS_INSTANCES]
    plan, expected_up = _plan(
        rng, {n: running.sim.state.instances[n].running_on is not None for n in names}
    )
    assert sum(len(chain) for chain in plan.values()) == 100
    monkey = Monkey(distributed, rng)
    monkey.start()
    jobs: dict[int, tuple[str, str]] = {}  # gwm job id → (instance, action)
    inflight: dict[str, int] = {}  # instance → its running gwm job
    last_sweep = 0.0
    deadline = time.monotonic() + 150

    def unposted() -> int:
        return sum(len(chain) for chain in plan.values())

    while unposted() or inflight:
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(
                f"operations lost: {unposted()} never posted, still not ended: "
                f"{_stuck(list(inflight.values()))}\n{distributed.logs_tail()}"
            )
        # An instance whose job ended takes its next operation (no longer held: no 409).
        ended = set(
            Job.objects.filter(pk__in=inflight.values(), status__in=FINAL_STATUSES).values_list(
                "pk", flat=True
            )
        )
        inflight = {name: pk for name, pk in inflight.items() if pk not in ended}
        for name in names:
            if name not in inflight and plan[name]:
                action = plan[name].pop(0)
                job = _post(api, f"/instances/{name}/actions", {"action": action})
                jobs[job["id"]] = (name, action)
                inflight[name] = job["id"]
        # Chaos while operations are still being asked for; then the tail runs in peace.
        monkey.step(now, chaos=unposted() > 0, may_arm=unposted() > 20)
        if now - last_sweep >= 0.5:  # the sweeper, as `gwm beat` runs it (every 5 s)
            sweep()
            last_sweep = now
        time.sleep(0.05)

    rows = {job.pk: job for job in Job.objects.filter(pk__in=jobs)}
    assert len(rows) == 100
    # Every operation ended, and ended well: each was valid for its instance's state.
    failed = {pk: (jobs[pk], job.status, job.error) for pk, job in rows.items()}
    failed = {pk: failure for pk, failure in failed.items() if failure[1] != JobStatus.SUCCESS}
    assert failed == {}
    # Exactly one Ganeti job per gwm job, found by reason trail, and it is the one recorded.
    reasons = gwm_reasons(running)
    assert {pk: n for pk, n in reasons.items() if n != 1} == {}, "an operation ran twice"
    assert set(reasons) == set(rows), "an operation never reached Ganeti, or a stranger did"
    for pk, job in rows.items():
        (ganeti_job,) = ganeti_jobs(running, pk)
        assert job.ganeti_job_id == ganeti_job.id
        name, action = jobs[pk]
        assert ganeti_job.ops[0].input["OP_ID"] == OPCODES[action]
        assert ganeti_job.ops[0].input["instance_name"] == name
    # Ganeti's instances are where the chains of operations leave them.
    assert {n: running.sim.state.instances[n].running_on is not None for n in names} == expected_up
    # The chaos happened: kills, failpoint deaths, and adoptions of what those left behind.
    adopted = sum(1 for job in rows.values() if "adopted" in job.last_error)
    deaths = monkey.failpoint_deaths()
    print(
        f"chaos: {monkey.kills} kills, {deaths} failpoint deaths, {adopted} adopted, "
        f"{len(distributed.workers)} worker processes"
    )
    assert monkey.kills >= 3
    assert deaths >= 2
    assert adopted >= deaths  # each death left a submitted job that only adoption could find
