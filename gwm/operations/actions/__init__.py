"""Every operation gwm can ask of Ganeti: its parameters, what it holds, and its RAPI call.

One module per resource (instances, nodes, groups, networks, cluster) declares
its actions, each on the named function that sends it; this package gathers them
into one registry, so the API, the services and the workers agree on what each
action is. Parameter schemas reject unknown fields (422), and each action says
which resource status it holds while it runs (docs/status-model.md). The bodies
of ``POST .../actions`` are in ``bodies``.
"""

from __future__ import annotations

from gwm.operations.actions.base import (
    Action,
    Changes,
    NoParams,
    Params,
    Send,
    SendRequest,
)
from gwm.operations.actions.bodies import (
    ClusterActionBody,
    GroupActionBody,
    InstanceActionBody,
    NetworkActionBody,
    NodeActionBody,
)
from gwm.operations.actions.cluster import CLUSTER_ACTIONS
from gwm.operations.actions.groups import GROUP_ACTIONS, GroupCreate, GroupModify
from gwm.operations.actions.instances import INSTANCE_ACTIONS, InstanceCreate, InstanceModify
from gwm.operations.actions.networks import NETWORK_ACTIONS, NetworkCreate, NetworkModify
from gwm.operations.actions.nodes import NODE_ACTIONS


def _registry(*declared: Action) -> dict[str, Action]:
    actions: dict[str, Action] = {}
    for action in declared:
        if action.key in actions:
            raise ValueError(f"{action.key} is declared twice")
        actions[action.key] = action
    return actions


ACTIONS: dict[str, Action] = _registry(
    *INSTANCE_ACTIONS, *NODE_ACTIONS, *GROUP_ACTIONS, *NETWORK_ACTIONS, *CLUSTER_ACTIONS
)


def actions_for(resource: str) -> dict[str, Action]:
    """The actions on one kind of resource (``"instance"``, ...), by name."""
    return {a.name: a for a in ACTIONS.values() if a.resource == resource}


__all__ = [
    "ACTIONS",
    "Action",
    "Changes",
    "ClusterActionBody",
    "GroupActionBody",
    "GroupCreate",
    "GroupModify",
    "InstanceActionBody",
    "InstanceCreate",
    "InstanceModify",
    "NetworkActionBody",
    "NetworkCreate",
    "NetworkModify",
    "NoParams",
    "NodeActionBody",
    "Params",
    "Send",
    "SendRequest",
    "actions_for",
]
