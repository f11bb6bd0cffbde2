"""Every opcode the simulator knows, as the one registry it runs jobs with."""

from __future__ import annotations

from gwm.simulator.opcodes import (
    cluster,
    groups,
    instance_create,
    instance_disks,
    instance_moves,
    instances,
    networks,
    nodes,
    tags,
)
from gwm.simulator.opcodes.registry import Registry

OPCODES = Registry(
    cluster.OPCODES,
    tags.OPCODES,
    instance_create.OPCODES,
    instances.OPCODES,
    instance_moves.OPCODES,
    instance_disks.OPCODES,
    nodes.OPCODES,
    groups.OPCODES,
    networks.OPCODES,
)
