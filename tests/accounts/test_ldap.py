"""LDAP login against a real OpenLDAP slapd, through POST /api/v1/auth/tokens.

The module starts its own slapd (scripts/slapd-test, which installs it when
missing) on a free loopback port, with the small directory that script
describes: alice in ``ops``, bob in ``devs``, carol in the posixGroup
``admins``. Its own, so a test may change the directory or stop the server
without disturbing another worker. A slapd that cannot start fails the module:
skipping would hide that LDAP login is untested.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ldap
import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from gwm.accounts.models import Profile, Role, RoleBinding
from gwm.settings_ldap import LDAP_BACKEND, ldap_settings
from gwm.simulator.server import Running
from tests.clusters.helpers import register

pytestmark = pytest.mark.django_db

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slapd-test"
BASE = "dc=gwm,dc=test"
ADMIN_DN, ADMIN_PW = f"cn=admin,{BASE}", "admin-pw"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(*args: str) -> str:
    try:
        done = subprocess.run(
            [str(SCRIPT), *args], check=True, capture_output=True, text=True, timeout=900
        )
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"scripts/slapd-test {' '.join(args)} failed:\n{exc.stderr}")
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/slapd-test {' '.join(args)} did not finish")
    return done.stdout.strip()


class Directory:
    """This module's slapd: its URL, and the means to change or stop it."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"ldap://127.0.0.1:{port}"

    def start(self) -> None:
        assert _script("start", str(self.folder), str(self.port)) == self.url

    def stop(self) -> None:
        _script("stop", str(self.folder))

    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes]]]) -> None:
        """An ldapmodify as the directory's administrator."""
        conn = ldap.initialize(self.url)
        try:
            conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
            conn.modify_s(dn, changes)
        finally:
            conn.unbind_s()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a deployment would give gwm for this directory."""
        return {
            "GWM_LDAP_URI": self.url,
            "GWM_LDAP_BIND_DN": f"uid=gwm-reader,ou=services,{BASE}",
            "GWM_LDAP_BIND_PASSWORD": "reader-pw",
            "GWM_LDAP_USER_SEARCH_BASE": f"ou=people,{BASE}",
            "GWM_LDAP_GROUP_SEARCH_BASE": f"ou=groups,{BASE}",
            "GWM_LDAP_TIMEOUT_SECONDS": "2",
            **extra,
        }


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    found = Directory(tmp_path_factory.mktemp("slapd"), _free_port())
    found.start()
    yield found
    found.stop()


@contextmanager
def _ldap_on(env: dict[str, str]) -> Iterator[None]:
    values = ldap_settings(env)
    assert values["GWM_LDAP_ENABLED"] is True
    with override_settings(AUTHENTICATION_BACKENDS=[MODEL_BACKEND, LDAP_BACKEND], **values):
        yield


@pytest.fixture
def ldap_on(directory: Directory) -> Iterator[Directory]:
    """gwm configured for the module's directory, ModelBackend first (as settings.py does)."""
    with _ldap_on(directory.env()):
        yield directory


def _login(username: str, password: str) -> Any:
    return Client().post(
        "/api/v1/auth/tokens",
        {"username": username, "password": password, "description": "test login"},
        content_type="application/json",
    )


def _token(username: str, password: str) -> str:
    response = _login(username, password)
    assert response.status_code == 201, response.content
    token: str = response.json()["token"]
    return token


def _get(token: str, path: str) -> Any:
    return Client(headers={"Authorization": f"Bearer {token}"}).get(f"/api/v1{path}")


