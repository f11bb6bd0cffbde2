"""The contract suite's two targets: the simulator and the real Ganeti sandbox.

Every test takes the fixture ``target``, parametrised as ``simulator`` (a
:class:`gwm.simulator.Simulator` shaped like the sandbox, served in-process
over real HTTPS) and ``ganeti`` (the real Ganeti 3.0 cluster of
``scripts/ganeti-sandbox``). Both give the same :class:`Target` handle, so one
test function checks that the client, the simulator and real Ganeti agree.

The ganeti leg reads ``.sandbox/ganeti.env`` (or the same variables from the
environment) and fails, never skips, when the sandbox is not up, unless
``GWM_CONTRACT_TARGETS`` names the targets to run (``simulator`` for a quick
local run). Its tests run on one xdist worker (``xdist_group("ganeti")``:
run with ``-n 2 --dist loadgroup``) and are marked ``ganeti``.

Both targets have two nodes, node1 (the master, ``target.node``) and node2
(``target.nodes`` has both): hail places an instance on either, so tests read
where it went or pass ``pnode``. The ganeti leg fails when the sandbox does
not have exactly ``GWM_SANDBOX_NODE`` and ``GWM_SANDBOX_NODE2``.

The sandbox is shared (other suites use it at the same time): tests create
uniquely named objects, never assume they are alone on the cluster, and
remove what they created in the ``target`` fixture's teardown.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwm.rapi import AsyncRapiClient, RapiClient, RapiJob, RapiNotFound
from gwm.rapi.constants import JobStatus
from gwm.simulator import SimConfig, Simulator, generate_cluster, serve_in_thread
from gwm.simulator.app import DEFAULT_USERS
from gwm.simulator.server import Running
from gwm.simulator.state import ClusterState

REPO = Path(__file__).resolve().parents[2]
SANDBOX_SCRIPT = REPO / "scripts" / "ganeti-sandbox"
# where `scripts/ganeti-sandbox up` writes it (GWM_SANDBOX_DIR moves it, as for the script)
ENV_FILE = Path(os.environ.get("GWM_SANDBOX_DIR") or REPO / ".sandbox") / "ganeti.env"
ENV_KEYS = (
    "GWM_SANDBOX_RAPI_URL",
    "GWM_SANDBOX_WRITE_USER",
    "GWM_SANDBOX_WRITE_PASSWORD",
    "GWM_SANDBOX_READ_USER",
    "GWM_SANDBOX_READ_PASSWORD",
    "GWM_SANDBOX_CA_FILE",
    "GWM_SANDBOX_NODE",
    "GWM_SANDBOX_NODE2",
)
OPTIONAL_ENV_KEYS = ("GWM_SANDBOX_CLUSTER_NAME",)
TARGETS = ("simulator", "ganeti")
HOW_TO_START = (
    "bring the real Ganeti sandbox up with `scripts/ganeti-sandbox up` (it writes "
    ".sandbox/ganeti.env; `make test` does it), or run only the simulator leg with "
    "GWM_CONTRACT_TARGETS=simulator"
)
#: Seconds a job may take before a test gives up on it.
JOB_TIMEOUT = 60.0
#: The simulator's /wait blocks this long without a change (Ganeti: 10 s).
SIM_WAIT_TIMEOUT = 1.0


def selected_targets() -> tuple[str, ...]:
    """``GWM_CONTRACT_TARGETS`` (comma-separated), or both targets."""
    raw = os.environ.get("GWM_CONTRACT_TARGETS", "")
    chosen = tuple(t.strip() for t in raw.split(",") if t.strip())
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        raise pytest.UsageError(
            f"GWM_CONTRACT_TARGETS: unknown target(s) {unknown}; choose from {list(TARGETS)}"
        )
    return chosen or TARGETS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip, with a reason, the legs GWM_CONTRACT_TARGETS leaves out."""
    chosen = selected_targets()
    for item in items:
        callspec = getattr(item, "callspec", None)
        leg = callspec.params.get("target_name") if callspec else None
        if leg is not None and leg not in chosen:
            reason = f"GWM_CONTRACT_TARGETS={os.environ.get('GWM_CONTRACT_TARGETS')}"
            item.add_marker(pytest.mark.skip(reason=f"{leg} leg left out by {reason}"))


