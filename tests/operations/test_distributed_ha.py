"""Distributed mode end to end, with real processes, while its services fail under it.

Everything an operator runs (docs/deployment.md, "Distributed mode") runs here as
its own process: `gwm migrate`, two `gwm api` (A and B, on two ports), two `gwm
worker` (w1, w2), one `gwm beat`, on a PostgreSQL cluster and a RabbitMQ node that
this module starts for itself (in a temporary directory, on free loopback ports),
so it may stop, restart and kill them without touching anything else the machine
runs (tests/operations/private_services.py; the processes: ha_harness.py). The
Ganeti cluster is the simulator, served over HTTPS from this process.

Every test looks through the HTTP API as a user would, and counts the simulator's
Ganeti jobs by their reason trail (``gwm:op:<id>``): an operation reaches Ganeti
exactly once. Through the outages (RabbitMQ stopped, PostgreSQL restarted) a webhook
points at a receiver this process runs on loopback (tests/operations/ha_receiver.py):
every change the feed shows for the outage's window must reach it, signed. The
processes log JSON (distributed mode's default), so the lines of one operation are
found in the API's and the workers' logs by the request id it was posted with.

The test process never opens gwm's database itself (no ``django_db`` mark, not
``postgres``): scripts/run-tests runs it once, in its SQLite pass (``-m "not
postgres"``), and leaves it out of the PostgreSQL pass (``-m django_db``). Its
tests share the services (module scope), so ``xdist_group`` keeps them on one
xdist worker.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gwm.simulator.app import DEFAULT_USERS, Simulator
from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.server import Running, serve_in_thread
from tests.conftest import sim_admin
from tests.operations.distributed import until
from tests.operations.ha_harness import (
    CLUSTER,
    FINAL,
    INSTANCES,
    METRICS_TOKEN,
    Harness,
    harness_running,
    iso_stamp,
)
from tests.operations.ha_receiver import Receiver
from tests.operations.private_services import log_tail

pytestmark = [pytest.mark.xdist_group("distributed_ha")]


@pytest.fixture(scope="module")
def simulated() -> Iterator[Running]:
    state = generate_cluster(nodes=3, instances=INSTANCES, seed=11)
    sim = Simulator(state, SimConfig(time_scale=0.05, wait_timeout=1.0), dict(DEFAULT_USERS))
    running = serve_in_thread(sim)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def ha(simulated: Running, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with harness_running(simulated, tmp_path_factory.mktemp("distributed-ha")) as harness:
        yield harness


# -- webhooks: every change of a window reaches a receiver on loopback ------------------

#: After the operations of an outage ended, how long their changes may take to arrive.
DELIVERY_WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Subscription:
    """A webhook on the receiver: its id, secret, path and the seq it starts after."""

    id: int
    secret: str
    path: str
    since: int


def _subscribe(ha: Harness, receiver: Receiver, label: str) -> Subscription:
    """A webhook for everything (no filter) to a path of its own on the receiver."""
    path = f"/{label}/{uuid.uuid4().hex[:8]}"
    with ha.client("api_a") as client:
        answer = client.post(
            "/api/v1/webhooks", json={"url": receiver.url(path), "description": label}
        )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["active"] is True and made["secret"].startswith("whsec_"), made
    # It hears of changes after its cursor: last_seq() when it was made.
    return Subscription(int(made["id"]), str(made["secret"]), path, int(made["cursor"]))


def _feed(ha: Harness, since: int, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Every event after ``since`` the feed has now (all its pages), and the next cursor."""
    items: list[dict[str, Any]] = []
    with ha.client("api_b") as client:
        while True:
            answer = client.get("/api/v1/changes", params={"since": since, "limit": 1000, **params})
            assert answer.status_code == 200, answer.text
            page = answer.json()
            items.extend(page["items"])
            since = int(page["next_since"])
            if not page["more"]:
                return items, since


def _last_seq(ha: Harness) -> int:
    """The newest change seq committed now (the feed's ``last_seq``)."""
    with ha.client("api_b") as client:
        answer = client.get("/api/v1/changes", params={"since": 0, "limit": 1})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["last_seq"])


