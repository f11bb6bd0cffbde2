"""Instance bindings follow their instance: gone with it, renamed with it.

Bindings name instances (gwm's cache row of an instance is replaced whenever
Ganeti's is), so when an instance leaves Ganeti its bindings must go too:
otherwise whoever owned ``web1`` would own the next instance called ``web1``.
Called inside the transaction that writes the instance's end or new name.
"""

from __future__ import annotations

from collections.abc import Iterable

from gwm.accounts.models import RoleBinding, Scope


def instance_bindings_forget(cluster_id: int, names: Iterable[str]) -> int:
    """Delete the instance-scope bindings of ``names`` on the cluster; returns how many."""
    names = list(names)
    if not names:
        return 0
    deleted, _ = RoleBinding.objects.filter(
        cluster_id=cluster_id, scope=Scope.INSTANCE, instance__in=names
    ).delete()
    return deleted


def instance_bindings_rename(cluster_id: int, old: str, new: str) -> int:
    """Move the instance-scope bindings of ``old`` to ``new`` (a rename gwm ran)."""
    return RoleBinding.objects.filter(
        cluster_id=cluster_id, scope=Scope.INSTANCE, instance=old
    ).update(instance=new)
