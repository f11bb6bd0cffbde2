"""Reading the change log as a user may see it: the one reader behind the feed, the
stream's catch-up and webhook replays.

A page is read in seq order from ``since`` and narrowed by the caller's
filters and visibility. ``next_since`` always advances to the last change the
reader looked at, even when none of them was for the caller (a bookmark): an
idle cursor never lags, and a reader never re-scans what it has seen. At the
end of the log it is the last committed seq, read before the rows (commit order
equals seq order, so every change up to it is visible to the read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from gwm.errors import Gone
from gwm.events.models import Change
from gwm.events.render import event_of
from gwm.events.services import seq_bounds
from gwm.events.types import type_matches
from gwm.events.visibility import Visibility
from gwm.kit.urls import API_ROOT

SCAN_BATCH = 500
#: A page reads at most this many rows of the log, matching or not (then it bookmarks).
SCAN_MAX = 5000


@dataclass(frozen=True)
class Filters:
    """What a reader asks for; every field empty: all it may see."""

    types: Sequence[str] = ()
    clusters: Sequence[str] = ()
    kind: str = ""
    name: str = ""

    def query(self) -> Q:
        where = Q()
        if self.clusters:
            where &= Q(cluster_name__in=list(self.clusters))
        if self.kind:
            where &= Q(resource=self.kind)
        if self.name:
            where &= Q(name=self.name)
        if self.types:
            exact = [t for t in self.types if not t.endswith(".*")]
            kinds = [t[:-2] for t in self.types if t.endswith(".*")]
            where &= Q(type__in=exact) | Q(resource__in=kinds)
        return where

    def matches(self, change: Change) -> bool:
        return (
            (not self.clusters or change.cluster_name in self.clusters)
            and (not self.kind or change.resource == self.kind)
            and (not self.name or change.name == self.name)
            and type_matches(self.types, change.type)
        )


@dataclass
class Page:
    events: list[dict[str, Any]] = field(default_factory=list)
    next_since: int = 0
    last_seq: int = 0
    floor: int = 0
    more: bool = False

    def body(self) -> dict[str, Any]:
        return {
            "items": self.events,
            "next_since": self.next_since,
            "last_seq": self.last_seq,
            "floor": self.floor,
            "more": self.more,
        }


def check_cursor(since: int, floor: int) -> None:
    """410 for a cursor whose next changes were purged; the problem names the floor."""
    if since < floor:
        raise Gone(
            f"changes up to #{floor} were purged; relist the objects you follow, then "
            f"read the feed from since={floor}",
            floor=floor,
            code="cursor_gone",
            relist=f"{API_ROOT}/clusters",
        )


def _rows(visibility: Visibility, filters: Filters) -> QuerySet[Change]:
    rows = Change.objects.filter(filters.query())
    clusters = visibility.cluster_filter()
    if clusters is not None:
        # Changes of other clusters cannot be visible; jobs without a cluster and webhook
        # events are decided row by row.
        rows = rows.filter(Q(cluster_id__in=clusters) | Q(cluster_id__isnull=True))
    return rows


def page_read(visibility: Visibility, since: int, limit: int, filters: Filters) -> Page:
    """Up to ``limit`` events after ``since`` that the reader wants and may see."""
    floor, last = seq_bounds()
    check_cursor(since, floor)
    page = Page(next_since=max(since, 0), last_seq=last, floor=floor)
    rows = _rows(visibility, filters)
    cursor, scanned = since, 0
    while scanned < SCAN_MAX:
        batch = list(rows.filter(seq__gt=cursor, seq__lte=last).order_by("seq")[:SCAN_BATCH])
        visibility.prepare(batch)
        for change in batch:
            if visibility.sees(change) and filters.matches(change):
                page.events.append(event_of(change))
                if len(page.events) == limit:
                    page.next_since = change.seq
                    page.more = change.seq < last
                    return page
        scanned += len(batch)
        if len(batch) < SCAN_BATCH:
            page.next_since = max(since, last)
            return page
        cursor = batch[-1].seq
    page.next_since, page.more = cursor, cursor < last
    return page
