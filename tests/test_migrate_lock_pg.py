"""`gwm migrate` on PostgreSQL: several started at once (a deploy to several hosts) take
turns on the database's advisory lock, and every migration is applied once.

A database of its own on the test server, made and dropped here; the lock is held by
this test first, so both commands are seen waiting on it, not merely finishing in turn.
PostgreSQL only (mark ``postgres``: the PostgreSQL pass of make test runs it).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gwm.startup import _MIGRATE_LOCK_KEY
from tests.operations.distributed import broker_url
from tests.test_processes_cli import GWM, _env

pytestmark = pytest.mark.postgres

SERVER_ENV = "GWM_TEST_POSTGRES_URL"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    server = os.environ.get(SERVER_ENV, "")
    if not server:
        pytest.fail(f"{SERVER_ENV} is not set: scripts/services postgres prints it", pytrace=False)
    name = f"gwm_miglock_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _applied(url: str) -> tuple[int, int]:
    """(rows in django_migrations, distinct migrations among them); (0, 0) before any."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('django_migrations')").fetchone()
        if exists is None or exists[0] is None:
            return 0, 0
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def test_two_migrates_wait_for_the_lock_then_apply_each_migration_once(
    tmp_path: Path, database: str
) -> None:
    env = {**_env(tmp_path, CELERY_BROKER_URL=broker_url()), "DATABASE_URL": database}
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_MIGRATE_LOCK_KEY])
        both = [
            subprocess.Popen(
                [str(GWM), "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        time.sleep(6)  # far longer than a migrate of an empty database with no lock
        assert [p.poll() for p in both] == [None, None], [p.communicate() for p in both]
        assert _applied(database) == (0, 0), "a migrate ran without the lock"
        holder.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATE_LOCK_KEY])
        results = [(p.wait(timeout=180), *p.communicate()) for p in both]
    assert [code for code, _, _ in results] == [0, 0], results
    rows, distinct = _applied(database)
    assert rows > 0 and rows == distinct, (rows, distinct)
    # A third finds nothing to do and says so.
    again = subprocess.run(
        [str(GWM), "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert _applied(database) == (rows, distinct)
