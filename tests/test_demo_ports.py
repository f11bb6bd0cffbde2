"""`gwm demo` with a port already taken: one clear line, non-zero exit, nothing started.

Each test holds a real listening socket on 127.0.0.1 and runs the installed
`gwm demo` entry point in a subprocess with its own GWM_DATA_DIR, so the check
is the one a newcomer running `make demo` meets.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

GWM = Path(sys.executable).with_name("gwm")
TIMEOUT = 60


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 held by a listening socket for the whole test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GWM_", "DATABASE_URL", "CELERY_", "DJANGO_"))
    }
    environ.update({"GWM_DATA_DIR": str(tmp_path / "data"), **(env or {})})
    process = subprocess.Popen(
        [str(GWM), "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=environ,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"gwm demo was still running after {TIMEOUT} s (it started):\n{output}")
    return process.returncode, output


def assert_refused(code: int, output: str, port: int, hint: str, tmp_path: Path) -> None:
    assert code != 0, output
    assert str(port) in output, output
    assert hint in output, output
    assert "Traceback" not in output, output
    assert "running" not in output.lower(), output
    assert "token" not in output.lower(), output
    assert "gwm_" not in output, output  # no API token printed
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "data" / "demo-credentials.json").exists()


def test_taken_api_port_by_flag(tmp_path: Path, taken: int) -> None:
    code, output = run_demo(tmp_path, "--port", str(taken), "--sim-port", str(free_port()))
    assert_refused(code, output, taken, "--port", tmp_path)
    assert "GWM_DEMO_PORT" in output


def test_taken_api_port_by_env(tmp_path: Path, taken: int) -> None:
    code, output = run_demo(
        tmp_path, env={"GWM_DEMO_PORT": str(taken), "GWM_DEMO_SIM_PORT": str(free_port())}
    )
    assert_refused(code, output, taken, "GWM_DEMO_PORT", tmp_path)


def test_taken_simulator_port_by_flag(tmp_path: Path, taken: int) -> None:
    code, output = run_demo(tmp_path, "--port", str(free_port()), "--sim-port", str(taken))
    assert_refused(code, output, taken, "--sim-port", tmp_path)
    assert "GWM_DEMO_SIM_PORT" in output


def test_taken_simulator_port_by_env(tmp_path: Path, taken: int) -> None:
    code, output = run_demo(
        tmp_path, env={"GWM_DEMO_PORT": str(free_port()), "GWM_DEMO_SIM_PORT": str(taken)}
    )
    assert_refused(code, output, taken, "GWM_DEMO_SIM_PORT", tmp_path)


def test_both_ports_taken_is_still_one_line(tmp_path: Path, taken: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        second = other.getsockname()[1]
        code, output = run_demo(tmp_path, "--port", str(taken), "--sim-port", str(second))
    assert_refused(code, output, taken, "GWM_DEMO_PORT", tmp_path)
    assert str(second) in output
    assert "GWM_DEMO_SIM_PORT" in output
