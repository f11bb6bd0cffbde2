"""Keep the built-in roles as gwm.accounts.verbs defines them, after every migrate."""

from __future__ import annotations

from typing import Any


def sync_builtin_roles(**kwargs: Any) -> None:
    from gwm.accounts.models import Role
    from gwm.accounts.verbs import BUILTIN_ROLES

    for name, (description, verbs) in BUILTIN_ROLES.items():
        Role.objects.update_or_create(
            name=name,
            defaults={"description": description, "verbs": sorted(verbs), "builtin": True},
        )
