"""`gwm demo` (what `make demo` runs): embedded gwm with a simulated cluster registered.

Everything lives under GWM_DATA_DIR: the SQLite file, the passwords and API
tokens it prints for its two users, ``admin`` and ``operator`` (kept in
demo-credentials.json so a rerun prints the same ones), and the simulator's
certificate, which gwm pins.

It listens on 127.0.0.1:8000 (the API; --port, GWM_DEMO_PORT) and
127.0.0.1:15081 (the simulated RAPI; --sim-port, GWM_DEMO_SIM_PORT). Both are
checked with a bind before anything is created or printed, so a taken port is
one line on stderr and exit status 1, never a banner, a token or a traceback.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

DEMO_CLUSTER = "demo"
_DEMO_TOKEN_LIFE = timedelta(days=365)
#: The simulated cluster listens here only (it is reached by gwm in this process).
SIM_HOST = "127.0.0.1"


def _credentials(data_dir: Path) -> dict[str, Any]:
    """The demo's two users, made once and kept in ``demo-credentials.json`` (mode 600):
    ``admin`` (a superuser) and ``operator`` (bound as operator of the demo cluster), each
    with a password and a token, so a newcomer sees both views."""
    path = data_dir / "demo-credentials.json"
    saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    _demo_user(saved, "admin", superuser=True)
    _demo_user(saved, "operator", superuser=False)
    path.write_text(json.dumps(saved))
    path.chmod(0o600)
    return saved


def _demo_user(saved: dict[str, Any], name: str, *, superuser: bool) -> None:
    from django.contrib.auth import get_user_model

    from gwm.accounts.models import Role, RoleBinding
    from gwm.accounts.services.tokens import token_authenticate, token_create
    from gwm.clusters.models import Cluster

    users = get_user_model().objects
    entry: dict[str, Any] = saved.setdefault(name, {})
    user = users.filter(username=name).first()
    if user is None or "password" not in entry:
        entry["password"] = secrets.token_urlsafe(12)
        if user is None:
            make = users.create_superuser if superuser else users.create_user
            user = make(name, f"{name}@localhost", entry["password"])
        else:
            user.set_password(entry["password"])
            user.save()
    if not superuser:
        RoleBinding.objects.get_or_create(
            role=Role.objects.get(name="operator"),
            user=user,
            scope="cluster",
            cluster=Cluster.objects.get(name=DEMO_CLUSTER),
        )
    if "token" not in entry or token_authenticate(entry["token"]) is None:
        _, entry["token"] = token_create(
            actor=None, user=user, name="demo", expires_in=_DEMO_TOKEN_LIFE
        )


def _register(url: str, cert_path: Path | None) -> None:
    from gwm.clusters.models import Cluster
    from gwm.clusters.services import registry

    connection = registry.Connection(
        rapi_url=url,
        username="gwm",
        password="gwm",
        tls_ca_pem=cert_path.read_text() if cert_path else "",
        tls_fingerprint="",
        tls_verify=True,
    )
    existing = Cluster.objects.filter(name=DEMO_CLUSTER).first()
    intervals = {"fast_interval": 2.0, "runtime_interval": 5.0, "slow_interval": 30.0}
    if existing is None:
        registry.cluster_create(
            actor=None,
            name=DEMO_CLUSTER,
            connection=connection,
            description="the simulated cluster of `make demo`",
            intervals=intervals,
        )
    else:
        registry.cluster_update(existing, actor=None, changes={**connection.__dict__, **intervals})


def _free_near(host: str, port: int, avoid: set[int]) -> int | None:
    """The first port above ``port`` that can be listened on now (for the hint)."""
    from gwm.startup import port_problem

    for candidate in range(port + 1, min(port + 100, 65535) + 1):
        if candidate not in avoid and port_problem(host, candidate) is None:
            return candidate
    return None


def _check_ports(host: str, port: int, sim_port: int) -> None:
    """Exit with one line before anything is set up or printed when a port is not free."""
    from gwm.startup import port_problem

    if port == sim_port:
        typer.echo(
            f"gwm demo: the API and the simulated cluster cannot both use port {port};"
            " choose another with --sim-port or GWM_DEMO_SIM_PORT",
            err=True,
        )
        raise typer.Exit(1)
    checks = [
        (host, port, "gwm's API", "--port", "GWM_DEMO_PORT"),
        (SIM_HOST, sim_port, "the simulated cluster's RAPI", "--sim-port", "GWM_DEMO_SIM_PORT"),
    ]
    # Port 0 (simulator only) means any free port: nothing to check.
    failed = [
        (address, number, what, flag, env, problem)
        for address, number, what, flag, env in checks
        if number and (problem := port_problem(address, number)) is not None
    ]
    if not failed:
        return
    avoid = {port, sim_port}
    suggestions = []
    for address, number, _, _, env, _ in failed:
        spare = _free_near(address, number, avoid)
        if spare is not None:
            avoid.add(spare)
            suggestions.append(f"{env}={spare}")
    example = f", e.g. {' '.join(suggestions)} make demo" if suggestions else ""
    problems = " and ".join(f"{problem} ({what})" for _, _, what, _, _, problem in failed)
    choose = " and ".join(f"{flag} or {env}" for _, _, _, flag, env, _ in failed)
    typer.echo(f"gwm demo: {problems}; choose another with {choose}{example}", err=True)
    raise typer.Exit(1)


def demo(
    host: Annotated[
        str, typer.Option(help="address gwm listens on", envvar="GWM_DEMO_HOST")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="port gwm listens on", envvar="GWM_DEMO_PORT", min=1, max=65535)
    ] = 8000,
    sim_port: Annotated[
        int,
        typer.Option(
            help="port of the simulated cluster's RAPI (0: any free port)",
            envvar="GWM_DEMO_SIM_PORT",
            min=0,
            max=65535,
        ),
    ] = 15081,
    nodes: Annotated[int, typer.Option(help="nodes of the simulated cluster", min=1)] = 3,
    instances: Annotated[int, typer.Option(help="instances of the simulated cluster", min=0)] = 40,
) -> None:
    """Run gwm with its embedded defaults and a simulated Ganeti cluster registered."""
    # Before anything is created or printed: a taken port is one clear line.
    _check_ports(host, port, sim_port)

    from gwm import serving

    with serving.run_directory() as run_dir:
        _serve_demo(
            run_dir, host=host, port=port, sim_port=sim_port, nodes=nodes, instances=instances
        )


def _serve_demo(
    run_dir: Path, *, host: str, port: int, sim_port: int, nodes: int, instances: int
) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")
    from gwm.startup import django_setup

    django_setup()
    from django.conf import settings
    from django.core.management import call_command

    from gwm import serving
    from gwm.simulator.app import DEFAULT_USERS, Simulator
    from gwm.simulator.config import SimConfig
    from gwm.simulator.data import generate_cluster
    from gwm.simulator.server import serve_in_thread

    call_command("migrate", interactive=False, verbosity=0)

    state = generate_cluster(
        nodes=nodes, instances=instances, seed=1, cluster_name="demo.example.test"
    )
    sim = Simulator(state, SimConfig(time_scale=0.2), dict(DEFAULT_USERS))
    try:
        running = serve_in_thread(
            sim, host=SIM_HOST, port=sim_port, cert_out=settings.DATA_DIR / "demo-simulator.pem"
        )
    except RuntimeError:
        # Taken between the check and now: uvicorn has logged why just above.
        typer.echo(
            f"gwm demo: the simulated cluster could not listen on {SIM_HOST}:{sim_port};"
            " choose another with --sim-port or GWM_DEMO_SIM_PORT",
            err=True,
        )
        raise typer.Exit(1) from None
    _register(running.url, running.cert_path)
    credentials = _credentials(settings.DATA_DIR)

    base = f"http://{host}:{port}"
    processes = settings.GWM_API_PROCESSES
    admin, operator = credentials["admin"], credentials["operator"]
    token = admin["token"]
    typer.echo(
        f"""
