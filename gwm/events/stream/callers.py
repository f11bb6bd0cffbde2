"""Who is behind the open streams: one :class:`Caller` per user and token, shared by all
their streams, and how to run the streams' database work.

A caller's Visibility is loaded once, re-read by the hub when grants change,
and compared by :class:`Reach`: a stream ends when its caller may see less
than when it opened, and simply goes on when they may see more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connection

from gwm.accounts.grants import Grant, token_of
from gwm.events.visibility import Visibility

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: object) -> T:
    """Run ``fn`` in the loop's thread pool, then close that thread's connection.

    Not Django's per-request thread: a stream lives for hours and the pool is
    bounded, so ten thousand streams hold neither ten thousand threads' work
    queues nor ten thousand database connections.
    """

    def run() -> T:
        try:
            return fn(*args)
        finally:
            connection.close()

    return await sync_to_async(run, thread_sensitive=False)()


@dataclass(frozen=True)
class Reach:
    """What a caller's grants let them see, to tell a narrowing from a widening."""

    superuser: bool
    read_only: bool
    token_clusters: frozenset[int] | None
    grants: frozenset[Grant]

    @classmethod
    def of(cls, visibility: Visibility) -> Reach:
        grants = visibility.grants
        return cls(
            grants.superuser, grants.read_only, grants.token_clusters, frozenset(grants.grants)
        )

    def narrower_than(self, before: Reach) -> bool:
        if before.superuser and not self.superuser:
            return True
        if self.read_only and not before.read_only:
            return True
        if self.token_clusters is not None and (
            before.token_clusters is None or not self.token_clusters >= before.token_clusters
        ):
            return True
        return not self.grants >= before.grants


class Caller:
    """One user and token behind any number of streams: their Visibility, kept fresh."""

    def __init__(self, key: tuple[int, int | None], visibility: Visibility) -> None:
        self.key = key
        self.visibility = visibility
        self.clients = 0
        self.ended = ""  # why the caller may see nothing any more
        self.reach = Reach.of(visibility)
        self.tag_clusters = self._tag_clusters()

    def _tag_clusters(self) -> frozenset[int]:
        return frozenset(self.visibility.grants.instance_refs("view")[1])

    def refreshed(self, live: bool) -> None:
        if not live:
            self.ended = "your token was revoked or has expired, or your account was deactivated"
            return
        self.reach = Reach.of(self.visibility)
        self.tag_clusters = self._tag_clusters()


def caller_key(user: User) -> tuple[int, int | None]:
    token = token_of(user)
    return user.pk, token.pk if token is not None else None
