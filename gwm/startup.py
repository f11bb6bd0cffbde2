"""What every gwm process does before it serves: set Django up, and check its port is free.

Shared by the server command (gwm.server_cli) and the demo (gwm.demo).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import typer


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        typer.echo(f"gwm: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def port_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` right now, or None if it can.

    A bind test made the way uvicorn binds (``SO_REUSEADDR``), so a port in
    TIME_WAIT counts as free and one with a listener (on this address or on
    every address) as taken. The socket is closed again at once.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, OverflowError) as exc:
        return f"cannot listen on {host}:{port} ({exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def exit_if_port_taken(command: str, host: str, port: int, *, what: str, choose: str) -> None:
    """One line on stderr and exit status 1 when ``host:port`` cannot be listened on."""
    problem = port_problem(host, port)
    if problem is not None:
        typer.echo(f"gwm {command}: {problem} ({what}); choose another with {choose}", err=True)
        raise typer.Exit(1)


#: pg_advisory_lock key of `gwm migrate` (any constant; ASCII "gwm-migr").
_MIGRATE_LOCK_KEY = 0x67776D2D6D696772


@contextlib.contextmanager
def migration_lock() -> Iterator[None]:
    """Hold the database's migration lock for the block: a second `gwm migrate` (or a
    `gwm serve` starting) waits for the first, then finds nothing left to apply.

    PostgreSQL: a session advisory lock. SQLite: an exclusive ``flock`` on a file
    beside the database (one machine by construction).
    """
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_MIGRATE_LOCK_KEY])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATE_LOCK_KEY])
        return
    name = str(connection.settings_dict["NAME"])
    if name.startswith((":memory:", "file:")):  # an in-memory database: one process
        yield
        return
    lock_path = Path(name + ".migrate-lock")
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def unapplied_migrations() -> list[str]:
    """The migrations this code has and the database has not applied."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