# ---- the uniform handle ------------------------------------------------------


@dataclass
class Backend:
    """One cluster to talk to, for the whole session (per xdist worker)."""

    name: str
    url: str
    ca_file: str
    write_auth: tuple[str, str]
    read_auth: tuple[str, str]
    cluster_name: str
    #: the master node
    node: str
    #: every node (the sandbox has two: node1, the master, and node2)
    nodes: list[str]
    os_name: str
    #: run a command "outside the client": (client, command, name, reason) -> job id
    gnt: Callable[[str, str, str, str | None], int]
    #: hold new jobs carrying this reason in the queue: (reason) -> release
    hold: Callable[[RapiClient, str], Callable[[], None]]
    client: RapiClient = field(init=False)
    reader: RapiClient = field(init=False)
    anonymous: RapiClient = field(init=False)
    running: Running | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.client = self.make_client(self.write_auth)
        self.reader = self.make_client(self.read_auth)
        self.anonymous = self.make_client(None)

    def make_client(self, auth: tuple[str, str] | None) -> RapiClient:
        user, password = auth if auth else (None, None)
        return RapiClient(self.url, username=user, password=password, ca_file=self.ca_file)

    def close(self) -> None:
        for client in (self.client, self.reader, self.anonymous):
            client.close()
        if self.running is not None:
            self.running.stop()


