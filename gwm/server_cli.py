"""The `gwm` console command."""

from __future__ import annotations

from typing import Annotated

import typer

from gwm.accounts.cli import SUB_APPS
from gwm.startup import django_setup, exit_if_port_taken

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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    migrate: Annotated[bool, typer.Option(help="apply migrations before serving")] = True,
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

        if migrate:
            _manage("migrate", "--no-input", "-v", "0")
        with serving.embedded_workers(run_dir):
            serving.serve_api(host, port, processes or settings.GWM_API_PROCESSES)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="worker threads (default: GWM_WORKER_THREADS, 16)")
    ] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run a Celery worker (distributed mode)."""
    django_setup()
    from django.conf import settings

    from gwm.celery import app as celery_app

    threads = concurrency or settings.GWM_WORKER_THREADS
    celery_app.worker_main(
        ["worker", "--pool=threads", f"--concurrency={threads}", f"--loglevel={loglevel}"]
    )


@app.command()
def beat(loglevel: Annotated[str, typer.Option()] = "INFO") -> None:
    """Run the Celery beat scheduler (distributed mode: exactly one)."""
    django_setup()
    from gwm.celery import app as celery_app

    celery_app.start(["beat", f"--loglevel={loglevel}"])


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    _manage("migrate", "--no-input")


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
