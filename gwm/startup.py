"""What every gwm process does before it serves: set Django up, and check its port is free.

Shared by the server command (gwm.server_cli) and the demo (gwm.demo).
"""

from __future__ import annotations

import errno
import os
import socket

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
