"""Rotating the encryption keys and the secret key without losing stored RAPI passwords.

Each test first shows the state the action changes (a key that does not read
the password yet, a password not yet under the newest key), so it can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from gwm import settings as gwm_settings
from gwm.clusters.models import Cluster
from gwm.ganeti.connect import stored_password
from gwm.ganeti.failures import RoundFailure
from gwm.kit.crypto import SecretUnreadable, decrypt, encrypt
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db

GWM = Path(sys.executable).with_name("gwm")
OLD_SECRET, NEW_SECRET = "old-secret-key-" * 4, "new-secret-key-" * 4


def _key() -> str:
    return Fernet.generate_key().decode()


def _keys(*keys: str) -> override_settings:
    return override_settings(GWM_ENCRYPTION_KEYS=list(keys))


def _derived(secret_key: str, *fallbacks: str) -> override_settings:
    """No explicit keys: the ones derived from the secret key and its fallbacks."""
    return override_settings(
        GWM_ENCRYPTION_KEYS=[], SECRET_KEY=secret_key, SECRET_KEY_FALLBACKS=list(fallbacks)
    )


def _cluster(name: str, password: str) -> Cluster:
    """A registered cluster whose password is encrypted under the keys in force."""
    return Cluster.objects.create(
        name=name, rapi_url="https://192.0.2.1:5080", password_encrypted=encrypt(password)
    )


def _readable(cluster: Cluster) -> str | None:
    cluster.refresh_from_db()
    try:
        return decrypt(cluster.password_encrypted)
    except SecretUnreadable:
        return None


def _rotate(*options: str) -> str:
    out = StringIO()
    call_command("rotate_secrets", *options, stdout=out)
    return out.getvalue()


# -- several keys ----------------------------------------------------------------


def test_a_password_under_key_a_reads_once_the_keys_are_b_then_a() -> None:
    a, b = _key(), _key()
    with _keys(a):
        cluster = _cluster("c1", "rapi-pw-1")
    with _keys(b):
        assert _readable(cluster) is None  # B alone does not read it
    with _keys(b, a):
        assert _readable(cluster) == "rapi-pw-1"
        newer = encrypt("rapi-pw-2")  # the first key encrypts
    with _keys(b):
        assert decrypt(newer) == "rapi-pw-2"
    with _keys(a), pytest.raises(SecretUnreadable):
        decrypt(newer)


def test_rotate_secrets_moves_every_password_to_the_newest_key() -> None:
    a, b = _key(), _key()
    with _keys(a):
        first, second = _cluster("c1", "pw-one"), _cluster("c2", "pw-two")
    Cluster.objects.create(name="no-password", rapi_url="https://192.0.2.2:5080")
    with _keys(b, a):
        before = {c.name: c.password_encrypted for c in Cluster.objects.all()}
        with pytest.raises(CommandError, match="2 stored secret"):
            _rotate("--check")
        assert {c.name: c.password_encrypted for c in Cluster.objects.all()} == before
        with _keys(b):
            assert _readable(first) is None

        out = _rotate()
        assert "clusters.Cluster.password_encrypted: 2 rotated, 0 already" in out
        assert "pw-one" not in out and before["c1"] not in out
        assert Cluster.objects.get(name="no-password").password_encrypted == ""

        again = _rotate()  # idempotent: nothing left to do, nothing rewritten
        assert "0 rotated, 2 already under the newest key, 0 unreadable" in again
        rotated = {c.name: c.password_encrypted for c in Cluster.objects.all()}
        _rotate("--check")
        assert {c.name: c.password_encrypted for c in Cluster.objects.all()} == rotated
    with _keys(b):
        assert (_readable(first), _readable(second)) == ("pw-one", "pw-two")


def test_rotate_secrets_names_what_no_key_reads_and_fails() -> None:
    a, b, lost = _key(), _key(), _key()
    with _keys(a):
        readable = _cluster("c1", "pw-kept")
    with _keys(lost):
        gone = _cluster("c-lost", "pw-gone")
    gone_token = gone.password_encrypted
    with _keys(b, a):
        out = StringIO()
        with pytest.raises(CommandError) as failed:
            call_command("rotate_secrets", "--batch-size", "1", stdout=out)
        assert failed.value.returncode == 1  # what `gwm manage` exits with
        message = str(failed.value)
        assert "1 stored secret(s) cannot be decrypted" in message
        assert "cluster c-lost" in message
        assert "1 rotated, 0 already under the newest key, 1 unreadable" in out.getvalue()
        for shown in (message, out.getvalue()):
            assert "pw-gone" not in shown and gone_token not in shown
    gone.refresh_from_db()
    assert gone.password_encrypted == gone_token  # left as it was
    with _keys(b):
        assert _readable(readable) == "pw-kept"  # the rest was rotated all the same


# -- the secret key and its fallbacks --------------------------------------------


def test_a_rotated_secret_key_with_the_old_one_in_the_fallbacks_reads_it() -> None:
    with _derived(OLD_SECRET):
        cluster = _cluster("c1", "pw-derived")
    with _derived(NEW_SECRET):
        assert _readable(cluster) is None  # the new key alone does not read it
    with _derived(NEW_SECRET, OLD_SECRET):
        assert _readable(cluster) == "pw-derived"
        assert "1 rotated" in _rotate()
    with _derived(NEW_SECRET):
        assert _readable(cluster) == "pw-derived"


def test_from_secret_key_moves_derived_keys_to_explicit_ones() -> None:
    b = _key()
    with _derived(OLD_SECRET):
        cluster = _cluster("c1", "pw-derived")
    with _derived(OLD_SECRET), _keys(b):
        assert _readable(cluster) is None
    with _derived(OLD_SECRET), _keys(b, "from-secret-key"):
        assert _readable(cluster) == "pw-derived"
        assert "1 rotated" in _rotate()
    with _derived(NEW_SECRET), _keys(b):
        assert _readable(cluster) == "pw-derived"


def test_without_the_old_key_the_cluster_reports_unreadable_credentials(
    simulator, api: Client
) -> None:
    """The way gwm reports it: the round fails with ERROR and the reason, no 500."""
    running = simulator(instances=2)
    with _derived(OLD_SECRET):
        cluster = register(running, name="c1")
        full_sync(cluster)
        cluster.refresh_from_db()
        assert cluster.status == "AVAILABLE"
    with _derived(NEW_SECRET):
        with pytest.raises(RoundFailure, match="cannot be decrypted"):
            stored_password(cluster)
        full_sync(cluster)
        cluster.refresh_from_db()
        assert cluster.status == "ERROR"
        assert "cannot be decrypted" in cluster.error
        shown = api.get("/api/v1/clusters/c1")
        assert shown.status_code == 200, shown.content
        assert shown.json()["status"] == "ERROR"
        changed = api.patch(
            "/api/v1/clusters/c1", {"rapi_url": running.url}, content_type="application/json"
        )
        assert changed.status_code == 422, changed.content
        assert changed.json()["code"] == "credentials_unreadable"
    with _derived(NEW_SECRET, OLD_SECRET):
        full_sync(cluster)
        cluster.refresh_from_db()
        assert cluster.status == "AVAILABLE"


# -- malformed keys --------------------------------------------------------------


def test_a_malformed_key_in_the_settings_is_improperly_configured() -> None:
    with _keys(_key(), "not-a-fernet-key"), pytest.raises(ImproperlyConfigured) as bad:
        encrypt("x")
    assert "GWM_ENCRYPTION_KEYS: key 2 is not a Fernet key" in str(bad.value)
    assert "not-a-fernet-key" not in str(bad.value)  # the message never shows a key


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"GWM_ENCRYPTION_KEYS": "{good},short"}, "GWM_ENCRYPTION_KEYS: key 2 is not a Fernet"),
        ({"GWM_ENCRYPTION_KEY": "short"}, "GWM_ENCRYPTION_KEY: key 1 is not a Fernet"),
        ({"GWM_ENCRYPTION_KEYS": " , "}, "lists no key"),
        ({"GWM_ENCRYPTION_KEYS": "{good}", "GWM_ENCRYPTION_KEY": "{good}"}, "both set"),
    ],
)
def test_the_environment_is_checked_when_settings_load(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    good = _key()
    monkeypatch.delenv("GWM_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("GWM_ENCRYPTION_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(good=good))
    with pytest.raises(ImproperlyConfigured, match=problem) as bad:
        gwm_settings._encryption_keys()
    assert "short" not in str(bad.value) and good not in str(bad.value)


def test_good_environments_give_the_keys_newest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _key(), _key()
    monkeypatch.delenv("GWM_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("GWM_ENCRYPTION_KEY", raising=False)
    assert gwm_settings._encryption_keys() == []
    monkeypatch.setenv("GWM_ENCRYPTION_KEY", a)
    assert gwm_settings._encryption_keys() == [a]
    monkeypatch.delenv("GWM_ENCRYPTION_KEY")
    monkeypatch.setenv("GWM_ENCRYPTION_KEYS", f" {b} , {a},from-secret-key")
    assert gwm_settings._encryption_keys() == [b, a, "from-secret-key"]


def test_gwm_refuses_to_start_with_a_malformed_key(tmp_path: Path) -> None:
    """At start, one line naming the variable: not a traceback at the first decrypt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GWM_", "DATABASE_URL"))}
    env.update(
        GWM_DATA_DIR=str(tmp_path / "data"),
        GWM_SECRET_KEY=NEW_SECRET,
        GWM_ENCRYPTION_KEYS=f"{_key()},not-a-fernet-key",
    )
    done = subprocess.run(
        [str(GWM), "manage", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "GWM_ENCRYPTION_KEYS: key 2 is not a Fernet key" in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-a-fernet-key" not in done.stderr
