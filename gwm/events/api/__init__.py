"""The tracker's routers: the change feed and its stream, event schemas, webhooks, hooks."""

from __future__ import annotations

from ninja import Router

from gwm.events.api import changes, hooks, schemas, stream, webhooks

router = Router()
for part in (changes, stream, schemas, webhooks, hooks):
    router.add_router("", part.router)
