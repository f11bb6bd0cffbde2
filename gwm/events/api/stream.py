"""GET /api/v1/changes/stream: the change feed pushed as Server-Sent Events.

The request is checked before the stream starts (filters and cursor: 400,
the token: 401, as problems); after that everything the stream has to say
is a frame of it (gwm.events.stream).
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from ninja import Router
from ninja.params import functions as param

from gwm.accounts.auth import AuthedRequest, caller_auth
from gwm.events.api.common import CLUSTERS, RESOURCE, TYPES, cursor_of, filters_of
from gwm.events.stream import CONTENT_TYPE, stream_response
from gwm.events.stream.hub import OVERFLOW_GRACE_SECONDS
from gwm.schemas import Problem

router = Router(auth=caller_auth, tags=["changes"])

DESCRIPTION = f"""\
The changes you may see, pushed as they are committed: `text/event-stream`
(Server-Sent Events). Filters are those of `GET /api/v1/changes`.

Where it starts: after `Last-Event-ID` (the header an SSE client sends when
it reconnects) or `since` (the header wins), with neither from now on. No
change is skipped and none is sent twice across a reconnect.

Frames:
- a change: `id: <seq>`, `event: <type>` (`instance.status_changed`),
  `data: <the event>` (one line of JSON, the same event as in the feed).
- `: seq=<N>` — a comment, first at once and then every heartbeat interval
  without traffic: every change up to `N` that is for you has been sent
  (resuming from `N` skips nothing). Never an `id:`.
- `event: reset`, `data: {{"floor": F, "detail": ...}}` (no `id`): the cursor
  was older than the retention floor; the changes up to `F` are gone, so
  relist what you follow. The stream goes on from `F`.

Last frames (the stream then ends; reconnect with `Last-Event-ID`):
- `event: overflow`, `data: {{"last_seq_sent": N, "detail": ...}}`: the client
  fell further behind than the server buffers for it. A client that does not
  even take this frame within {OVERFLOW_GRACE_SECONDS:g} s is disconnected.
- `event: revoked`, `data: {{"detail": ..., "last_seq_sent": N}}`: the token
  was revoked or expired, the account deactivated, or your permissions
  narrowed (a role binding deleted); a new stream sends what you may see now.
- `event: error`, `data: {{"detail": ..., "last_seq_sent": N}}`: a failure of
  the server's.
"""


@router.get(
    "/changes/stream",
    response={400: Problem, 401: Problem},
    summary="The change feed as a live stream (Server-Sent Events)",
    description=DESCRIPTION,
    operation_id="gwm_events_api_stream_changes",
    openapi_extra={
        "responses": {
            200: {
                "description": "A stream of Server-Sent Events (see the description)",
                "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
            }
        }
    },
)
async def stream_changes(
    request: AuthedRequest,
    since: int | None = param.Query(
        None, ge=0, le=2**63 - 1, description="a seq: changes after it (else from now)"
    ),
    types: list[str] | None = TYPES,
    cluster: list[str] | None = CLUSTERS,
    resource: str | None = RESOURCE,
    last_event_id: str | None = param.Header(
        None, alias="Last-Event-ID", description="the last `id:` received; wins over `since`"
    ),
) -> StreamingHttpResponse:
    filters = filters_of(types, cluster, resource)
    cursor = since if last_event_id is None else cursor_of(last_event_id, "Last-Event-ID")
    return stream_response(request.auth, filters, cursor)