class Target:
    """What a contract test sees of one target: clients, names, helpers, cleanup.

    ``client`` writes, ``reader`` only reads, ``anonymous`` sends no
    credentials. ``unique_name()`` makes names no other test (or suite
    sharing the sandbox) uses. Everything made through ``create_instance``,
    ``track_*`` or ``hold`` is removed again when the test ends.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.client = backend.client
        self.reader = backend.reader
        self.anonymous = backend.anonymous
        self.cluster_name = backend.cluster_name
        self.node = backend.node
        self.nodes = backend.nodes
        self.os_name = backend.os_name
        self.group = "default"
        self._instances: list[str] = []
        self._networks: list[str] = []
        self._groups: list[str] = []
        self._cluster_tags: list[str] = []
        self._node_tags: list[str] = []
        self._drained: list[str] = []
        self._releases: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<Target {self.name} {self.backend.url}>"

    # ---- names and clients ---------------------------------------------
    def unique_name(self, kind: str = "inst") -> str:
        """``ctr-<kind>-<session token>-<n>``: unique across runs and workers."""
        return f"ctr-{kind}-{self.backend.token}-{next(self.backend.counter)}"

    def async_client(self, *, read_only: bool = False) -> AsyncRapiClient:
        """A new AsyncRapiClient for this target; use it as ``async with``."""
        user, password = self.backend.read_auth if read_only else self.backend.write_auth
        return AsyncRapiClient(
            self.backend.url, username=user, password=password, ca_file=self.backend.ca_file
        )

    # ---- jobs ------------------------------------------------------------
    def wait(self, job_id: int, timeout: float = JOB_TIMEOUT) -> RapiJob:
        """The job once final (through /2/jobs/ID/wait)."""
        return self.client.wait_for_job(job_id, timeout=timeout)

    def succeed(self, job_id: int) -> RapiJob:
        """The job once final; it must have succeeded."""
        job = self.wait(job_id)
        assert job.status == JobStatus.SUCCESS, (
            f"job {job_id} {job.summary} ended {job.status}: {job.opresult}"
        )
        return job

    def fail(self, job_id: int) -> RapiJob:
        """The job once final; it must have failed."""
        job = self.wait(job_id)
        assert job.status == JobStatus.ERROR, f"job {job_id} {job.summary} ended {job.status}"
        return job

    def gnt(self, client: str, command: str, name: str, *, reason: str | None = None) -> int:
        """Run ``gnt-<x> <command> <name>`` on the master, outside gwm; its job id."""
        return self.backend.gnt(client, command, name, reason)

    @contextlib.contextmanager
    def hold(self) -> Iterator[str]:
        """Jobs submitted with ``reason=<the yielded text>`` stay queued inside the block.

        Simulator: its queue is held (``/__sim__/queue``). Ganeti: a job
        filter rule with action PAUSE on that reason (``/2/filters``).
        """
        reason = f"gwm-contract-hold-{self.backend.token}-{next(self.backend.counter)}"
        release = self.backend.hold(self.client, reason)
        self._releases.append(release)
        try:
            yield reason
        finally:
            self._releases.remove(release)
            release()

    def other_node(self, node: str) -> str:
        """The node that is not ``node`` (both targets have two)."""
        (other,) = set(self.nodes) - {node}
        return other

    # ---- instances -------------------------------------------------------
    def instance_spec(self, **overrides: Any) -> dict[str, Any]:
        """``create_instance`` arguments both targets accept: diskless, no NIC, 32 MB."""
        spec: dict[str, Any] = {
            "disk_template": "diskless",
            "disks": [],
            "nics": [],
            "os_type": self.os_name,
            "beparams": {"memory": 32},
            "name_check": False,
            "ip_check": False,
        }
        spec.update(overrides)
        return spec

    def create_instance(self, name: str | None = None, **overrides: Any) -> str:
        """Create an instance (running unless ``start=False``) and wait for it."""
        name = name or self.unique_name()
        self.track_instance(name)
        self.succeed(self.client.create_instance(name, **self.instance_spec(**overrides)))
        return name

    def track_instance(self, name: str) -> None:
        """Remove this instance (if it exists) when the test ends."""
        self._instances.append(name)

    def track_network(self, name: str) -> None:
        self._networks.append(name)

    def track_group(self, name: str) -> None:
        self._groups.append(name)

    def drain_node(self, node: str) -> None:
        """Mark ``node`` drained (no new instances); undrained when the test ends."""
        self._drained.append(node)
        self.succeed(self.client.modify_node(node, drained=True))

    def track_cluster_tags(self, *tags: str) -> None:
        self._cluster_tags.extend(tags)

    def track_node_tags(self, *tags: str) -> None:
        self._node_tags.extend(tags)

    # ---- cleanup ---------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Undo what the test made; the problems found (empty when all went well)."""
        problems: list[str] = []

        def attempt(what: str, action: Callable[..., Any], *args: Any) -> None:
            try:
                action(*args)
            except Exception as exc:  # collect, then report them all
                problems.append(f"{what}: {type(exc).__name__}: {exc}")

        for release in list(self._releases):
            attempt("release held jobs", release)
        for name in dict.fromkeys(self._instances):
            attempt(f"remove instance {name}", self._remove_instance, name)
        for name in dict.fromkeys(self._networks):
            attempt(f"remove network {name}", self._remove_network, name)
        for name in dict.fromkeys(self._groups):
            attempt(f"remove group {name}", self._remove_group, name)
        if self._cluster_tags:
            attempt("remove cluster tags", self._remove_cluster_tags)
        if self._node_tags:
            attempt("remove node tags", self._remove_node_tags)
        for node in dict.fromkeys(self._drained):
            attempt(f"undrain node {node}", self._undrain, node)
        return problems

    def _undrain(self, node: str) -> None:
        if self.client.get_node(node).drained:
            self.succeed(self.client.modify_node(node, drained=False))

    def _remove_instance(self, name: str) -> None:
        try:
            self.client.get_instance(name)
        except RapiNotFound:
            return
        self.succeed(self.client.delete_instance(name, shutdown_timeout=0))

    def _remove_network(self, name: str) -> None:
        try:
            network = self.client.get_network(name)
        except RapiNotFound:
            return
        for entry in network.group_list or []:
            self.succeed(self.client.disconnect_network(name, entry[0]))
        self.succeed(self.client.delete_network(name))

    def _remove_group(self, name: str) -> None:
        try:
            self.client.get_group(name)
        except RapiNotFound:
            return
        self.succeed(self.client.delete_group(name))

    def _remove_cluster_tags(self) -> None:
        present = set(self.client.get_cluster_tags())
        left = [t for t in dict.fromkeys(self._cluster_tags) if t in present]
        if left:
            self.succeed(self.client.delete_cluster_tags(left))

    def _remove_node_tags(self) -> None:
        present = set(self.client.get_node_tags(self.node))
        left = [t for t in dict.fromkeys(self._node_tags) if t in present]
        if left:
            self.succeed(self.client.delete_node_tags(self.node, left))


