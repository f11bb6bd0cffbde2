"""A PostgreSQL cluster and a RabbitMQ node of a test's own, on free loopback ports.

Started in a temporary directory and stopped (or killed) by the test, so it may stop,
restart and kill them without touching the services the rest of the suite shares
(tests/operations/test_distributed_ha.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.operations.distributed import until

SERVICE_START_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def guard() -> list[str]:
    """Kill the child if this test process dies without its finalizers.

    The parent-death signal follows the *thread* that started the child: every process
    is started from the test's main thread (never from a helper thread, whose end
    would SIGKILL it)."""
    return ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


# -- a private PostgreSQL cluster ------------------------------------------------------


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not candidates:
        pytest.fail(
            "PostgreSQL's pg_ctl/initdb are not installed (not on PATH, nor in "
            "/usr/lib/postgresql/*/bin): `scripts/services postgres` installs them",
            pytrace=False,
        )
    return candidates[-1].parent


@dataclass
class PrivatePostgres:
    """initdb in a directory of its own, trust auth, one free loopback port."""

    base: Path
    port: int
    bindir: Path
    as_postgres: bool
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.base / "postgres.log"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def url(self) -> str:
        return f"postgres://gwm@127.0.0.1:{self.port}/gwm"

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.base
        )

    def _checked(self, *argv: str, timeout: float = 60) -> None:
        done = self._run(*argv, timeout=timeout)
        if done.returncode != 0:
            pytest.fail(
                f"private PostgreSQL: `{' '.join(argv)}` failed ({done.returncode}):\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}\n{log_tail(self.log)}",
                pytrace=False,
            )

    def start(self) -> None:
        self._checked("initdb", "-D", str(self.data), "-A", "trust", "-U", "gwm", "-E", "UTF8")
        settings = (
            f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
            f"unix_socket_directories = '{self.base}'\nmax_connections = 200\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        self._checked("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "start")
        self._checked("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "gwm", "gwm")

    def restart(self) -> float:
        """``pg_ctl restart -m fast``: every connection is cut; seconds it took."""
        began = time.monotonic()
        self._checked(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-m", "fast", "restart"
        )
        return time.monotonic() - began

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _pg_bindir()
    as_postgres = os.geteuid() == 0
    # Under /tmp, not pytest's tmp_path: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="gwm-ha-pg-"))
    if as_postgres:
        shutil.chown(base, user="postgres")
    server = PrivatePostgres(base, free_port(), bindir, as_postgres)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- a private RabbitMQ node -----------------------------------------------------------


def _rabbit_script(name: str) -> str:
    # The Debian wrappers in /usr/sbin switch to the rabbitmq user and its home (and
    # its Erlang cookie); the scripts they call run as whoever starts them.
    real = Path("/usr/lib/rabbitmq/bin") / name
    if real.exists():
        return str(real)
    found = shutil.which(name)
    if not found:
        pytest.fail(
            f"RabbitMQ's {name} is not installed: `scripts/services rabbitmq` installs it",
            pytrace=False,
        )
    return found


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of its own name, ports, data, logs, config and Erlang cookie."""

    base: Path
    node: str
    port: int
    dist_port: int
    process: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    @property
    def log(self) -> Path:
        return self.base / "server.out"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            # A home of its own: the cookie below, never the machine's or root's.
            HOME=str(self.base / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.base / "rabbit.pid"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def prepare(self) -> None:
        for directory in ("home", "mnesia", "log"):
            (self.base / directory).mkdir(mode=0o700)
        # Written before the node and the CLI first run: were it missing, each would
        # make one of its own at once, and they could disagree (the CLI then cannot
        # reach the node: "Erlang cookie not matching").
        cookie = self.base / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = false\n"
            "vm_memory_high_watermark.relative = 0.8\n"
            "disk_free_limit.absolute = 50MB\n"
        )
        (self.base / "enabled_plugins").write_text("[].\n")  # no management plugin

    def start(self, timeout: float = SERVICE_START_SECONDS) -> float:
        """Start the node; seconds until it accepts AMQP connections."""
        began = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*guard(), _rabbit_script("rabbitmq-server")],
                env=self.env(),
                cwd=self.base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() - began > timeout:
                pytest.fail(
                    f"the private RabbitMQ node {self.node} did not start on port {self.port} "
                    f"(rc={self.process.poll()}):\n{log_tail(self.log)}",
                    pytrace=False,
                )
            time.sleep(0.2)
        took = time.monotonic() - began
        self.starts.append(took)
        return took

    def ctl(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_rabbit_script("rabbitmqctl"), "-n", self.node, *argv],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        """``rabbitmqctl stop``: the node shuts down (its queues are kept on disk)."""
        done = self.ctl("stop")
        assert done.returncode == 0, f"rabbitmqctl stop failed: {done.stdout}{done.stderr}"
        if self.process is not None:
            self.process.wait(timeout=60)
        until(lambda: not _port_open(self.port), timeout=30, what="RabbitMQ to close its port")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def private_rabbit() -> Iterator[PrivateRabbit]:
    base = Path(tempfile.mkdtemp(prefix="gwm-ha-mq-"))
    node = PrivateRabbit(base, f"gwmtest-{uuid.uuid4().hex[:10]}@localhost", *_two_ports())
    try:
        node.prepare()
        node.start()
        yield node
    finally:
        with contextlib.suppress(Exception):
            if node.process is not None and node.process.poll() is None:
                node.ctl("stop", timeout=30)
                node.process.wait(timeout=30)
        node.kill()
        shutil.rmtree(base, ignore_errors=True)


def _two_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second
