"""The verbs gwm checks, and the roles built from them.

A verb is one kind of thing a caller may do. A role is a named set of verbs;
a role binding gives a user or a group a role at a scope (everything, one
cluster, one instance, or a cluster's instances carrying a tag). The old
Ganeti Web Manager's permissions (create_vm, modify, remove, power, console,
tags, migrate, replace_disks, export) are verbs here, so each of its roles is
a custom role of gwm.
"""

from __future__ import annotations

# verb -> what it allows. Instance verbs hold on an instance scope too; the
# others need a cluster (or global) scope.
VERBS: dict[str, str] = {
    "view": "read the object, its jobs and its changes",
    "create_vm": "create instances on a cluster",
    "modify": "change an instance's parameters, rename, reinstall, grow or (de)activate disks",
    "remove": "delete an instance",
    "power": "start, shut down and reboot an instance",
    "console": "open an instance's console",
    "tags": "add and remove tags",
    "migrate": "migrate and fail over an instance",
    "replace_disks": "replace an instance's disks",
    "export": "export an instance",
    "manage_nodes": "drain, offline, evacuate, migrate, power-cycle and re-role nodes",
    "manage_cluster": "create, change and delete node groups and networks; cluster operations",
    "admin": "manage role bindings and quotas on the scope, see connection details and audit",
}

# Verbs that mean something on a single instance (an instance or tag binding).
INSTANCE_VERBS = frozenset(
    {"view", "modify", "remove", "power", "console", "tags", "migrate", "replace_disks", "export"}
)

# The built-in roles (created by a migration, refreshed by `gwm migrate`; not editable).
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "viewer": ("read everything on the scope", frozenset({"view"})),
    "operator": (
        "view, power-cycle (start, shut down, reboot), console and migrate",
        frozenset({"view", "power", "console", "migrate"}),
    ),
    "instance-owner": (
        "everything on one instance, deletion included; bound by gwm to an instance's creator",
        INSTANCE_VERBS,
    ),
    "admin": ("everything on the scope, role bindings and quotas included", frozenset(VERBS)),
}