#: What every opcode of a job that ran shows in ``ops`` on Ganeti 3.0.
OP_BASE_KEYS = frozenset({"OP_ID", "comment", "debug_level", "depends", "priority", "reason"})


def assert_stored_op(job: RapiJob, *keys: str, index: int = 0) -> None:
    """The opcode is stored as Ganeti stores it: exactly the base keys plus ``keys``.

    luxid fills in every parameter's default and drops the unset (None) ones;
    mcpu adds ``debug_level`` and the object's uuid when the opcode runs.
    """
    op = (job.ops or [])[index]
    assert set(op) == OP_BASE_KEYS | set(keys), (
        f"{op['OP_ID']}: missing {sorted((OP_BASE_KEYS | set(keys)) - set(op))},"
        f" unexpected {sorted(set(op) - OP_BASE_KEYS - set(keys))}"
    )


# ---- the simulator -----------------------------------------------------------


def sandbox_like_state() -> ClusterState:
    """A simulated cluster set up like scripts/ganeti-sandbox sets up the real one.

    Two nodes (node1 the master, node2), the fake hypervisor, the disk templates
    diskless/file/sharedfile, routed NICs on ``lo``, the relaxed instance
    policy, no instances or networks.
    """
    state = generate_cluster(
        nodes=2,
        instances=0,
        cluster_name="cluster.ganeti.test",
        domain="ganeti.test",
        hypervisor="fake",
    )
    for n, address in ((1, "198.51.100.10"), (2, "198.51.100.12")):
        node = state.nodes.pop(f"node00{n}.ganeti.test")
        node.name = f"node{n}.ganeti.test"
        node.pip = node.sip = address  # single-homed, like the sandbox's nodes
        state.nodes[node.name] = node
    node = state.nodes["node1.ganeti.test"]
    state.networks.clear()
    for group in state.groups.values():
        group.networks.clear()
    info = state.info
    info["master"] = node.name
    info["nicparams"]["default"] = {"mode": "routed", "link": "lo", "vlan": ""}
    templates = ["diskless", "file", "sharedfile"]
    info["enabled_disk_templates"] = list(templates)
    info["ipolicy"]["disk-templates"] = ["sharedfile", "diskless", "file"]
    info["ipolicy"]["minmax"][0]["min"] = {
        "memory-size": 32,
        "disk-size": 4,
        "disk-count": 0,
        "cpu-count": 1,
        "nic-count": 0,
        "spindle-use": 0,
    }
    state.reindex()
    return state


