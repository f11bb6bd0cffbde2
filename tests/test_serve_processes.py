"""`gwm demo` as it runs for real: API processes beside the supervising one with the workers.

The installed command runs in its own process group on free ports with its own
data dir (as tests/test_schemathesis.py starts it), with GWM_API_PROCESSES=2.
Everything is checked from outside: over its HTTP API, the simulated cluster's
admin API, its log, and /proc (which processes it runs, and whether each did
work). What crosses processes here: an action POSTed to an API process is a
doorbell to the worker in the supervising one; the job's progress written
there wakes the API processes' long-polls and streams.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwm.events.waiting import RECHECK_SECONDS
from tests.events.live_gwm import Frame, frames_of

GWM = Path(sys.executable).with_name("gwm")
API_PROCESSES = 2
START_SECONDS = 90.0
FINAL = {"SUCCESS", "ERROR", "CANCELED"}
#: What gwm logs when a doorbell did not reach the worker, or the worker failed on one.
DOORBELL_TROUBLE = ("did not take the doorbell", "handling a message on")

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} ({last})")


# -- processes, from /proc ----------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name; None once it is gone
    (a zombie, which has exited and only waits to be reaped, counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] in {"Z", "X"} else fields


def _alive(pid: int) -> bool:
    return _stat(pid) is not None


def _children(pid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit()
        and (fields := _stat(int(entry.name))) is not None
        and int(fields[1]) == pid
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _api_processes(pid: int) -> list[int]:
    """uvicorn's worker processes: the children started by multiprocessing's spawn."""
    return sorted(child for child in _children(pid) if "spawn_main" in _cmdline(child))


def _wake_dir(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [line.split(b"=", 1)[1] for line in environ if line.startswith(b"GWM_WAKE_DIR=")]
    assert found, f"process {pid} has no GWM_WAKE_DIR"
    return Path(found[0].decode())


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[11]) + int(fields[12])  # utime + stime


# -- the demo ---------------------------------------------------------------------------


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    sim_url: str
    token: str
    log: Path
    #: Its sockets' directory (GWM_WAKE_DIR, under /tmp), read from an API process.
    run_dir: Path | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", httpx.Timeout(15.0))
        return httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            **kwargs,
        )

    def sim_config(self, **changes: Any) -> None:
        httpx.put(
            f"{self.sim_url}/__sim__/config", json=changes, verify=False, timeout=10
        ).raise_for_status()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it gracefully if it still runs (so it removes its run directory), else
        kill what is left of its group and remove the run directory a SIGKILL left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(20)
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)


@contextlib.contextmanager
def running_demo(directory: Path) -> Iterator[Demo]:
    data = directory / "data"
    port, sim_port = _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GWM_", "DATABASE_URL", "CELERY_", "DJANGO_"))
    }
    env.update(
        GWM_DATA_DIR=str(data),
        GWM_LOG_LEVEL="WARNING",
        GWM_SECRET_KEY="serve-processes-" * 4,
        GWM_API_PROCESSES=str(API_PROCESSES),
        GWM_STREAM_HEARTBEAT_SECONDS="1",  # a stream says something often: reads never hang
    )
    log = directory / "gwm.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(GWM),
                "demo",
                "--port",
                str(port),
                "--sim-port",
                str(sim_port),
                "--nodes",
                "3",
                "--instances",
                "12",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed whole afterwards
        )
    demo = Demo(process, f"http://127.0.0.1:{port}", port, f"https://127.0.0.1:{sim_port}", "", log)
    try:
        _until(
            "gwm to answer",
            lambda: (
                process.poll() is None
                and httpx.get(f"{demo.base}/api/v1/", timeout=5).status_code == 401
            ),
            START_SECONDS,
        )
        demo.token = json.loads((data / "demo-credentials.json").read_text())["admin"]["token"]
        demo.run_dir = _wake_dir(_api_processes(process.pid)[0])
        # Synced: the demo cluster's instances are in gwm's cache.
        with demo.client() as api:
            _until("the first sync", lambda: _instances(api), START_SECONDS)
        yield demo
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n--- gwm's log ---\n{demo.log_text()}") from None
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo shared by the tests that only talk to it (each uses its own instance)."""
    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