def _assert_every_change_delivered(ha: Harness, receiver: Receiver, hook: Subscription) -> None:
    """Each change seq the feed holds after the webhook's start reached the receiver (at
    least once, by webhook-id) within DELIVERY_WAIT_SECONDS, signed with its secret."""
    events, _ = _feed(ha, hook.since)
    window = {int(e["seq"]): e for e in events}
    assert window, "no change in the window: nothing to prove"
    began = time.monotonic()

    def missing() -> list[int]:
        return sorted(set(window) - receiver.delivered_seqs(hook.path))

    try:
        until(
            lambda: not missing(),
            timeout=DELIVERY_WAIT_SECONDS,
            interval=0.5,
            what=f"the {len(window)} changes of the window at the receiver",
        )
    except AssertionError:
        lost = missing()
        logged: dict[int, Any] = {}
        with ha.client("api_a") as client:
            health = client.get(f"/api/v1/webhooks/{hook.id}").json()
            for status in ("pending", "failed", "delivered"):
                page = client.get(
                    f"/api/v1/webhooks/{hook.id}/deliveries",
                    params={"status": status, "limit": 100},
                ).json()
                for d in page.get("items", []):
                    if d["seq"] in lost:
                        logged[d["seq"]] = (d["status"], d["attempts"], d["error"], d["response"])
        raise AssertionError(
            f"{len(lost)} of {len(window)} changes after seq {hook.since} never reached the "
            f"receiver in {DELIVERY_WAIT_SECONDS:.0f} s: {lost[:40]}\n"
            f"their types: {Counter(window[s]['type'] for s in lost)}\n"
            f"webhook {hook.id}: cursor {health.get('cursor')}, health {health.get('health')}\n"
            f"the delivery log on them: {logged}\n"
            + "\n".join(ha.grep_logs("webhook", "deliver", of=("w1", "w2"))[-20:])
        ) from None
    late = time.monotonic() - began
    received = [d for d in receiver.deliveries(hook.path) if d.seq in window]
    unsigned = [d.webhook_id for d in received if not d.verifies(hook.secret)]
    assert unsigned == [], f"deliveries whose signature does not verify: {unsigned[:20]}"
    mismatched = [d.webhook_id for d in received if d.event()["seq"] != d.seq]
    assert mismatched == [], f"a body's seq is not its webhook-id's: {mismatched[:20]}"
    duplicates = len(received) - len({d.webhook_id for d in received})
    print(
        f"webhook {hook.id}: all {len(window)} changes after seq {hook.since} delivered "
        f"({duplicates} twice), the last {late:.1f} s after the feed was read; "
        f"types {dict(Counter(e['type'] for e in window.values()))}"
    )


@pytest.fixture
def subscribe(ha: Harness, receiver: Receiver) -> Iterator[Callable[[str], Subscription]]:
    """Makes webhooks on the receiver; deletes them after the test (whatever its end), so
    the tests after it do not pay for their deliveries."""
    made: list[Subscription] = []

    def make(label: str) -> Subscription:
        made.append(_subscribe(ha, receiver, label))
        return made[-1]

    yield make
    for hook in made:
        with contextlib.suppress(httpx.HTTPError), ha.client("api_a") as client:
            client.delete(f"/api/v1/webhooks/{hook.id}")


# -- 1. posted through API A, waited on through API B -----------------------------------


def test_a_job_posted_on_one_api_is_waited_on_through_the_other(ha: Harness) -> None:
    (name,) = ha.take(1, running=True)
    for api in ("api_a", "api_b"):
        assert ha.instance(api, name)["status"] == "RUNNING"

    posted = ha.post_action("api_a", name, "shutdown")
    assert posted.status_code == 202, posted.text
    job = posted.json()
    assert job["status"] == "PENDING"

    # Every wait on B returns because a worker (another process) moved the job: through
    # PostgreSQL NOTIFY, not the waiter's own 5 s recheck.
    waits: list[dict[str, Any]] = []
    status = job["status"]
    with ha.client("api_b", timeout=90) as client:
        while status not in FINAL:
            answer = client.get(
                f"/api/v1/jobs/{job['id']}/wait", params={"timeout": 60, "status": status}
            )
            returned = time.time()
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen = body["job"]
            waits.append(
                {
                    "from": status,
                    "to": seen["status"],
                    "changed": body["changed"],
                    "late": round(returned - iso_stamp(seen["updated_at"]), 3),
                }
            )
            assert body["changed"] is True, waits
            status = seen["status"]
    print(f"\nwaits on B: {waits}")
    assert status == "SUCCESS", seen
    finished_late = time.time() - iso_stamp(seen["finished_at"])
    assert all(w["late"] < 2.0 for w in waits), f"a wait returned late: {waits}"
    assert waits[-1]["to"] == "SUCCESS"
    assert finished_late < 3.0
    assert len(ha.ganeti_job_of(job["id"])) == 1
    assert ha.sim.sim.state.instances[name].running_on is None
    for api in ("api_a", "api_b"):
        assert ha.instance(api, name)["status"] == "STOPPED"
        assert ha.job(api, job["id"])["status"] == "SUCCESS"


# -- 2. a change stream on API B sees what API A changed --------------------------------