def _me(token: str) -> dict[str, Any]:
    response = _get(token, "/me")
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def _groups(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_an_ldap_user_logs_in_on_first_sight_and_its_token_works(ldap_on: Directory) -> None:
    assert not User.objects.filter(username="alice").exists()
    token = _token("alice", "alice-pw-1")
    me = _me(token)
    assert me["username"] == "alice"
    assert me["source"] == "ldap"
    user = User.objects.get(username="alice")
    assert Profile.objects.get(user=user).source == "ldap"
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Liddell", "alice@gwm.test")
    # Its password is the directory's: ModelBackend can never take this user.
    assert not user.has_usable_password()
    # A second login finds the same user, not a new one.
    _token("alice", "alice-pw-1")
    assert User.objects.filter(username="alice").count() == 1


def test_a_wrong_password_or_an_unknown_name_is_401(ldap_on: Directory) -> None:
    for username, password in (("alice", "bob-pw-1"), ("nobody", "alice-pw-1")):
        response = _login(username, password)
        assert response.status_code == 401, response.content
        assert response.json()["code"] == "bad_credentials"
        assert not User.objects.filter(username=username).exists()
    # The right password still works afterwards: the 401s were the passwords'.
    assert _login("alice", "alice-pw-1").status_code == 201


def test_ldap_groups_are_mirrored_as_django_groups(ldap_on: Directory) -> None:
    assert not Group.objects.filter(name__in=["ops", "devs"]).exists()
    alice = _token("alice", "alice-pw-1")
    assert _me(alice)["groups"] == ["ops"]
    bob = _token("bob", "bob-pw-1")
    assert _me(bob)["groups"] == ["devs"]
    carol = _token("carol", "carol-pw-1")  # in no groupOfNames
    assert _me(carol)["groups"] == []
    assert set(Group.objects.values_list("name", flat=True)) >= {"ops", "devs"}


def test_a_posix_group_type_reads_memberuid(directory: Directory) -> None:
    env = directory.env(
        GWM_LDAP_GROUP_SEARCH_BASE=f"ou=posix,{BASE}", GWM_LDAP_GROUP_TYPE="posixGroup"
    )
    with _ldap_on(env):
        assert _me(_token("carol", "carol-pw-1"))["groups"] == ["admins"]
        assert _me(_token("alice", "alice-pw-1"))["groups"] == []


@pytest.fixture
def bob_moved_to_ops(ldap_on: Directory) -> Iterator[Callable[[], None]]:
    """Moves bob from devs to ops in the directory when called; moved back afterwards."""
    bob_dn = [f"uid=bob,ou=people,{BASE}".encode()]
    # A groupOfNames must keep a member: devs gets a placeholder that is nobody's login.
    placeholder = [f"uid=gwm-reader,ou=services,{BASE}".encode()]
    ops, devs = f"cn=ops,ou=groups,{BASE}", f"cn=devs,ou=groups,{BASE}"
    moved = False

    def move() -> None:
        nonlocal moved
        ldap_on.modify(ops, [(ldap.MOD_ADD, "member", bob_dn)])
        ldap_on.modify(devs, [(ldap.MOD_ADD, "member", placeholder)])
        ldap_on.modify(devs, [(ldap.MOD_DELETE, "member", bob_dn)])
        moved = True

    yield move
    if moved:
        ldap_on.modify(devs, [(ldap.MOD_ADD, "member", bob_dn)])
        ldap_on.modify(devs, [(ldap.MOD_DELETE, "member", placeholder)])
        ldap_on.modify(ops, [(ldap.MOD_DELETE, "member", bob_dn)])


def test_a_membership_change_in_the_directory_is_seen_at_the_next_login(
    ldap_on: Directory, bob_moved_to_ops: Callable[[], None]
) -> None:
    token = _token("bob", "bob-pw-1")
    assert _me(token)["groups"] == ["devs"]
    bob_moved_to_ops()
    _token("bob", "bob-pw-1")
    # Replaced, not added to: leaving devs in the directory takes devs away in gwm.
    assert _groups("bob") == {"ops"}
    assert _me(token)["groups"] == ["ops"]  # the older token's user is the same user


def test_a_role_bound_to_a_mirrored_group_follows_the_directory(
    ldap_on: Directory,
    simulator: Callable[..., Running],
    bob_moved_to_ops: Callable[[], None],
) -> None:
    register(simulator(), name="sim")
    alice = _token("alice", "alice-pw-1")
    bob = _token("bob", "bob-pw-1")
    assert _get(alice, "/clusters").json()["items"] == []  # no binding yet: sees nothing
    RoleBinding.objects.create(
        role=Role.objects.get(name="viewer"), group=Group.objects.get(name="ops"), scope="global"
    )
    response = _get(alice, "/clusters")
    assert response.status_code == 200, response.content
    assert [c["name"] for c in response.json()["items"]] == ["sim"]
    response = _get(bob, "/clusters")  # devs: another LDAP group, no binding
    assert response.status_code == 200, response.content
    assert response.json()["items"] == []
    # Moved into ops in the directory, bob holds the viewer role from his next login on.
    bob_moved_to_ops()
    assert _get(bob, "/clusters").json()["items"] == []  # not before it
    _token("bob", "bob-pw-1")
    assert [c["name"] for c in _get(bob, "/clusters").json()["items"]] == ["sim"]


def test_a_local_user_is_never_taken_over_by_a_directory_entry(ldap_on: Directory) -> None:
    # A local carol exists; the directory's carol (carol-pw-1) must not become her.
    local = User.objects.create_user("carol", "carol@local", "local-pw-9")
    assert _login("carol", "carol-pw-1").status_code == 401
    me = _me(_token("carol", "local-pw-9"))
    assert (me["source"], me["groups"]) == ("local", [])
    local.refresh_from_db()
    assert local.email == "carol@local"  # nothing populated from the directory
    assert not Profile.objects.filter(user=local, source="ldap").exists()


@pytest.fixture
def stopped(ldap_on: Directory) -> Iterator[Directory]:
    """The directory, to be stopped by the test; started again afterwards."""
    yield ldap_on
    ldap_on.start()


def _assert_503(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "identity_unavailable"
    assert response["Retry-After"]


def test_directory_down_is_503_for_ldap_users_while_local_users_log_in(
    stopped: Directory,
) -> None:
    User.objects.create_user("dave", "dave@local", "dave-pw-1")
    _token("alice", "alice-pw-1")  # alice is known to gwm before the directory goes
    stopped.stop()
    _assert_503(_login("alice", "alice-pw-1"))
    _assert_503(_login("bob", "bob-pw-1"))  # never seen: still the directory's to say
    assert not User.objects.filter(username="bob").exists()
    # A local user does not need the directory: logs in, and a wrong password is 401.
    assert _login("dave", "dave-pw-1").status_code == 201
    assert _login("dave", "wrong-pw").status_code == 401
    # The directory back, alice logs in again.
    stopped.start()
    assert _login("alice", "alice-pw-1").status_code == 201


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener that takes connections and never answers: a hung directory."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # connections complete in the kernel's backlog; nothing reads them
        yield f"ldap://127.0.0.1:{sock.getsockname()[1]}"


def test_a_directory_that_does_not_answer_is_503_within_the_timeout(
    directory: Directory, silent_server: str
) -> None:
    with _ldap_on(directory.env(GWM_LDAP_URI=silent_server, GWM_LDAP_TIMEOUT_SECONDS="1")):
        started = time.monotonic()
        _assert_503(_login("alice", "alice-pw-1"))
        assert time.monotonic() - started < 5
    # The same settings on the real directory log in: the 503 was the silence.
    with _ldap_on(directory.env(GWM_LDAP_TIMEOUT_SECONDS="1")):
        assert _login("alice", "alice-pw-1").status_code == 201


def test_a_refused_search_account_is_503_not_a_wrong_password(directory: Directory) -> None:
    with _ldap_on(directory.env(GWM_LDAP_BIND_PASSWORD="not-the-reader-pw")):
        _assert_503(_login("alice", "alice-pw-1"))


def test_settings_from_the_environment() -> None:
    assert ldap_settings({}) == {"GWM_LDAP_ENABLED": False}
    base = {"GWM_LDAP_URI": "ldap://127.0.0.1:1", "GWM_LDAP_USER_SEARCH_BASE": BASE}
    values = ldap_settings(base)
    assert values["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert values["AUTH_LDAP_USER_ATTR_MAP"] == {
        "first_name": "givenName",
        "last_name": "sn",
        "email": "mail",
    }
    assert values["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_NETWORK_TIMEOUT] == 5.0
    assert "AUTH_LDAP_GROUP_SEARCH" not in values  # no group base: no groups
    for bad in (
        {"GWM_LDAP_URI": "ldap://127.0.0.1:1"},  # no search base
        {**base, "GWM_LDAP_URI": "http://127.0.0.1:1"},
        {**base, "GWM_LDAP_BIND_DN": f"cn=x,{BASE}"},  # a DN without its password
        {**base, "GWM_LDAP_USER_FILTER": "(uid=alice)"},
        {**base, "GWM_LDAP_GROUP_TYPE": "nestedGroups"},
        {**base, "GWM_LDAP_TIMEOUT_SECONDS": "0"},
        {**base, "GWM_LDAP_START_TLS": "maybe"},
        {**base, "GWM_LDAP_USER_ATTR_MAP": "is_superuser=admin"},
    ):
        with pytest.raises(ImproperlyConfigured):
            ldap_settings(bad)
