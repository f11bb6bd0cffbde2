"""What a production `gwm api` does at its edge: which proxy headers it believes, and its
static files (WhiteNoise).

Each test runs the installed `gwm api` in its own process over real HTTP, with its own
data directory and SQLite file, the way an operator starts it behind a reverse proxy.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tests.operations.distributed import broker_url, require_broker
from tests.test_processes_cli import _env, _run, serving

#: The token below only works from this network: the address a proxy's header names.
ALLOWED = "10.9.0.0/16"
MAKE_TOKEN = f"""
from django.contrib.auth import get_user_model
from gwm.accounts.services.tokens import token_create
user = get_user_model().objects.create_user("edge", password="not-used-here-1", is_superuser=True)
print(token_create(actor=None, user=user, name="edge", networks=["{ALLOWED}"])[1])
"""


def _prepared(tmp_path: Path, **extra: str) -> tuple[dict[str, str], str]:
    """A migrated database with one admin whose token works from ALLOWED only."""
    require_broker(broker_url())
    env = _env(tmp_path, CELERY_BROKER_URL=broker_url(), **extra)
    migrated = _run(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    made = _run(env, "manage", "shell", "-c", MAKE_TOKEN)
    assert made.returncode == 0, made.stderr
    return env, made.stdout.strip().splitlines()[-1]


def _api(env: dict[str, str]) -> AbstractContextManager[str]:
    return serving(env, "api", "--processes", "1")


def _clusters(base: str, token: str, forwarded_for: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return httpx.get(f"{base}/api/v1/clusters", headers=headers, timeout=10)


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(tmp_path: Path) -> None:
    env, token = _prepared(tmp_path)
    # Untrusted (the default): the connection's own address, 127.0.0.1, is the client's,
    # whatever a header claims, so the token's network refuses it.
    with _api(env) as base:
        assert _clusters(base, token, None).status_code == 401
        spoofed = _clusters(base, token, "10.9.1.1")
        assert spoofed.status_code == 401, spoofed.text
        assert spoofed.headers["content-type"] == "application/problem+json"
    # Trusted: the proxy on 127.0.0.1 says who the client is.
    with _api({**env, "GWM_TRUSTED_PROXIES": "127.0.0.1"}) as base:
        forwarded = _clusters(base, token, "10.9.1.1")
        assert forwarded.status_code == 200, forwarded.text
        assert _clusters(base, token, "192.0.2.7").status_code == 401
        assert _clusters(base, token, None).status_code == 401


def test_static_files_are_served_and_compressed_once_collected(tmp_path: Path) -> None:
    env, _ = _prepared(tmp_path)
    css = "/static/admin/css/base.css"
    # Not collected: served straight from Django's package.
    with _api(env) as base:
        plain = httpx.get(f"{base}{css}", timeout=10)
        assert plain.status_code == 200
        assert plain.headers["content-type"].startswith("text/css")
        assert "content-encoding" not in plain.headers
    collected = _run(env, "manage", "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "data" / "static" / "admin" / "css" / "base.css.gz").is_file()
    with _api(env) as base:
        squeezed = httpx.get(f"{base}{css}", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert squeezed.status_code == 200
        assert squeezed.headers["content-encoding"] == "gzip"
        assert squeezed.content == plain.content  # httpx took the gzip off
        assert httpx.get(f"{base}/static/admin/css/none.css", timeout=10).status_code == 404
