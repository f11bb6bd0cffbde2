"""The request bodies of ``POST .../actions``: ``{"action": "<name>", ...its parameters}``.

One class per action, named as in the OpenAPI document (``InstanceStartRequest``),
each its action's parameter schema plus the ``action`` discriminator; one union
per resource. Create, delete and modify have endpoints of their own, so the
instance, group and network unions leave them out; nodes and the cluster have
none. The classes carry no docstrings: pydantic would publish them in the schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gwm.operations.actions.base import NewName, NoParams, Tags
from gwm.operations.actions.groups import AssignNodes
from gwm.operations.actions.instances import (
    ActivateDisks,
    DeactivateDisks,
    Failover,
    GrowDisk,
    Migrate,
    Reboot,
    Reinstall,
    Rename,
    Shutdown,
    Start,
)
from gwm.operations.actions.networks import Connect, Disconnect
from gwm.operations.actions.nodes import Evacuate, NodeMigrate, Powercycle, SetRole

# -- instance ------------------------------------------------------------------


class InstanceActivateDisksRequest(ActivateDisks):
    action: Literal["activate-disks"] = Field(description="activate-disks")


class InstanceAddTagsRequest(Tags):
    action: Literal["add-tags"] = Field(description="add-tags")


class InstanceDeactivateDisksRequest(DeactivateDisks):
    action: Literal["deactivate-disks"] = Field(description="deactivate-disks")


class InstanceFailoverRequest(Failover):
    action: Literal["failover"] = Field(description="failover")


class InstanceGrowDiskRequest(GrowDisk):
    action: Literal["grow-disk"] = Field(description="grow-disk")


class InstanceMigrateRequest(Migrate):
    action: Literal["migrate"] = Field(description="migrate")


class InstanceRebootRequest(Reboot):
    action: Literal["reboot"] = Field(description="reboot")


class InstanceReinstallRequest(Reinstall):
    action: Literal["reinstall"] = Field(description="reinstall")


class InstanceRemoveTagsRequest(Tags):
    action: Literal["remove-tags"] = Field(description="remove-tags")


class InstanceRenameRequest(Rename):
    action: Literal["rename"] = Field(description="rename")


class InstanceShutdownRequest(Shutdown):
    action: Literal["shutdown"] = Field(description="shutdown")


class InstanceStartRequest(Start):
    action: Literal["start"] = Field(description="start")


InstanceActionBody = Annotated[
    InstanceActivateDisksRequest
    | InstanceAddTagsRequest
    | InstanceDeactivateDisksRequest
    | InstanceFailoverRequest
    | InstanceGrowDiskRequest
    | InstanceMigrateRequest
    | InstanceRebootRequest
    | InstanceReinstallRequest
    | InstanceRemoveTagsRequest
    | InstanceRenameRequest
    | InstanceShutdownRequest
    | InstanceStartRequest,
    Field(discriminator="action"),
]

# -- node ----------------------------------------------------------------------


class NodeAddTagsRequest(Tags):
    action: Literal["add-tags"] = Field(description="add-tags")


class NodeDrainRequest(NoParams):
    action: Literal["drain"] = Field(description="drain")


class NodeEvacuateRequest(Evacuate):
    action: Literal["evacuate"] = Field(description="evacuate")


class NodeMigrateRequest(NodeMigrate):
    action: Literal["migrate"] = Field(description="migrate")


class NodeOfflineRequest(NoParams):
    action: Literal["offline"] = Field(description="offline")


class NodeOnlineRequest(NoParams):
    action: Literal["online"] = Field(description="online")


class NodePowercycleRequest(Powercycle):
    action: Literal["powercycle"] = Field(description="powercycle")


class NodeRemoveTagsRequest(Tags):
    action: Literal["remove-tags"] = Field(description="remove-tags")


class NodeSetRoleRequest(SetRole):
    action: Literal["set-role"] = Field(description="set-role")


class NodeUndrainRequest(NoParams):
    action: Literal["undrain"] = Field(description="undrain")


NodeActionBody = Annotated[
    NodeAddTagsRequest
    | NodeDrainRequest
    | NodeEvacuateRequest
    | NodeMigrateRequest
    | NodeOfflineRequest
    | NodeOnlineRequest
    | NodePowercycleRequest
    | NodeRemoveTagsRequest
    | NodeSetRoleRequest
    | NodeUndrainRequest,
    Field(discriminator="action"),
]

# -- group ---------------------------------------------------------------------


class GroupAddTagsRequest(Tags):
    action: Literal["add-tags"] = Field(description="add-tags")


class GroupAssignNodesRequest(AssignNodes):
    action: Literal["assign-nodes"] = Field(description="assign-nodes")


class GroupRemoveTagsRequest(Tags):
    action: Literal["remove-tags"] = Field(description="remove-tags")


class GroupRenameRequest(NewName):
    action: Literal["rename"] = Field(description="rename")


GroupActionBody = Annotated[
    GroupAddTagsRequest | GroupAssignNodesRequest | GroupRemoveTagsRequest | GroupRenameRequest,
    Field(discriminator="action"),
]

# -- network -------------------------------------------------------------------


class NetworkAddTagsRequest(Tags):
    action: Literal["add-tags"] = Field(description="add-tags")


class NetworkConnectRequest(Connect):
    action: Literal["connect"] = Field(description="connect")


class NetworkDisconnectRequest(Disconnect):
    action: Literal["disconnect"] = Field(description="disconnect")


class NetworkRemoveTagsRequest(Tags):
    action: Literal["remove-tags"] = Field(description="remove-tags")


class NetworkRenameRequest(NewName):
    action: Literal["rename"] = Field(description="rename")


NetworkActionBody = Annotated[
    NetworkAddTagsRequest
    | NetworkConnectRequest
    | NetworkDisconnectRequest
    | NetworkRemoveTagsRequest
    | NetworkRenameRequest,
    Field(discriminator="action"),
]

# -- cluster -------------------------------------------------------------------


class ClusterAddTagsRequest(Tags):
    action: Literal["add-tags"] = Field(description="add-tags")


class ClusterRedistributeConfigRequest(NoParams):
    action: Literal["redistribute-config"] = Field(description="redistribute-config")


class ClusterRemoveTagsRequest(Tags):
    action: Literal["remove-tags"] = Field(description="remove-tags")


ClusterActionBody = Annotated[
    ClusterAddTagsRequest | ClusterRedistributeConfigRequest | ClusterRemoveTagsRequest,
    Field(discriminator="action"),
]
