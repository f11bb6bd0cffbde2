"""gwm.kit.localbus: datagram hints between the processes of one `gwm serve`.

The peer is a real second process (a plain Python subprocess, so nothing of
this process's Django or threads is shared): it listens on a socket and
writes what it receives to a file, or sends to a socket of this process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gwm.kit import localbus

#: Bounds on waiting for the other process (never a speed assertion).
PATIENCE = 20.0

#: A peer process: listens at argv[1], appends every payload as one line to argv[2].
LISTENING_PEER = """
import sys, time
from pathlib import Path
from gwm.kit.localbus import Listener
out = Path(sys.argv[2])
def handle(payload):
    if payload == b"boom":
        raise ValueError("a bad message")
    with out.open("ab") as f:
        f.write(payload + b"\\n")
Listener(Path(sys.argv[1]), handle)
Path(sys.argv[1] + ".ready").touch()
time.sleep(600)
"""

#: A peer process that sends argv[2:] to the socket at argv[1], then exits.
SENDING_PEER = """
import sys
from pathlib import Path
from gwm.kit.localbus import send
for payload in sys.argv[2:]:
    assert send(Path(sys.argv[1]), payload.encode(), wait=True), payload
"""


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Short, like gwm.serving's: a Unix socket's path may not exceed 107 bytes.
    with tempfile.TemporaryDirectory(prefix="gwm-bus-test-") as directory:
        yield Path(directory)


def _until(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def listening_peer(run_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """A listener in another process: (the process, its socket, the file it writes)."""
    path, out = run_dir / "peer.sock", run_dir / "received"
    process = subprocess.Popen([sys.executable, "-c", LISTENING_PEER, str(path), str(out)])
    try:
        _until(lambda: Path(f"{path}.ready").exists() or process.poll() is not None, "the peer")
        assert process.poll() is None, "the peer process died"
        yield process, path, out
    finally:
        process.kill()
        process.wait(10)


def _lines(out: Path) -> list[bytes]:
    return out.read_bytes().splitlines() if out.exists() else []


def test_a_listener_in_another_process_receives_what_is_sent(
    listening_peer: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    _, path, out = listening_peer
    assert _lines(out) == []
    assert localbus.send(path, b"job:1") is True
    assert localbus.send(path, b"changes", wait=True) is True
    _until(lambda: len(_lines(out)) == 2, "both datagrams")
    assert _lines(out) == [b"job:1", b"changes"]


def test_a_bad_message_does_not_stop_the_next_ones(
    listening_peer: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    _, path, out = listening_peer
    assert localbus.send(path, b"boom", wait=True)
    assert localbus.send(path, b"after", wait=True)
    _until(lambda: _lines(out) == [b"after"], "the message after the bad one")


def test_a_listener_here_receives_from_another_process(run_dir: Path) -> None:
    received: list[bytes] = []
    arrived = threading.Event()

    def handle(payload: bytes) -> None:
        received.append(payload)
        if len(received) == 2:
            arrived.set()

    listener = localbus.Listener(run_dir / "here.sock", handle)
    try:
        subprocess.run(
            [sys.executable, "-c", SENDING_PEER, str(listener.path), "grants", "job:7"],
            check=True,
            timeout=PATIENCE,
        )
        assert arrived.wait(PATIENCE), received
    finally:
        listener.close()
    assert received == [b"grants", b"job:7"]
    assert not listener.path.exists()  # closing removes its socket


def test_a_dead_peers_socket_is_removed_by_the_sender(
    listening_peer: tuple[subprocess.Popen[bytes], Path, Path],
) -> None:
    process, path, _ = listening_peer
    assert localbus.send(path, b"alive") is True
    process.kill()  # SIGKILL: it cannot remove its socket
    process.wait(10)
    assert path.exists()  # left behind
    assert localbus.send(path, b"anyone?") is False
    assert not path.exists()
    assert localbus.send(path, b"again") is False  # gone: skipped, no error


def test_a_full_socket_does_not_block_a_send_that_does_not_wait(run_dir: Path) -> None:
    # A socket nobody reads: after the kernel's queue (net.unix.max_dgram_qlen) fills,
    # a send that does not wait is refused at once.
    path = run_dir / "deaf.sock"
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deaf.bind(str(path))
    try:
        taken = 0
        for _ in range(10_000):
            if not localbus.send(path, b"x" * 1024):
                break
            taken += 1
        else:
            pytest.fail("10000 datagrams were all taken by a socket nobody reads")
        assert taken > 0  # it took some before it was full
        assert localbus.send(path, b"one more") is False
        assert path.exists()  # full is not dead: the socket stays
        # Room again once its reader takes one.
        deaf.recv(localbus.MAX_DATAGRAM)
        assert localbus.send(path, b"now") is True
    finally:
        deaf.close()


def test_a_doorbell_to_a_full_socket_waits_a_while_then_gives_up(run_dir: Path) -> None:
    path = run_dir / "deaf.sock"
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deaf.bind(str(path))
    try:
        while localbus.send(path, b"x" * 1024):
            pass
        assert localbus.send(path, b"doorbell", wait=True) is False
    finally:
        deaf.close()


def test_peers_are_the_sockets_with_the_prefix(run_dir: Path) -> None:
    assert localbus.peers(run_dir, "wake-") == []
    listeners = [
        localbus.Listener(run_dir / name, lambda _: None)
        for name in ("wake-1.sock", "wake-2.sock", "doorbell.sock")
    ]
    try:
        assert sorted(localbus.peers(run_dir, "wake-")) == [
            run_dir / "wake-1.sock",
            run_dir / "wake-2.sock",
        ]
        assert localbus.peers(run_dir, "doorbell") == [run_dir / "doorbell.sock"]
    finally:
        for listener in listeners:
            listener.close()
    assert localbus.peers(run_dir, "wake-") == []


def test_peers_of_a_missing_directory_are_none(run_dir: Path) -> None:
    assert localbus.peers(run_dir / "gone", "wake-") == []


def test_a_listener_replaces_a_socket_left_behind(run_dir: Path) -> None:
    path = run_dir / "wake-stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # the file stays, as after a crash
    got = threading.Event()
    listener = localbus.Listener(path, lambda _: got.set())
    try:
        assert localbus.send(path, b"hello")
        assert got.wait(PATIENCE)
    finally:
        listener.close()
    assert os.path.exists(path) is False
