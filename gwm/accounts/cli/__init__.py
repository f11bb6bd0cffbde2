"""`gwm token|user|group|role|role-binding`: accounts managed from the server's own shell.

A deployment without the web admin (or before anyone can log in) is run from
here. Each command acts as the server itself (``actor=None``: allowed
everything; the services audit it with no user name), checks its input with
the API's own schemas and changes things through the same services, so the
shell and the API cannot drift apart. A refusal is one line on stderr and exit
status 2; an unreachable database is status 1.

Only gwm.server_cli imports this package (it is wiring); nothing here touches
Django until a command runs.
"""

from __future__ import annotations

import typer

from gwm.accounts.cli.roles import binding_app, role_app
from gwm.accounts.cli.tokens import token_app
from gwm.accounts.cli.users import group_app, user_app

# Mounted by gwm.server_cli under these names.
SUB_APPS: tuple[tuple[str, typer.Typer], ...] = (
    ("token", token_app),
    ("user", user_app),
    ("group", group_app),
    ("role", role_app),
    ("role-binding", binding_app),
)
