"""What every accounts command shares: Django set up lazily, refusals as one line, tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from gwm.errors import AppError, NotFound
from gwm.startup import django_setup

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from pydantic import BaseModel

    Model = TypeVar("Model", bound=BaseModel)

Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def command_group(text: str) -> typer.Typer:
    return typer.Typer(help=text, no_args_is_help=True)


def fail(message: str, status: int = 2) -> NoReturn:
    typer.echo(f"gwm: {message}", err=True)
    raise typer.Exit(status)


def _problem_line(exc: AppError) -> str:
    known = exc.extra.get("known")
    return f"{exc.detail} (known: {', '.join(known)})" if known else exc.detail


@contextmanager
def shell() -> Iterator[None]:
    """Django set up; gwm's refusals become one line and an exit status, not a traceback."""
    django_setup()
    from django.db import DatabaseError
    from pydantic import ValidationError

    try:
        yield
    except AppError as exc:
        fail(_problem_line(exc), 2 if exc.status < 500 else 1)
    except ValidationError as exc:
        # The API's schemas name the field; the value is left out (it may be a password).
        fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    except DatabaseError as exc:
        fail(f"cannot use the database ({exc}); has `gwm migrate` run?", 1)


def checked(schema: type[Model], **fields: Any) -> Model:
    """``fields`` through the API's schema ``schema``: the shell takes what the API takes."""
    return schema.model_validate(fields)


def cell(key: str, value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if key.endswith("_at"):  # 2025-01-02T03:04:05.678Z, to the minute
        return str(value)[:16].replace("T", " ")
    return str(value)


def show(
    data: dict[str, Any] | list[dict[str, Any]], as_json: bool, columns: Sequence[str]
) -> None:
    """``data`` as JSON, or as a table of ``columns`` (a header line, then a line a row)."""
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    rows = data if isinstance(data, list) else [data]
    table = [[c.replace("_", " ").upper() for c in columns]]
    table += [[cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def users_named(names: Sequence[str]) -> list[User]:
    from django.contrib.auth.models import User

    found = {u.username: u for u in User.objects.filter(username__in=names)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise NotFound(f"no user {', '.join(missing)}")
    return [found[n] for n in dict.fromkeys(names)]


def new_password() -> str:
    """The first line of stdin, or asked twice on a terminal; never an argument (ps shows those)."""
    if sys.stdin.isatty():
        answer: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        return answer
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("no password on stdin")
    return line