def _read_stream(ha: Harness, frames: list[dict[str, Any]], stop: threading.Event) -> None:
    import json

    with (
        ha.client("api_b", timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", "/api/v1/changes/stream", params={"cluster": CLUSTER}) as response,
    ):
        frames.append({"http": response.status_code, "at": time.time()})
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith(":"):
                frames.append({"heartbeat": line, "at": time.time()})
            elif line.startswith("event:"):
                event["event"] = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                event["data"] = json.loads(line.partition(":")[2])
            elif not line and event:
                frames.append({**event, "at": time.time()})
                event = {}


def test_a_stream_on_api_b_receives_a_change_made_through_api_a(ha: Harness) -> None:
    (name,) = ha.take(1, running=False)
    before = ha.instance("api_b", name)
    assert before["status"] == "STOPPED"
    frames: list[dict[str, Any]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_stream, args=(ha, frames, stop), daemon=True)
    reader.start()
    until(
        lambda: any("heartbeat" in f for f in frames), timeout=20, what="the stream's first frame"
    )
    assert frames[0]["http"] == 200

    posted = ha.post_action("api_a", name, "start")
    assert posted.status_code == 202, posted.text
    job_id = posted.json()["id"]

    def seen(kind: str, match: Any) -> dict[str, Any] | None:
        return next((f for f in list(frames) if f.get("event") == kind and match(f["data"])), None)

    def job_ended() -> dict[str, Any] | None:
        return seen("job.succeeded", lambda d: d["resource"]["name"] == str(job_id))

    def back_running() -> dict[str, Any] | None:
        return seen(
            "instance.status_changed",
            lambda d: (
                d["resource"]["name"] == name and d["changes"]["status"]["after"] == "RUNNING"
            ),
        )

    try:
        ended = until(job_ended, timeout=60, what="job.succeeded on API B's stream")
        running = until(back_running, timeout=20, what="the instance RUNNING on the stream")
    finally:
        stop.set()
    created = seen("job.created", lambda d: d["resource"]["name"] == str(job_id))
    assert created is not None, [f.get("event") for f in frames]
    assert created["data"]["cause"]["job"] == job_id
    assert running["data"]["cause"]["job"] == job_id
    assert running["data"]["seq"] > created["data"]["seq"]
    job = ha.job("api_a", job_id)
    late = round(ended["at"] - iso_stamp(job["finished_at"]), 3)
    print(f"\nstream on B: job.succeeded {late} s after the job ended")
    assert late < 5.0
    assert ha.instance("api_b", name)["status"] == "RUNNING"


# -- 3. RabbitMQ down for 30 s while operations are asked for ---------------------------

BROKER_OUTAGE_SECONDS = 30.0


def test_operations_posted_while_rabbitmq_is_down_all_run_once_when_it_is_back(
    ha: Harness, receiver: Receiver, subscribe: Callable[[str], Subscription]
) -> None:
    hook = subscribe("rabbitmq-down")
    names = ha.take(6)
    plans = {name: ha.toggle(name) for name in names}
    for name in names:
        assert ha.instance("api_a", name)["status"] in {"RUNNING", "STOPPED"}
    before_ganeti = len(ha.sim.sim.queue.jobs)

    stopped = time.monotonic()
    ha.mq.stop()
    posts: list[dict[str, Any]] = []
    for index, name in enumerate(names):
        api = ("api_a", "api_b")[index % 2]
        t = time.monotonic()
        answer = ha.post_action(api, name, plans[name][0])
        posts.append(
            {
                "instance": name,
                "api": api,
                "code": answer.status_code,
                "seconds": round(time.monotonic() - t, 2),
                "body": answer.json() if answer.status_code < 500 else answer.text[:300],
            }
        )
        time.sleep(1.0)
    print(f"\nPOSTs while RabbitMQ is down: {[(p['code'], p['seconds']) for p in posts]}")

    # Each accepted one is still waiting for the broker (and nothing reached Ganeti).
    jobs = _jobs_of(ha, names)
    for job in jobs.values():
        assert job["status"] == "PENDING", job
    while time.monotonic() - stopped < BROKER_OUTAGE_SECONDS:
        time.sleep(1.0)
    for job_id in jobs:
        assert ha.job("api_b", job_id)["status"] == "PENDING"
    assert len(ha.sim.sim.queue.jobs) == before_ganeti, "a job reached Ganeti without a broker"
    alive_in_outage = ha.all_alive()

    restarted = ha.mq.start()
    ha.timings["rabbitmq_restart"] = restarted
    back = time.monotonic()
    ended = {pk: ha.wait_final("api_a", pk, timeout=120) for pk in jobs}
    ha.timings["broker_outage_recovery"] = time.monotonic() - back
    print(
        f"RabbitMQ back after {restarted:.1f} s; all {len(ended)} jobs ended "
        f"{ha.timings['broker_outage_recovery']:.1f} s later; alive during it: {alive_in_outage}"
    )
    assert {pk: j["status"] for pk, j in ended.items()} == dict.fromkeys(ended, "SUCCESS")
    ha.assert_once_in_ganeti(ended)
    for name, (_, status) in plans.items():
        assert ha.instance("api_b", name)["status"] == status
    assert all(ha.all_alive().values()), ha.logs()
    evidence = ha.grep_logs(
        "unhandled error on POST", "kit/enqueue.py", "kombu.exceptions", of=("api_a", "api_b")
    )
    assert [p["code"] for p in posts] == [202] * len(names), (
        f"POSTs while RabbitMQ was down (their jobs were kept and ran): {posts}\n"
        + "\n".join(evidence[:12])
    )
    # No webhook delivery was lost to the outage: the jobs' events, the instances'.
    _assert_every_change_delivered(ha, receiver, hook)


def _jobs_of(ha: Harness, names: list[str]) -> dict[int, dict[str, Any]]:
    """The latest job on each instance, as the API lists it."""
    found: dict[int, dict[str, Any]] = {}
    with ha.client("api_a") as client:
        for name in names:
            answer = client.get(
                "/api/v1/jobs", params={"cluster": CLUSTER, "resource": f"instance:{name}"}
            )
            assert answer.status_code == 200, answer.text
            items = answer.json()["items"]
            assert items, f"no job was recorded for {name}"
            latest = max(items, key=lambda j: j["id"])
            found[latest["id"]] = latest
    return found


# -- 4. PostgreSQL restarted under the running processes --------------------------------


@dataclass
class Prober:
    """GETs through both APIs every 0.2 s, noting every answer."""

    ha: Harness
    seen: list[tuple[float, str, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        clients = {api: self.ha.client(api, timeout=10) for api in ("api_a", "api_b")}
        try:
            while not self.stop.is_set():
                for api, client in clients.items():
                    try:
                        answer = client.get(
                            f"/api/v1/clusters/{CLUSTER}/instances", params={"limit": 5}
                        )
                        code, text = answer.status_code, answer.text[:300]
                    except httpx.HTTPError as exc:
                        code, text = 0, f"{type(exc).__name__}: {exc}"
                    self.seen.append((time.monotonic(), api, code, text))
                time.sleep(0.2)
        finally:
            for client in clients.values():
                client.close()


def test_postgresql_restarted_under_apis_and_workers_then_work_goes_on(
    ha: Harness, receiver: Receiver, subscribe: Callable[[str], Subscription]
) -> None:
    hook = subscribe("postgres-restart")
    (name,) = ha.take(1)
    action, after = ha.toggle(name)
    assert ha.instance("api_a", name)["status"] != after
    prober = Prober(ha)
    thread = threading.Thread(target=prober.run, daemon=True)
    thread.start()
    time.sleep(1.0)
    restart_at = time.monotonic()
    ha.timings["postgres_restart"] = ha.pg.restart()

    def both_answer() -> bool:
        recent = [s for s in prober.seen if s[0] > time.monotonic() - 1.5]
        return len(recent) >= 4 and all(s[2] == 200 for s in recent)

    try:
        until(both_answer, timeout=60, interval=0.3, what="both APIs to answer 200 again")
    finally:
        prober.stop.set()
        thread.join(timeout=15)
    after_restart = [s for s in prober.seen if s[0] >= restart_at]
    codes = Counter((s[1], s[2]) for s in after_restart)
    recovered = (
        max(s[0] for s in after_restart if s[2] != 200) - restart_at
        if any(s[2] != 200 for s in after_restart)
        else 0.0
    )
    print(
        f"\nPostgreSQL restart took {ha.timings['postgres_restart']:.2f} s; answers after it: "
        f"{dict(codes)}; last non-200 {recovered:.1f} s after"
    )
    failures = sorted({(s[1], s[2], s[3]) for s in after_restart if s[2] != 200})

    # A new operation, posted on A and waited on through B, goes through.
    posted = _post_retrying(ha, "api_a", name, action)
    started = time.monotonic()
    job = ha.wait_final("api_b", posted["id"], timeout=60)
    ha.timings["first_job_after_pg_restart"] = time.monotonic() - started
    assert job["status"] == "SUCCESS", job
    ha.assert_once_in_ganeti({job["id"]: job})
    assert ha.instance("api_b", name)["status"] == after
    assert all(ha.all_alive().values()), ha.logs()
    assert not [f for f in failures if f[1] >= 500 and f[1] != 503], (
        f"answers other than 200/503 after the restart: {failures}\n"
        + "\n".join(
            ha.grep_logs(
                "unhandled error on GET", "django.db.utils.OperationalError", of=("api_a", "api_b")
            )
        )
    )
    # No webhook delivery was lost to the restart (nor to the work after it).
    _assert_every_change_delivered(ha, receiver, hook)


def _post_retrying(ha: Harness, api: str, name: str, action: str) -> dict[str, Any]:
    codes = []
    for _ in range(20):
        answer = ha.post_action(api, name, action)
        codes.append(answer.status_code)
        if answer.status_code == 202:
            if len(codes) > 1:
                print(f"POST after the restart answered {codes}")
            return dict(answer.json())
        assert answer.status_code == 503, answer.text
        time.sleep(0.5)
    raise AssertionError(f"POST never accepted: {codes}")


# -- 5. a second beat started by mistake ------------------------------------------------

BEAT_WINDOW_SECONDS = 10.0


def _round_counts(ha: Harness) -> Counter[str]:
    """Sync rounds per tier, from /metrics (gwm_sync_round_duration_seconds_count)."""
    families = _scrape(ha, "api_a")
    counts: Counter[str] = Counter()
    for (sample, labels), value in families.items():
        if sample == "gwm_sync_round_duration_seconds_count":
            counts[dict(labels).get("tier", "?")] += int(value)
    return counts


def _rapi_window(ha: Harness, seconds: float) -> tuple[Counter[str], Counter[str]]:
    """RAPI requests the simulator served, by route, and sync rounds, in ``seconds``."""
    rounds_before = _round_counts(ha)
    ha.sim.sim.stats.reset()
    time.sleep(seconds)
    served = Counter({route: c.count for route, c in list(ha.sim.sim.stats.by_route.items())})
    rounds = _round_counts(ha)
    rounds.subtract(rounds_before)
    return served, +rounds


def _broker_connections(ha: Harness) -> dict[str, int]:
    """RabbitMQ's client connections: name → bytes received from that client."""
    done = ha.mq.ctl("-q", "list_connections", "--no-table-headers", "name", "recv_oct")
    assert done.returncode == 0, done.stdout + done.stderr
    found = {}
    for line in done.stdout.splitlines():
        name, _, received = line.rpartition("\t")
        if name and received.strip().isdigit():
            found[name] = int(received)
    return found


def test_a_second_beat_doubles_no_sync_round_and_no_operation(ha: Harness) -> None:
    one_served, one_rounds = _rapi_window(ha, BEAT_WINDOW_SECONDS)
    connected = _broker_connections(ha)
    second = ha.start_beat("beat2")
    try:
        # Its start (some seconds on a busy machine), until it holds a connection of its
        # own; then it rings as often as the first one.
        def opened() -> dict[str, int]:
            assert second.alive, second.tail()
            return {k: v for k, v in _broker_connections(ha).items() if k not in connected}

        new = until(opened, timeout=30, interval=0.5, what="beat2's connection to the broker")
        time.sleep(1.0)
        new = opened()
        two_served, two_rounds = _rapi_window(ha, BEAT_WINDOW_SECONDS)
        grown = {
            k: v - new[k] for k, v in _broker_connections(ha).items() if k in new and v > new[k]
        }
        print(
            f"\none beat: {sum(one_served.values())} RAPI requests {dict(one_served)}, "
            f"rounds {dict(one_rounds)}\ntwo beats: {sum(two_served.values())} RAPI requests "
            f"{dict(two_served)}, rounds {dict(two_rounds)}; bytes the broker received on "
            f"the connections opened since beat2 started: {grown}"
        )
        # The second beat does ring: it publishes on a connection of its own.
        assert sum(grown.values()) > 1000, (new, grown)
        one, two = sum(one_served.values()), sum(two_served.values())
        assert one_rounds["watch"] > 0, "no watch round in the first window: is beat dispatching?"
        assert two_rounds["watch"] <= one_rounds["watch"] + 2, "a second beat doubled the rounds"
        assert sum(two_rounds.values()) <= sum(one_rounds.values()) + 3
        assert two <= one * 1.3 + 3, "a second beat made the sync's RAPI requests more frequent"

        # Operations asked for with two beats running reach Ganeti once each.
        names = ha.take(4)
        plans = {name: ha.toggle(name) for name in names}
        posted = {}
        for index, name in enumerate(names):
            answer = ha.post_action(("api_a", "api_b")[index % 2], name, plans[name][0])
            assert answer.status_code == 202, answer.text
            posted[answer.json()["id"]] = name
        ended = {pk: ha.wait_final("api_b", pk, timeout=60) for pk in posted}
        assert {pk: j["status"] for pk, j in ended.items()} == dict.fromkeys(ended, "SUCCESS")
        ha.assert_once_in_ganeti(ended)
        for pk, name in posted.items():
            assert ha.instance("api_a", name)["status"] == plans[name][1]
            assert ended[pk]["attempts"] == 1, ended[pk]
    finally:
        second.stop()


# -- 6. two hundred operations while workers are SIGKILLed -------------------------------

#: Instances the chaos test takes: each is toggled, then toggled back once the first
#: operation ended, so 2 x 100 operations, all while workers are killed.
CHAOS_INSTANCES = 100
CHAOS_OPERATIONS = 2 * CHAOS_INSTANCES
CHAOS_SECONDS = 30.0
CHAOS_HOLD_SECONDS = 12.0
#: Posts per turn of the loop (a turn sleeps 0.1 s).
CHAOS_POSTS_PER_TURN = 4
#: From the first post, how long every operation may take to be posted and to end.
CHAOS_DEADLINE_SECONDS = 180.0
JOB_ENDS = "job.succeeded,job.failed,job.canceled"
OPEN = "PENDING,QUEUED,WAITING,RUNNING,CANCELING"


def test_two_hundred_operations_while_workers_are_killed_each_end_once(ha: Harness) -> None:
    rng = random.Random(20270101)
    names = ha.take(CHAOS_INSTANCES)
    states = ha.sim.sim.state.instances
    running_before = {n: states[n].running_on is not None for n in names}
    plans = {
        n: (("shutdown", "start") if running_before[n] else ("start", "shutdown")) for n in names
    }
    ganeti_before = set(ha.sim.sim.queue.jobs)
    cursor = feed_start = _last_seq(ha)
    kills: list[tuple[float, str, int]] = []  # (when, whom and how, jobs in Ganeti)
    restart_at: dict[str, float] = {}
    to_post: list[tuple[str, int]] = [(n, 0) for n in names]  # (instance, 0 first / 1 back)
    posted: dict[int, tuple[str, int]] = {}
    ended: dict[int, str] = {}  # gwm job id → the type of its (first) end event
    refused: list[tuple[str, int, int, str]] = []
    # Ganeti first accepts the jobs without running them, and answers every request a
    # little late: the kills find jobs being submitted and jobs being followed.
    sim_admin(ha.sim, "PUT", "queue", {"hold": True})
    sim_admin(ha.sim, "PUT", "faults", {"latency": 0.1})
    held = True
    began = time.monotonic()
    next_kill = began + rng.uniform(2.0, 4.0)

    def unsettled() -> bool:
        """Operations left to post (a first one that failed has no second), or to end."""
        firsts_failed = sum(
            1
            for pk, (_, which) in posted.items()
            if which == 0 and ended.get(pk, "job.succeeded") != "job.succeeded"
        )
        return len(posted) + firsts_failed < CHAOS_OPERATIONS or len(ended) < len(posted)

    # One loop in this (the main) thread posts, kills and restarts: see guard.
    try:
        with ha.client("api_b") as feed:
            while unsettled() or restart_at or time.monotonic() - began < CHAOS_SECONDS:
                now = time.monotonic()
                assert now - began < CHAOS_DEADLINE_SECONDS, (
                    f"after {CHAOS_DEADLINE_SECONDS:.0f} s: {len(posted)} posted, "
                    f"{len(ended)} ended, {len(to_post)} to post\nkills: {kills}\n{ha.logs()}"
                )
                if held and now - began > CHAOS_HOLD_SECONDS:
                    sim_admin(ha.sim, "DELETE", "faults")
                    sim_admin(ha.sim, "PUT", "queue", {"hold": False})
                    held = False
                for _ in range(min(CHAOS_POSTS_PER_TURN, len(to_post))):
                    name, which = to_post.pop(0)
                    api = ("api_a", "api_b")[len(posted) % 2]
                    answer = ha.post_action(api, name, plans[name][which])
                    if answer.status_code != 202:
                        refused.append((name, which, answer.status_code, answer.text[:300]))
                        continue
                    posted[int(answer.json()["id"])] = (name, which)
                # The jobs that ended since the last turn, from the change feed; an
                # instance whose first operation ended is toggled back at once.
                answer = feed.get(
                    "/api/v1/changes", params={"since": cursor, "types": JOB_ENDS, "limit": 1000}
                )
                assert answer.status_code == 200, answer.text
                page = answer.json()
                cursor = int(page["next_since"])
                for event in page["items"]:
                    pk = int(event["resource"]["name"])
                    if pk not in posted or pk in ended:
                        continue
                    ended[pk] = event["type"]
                    name, which = posted[pk]
                    if which == 0 and event["type"] == "job.succeeded":
                        to_post.append((name, 1))
                if now - began < CHAOS_SECONDS and now >= next_kill:
                    # A worker takes 5 to 15 s to start on this machine: a working one is
                    # killed only while the other works too (else the one starting is), so
                    # the work never stalls for want of any worker.
                    up = [w for w in ("w1", "w2") if w not in restart_at]
                    working = {w for w in up if _ready(ha, w)}
                    victims = [w for w in up if w not in working or len(working) > 1]
                    if victims:
                        victim = rng.choice(victims)
                        state = "working" if victim in working else "starting"
                        ha.procs[victim].kill()
                        kills.append((round(now - began, 1), f"{victim} {state}", _in_ganeti(ha)))
                        restart_at[victim] = now + rng.uniform(0.3, 1.0)
                        next_kill = now + rng.uniform(2.0, 4.0)
                    else:
                        next_kill = now + 0.5
                for worker, due in list(restart_at.items()):
                    if now >= due:
                        ha.start_worker(worker)  # again under its name: it takes its jobs back
                        del restart_at[worker]
                if refused:
                    break
                time.sleep(0.1)
    finally:
        if held:
            sim_admin(ha.sim, "DELETE", "faults")
            sim_admin(ha.sim, "PUT", "queue", {"hold": False})
        for worker in list(restart_at):  # the loop left early: the next tests need them
            ha.start_worker(worker)
    assert refused == [], f"operations not accepted: {refused}"
    for worker in ("w1", "w2"):
        ha.wait_worker_ready(worker)
    took = time.monotonic() - began
    ha.timings["chaos_total"] = took

    with ha.client("api_a") as client:
        jobs = {pk: client.get(f"/api/v1/jobs/{pk}").json() for pk in posted}
        still_open = client.get(
            "/api/v1/jobs", params={"cluster": CLUSTER, "status": OPEN, "limit": 100}
        ).json()["items"]
    adopted = sum(1 for j in jobs.values() if j["last_error"] and "adopted" in j["last_error"])
    retried = sum(1 for j in jobs.values() if j["attempts"] > 1)
    print(
        f"\nchaos: {len(posted)} operations on {len(names)} instances, {len(kills)} kills "
        f"{kills}, all ended {took:.1f} s after the first post; {adopted} adopted, "
        f"{retried} with attempts > 1"
    )
    assert len(posted) == CHAOS_OPERATIONS
    failed = {pk: (j["status"], j["error"]) for pk, j in jobs.items() if j["status"] != "SUCCESS"}
    assert failed == {}
    assert still_open == [], f"gwm jobs left open: {still_open}"
    # Each ended once: one end event each in the change log, and it is job.succeeded.
    events, _ = _feed(ha, feed_start, types=JOB_ENDS)
    endings = Counter(
        (int(e["resource"]["name"]), e["type"])
        for e in events
        if int(e["resource"]["name"]) in posted
    )
    assert endings == Counter({(pk, "job.succeeded"): 1 for pk in posted}), {
        key: n for key, n in endings.items() if n != 1 or key[1] != "job.succeeded"
    }
    # Each reached Ganeti once, as the job it recorded; no other Ganeti job touched them.
    ha.assert_once_in_ganeti(jobs)
    new = [j for i, j in list(ha.sim.sim.queue.jobs.items()) if i not in ganeti_before]
    touching = [j for j in new if any(op.input.get("instance_name") in plans for op in j.ops)]
    assert len(touching) == CHAOS_OPERATIONS, (
        f"{len(touching)} Ganeti jobs on the chaos instances for {CHAOS_OPERATIONS} operations"
    )
    unfinished = [(j.id, j.status) for j in touching if not j.finalized or j.status != "success"]
    assert unfinished == [], f"Ganeti jobs not ended in success: {unfinished}"
    per_instance = Counter(op.input.get("instance_name") for j in touching for op in j.ops)
    assert set(per_instance.values()) == {2}, per_instance
    # Toggled and toggled back: every instance is as it was, in Ganeti and in the API.
    wrong = [n for n in names if (states[n].running_on is not None) != running_before[n]]
    assert wrong == [], "Ganeti's instances are not where the operations left them"
    back = {n: "RUNNING" if running_before[n] else "STOPPED" for n in names}
    with ha.client("api_b") as client:
        shown = {
            n: client.get(f"/api/v1/clusters/{CLUSTER}/instances/{n}").json()["status"]
            for n in names
        }
    assert shown == back
    assert len(kills) >= 3, kills
    assert any(who.endswith("working") and inflight for _, who, inflight in kills), (
        f"no kill hit a working worker while jobs were in Ganeti: {kills}"
    )


def _ready(ha: Harness, worker: str) -> bool:
    proc = ha.procs[worker]
    return proc.alive and " ready." in proc.log.read_text(errors="replace")


def _in_ganeti(ha: Harness) -> int:
    """How many jobs are in Ganeti and followed by a worker (QUEUED, WAITING, RUNNING)."""
    with ha.client("api_a") as client:
        answer = client.get(
            "/api/v1/jobs",
            params={"cluster": CLUSTER, "status": "QUEUED,WAITING,RUNNING", "limit": 100},
        )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["items"])


# -- 7. /metrics moves with an operation ------------------------------------------------


def _scrape(ha: Harness, api: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(
        f"{ha.url(api)}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=20
    )
    if answer.status_code == 404:
        pytest.fail("/metrics answers 404 although GWM_METRICS_TOKEN is set", pytrace=False)
    assert answer.status_code == 200, answer.text[:500]
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _total(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(value for (sample, _), value in scraped.items() if sample == name)


def test_metrics_on_api_a_move_with_an_operation(ha: Harness) -> None:
    refused = httpx.get(f"{ha.url('api_a')}/metrics", timeout=10)
    assert refused.status_code == 401
    (name,) = ha.take(1)
    action, after = ha.toggle(name)
    before = _scrape(ha, "api_a")
    posted = ha.post_action("api_a", name, action)
    assert posted.status_code == 202, posted.text
    job = ha.wait_final("api_a", posted.json()["id"], timeout=60)
    assert job["status"] == "SUCCESS"
    later = _scrape(ha, "api_a")
    moved = {
        metric: (_total(before, metric), _total(later, metric))
        for metric in ("gwm_http_request_duration_seconds_count", "gwm_rapi_requests_total")
    }
    print(f"\n/metrics on A before and after one operation: {moved}")
    for metric, (was, now) in moved.items():
        assert now > was, f"{metric} did not move: {was} -> {now}"
    # The RAPI figures are the workers' (other processes): API A serves them all.
    rapi = {labels: v for (s, labels), v in later.items() if s == "gwm_rapi_requests_total"}
    assert any(dict(labels).get("cluster") == CLUSTER for labels in rapi), rapi
    assert ha.instance("api_a", name)["status"] == after


# -- 8. one operation's log lines share its request id across API and worker ------------


def _json_lines(ha: Harness, names: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The JSON lines of every run of the processes ``names`` (other lines: uvicorn's,
    Celery's banner, are left out), each with the log file it came from."""
    import json

    found = []
    for proc in [*ha.retired, *ha.procs.values()]:
        if proc.name not in names:
            continue
        for line in log_tail(proc.log, 1_000_000).splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append((proc.log.name, record))
    return found


def test_an_operation_s_log_lines_carry_its_request_id_in_the_api_and_a_worker(
    ha: Harness,
) -> None:
    (name,) = ha.take(1)
    action, after = ha.toggle(name)
    request_id = f"ha-trace-{uuid.uuid4().hex[:12]}"
    answer = ha.post_action("api_a", name, action, headers={"X-Request-ID": request_id})
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    job_id = int(answer.json()["id"])
    job = ha.wait_final("api_b", job_id, timeout=60)
    assert job["status"] == "SUCCESS", job
    assert ha.instance("api_a", name)["status"] == after

    def worker_lines() -> list[tuple[str, dict[str, Any]]]:
        return [
            (log, r)
            for log, r in _json_lines(ha, ("w1", "w2"))
            if r.get("request_id") == request_id
        ]

    ended_line = f"job {job_id} ({job['action']}) ended: SUCCESS"

    def ended_logged() -> list[dict[str, Any]]:
        return [r for _, r in _json_lines(ha, ("w1", "w2")) if r.get("message") == ended_line]

    # The line of the job's end is written before the commit the wait saw; a moment's slack.
    with contextlib.suppress(AssertionError):
        until(ended_logged, timeout=10, interval=0.5, what="the worker's line of the job's end")
    workers = worker_lines()
    api = [(log, r) for log, r in _json_lines(ha, ("api_a",)) if r.get("request_id") == request_id]
    shown = [
        f"{log}: {r.get('logger')} job_id={r.get('job_id')} task={r.get('task')}: "
        f"{r.get('message')}"
        for log, r in api + workers
    ]
    print(f"\nlines under {request_id}:\n" + "\n".join(shown))
    problems = []
    fields = {"time", "level", "logger", "message", "request_id", "job_id", "cluster", "process"}
    missing_fields = [r for _, r in api + workers if not fields <= set(r)]
    if missing_fields:
        problems.append(f"JSON lines without the documented fields: {missing_fields[:3]}")
    about_job = [r for _, r in workers if r.get("job_id") == job_id]
    if not about_job:
        problems.append(f"no worker line carries request_id {request_id} and job_id {job_id}")
    elsewhere = [r for _, r in workers if r.get("job_id") not in (None, job_id)]
    if elsewhere:
        problems.append(f"worker lines under {request_id} about other jobs: {elsewhere[:3]}")
    messages = " | ".join(str(r.get("message")) for r in about_job)
    for needle in ("sending it to Ganeti", "is Ganeti job"):
        if needle not in messages:
            problems.append(f"no worker line of the job says {needle!r}: {messages}")
    # Its end may be seen by the tracker (under the request id) or by a sync round (under
    # the cluster only, docs/observability.md): either way a worker says it, naming the job.
    ends = ended_logged()
    if not ends:
        problems.append(f"no worker line says {ended_line!r}")
    print(f"its end: {[(r.get('request_id'), r.get('job_id'), r.get('task')) for r in ends]}")
    if about_job and any(r.get("cluster") != CLUSTER for r in about_job):
        problems.append(f"a worker line of the job does not name cluster {CLUSTER}")
    if not api:
        lines = _json_lines(ha, ("api_a",))
        with_ids = Counter(str(r.get("logger")) for _, r in lines if r.get("request_id"))
        problems.append(
            f"API A, which took the POST, wrote no line with request_id {request_id}: of the "
            f"{len(lines)} JSON lines in its log, those under some request id are from "
            f"{dict(with_ids)} (warnings of earlier tests), none about an accepted operation"
        )
    assert problems == [], "\n".join(problems)
