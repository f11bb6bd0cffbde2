"""Typed views of Ganeti RAPI answers (pydantic models and named tuples).

Every pydantic model keeps fields Ganeti sends that are not declared here
(``extra="allow"``, read them from ``model_extra``). Every field of the
resources (cluster, OS, instance, node, group, network, console, job) is
optional because Ganeti leaves runtime fields ``null`` when a node does not
answer; only the job-wait and query answers have required fields. Dotted
Ganeti names map to Python names with aliases (``nic.ips`` → ``nic_ips``);
``model_dump()`` writes Ganeti's names back.

One module per resource (``cluster``, ``instances``, ``nodes`` with groups
and networks, ``jobs``, ``query``) on a shared ``base``; import the models
from here.
"""

from gwm.rapi.schemas.base import RapiModel
from gwm.rapi.schemas.cluster import RapiClusterInfo, RapiOperatingSystem
from gwm.rapi.schemas.instances import (
    RapiInstance,
    RapiInstanceConsole,
    RapiInstanceDisk,
    RapiInstanceNic,
)
from gwm.rapi.schemas.jobs import (
    JobStatusField,
    RapiCancelJobResult,
    RapiJob,
    RapiJobFailure,
    RapiJobLogEntry,
    RapiJobWaitResult,
    RapiReasonEntry,
    Timestamp,
)
from gwm.rapi.schemas.nodes import RapiGroup, RapiNetwork, RapiNode
from gwm.rapi.schemas.query import (
    RapiQueryCell,
    RapiQueryField,
    RapiQueryFieldsResult,
    RapiQueryResult,
)

__all__ = [
    "JobStatusField",
    "RapiCancelJobResult",
    "RapiClusterInfo",
    "RapiGroup",
    "RapiInstance",
    "RapiInstanceConsole",
    "RapiInstanceDisk",
    "RapiInstanceNic",
    "RapiJob",
    "RapiJobFailure",
    "RapiJobLogEntry",
    "RapiJobWaitResult",
    "RapiModel",
    "RapiNetwork",
    "RapiNode",
    "RapiOperatingSystem",
    "RapiQueryCell",
    "RapiQueryField",
    "RapiQueryFieldsResult",
    "RapiQueryResult",
    "RapiReasonEntry",
    "Timestamp",
]
