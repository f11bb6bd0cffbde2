"""The `gwm` console command."""

from __future__ import annotations

from typing import Annotated

import typer

from gwm.accounts.cli import SUB_APPS
from gwm.kit.queues import KINDS, parse_kinds, queue_name
from gwm.startup import django_setup, exit_if_port_taken, migration_lock, unapplied_migrations

app = typer.Typer(
    name="gwm",
    help="gwm: one JSON HTTP API in front of many Ganeti clusters.",
    no_args_is_help=True,
    add_completion=False,
)


def _manage(*argv: str) -> None:
    django_setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["gwm", *argv])


def _migrate(*options: str) -> None:
    """Apply migrations under the database's migration lock (two at once take turns)."""
    django_setup()
    with migration_lock():
        _manage("migrate", "--no-input", *options)


def _exit_unless_migrated(command: str) -> None:
    pending = unapplied_migrations()
    if pending:
        typer.echo(
            f"gwm {command}: the database lacks {len(pending)} migration(s) of this release "
            f"({', '.join(pending[:3])}{', ...' if len(pending) > 3 else ''}): "
            "run `gwm migrate` once, then start the API processes",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    migrate: Annotated[
        bool | None,
        typer.Option(
            help="apply migrations before serving (default: in embedded mode only)",
            show_default=False,
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(help="API processes (default: GWM_API_PROCESSES, 2-4 by cores)", min=1),
    ] = None,
) -> None:
    """Serve the API in several processes (embedded mode also runs the workers, in this one)."""
    from gwm import serving

    exit_if_port_taken("serve", host, port, what="the API", choose="--port")
    with serving.run_directory() as run_dir:
        django_setup()
        from django.conf import settings

        if settings.GWM_EMBEDDED if migrate is None else migrate:
            _migrate("-v", "0")
        else:
            _exit_unless_migrated("serve")
        with serving.embedded_workers(run_dir):
            serving.serve_api(host, port, processes or settings.GWM_API_PROCESSES)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    processes: Annotated[
        int | None,
        typer.Option(help="API processes (default: GWM_API_PROCESSES, 2-4 by cores)", min=1),
    ] = None,
) -> None:
    """Serve only the API (distributed mode: workers and beat run as `gwm worker`, `gwm beat`).

    Never migrates: run `gwm migrate` once per release; this refuses to start
    on a database that lacks this release's migrations."""
    from gwm import serving

    exit_if_port_taken("api", host, port, what="the API", choose="--port")
    with serving.run_directory():
        django_setup()
        from django.conf import settings

        if settings.GWM_EMBEDDED:
            typer.echo(
                "gwm api: CELERY_BROKER_URL is not set, so no worker would take this API's "
                "work; set it (distributed mode) or run `gwm serve` (embedded mode)",
                err=True,
            )
            raise typer.Exit(2)
        _exit_unless_migrated("api")
        serving.serve_api(host, port, processes or settings.GWM_API_PROCESSES)


_METRICS_PORT_HELP = (
    "serve this process's figures at http://<metrics-host>:<port>/metrics (for a host "
    "with no gwm api; no token, so keep it private); 0: off"
)


def _serve_metrics(host: str, port: int) -> None:
    if not port:
        return
    from gwm.observability.endpoint import serve_process_metrics

    try:
        serve_process_metrics(host, port)
    except OSError as exc:
        typer.echo(f"gwm: cannot serve metrics on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="worker threads (default: GWM_WORKER_THREADS, 16)")
    ] = None,
    queues: Annotated[
        str,
        typer.Option(help=f"kinds of work to take, comma-separated: {', '.join(KINDS)}"),
    ] = ",".join(KINDS),
    name: Annotated[
        str | None,
        typer.Option(
            help="this worker's name, unique per host (restarted under it, it takes its "
            "previous run's work back at once); default: Celery's, celery@<host>"
        ),
    ] = None,
    metrics_port: Annotated[int, typer.Option(help=_METRICS_PORT_HELP)] = 0,
    metrics_host: Annotated[str, typer.Option(help="address of --metrics-port")] = "127.0.0.1",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run a Celery worker (distributed mode)."""
    try:
        kinds = parse_kinds(queues)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queues") from None
    django_setup()
    from django.conf import settings

    _serve_metrics(metrics_host, metrics_port)

    from gwm.celery import app as celery_app

    threads = concurrency or settings.GWM_WORKER_THREADS
    names = ",".join(queue_name(settings.GWM_CELERY_QUEUE, kind) for kind in kinds)
    celery_app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={threads}",
            f"--queues={names}",
            f"--loglevel={loglevel}",
            *([f"--hostname={name}@%h"] if name else []),
        ]
    )


@app.command()
def beat(
    metrics_port: Annotated[int, typer.Option(help=_METRICS_PORT_HELP)] = 0,
    metrics_host: Annotated[str, typer.Option(help="address of --metrics-port")] = "127.0.0.1",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run the Celery beat scheduler (distributed mode: exactly one)."""
    django_setup()
    _serve_metrics(metrics_host, metrics_port)
    from gwm.celery import app as celery_app

    celery_app.start(["beat", f"--loglevel={loglevel}"])


@app.command()
def migrate() -> None:
    """Apply database migrations (once per release; concurrent runs take turns)."""
    _migrate()


@app.command()
def createsuperuser(
    username: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create an administrator account (asks for the password)."""
    argv = ["createsuperuser"]
    if username:
        argv.append(f"--username={username}")
    if email:
        argv.append(f"--email={email}")
    _manage(*argv)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def manage(ctx: typer.Context) -> None:
    """Run any Django management command (gwm manage showmigrations ...)."""
    _manage(*ctx.args)


# token, user, group, role, role-binding: the accounts, run from the server's shell.
for _name, _sub_app in SUB_APPS:
    app.add_typer(_sub_app, name=_name)


def _register_optional_commands() -> None:
    from gwm.demo import demo
    from gwm.simulator.cli import simulator

    app.command("simulator")(simulator)
    app.command("demo")(demo)


def main() -> None:
    _register_optional_commands()
    app(prog_name="gwm")


if __name__ == "__main__":
    main()
