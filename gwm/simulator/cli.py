"""``gwm simulator``: serve one simulated Ganeti cluster until interrupted.

Registered by gwm/server_cli.py as ``app.command("simulator")(simulator)``; also
runnable as ``python -m gwm.simulator``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gwm.simulator.app import DEFAULT_USERS, READ, WRITE, Simulator
from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.server import port_problem, serve


def parse_user(spec: str) -> tuple[str, str, frozenset[str]]:
    """``name:password:read|write`` (write implies read)."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[0] or parts[2] not in (READ, WRITE):
        raise typer.BadParameter(f"expected name:password:read|write, got {spec!r}")
    rights = frozenset({READ, WRITE}) if parts[2] == WRITE else frozenset({READ})
    return parts[0], parts[1], rights


def simulator(
    nodes: Annotated[int, typer.Option(help="number of nodes", min=1)] = 2,
    instances: Annotated[int, typer.Option(help="number of instances", min=0)] = 20,
    port: Annotated[
        int, typer.Option(help="port to listen on (Ganeti's is 5080)", min=1, max=65535)
    ] = 5080,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    hostname: Annotated[
        str | None, typer.Option(help="name in the certificate and URL (default: --host)")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="multiplies every simulated duration (0: instant)", min=0)
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="seed of the generated cluster")] = 0,
    no_tls: Annotated[bool, typer.Option("--no-tls", help="plain HTTP instead of HTTPS")] = False,
    cert_out: Annotated[
        str | None, typer.Option(help="where to write the certificate (key goes to <file>.key)")
    ] = None,
    user: Annotated[
        list[str] | None,
        typer.Option(
            help="name:password:read|write, repeatable (default gwm:gwm:write and"
            " reader:reader:read)"
        ),
    ] = None,
    cluster_name: Annotated[str, typer.Option(help="the cluster's name")] = "cluster.example.test",
    wait_timeout: Annotated[
        float, typer.Option(help="longest /2/jobs/ID/wait block, seconds (Ganeti: 10)")
    ] = 10.0,
    admin_token: Annotated[
        str | None, typer.Option(help="require this X-Sim-Token on /__sim__ (default: none)")
    ] = None,
) -> None:
    """Serve a stateful Ganeti RAPI v2 simulator (one cluster) until interrupted."""
    # Before the cluster is generated or anything is printed.
    problem = port_problem(host, port)
    if problem is not None:
        typer.echo(
            f"gwm simulator: {problem} (the simulated RAPI); choose another with --port", err=True
        )
        raise typer.Exit(1)
    users = dict(DEFAULT_USERS)
    if user:
        users = {}
        for spec in user:
            name, password, rights = parse_user(spec)
            users[name] = (password, rights)
    state = generate_cluster(nodes=nodes, instances=instances, seed=seed, cluster_name=cluster_name)
    config = SimConfig(time_scale=time_scale, wait_timeout=wait_timeout, admin_token=admin_token)
    sim = Simulator(state, config, users)
    serve(sim, host=host, port=port, tls=not no_tls, hostname=hostname, cert_out=cert_out)
