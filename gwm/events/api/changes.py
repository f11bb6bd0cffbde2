"""GET /api/v1/changes: the change feed, paged by ``since`` and long-polled with ``wait``.

A long poll holds no server thread (gwm.events.waiting): it sleeps until a
commit that wrote changes (the "changes" channel), reads again, and answers as
soon as there is something for the caller, or with a bookmark when ``wait``
passes.
"""

from __future__ import annotations

from typing import Any

from ninja import Router
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.errors import BadRequest
from gwm.events.api.common import CLUSTERS, RESOURCE, TYPES, filters_of
from gwm.events.feed import Page, page_read
from gwm.events.notify import CHANGES_CHANNEL
from gwm.events.schemas import ChangePage
from gwm.events.visibility import Visibility
from gwm.events.waiting import wait_until_moved
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["changes"])

WAIT_MAX = 120.0
LIMIT_DEFAULT, LIMIT_MAX = 100, 1000


@router.get(
    "/changes",
    response={200: ChangePage, 400: Problem, 401: Problem, 410: Problem},
    summary="The change feed: every change you may see, in seq order",
    description=(
        "Events after `since` (a seq; 0 from the start), oldest first. `next_since` is the "
        "cursor of the next call: it advances even when nothing here was for you (a "
        f"bookmark). `wait` (seconds, at most {WAIT_MAX:g}) waits for the first event when "
        "there is none yet, holding no server thread. A cursor below the retention floor "
        "answers `410 Gone` with the `floor`: relist what you follow, then read from it."
    ),
    operation_id="gwm_events_api_list_changes",
)
async def list_changes(
    request: AuthedRequest,
    since: int = param.Query(0, ge=0, le=2**63 - 1),
    limit: int = param.Query(LIMIT_DEFAULT, ge=1, le=LIMIT_MAX),
    types: list[str] | None = TYPES,
    cluster: list[str] | None = CLUSTERS,
    resource: str | None = RESOURCE,
    wait: float = param.Query(0.0, description=f"seconds to wait, 0 to {WAIT_MAX:g}"),
) -> dict[str, Any]:
    if not 0 <= wait <= WAIT_MAX:
        raise BadRequest(f"wait must be between 0 and {WAIT_MAX:g} seconds", parameter="wait")
    filters = filters_of(types, cluster, resource)
    user = request.auth
    visibility: list[Visibility] = []

    def load() -> Page:
        if not visibility:
            visibility.append(Visibility(user))
        return page_read(visibility[0], since, limit, filters)

    _, page = await wait_until_moved(
        [CHANGES_CHANNEL],
        load,
        lambda _first, current: bool(current.events),
        timeout=wait,
        settled=lambda first: wait == 0,
    )
    return page.body()
