"""The server's shell manages accounts: `gwm token|user|group|role|role-binding`.

Every command runs in-process through the real `gwm` app (so the mounting is
tested too) against the test database. Each test looks at the state before
and after, and where it matters at what the API then lets the user do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from click.testing import Result
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from typer.testing import CliRunner

from gwm.accounts.models import ApiToken, AuditEntry, Role, RoleBinding
from gwm.accounts.services.tokens import token_authenticate
from gwm.server_cli import app
from gwm.simulator.server import Running
from tests.clusters.helpers import register

pytestmark = pytest.mark.django_db


def gwm(*argv: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(argv), input=input)


def ok(*argv: str, input: str | None = None) -> Result:
    result = gwm(*argv, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def refused(*argv: str, input: str | None = None) -> str:
    """The one-line message of a command that must fail with status 2."""
    result = gwm(*argv, input=input)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def as_json(*argv: str) -> Any:
    return json.loads(ok(*argv, "--json").stdout)


def bearer(token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_a_token_made_on_the_command_line_works_until_revoked() -> None:
    ok("user", "create", "bob", "--no-password")
    assert ApiToken.objects.count() == 0
    made = ok("token", "create", "bob", "--description", "ci")
    plaintext = made.stdout.strip()
    assert plaintext.startswith("gwm_") and "\n" not in plaintext  # alone on stdout
    assert "not shown again" in made.stderr
    found = token_authenticate(plaintext)
    assert found is not None and found.user.username == "bob" and found.name == "ci"
    assert AuditEntry.objects.filter(action="token.create", username="").count() == 1

    [listed] = as_json("token", "list", "--user", "bob")
    assert (listed["id"], listed["state"], listed["description"]) == (found.pk, "active", "ci")
    assert plaintext not in ok("token", "list").stdout  # the secret is never listed

    assert "revoked token" in ok("token", "revoke", str(found.pk)).stdout
    assert token_authenticate(plaintext) is None
    assert as_json("token", "list")[0]["state"] == "revoked"
    assert AuditEntry.objects.filter(action="token.revoke", username="").count() == 1
    assert "no api token 999" in refused("token", "revoke", "999")


def test_token_scope_options_narrow_the_token() -> None:
    ok("user", "create", "bob", "--no-password")
    made = as_json(
        "token", "create", "bob", "--read-only", "--cluster", "sim", "--network", "10.0.0.0/8"
    )
    assert (made["read_only"], made["clusters"], made["networks"]) == (
        True,
        ["sim"],
        ["10.0.0.0/8"],
    )
    assert token_authenticate(made["token"], "10.1.2.3") is not None
    assert token_authenticate(made["token"], "192.0.2.1") is None  # outside its network
    assert "not a network" in refused("token", "create", "bob", "--network", "nowhere")
    assert "no user 'ghost'" in refused("token", "create", "ghost")
    assert ApiToken.objects.count() == 1


def test_service_accounts_get_long_tokens_and_users_do_not() -> None:
    service = as_json("user", "create", "robot", "--service")
    assert service["service"] is True
    assert not User.objects.get(username="robot").has_usable_password()
    made = ok("token", "create", "robot", "--days", "3000")
    token = token_authenticate(made.stdout.strip())
    assert token is not None and token.expires_at is not None
    assert token.expires_at > timezone.now() + timedelta(days=2999)

    ok("user", "create", "bob", "--no-password")
    message = refused("token", "create", "bob", "--days", "3000")
    assert "at most 365 days" in message
    assert not ApiToken.objects.filter(user__username="bob").exists()


def test_a_role_binding_lets_the_user_read_the_cluster(
    simulator: Callable[..., Running],
) -> None:
    register(simulator(), name="sim")
    ok("user", "create", "bob", "--no-password")
    client = bearer(ok("token", "create", "bob").stdout.strip())
    assert client.get("/api/v1/clusters/sim").status_code == 404

    binding = as_json("role-binding", "create", "viewer", "--user", "bob", "--cluster", "sim")
    assert (binding["role"], binding["scope"], binding["cluster"]) == ("viewer", "cluster", "sim")
    assert client.get("/api/v1/clusters/sim").status_code == 200
    assert [b["id"] for b in as_json("role-binding", "list", "--cluster", "sim")] == [binding["id"]]
    assert "bob" in ok("role-binding", "list").stdout

    ok("role-binding", "delete", str(binding["id"]))
    assert client.get("/api/v1/clusters/sim").status_code == 404
    assert not RoleBinding.objects.filter(pk=binding["id"]).exists()


def test_binding_scopes_follow_the_options(simulator: Callable[..., Running]) -> None:
    register(simulator(), name="sim")
    ok("user", "create", "bob", "--no-password")
    ok("group", "create", "ops", "--member", "bob")
    made = [
        as_json("role-binding", "create", "viewer", "--group", "ops"),
        as_json("role-binding", "create", "operator", "--user", "bob", "--cluster", "sim"),
        as_json("role-binding", "create", "operator", "--user", "bob", "--cluster", "sim",
                "--instance", "web1"),
        as_json("role-binding", "create", "viewer", "--group", "ops", "--cluster", "sim",
                "--tag", "team:ops"),
    ]  # fmt: skip
    assert [(b["scope"], b["instance"], b["tag"]) for b in made] == [
        ("global", None, None),
        ("cluster", None, None),
        ("instance", "web1", None),
        ("tag", None, "team:ops"),
    ]
    assert RoleBinding.objects.count() == 4
    assert "--user or --group" in refused("role-binding", "create", "viewer")
    both = ("--user", "bob", "--group", "ops")
    assert "--user or --group" in refused("role-binding", "create", "viewer", *both)
    assert "need the --cluster" in refused(
        "role-binding", "create", "viewer", "--user", "bob", "--instance", "web1"
    )
    assert "not both" in refused(
        "role-binding", "create", "viewer", "--user", "bob", "--cluster", "sim",
        "--instance", "web1", "--tag", "x",
    )  # fmt: skip
    assert "no cluster 'elsewhere'" in refused(
        "role-binding", "create", "viewer", "--user", "bob", "--cluster", "elsewhere"
    )
    assert "no role 'nobody'" in refused("role-binding", "create", "nobody", "--user", "bob")
    assert RoleBinding.objects.count() == 4


def test_role_create_checks_its_verbs() -> None:
    message = refused("role", "create", "flyer", "view", "fly")
    assert "unknown verbs: fly" in message and "power" in message  # the known ones are named
    assert not Role.objects.filter(name="flyer").exists()
    assert "name" in refused("role", "create", "Bad Name", "view")

    made = as_json("role", "create", "restarter", "view", "power", "--description", "reboots")
    assert made == {
        "name": "restarter",
        "description": "reboots",
        "verbs": ["power", "view"],
        "builtin": False,
    }
    assert Role.objects.get(name="restarter").verbs == ["power", "view"]
    assert "exists" in refused("role", "create", "restarter", "view")
    names = [r["name"] for r in as_json("role", "list")]
    assert {"viewer", "admin", "restarter"} <= set(names)
    assert "RESTARTER" not in (table := ok("role", "list").stdout) and "restarter" in table


def test_users_passwords_and_activation() -> None:
    assert not User.objects.filter(username="alice").exists()
    ok("user", "create", "alice", "--password-stdin", "--email", "a@example.org",
       input="pw-alice-123\n")  # fmt: skip
    alice = User.objects.get(username="alice")
    assert alice.check_password("pw-alice-123") and alice.email == "a@example.org"
    assert "exists" in refused("user", "create", "alice", "--no-password")
    assert "at least 8" in refused("user", "create", "carol", "--password-stdin", input="short\n")
    assert "no password on stdin" in refused("user", "create", "carol", "--password-stdin")
    assert "--password-stdin or --no-password" in refused("user", "create", "carol")
    assert not User.objects.filter(username="carol").exists()

    ok("user", "set-password", "alice", input="pw-alice-456\n")
    alice.refresh_from_db()
    assert alice.check_password("pw-alice-456") and not alice.check_password("pw-alice-123")

    plaintext = ok("token", "create", "alice").stdout.strip()
    assert as_json("user", "deactivate", "alice")["active"] is False
    assert token_authenticate(plaintext) is None
    assert as_json("user", "activate", "alice")["active"] is True
    assert token_authenticate(plaintext) is not None

    table = ok("user", "list").stdout.splitlines()
    assert table[0].split()[:2] == ["USERNAME", "EMAIL"]
    assert any(line.split()[:2] == ["alice", "a@example.org"] for line in table)
    ok("user", "delete", "alice")
    assert not User.objects.filter(username="alice").exists()
    assert token_authenticate(plaintext) is None
    assert "no user 'alice'" in refused("user", "delete", "alice")


def test_groups_and_their_members() -> None:
    for name in ("alice", "bob"):
        ok("user", "create", name, "--no-password")
    assert as_json("group", "create", "ops", "--member", "alice") == {
        "name": "ops",
        "members": ["alice"],
    }
    assert "exists" in refused("group", "create", "ops")
    ok("group", "set-members", "ops", "bob", "alice")
    assert sorted(u.username for u in Group.objects.get(name="ops").user_set.all()) == [
        "alice",
        "bob",
    ]
    assert "no user ghost" in refused("group", "set-members", "ops", "ghost")
    assert as_json("group", "list") == [{"name": "ops", "members": ["alice", "bob"]}]
    assert as_json("group", "set-members", "ops")["members"] == []
    assert "no group 'devs'" in refused("group", "set-members", "devs", "bob")
