"""The accounts domain's router: tokens, the caller, authorization questions, and the
directory (users, groups, roles, role bindings)."""

from __future__ import annotations

from ninja import Router

from gwm.accounts.api import audit, directory, me, quotas, tokens

router = Router(tags=["accounts"])
for part in (tokens, me, directory, audit, quotas):
    router.add_router("", part.router)
