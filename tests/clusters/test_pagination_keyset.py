"""Deep pages under the row-value keyset: the same items, in the same order, as before.

A cursor's condition on a table column is ``(column, id) > (value, id)`` as a
row value, which the ``(column, id)`` index answers at any depth; on an
annotation (``effective_status``) it stays ``column > v OR (column = v AND id >
i)``. Walking every page must give exactly the ordered list, and the same
pages as that older condition gave for every column. Both databases run these
(the PostgreSQL pass of ``make test`` too); the plan test is per database.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone

from gwm.clusters.models import Cluster, Instance
from gwm.kit import pagination

pytestmark = pytest.mark.django_db

STATUSES = ["RUNNING", "STOPPED", "ERROR"]


@pytest.fixture
def instances() -> QuerySet[Any]:
    """Two clusters with the same 40 names (ties in name), repeated statuses and memory
    sizes, some memory unknown (NULL)."""
    now = timezone.now()
    rows = []
    for cluster_name in ("one", "two"):
        cluster = Cluster.objects.create(name=cluster_name, rapi_url=f"https://{cluster_name}")
        for k in range(40):
            rows.append(
                Instance(
                    cluster=cluster,
                    name=f"vm{(k * 7) % 40:02d}",
                    status=STATUSES[k % 3],
                    memory=None if k % 5 == 0 else 512 * (k % 4),
                    synced_at=now,
                )
            )
    Instance.objects.bulk_create(rows)
    return Instance.objects.annotate(effective_status=F("status"))


def _walk(queryset: QuerySet[Any], order_column: str, descending: bool) -> list[int]:
    ids: list[int] = []
    cursor = None
    for _ in range(100):
        page = pagination.paginate(
            queryset,
            columns=["id", order_column],
            order_column=order_column,
            descending=descending,
            cursor=cursor,
            limit=7,
        )
        ids += [row["id"] for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("the walk did not end")


def _expected(queryset: QuerySet[Any], column: str, descending: bool) -> list[int]:
    """(column, id) order, NULLs last ascending and first descending."""
    rows = list(queryset.values_list(column, "id"))
    present = sorted((row for row in rows if row[0] is not None), reverse=descending)
    nulls = sorted((row for row in rows if row[0] is None), reverse=descending)
    return [pk for _, pk in (nulls + present if descending else present + nulls)]


@pytest.mark.parametrize(
    "ordering", ["name", "-name", "memory", "-memory", "effective_status", "-effective_status"]
)
def test_walking_every_page_gives_the_ordered_list(instances: QuerySet[Any], ordering: str) -> None:
    column, descending = ordering.lstrip("-"), ordering.startswith("-")
    walked = _walk(instances, column, descending)
    assert len(walked) == len(set(walked)) == 80
    assert walked == _expected(instances, column, descending)


@pytest.mark.parametrize("ordering", ["name", "-name", "memory", "-memory"])
def test_the_row_value_gives_the_pages_the_older_condition_gave(
    instances: QuerySet[Any], ordering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    column, descending = ordering.lstrip("-"), ordering.startswith("-")
    walked = _walk(instances, column, descending)
    monkeypatch.setattr(pagination, "_is_column", lambda _queryset, _column: False)
    assert walked == _walk(instances, column, descending)


def test_a_table_column_pages_with_a_row_value_and_an_annotation_does_not(
    instances: QuerySet[Any],
) -> None:
    by_name = instances.filter(pagination._after("name", False, "vm10", 5, False, real=True))
    assert '"name", ' in str(by_name.query) and ") > (" in str(by_name.query)
    by_status = instances.filter(
        pagination._after("effective_status", False, "RUNNING", 5, False, real=False)
    )
    assert ") > (" not in str(by_status.query)


def test_a_deep_page_is_an_index_range(instances: QuerySet[Any]) -> None:
    """The database bounds the index scan by the cursor instead of filtering every row
    before it (SQLite: a SEARCH on name; PostgreSQL: an Index Cond on name)."""
    cluster = Cluster.objects.get(name="one")
    queryset = Instance.objects.filter(cluster=cluster).filter(
        pagination._after("name", False, "vm30", 10**6, False, real=True)
    )
    sql, params = queryset.order_by("name", "id").values("id")[:7].query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "SEARCH" in plan and "name>?" in plan, plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index Cond" in plan and "name" in plan.split("Index Cond", 1)[1], plan
