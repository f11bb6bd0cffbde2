"""Keeping the database's query planner informed.

A list filtered by many role bindings (names of instances, tags) is fast only when
the planner knows how the instance table's rows are spread: without statistics,
SQLite reads every row of a cluster for each tag binding before it sorts, and a
page costs a hundred milliseconds instead of three (BENCHMARKS.md, permission
filtering). SQLite never gathers them by itself, PostgreSQL only when autovacuum
gets to it, so gwm asks after writes that change the table a lot.
"""

from __future__ import annotations

from django.db import connection

# A round that creates or removes at least this many instances refreshes the statistics.
MANY_ROWS = 100


def planner_statistics_refresh(table: str) -> None:
    """Refresh the planner's statistics of ``table`` (a cheap call when little changed)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # optimize analyses only tables that need it; the limit bounds its cost.
            cursor.execute("PRAGMA analysis_limit=1000")
            cursor.execute("PRAGMA optimize")
        elif connection.vendor == "postgresql":
            cursor.execute(f'ANALYZE "{table}"')