def _instances(api: httpx.Client) -> dict[str, str]:
    response = api.get("/instances", params={"fields": "name,status"})
    response.raise_for_status()
    return {item["name"]: item["status"] for item in response.json()["items"]}


_taken: set[str] = set()


def _running_instance(api: httpx.Client) -> str:
    """A RUNNING instance no other test of the module has acted on."""
    for name, status in sorted(_instances(api).items()):
        if status == "RUNNING" and name not in _taken:
            _taken.add(name)
            return name
    raise AssertionError("no running instance is left")


def _shutdown(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.post(f"/clusters/demo/instances/{name}/actions", json={"action": "shutdown"})
    assert response.status_code == 202, response.text
    job = dict(response.json())
    assert job["status"] not in FINAL, job  # it is the worker that will end it
    return job


def _job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    response = api.get(f"/jobs/{job_id}")
    response.raise_for_status()
    return dict(response.json())


# -- the tests --------------------------------------------------------------------------


def test_it_runs_two_api_processes_and_both_answer(demo: Demo) -> None:
    api_pids = _api_processes(demo.process.pid)
    assert len(api_pids) == API_PROCESSES, [
        (pid, _cmdline(pid)) for pid in _children(demo.process.pid)
    ]
    assert demo.process.pid not in api_pids
    # Each did some work of its own while requests came in: the kernel hands new
    # connections to either (there is no header that names the process that answered).
    before = {pid: _cpu_ticks(pid) for pid in api_pids}

    statuses: list[int] = []

    def requests(count: int) -> None:
        for _ in range(count):
            with demo.client() as api:  # a new connection each time
                statuses.append(api.get("/instances", params={"fields": "name"}).status_code)

    threads = [threading.Thread(target=requests, args=(40,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 160, statuses
    grew = {pid: _cpu_ticks(pid) - before[pid] for pid in api_pids}
    # Idle, an API process uses about one tick (10 ms) in a few seconds; 160 requests
    # take hundreds of ticks between the two.
    assert all(ticks >= 5 for ticks in grew.values()), grew


def test_an_action_becomes_a_ganeti_job_that_succeeds(demo: Demo) -> None:
    with demo.client() as api:
        name = _running_instance(api)
        job = _shutdown(api, name)
        done = _until(
            "the job to end",
            lambda: (current := _job(api, job["id"]))["status"] in FINAL and current,
            20.0,
        )
        assert done["status"] == "SUCCESS", done
        assert done["ganeti"]["job_id"] is not None, done
        _until("the instance to be stopped", lambda: _instances(api)[name] != "RUNNING", 20.0)
    log = demo.log_text()
    assert not any(trouble in log for trouble in DOORBELL_TROUBLE), log


def _running_job(demo: Demo, api: httpx.Client, ganeti_seconds: float) -> dict[str, Any]:
    """A shutdown job seen RUNNING, that Ganeti ends ``ganeti_seconds`` of its time later
    (the demo's time scale is 0.2: a fifth of that in real seconds)."""
    demo.sim_config(op_seconds={"OP_INSTANCE_SHUTDOWN": ganeti_seconds})
    try:
        job = _shutdown(api, _running_instance(api))
        running = _until(
            "the job to run in Ganeti",
            lambda: (current := _job(api, job["id"]))["status"] in {"RUNNING", *FINAL} and current,
            20.0,
        )
    finally:
        demo.sim_config(op_seconds={"OP_INSTANCE_SHUTDOWN": 0.4})  # the next jobs' again
    assert running["status"] == "RUNNING", f"it ended before it was seen running: {running}"
    return dict(running)


def test_a_job_wait_returns_when_the_worker_process_ends_the_job(demo: Demo) -> None:
    with demo.client(timeout=httpx.Timeout(60.0)) as api:
        running = _running_job(demo, api, ganeti_seconds=25)  # about 5 s
        started = time.monotonic()
        answer = api.get(f"/jobs/{running['id']}/wait", params={"timeout": 30, "status": "RUNNING"})
        elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    woke = answer.json()
    assert woke["changed"] is True, woke
    assert woke["job"]["status"] == "SUCCESS", woke
    # Generous: well before the wait's own 30 s (not a speed assertion). A lost wake-up
    # is caught by the wait's recheck (gwm.events.waiting) and would pass this too.
    assert elapsed < 15, f"the wait took {elapsed:.1f} s"


def test_only_a_wake_up_from_the_worker_process_ends_a_short_wait(demo: Demo) -> None:
    """A wait shorter than RECHECK_SECONDS never rechecks on its own: it answers
    ``changed: true`` only if the worker's write woke it across processes, else
    ``changed: false`` at its timeout. The job ends about 1 s after it was seen running."""
    with demo.client(timeout=httpx.Timeout(60.0)) as api:
        running = _running_job(demo, api, ganeti_seconds=5)
        answer = api.get(
            f"/jobs/{running['id']}/wait",
            params={"timeout": RECHECK_SECONDS - 0.1, "status": "RUNNING"},
        )
    assert answer.status_code == 200, answer.text
    woke = answer.json()
    assert woke["changed"] is True, woke
    assert woke["job"]["status"] == "SUCCESS", woke


def _stream_events(
    api: httpx.Client, into: list[Frame], stop: threading.Event, opened: threading.Event
) -> None:
    with api.stream("GET", "/changes/stream") as response:
        assert response.status_code == 200, response.read()
        opened.set()
        for frame in frames_of(response):
            if frame.fields:
                into.append(frame)
            if stop.is_set():
                return


def test_a_stream_receives_what_the_worker_process_writes(demo: Demo) -> None:
    frames: list[Frame] = []
    stop, opened = threading.Event(), threading.Event()
    with demo.client(timeout=httpx.Timeout(30.0)) as streaming, demo.client() as api:
        reader = threading.Thread(
            target=_stream_events, args=(streaming, frames, stop, opened), daemon=True
        )
        reader.start()
        assert opened.wait(20), "the stream did not open"
        name = _running_instance(api)
        job = _shutdown(api, name)
        job_name = str(job["id"])

        def seen() -> set[str]:
            return {
                str(frame.event)
                for frame in list(frames)
                if frame.data()["resource"]["name"] in {job_name, name}
            }

        try:
            _until(
                "the job's end and the instance's new status on the stream",
                lambda: {"job.created", "job.succeeded", "instance.status_changed"} <= seen(),
                30.0,
            )
        except AssertionError as failure:
            raise AssertionError(f"{failure}: {[(f.event, f.data()) for f in frames]}") from None
        finally:
            stop.set()
            reader.join(10)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_killing_the_supervising_process_leaves_no_api_process(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        api_pids = _api_processes(demo.process.pid)
        assert len(api_pids) == API_PROCESSES and all(_alive(pid) for pid in api_pids)
        assert not _port_free(demo.port)
        demo.process.send_signal(signal.SIGKILL)  # only it: not its process group
        demo.process.wait(10)
        _until("the API processes to exit", lambda: not any(_alive(p) for p in api_pids), 10.0)
        _until("the port to be free", lambda: _port_free(demo.port), 10.0)


def test_sigterm_stops_everything_with_status_zero(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        api_pids = _api_processes(demo.process.pid)
        assert len(api_pids) == API_PROCESSES
        demo.process.send_signal(signal.SIGTERM)
        try:
            code = demo.process.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running 30 s after SIGTERM:\n{demo.log_text()}") from None
        assert code == 0, demo.log_text()
        _until("the API processes to exit", lambda: not any(_alive(p) for p in api_pids), 10.0)
        assert _port_free(demo.port)
        assert demo.run_dir is not None and not demo.run_dir.exists()  # it cleaned up
        assert "Traceback" not in demo.log_text(), demo.log_text()
