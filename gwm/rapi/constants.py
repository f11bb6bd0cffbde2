"""Ganeti RAPI v2 vocabulary: the values the client sends and reads.

Values are Ganeti's own spellings (``lib/rapi/rlib2.py``, ``doc/rapi.rst``,
``src/Ganeti/Query/*.hs``), so a member compares equal to the string Ganeti
sends (``JobStatus.RUNNING == "running"``).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

RAPI_PORT: Final = 5080
RAPI_VERSION: Final = 2

#: ``__version__`` value of the instance creation body Ganeti accepts.
INSTANCE_CREATE_REQUEST_VERSION: Final = 1

#: Seconds ``/2/jobs/<id>/wait`` blocks on the server before it answers
#: "no change"; luxid caps it at this value whatever the client asks.
JOB_WAIT_SERVER_TIMEOUT: Final = 10


class Feature(StrEnum):
    """Strings ``GET /2/features`` lists (404 on servers before 2.4)."""

    INSTANCE_CREATE_REQV1 = "instance-create-reqv1"
    INSTANCE_REINSTALL_REQV1 = "instance-reinstall-reqv1"
    NODE_MIGRATE_REQV1 = "node-migrate-reqv1"
    NODE_EVAC_RES1 = "node-evac-res1"


class JobStatus(StrEnum):
    """Status of a job and of each of its opcodes (``opstatus``)."""

    QUEUED = "queued"
    WAITING = "waiting"
    CANCELING = "canceling"
    RUNNING = "running"
    CANCELED = "canceled"
    SUCCESS = "success"
    ERROR = "error"


#: Name Ganeti < 2.6 used for ``waiting``; still accepted when parsing.
JOB_STATUS_WAITLOCK_LEGACY: Final = "waitlock"

JOB_STATUS_PENDING: Final = frozenset({JobStatus.QUEUED, JobStatus.WAITING, JobStatus.CANCELING})
JOB_STATUS_FINALIZED: Final = frozenset({JobStatus.CANCELED, JobStatus.SUCCESS, JobStatus.ERROR})


class JobLogType(StrEnum):
    """Third element of a job log entry ``[serial, [sec, usec], type, message]``."""

    MESSAGE = "message"
    MESSAGE_LIST = "message-list"
    REMOTE_IMPORT = "remote-import"
    JQUEUE_TEST = "jqueue-test"
    DELAY_TEST = "delay-test"


class InstanceStatus(StrEnum):
    """The instance ``status`` runtime field (``src/Ganeti/Query/Instance.hs``)."""

    RUNNING = "running"
    ADMIN_DOWN = "ADMIN_down"
    ADMIN_OFFLINE = "ADMIN_offline"
    ERROR_DOWN = "ERROR_down"
    ERROR_UP = "ERROR_up"
    ERROR_NODEDOWN = "ERROR_nodedown"
    ERROR_NODEOFFLINE = "ERROR_nodeoffline"
    ERROR_WRONGNODE = "ERROR_wrongnode"
    USER_DOWN = "USER_down"


class AdminState(StrEnum):
    UP = "up"
    DOWN = "down"
    OFFLINE = "offline"


class NodeRole(StrEnum):
    """Node role as ``/2/nodes/<n>/role`` spells it."""

    MASTER = "master"
    MASTER_CANDIDATE = "master-candidate"
    REGULAR = "regular"
    DRAINED = "drained"
    OFFLINE = "offline"


#: The one-letter ``role`` field of N_FIELDS and ``/2/query/node``.
NODE_ROLE_BY_LETTER: Final = {
    "M": NodeRole.MASTER,
    "C": NodeRole.MASTER_CANDIDATE,
    "R": NodeRole.REGULAR,
    "D": NodeRole.DRAINED,
    "O": NodeRole.OFFLINE,
}
NODE_ROLE_LETTER: Final = {role: letter for letter, role in NODE_ROLE_BY_LETTER.items()}

#: Roles ``PUT /2/nodes/<n>/role`` accepts (the master is chosen by failover).
NODE_ROLES_SETTABLE: Final = frozenset(
    {NodeRole.MASTER_CANDIDATE, NodeRole.REGULAR, NodeRole.DRAINED, NodeRole.OFFLINE}
)


class ErrorCode(StrEnum):
    """Second element of a failed opcode's error, e.g. ``["msg", "wrong_state"]``."""

    RESOLVER_ERROR = "resolver_error"
    INSUFFICIENT_RESOURCES = "insufficient_resources"
    TEMP_INSUFFICIENT_RESOURCES = "temp_insufficient_resources"
    WRONG_INPUT = "wrong_input"
    WRONG_STATE = "wrong_state"
    UNKNOWN_ENTITY = "unknown_entity"
    ALREADY_EXISTS = "already_exists"
    RESOURCE_NOT_UNIQUE = "resource_not_unique"
    INTERNAL_ERROR = "internal_error"
    ENVIRONMENT_ERROR = "environment_error"


class QueryFieldStatus(IntEnum):
    """Status of one cell in a ``/2/query`` answer (``[status, value]``)."""

    NORMAL = 0
    UNKNOWN_FIELD = 1
    NO_DATA = 2
    UNAVAILABLE = 3
    OFFLINE = 4


class QueryResource(StrEnum):
    """Resources ``/2/query/<resource>`` accepts."""

    INSTANCE = "instance"
    NODE = "node"
    GROUP = "group"
    NETWORK = "network"
    JOB = "job"
    LOCK = "lock"
    EXPORT = "export"
    FILTER = "filter"


class InstanceCreateMode(StrEnum):
    CREATE = "create"
    IMPORT = "import"
    REMOTE_IMPORT = "remote-import"


class DiskTemplate(StrEnum):
    DISKLESS = "diskless"
    FILE = "file"
    SHAREDFILE = "sharedfile"
    PLAIN = "plain"
    DRBD = "drbd"
    BLOCKDEV = "blockdev"
    RBD = "rbd"
    EXT = "ext"
    GLUSTER = "gluster"


class RebootType(StrEnum):
    SOFT = "soft"
    HARD = "hard"
    FULL = "full"


class MigrationMode(StrEnum):
    LIVE = "live"
    NON_LIVE = "non-live"


class ReplaceDisksMode(StrEnum):
    ON_PRIMARY = "replace_on_primary"
    ON_SECONDARY = "replace_on_secondary"
    NEW_SECONDARY = "replace_new_secondary"
    AUTO = "replace_auto"


class NodeEvacuateMode(StrEnum):
    PRIMARY_ONLY = "primary-only"
    SECONDARY_ONLY = "secondary-only"
    ALL = "all"


class NicMode(StrEnum):
    BRIDGED = "bridged"
    ROUTED = "routed"
    OPENVSWITCH = "openvswitch"


class AllocPolicy(StrEnum):
    PREFERRED = "preferred"
    LAST_RESORT = "last_resort"
    UNALLOCABLE = "unallocable"


class ConsoleKind(StrEnum):
    SSH = "ssh"
    VNC = "vnc"
    SPICE = "spice"
    MESSAGE = "msg"


# Reason trail sources: every opcode's ``reason`` is a list of
# ``[source, text, epoch_ns]``; the first element tells who asked.
REASON_SOURCE_USER: Final = "gnt:user"
REASON_SOURCE_RLIB2: Final = "gnt:library:rlib2"
REASON_SOURCE_CLIENT: Final = "gnt:client"
REASON_SOURCE_WATCHER: Final = "gnt:watcher"
REASON_SOURCE_OPCODE: Final = "gnt:opcode"