gwm is running (embedded mode: SQLite in {settings.DATA_DIR}; {processes} API processes
and the workers in this one)

  API            {base}/api/v1/
  API docs       {base}/api/v1/docs
  admin          {base}/admin/   user: admin   password: {admin["password"]}
  admin token    {token}
  operator       user: operator   password: {operator["password"]}
                 (may view, power-cycle, console and migrate on "{DEMO_CLUSTER}"; nothing else)
  operator token {operator["token"]}

  try:  curl -H 'Authorization: Bearer {token}' '{base}/api/v1/instances?fields=name,status'
  live: curl -N -H 'Authorization: Bearer {token}' '{base}/api/v1/changes/stream'
        (every change as it happens; /api/v1/changes?since=0 reads the log from the start)

simulated Ganeti cluster "{DEMO_CLUSTER}": {running.url} ({nodes} nodes, {instances} instances)
  change it "outside gwm", as gnt-instance on the master would, and watch gwm follow:
  curl -sk -X POST {running.url}/__sim__/exec -H 'Content-Type: application/json' \\
       -d '{{"client": "gnt-instance", "command": "shutdown", "name": "<instance>"}}'
"""
    )
    try:
        with serving.embedded_workers(run_dir):
            serving.serve_api(host, port, processes, log_level="warning")
    finally:
        running.stop()
