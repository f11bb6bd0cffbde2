"""Actions on the cluster itself: the RAPI call each sends (they hold nothing).

The cluster has no name of its own in the RAPI paths: ``request.name`` goes unused.
"""

from __future__ import annotations

from gwm.operations.actions.base import Declarations, NoParams, SendRequest, Tags
from gwm.rapi import RapiClient

declare = Declarations("cluster", verb="manage_cluster")


@declare("redistribute-config", NoParams, opcodes=("OP_CLUSTER_REDIST_CONF",))
def redistribute_config(client: RapiClient, request: SendRequest) -> int:
    return client.redistribute_config(reason=request.reason)


@declare("add-tags", Tags, dry_run=True, opcodes=("OP_TAGS_SET",))
def add_cluster_tags(client: RapiClient, request: SendRequest) -> int:
    return client.add_cluster_tags(
        request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


@declare("remove-tags", Tags, dry_run=True, opcodes=("OP_TAGS_DEL",))
def delete_cluster_tags(client: RapiClient, request: SendRequest) -> int:
    return client.delete_cluster_tags(
        request.params["tags"], dry_run=request.dry_run, reason=request.reason
    )


CLUSTER_ACTIONS = declare.actions