def start_simulator() -> Backend:
    sim = Simulator(
        sandbox_like_state(),
        SimConfig(time_scale=0.05, wait_timeout=SIM_WAIT_TIMEOUT),
        dict(DEFAULT_USERS),
    )
    running = serve_in_thread(sim)
    assert running.cert_path is not None

    trust = ssl.create_default_context(cafile=str(running.cert_path))

    def admin(method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, f"{running.url}/__sim__/{path}", json=body, verify=trust, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def gnt(client: str, command: str, name: str, reason: str | None) -> int:
        body = {"client": client, "command": command, "name": name, "reason": reason}
        return int(admin("POST", "exec", body)["job_id"])

    def hold(rapi: RapiClient, reason: str) -> Callable[[], None]:
        admin("PUT", "queue", {"hold": True})
        return lambda: admin("PUT", "queue", {"hold": False})

    node = running.sim.state.master.name
    nodes = [n.name for n in running.sim.state.sorted_nodes()]
    return Backend(
        name="simulator",
        url=running.url,
        ca_file=str(running.cert_path),
        write_auth=("gwm", DEFAULT_USERS["gwm"][0]),
        read_auth=("reader", DEFAULT_USERS["reader"][0]),
        cluster_name=running.sim.state.info["name"],
        node=node,
        nodes=nodes,
        os_name="noop",
        gnt=gnt,
        hold=hold,
        running=running,
    )


# ---- the real Ganeti sandbox -------------------------------------------------


def sandbox_env() -> dict[str, str]:
    """The sandbox's connection details: the environment first, then the env file."""
    keys = ENV_KEYS + OPTIONAL_ENV_KEYS
    values = {key: os.environ[key] for key in keys if os.environ.get(key)}
    if len(values) < len(keys) and ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key in keys:
                values.setdefault(key, value)
    missing = [key for key in ENV_KEYS if key not in values]
    if missing:
        pytest.fail(
            f"the contract suite's ganeti leg needs the real Ganeti sandbox, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            f"(neither in the environment nor in {ENV_FILE}): {HOW_TO_START}",
            pytrace=False,
        )
    return values


def sandbox_exec(*argv: str, timeout: float = 60) -> str:
    """Run a command inside the sandbox (as the master node); stdout + stderr."""
    result = subprocess.run(
        [str(SANDBOX_SCRIPT), "exec", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` in the sandbox failed: {output.strip()}")
    return output


def connect_sandbox() -> Backend:
    env = sandbox_env()

    def gnt(client: str, command: str, name: str, reason: str | None) -> int:
        argv = [client, command, "--submit"]
        if reason:
            argv += ["--reason", reason]
        output = sandbox_exec(*argv, name)
        # "JobID: N", or "N: <name>" from the commands that take several names
        found = re.search(r"JobID:\s*(\d+)", output) or re.search(r"^(\d+): ", output, re.M)
        assert found, f"no job id in the output of {argv}: {output!r}"
        return int(found.group(1))

    def hold(rapi: RapiClient, reason: str) -> Callable[[], None]:
        # A job filter rule (Ganeti >= 2.13): PAUSE keeps matching jobs queued.
        uuid = rapi.raw(
            "POST",
            "/2/filters",
            body={
                "priority": 0,
                "predicates": [["reason", ["=", "reason", reason]]],
                "action": "PAUSE",
                "reason": [],
            },
        )
        return lambda: rapi.raw("DELETE", f"/2/filters/{uuid}")

    backend = Backend(
        name="ganeti",
        url=env["GWM_SANDBOX_RAPI_URL"],
        ca_file=env["GWM_SANDBOX_CA_FILE"],
        write_auth=(env["GWM_SANDBOX_WRITE_USER"], env["GWM_SANDBOX_WRITE_PASSWORD"]),
        read_auth=(env["GWM_SANDBOX_READ_USER"], env["GWM_SANDBOX_READ_PASSWORD"]),
        cluster_name=env.get("GWM_SANDBOX_CLUSTER_NAME", "cluster.ganeti.test"),
        node=env["GWM_SANDBOX_NODE"],
        nodes=[env["GWM_SANDBOX_NODE"]],
        os_name="noop",
        gnt=gnt,
        hold=hold,
    )
    try:
        backend.client.get_cluster_info()
    except Exception as exc:
        backend.close()
        pytest.fail(
            f"the real Ganeti sandbox at {backend.url} does not answer ({exc}): {HOW_TO_START}",
            pytrace=False,
        )
    backend.nodes = backend.client.list_nodes()
    if sorted(backend.nodes) != sorted([env["GWM_SANDBOX_NODE"], env["GWM_SANDBOX_NODE2"]]):
        backend.close()
        pytest.fail(
            f"the real Ganeti sandbox has the nodes {backend.nodes}, not "
            f"{env['GWM_SANDBOX_NODE']} and {env['GWM_SANDBOX_NODE2']}: "
            "re-run `scripts/ganeti-sandbox up`",
            pytrace=False,
        )
    return backend


# ---- fixtures ----------------------------------------------------------------

GANETI_LEG = pytest.param(
    "ganeti", marks=(pytest.mark.ganeti, pytest.mark.xdist_group("ganeti")), id="ganeti"
)


@pytest.fixture(scope="session", params=[pytest.param("simulator", id="simulator"), GANETI_LEG])
def target_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def backend(target_name: str) -> Iterator[Backend]:
    made = start_simulator() if target_name == "simulator" else connect_sandbox()
    yield made
    made.close()


@pytest.fixture
def target(backend: Backend) -> Iterator[Target]:
    """The target under test; what the test made is removed afterwards."""
    handle = Target(backend)
    started = time.monotonic()
    yield handle
    problems = handle.cleanup()
    if problems:
        pytest.fail(
            f"cleanup on {handle.name} after {time.monotonic() - started:.1f} s failed: "
            + "; ".join(problems),
            pytrace=False,
        )
