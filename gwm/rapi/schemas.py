"""Typed views of Ganeti RAPI answers (pydantic models and named tuples).

Every pydantic model keeps fields Ganeti sends that are not declared here
(``extra="allow"``, read them from ``model_extra``). Every field of the
resources (cluster, OS, instance, node, group, network, console, job) is
optional because Ganeti leaves runtime fields ``null`` when a node does not
answer; only the job-wait and query answers have required fields. Dotted
Ganeti names map to Python names with aliases (``nic.ips`` → ``nic_ips``);
``model_dump()`` writes Ganeti's names back.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gwm.rapi.constants import (
    JOB_STATUS_FINALIZED,
    JOB_STATUS_WAITLOCK_LEGACY,
    NODE_ROLE_BY_LETTER,
    REASON_SOURCE_USER,
    AdminState,
    InstanceStatus,
    JobStatus,
    NodeRole,
    QueryFieldStatus,
)


class RapiModel(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


# A Ganeti timestamp as sent in jobs: [seconds, microseconds].
Timestamp = tuple[int, int]


def _timestamp_seconds(value: Timestamp | None) -> float | None:
    return None if value is None else value[0] + value[1] / 1_000_000


def _legacy_job_status(value: Any) -> Any:
    return JobStatus.WAITING if value == JOB_STATUS_WAITLOCK_LEGACY else value


# Known values become enum members; values a newer Ganeti may add stay strings
# instead of failing a whole listing.
JobStatusField = Annotated[
    JobStatus | str | None,
    Field(union_mode="left_to_right"),
    BeforeValidator(_legacy_job_status),
]


class _Common(RapiModel):
    ctime: float | None = None
    mtime: float | None = None
    uuid: str | None = None
    serial_no: int | None = None
    tags: list[str] | None = None


class RapiClusterInfo(RapiModel):
    """``GET /2/info``. Ganeti sends no ``serial_no`` here."""

    name: str | None = None
    master: str | None = None
    software_version: str | None = None
    protocol_version: int | None = None
    config_version: int | None = None
    os_api_version: int | None = None
    export_version: int | None = None
    architecture: list[str] | None = None
    enabled_hypervisors: list[str] | None = None
    default_hypervisor: str | None = None
    enabled_disk_templates: list[str] | None = None
    hvparams: dict[str, dict[str, Any]] | None = None
    os_hvp: dict[str, Any] | None = None
    beparams: dict[str, dict[str, Any]] | None = None
    osparams: dict[str, Any] | None = None
    nicparams: dict[str, dict[str, Any]] | None = None
    ndparams: dict[str, Any] | None = None
    diskparams: dict[str, dict[str, Any]] | None = None
    ipolicy: dict[str, Any] | None = None
    candidate_pool_size: int | None = None
    max_running_jobs: int | None = None
    master_netdev: str | None = None
    volume_group_name: str | None = None
    default_iallocator: str | None = None
    ctime: float | None = None
    mtime: float | None = None
    uuid: str | None = None
    tags: list[str] | None = None


class RapiOperatingSystem(RapiModel):
    """One entry of ``GET /2/os?bulk=1``."""

    name: str | None = None
    valid: bool | None = None
    variants: list[str] | None = None
    parameters: list[Any] | None = None
    api_versions: list[int] | None = None
    blacklisted: bool | None = None
    hidden: bool | None = None
    trusted: bool | None = None


class RapiInstanceNic(NamedTuple):
    position: int
    mac: str | None
    ip: str | None
    mode: str | None
    link: str | None
    network: str | None
    name: str | None
    uuid: str | None


class RapiInstanceDisk(NamedTuple):
    position: int
    size: int | None
    name: str | None
    uuid: str | None
    spindles: int | None


class RapiInstance(_Common):
    """``GET /2/instances/<name>`` and each entry of ``?bulk=1`` (I_FIELDS)."""

    name: str | None = None
    admin_state: Annotated[AdminState | str | None, Field(union_mode="left_to_right")] = None
    os: str | None = None
    pnode: str | None = None
    snodes: list[str] | None = None
    disk_template: str | None = None
    nic_ips: list[str | None] | None = Field(None, alias="nic.ips")
    nic_macs: list[str | None] | None = Field(None, alias="nic.macs")
    nic_modes: list[str | None] | None = Field(None, alias="nic.modes")
    nic_uuids: list[str | None] | None = Field(None, alias="nic.uuids")
    nic_names: list[str | None] | None = Field(None, alias="nic.names")
    nic_links: list[str | None] | None = Field(None, alias="nic.links")
    nic_networks: list[str | None] | None = Field(None, alias="nic.networks")
    nic_network_names: list[str | None] | None = Field(None, alias="nic.networks.names")
    nic_bridges: list[str | None] | None = Field(None, alias="nic.bridges")
    network_port: int | None = None
    disk_sizes: list[int | None] | None = Field(None, alias="disk.sizes")
    disk_spindles: list[int | None] | None = Field(None, alias="disk.spindles")
    disk_uuids: list[str | None] | None = Field(None, alias="disk.uuids")
    disk_names: list[str | None] | None = Field(None, alias="disk.names")
    disk_usage: int | None = None
    beparams: dict[str, Any] | None = None
    hvparams: dict[str, Any] | None = None
    oper_state: bool | None = None
    oper_ram: int | None = None
    oper_vcpus: int | None = None
    status: Annotated[InstanceStatus | str | None, Field(union_mode="left_to_right")] = None
    custom_hvparams: dict[str, Any] | None = None
    custom_beparams: dict[str, Any] | None = None
    custom_nicparams: list[dict[str, Any]] | None = None
    custom_osparams: dict[str, Any] | None = None

    @property
    def nics(self) -> list[RapiInstanceNic]:
        """The parallel ``nic.*`` lists as one record per NIC."""

        def at(values: list[str | None] | None, i: int) -> str | None:
            return values[i] if values is not None and i < len(values) else None

        count = max(len(v or ()) for v in (self.nic_macs, self.nic_ips, self.nic_modes))
        return [
            RapiInstanceNic(
                position=i,
                mac=at(self.nic_macs, i),
                ip=at(self.nic_ips, i),
                mode=at(self.nic_modes, i),
                link=at(self.nic_links, i),
                network=at(self.nic_networks, i),
                name=at(self.nic_names, i),
                uuid=at(self.nic_uuids, i),
            )
            for i in range(count)
        ]

    @property
    def disks(self) -> list[RapiInstanceDisk]:
        """The parallel ``disk.*`` lists as one record per disk."""
        sizes = self.disk_sizes or []
        names, uuids, spindles = self.disk_names or [], self.disk_uuids or [], self.disk_spindles
        return [
            RapiInstanceDisk(
                position=i,
                size=size,
                name=names[i] if i < len(names) else None,
                uuid=uuids[i] if i < len(uuids) else None,
                spindles=spindles[i] if spindles and i < len(spindles) else None,
            )
            for i, size in enumerate(sizes)
        ]


class RapiNode(_Common):
    """``GET /2/nodes/<name>`` and each entry of ``?bulk=1`` (N_FIELDS)."""

    name: str | None = None
    offline: bool | None = None
    master_candidate: bool | None = None
    drained: bool | None = None
    master_capable: bool | None = None
    vm_capable: bool | None = None
    role: str | None = None
    dtotal: int | None = None
    dfree: int | None = None
    sptotal: int | None = None
    spfree: int | None = None
    mtotal: int | None = None
    mnode: int | None = None
    mfree: int | None = None
    pinst_cnt: int | None = None
    sinst_cnt: int | None = None
    ctotal: int | None = None
    cnos: int | None = None
    cnodes: int | None = None
    csockets: int | None = None
    pip: str | None = None
    sip: str | None = None
    secondary_ip: str | None = None
    pinst_list: list[str] | None = None
    sinst_list: list[str] | None = None
    ndparams: dict[str, Any] | None = None
    group_uuid: str | None = Field(None, alias="group.uuid")

    @property
    def role_name(self) -> NodeRole | None:
        """The one-letter ``role`` spelled out (``"C"`` → ``master-candidate``)."""
        return NODE_ROLE_BY_LETTER.get(self.role) if self.role else None


class RapiGroup(_Common):
    """``GET /2/groups/<name>`` and each entry of ``?bulk=1`` (G_FIELDS)."""

    name: str | None = None
    alloc_policy: str | None = None
    node_cnt: int | None = None
    node_list: list[str] | None = None
    ipolicy: dict[str, Any] | None = None
    custom_ipolicy: dict[str, Any] | None = None
    diskparams: dict[str, Any] | None = None
    custom_diskparams: dict[str, Any] | None = None
    ndparams: dict[str, Any] | None = None
    custom_ndparams: dict[str, Any] | None = None


class RapiNetwork(_Common):
    """``GET /2/networks/<name>`` and each entry of ``?bulk=1`` (NET_FIELDS)."""

    name: str | None = None
    network: str | None = None
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    free_count: int | None = None
    reserved_count: int | None = None
    map: str | None = None
    # [[group, mode, link, vlan], ...]
    group_list: list[Any] | None = None
    inst_list: list[str] | None = None
    # Ganeti 3 sends a comma-separated string, older ones a list.
    external_reservations: str | list[str] | None = None


class RapiInstanceConsole(RapiModel):
    """``GET /2/instances/<name>/console``."""

    instance: str | None = None
    kind: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    command: list[str] | None = None
    display: int | None = None
    message: str | None = None


class RapiJobLogEntry(NamedTuple):
    """``[serial, [sec, usec], type, message]`` from a job's log."""

    serial: int
    timestamp: Timestamp
    log_type: str
    message: Any


class RapiReasonEntry(NamedTuple):
    """``[source, text, epoch_ns]`` from an opcode's reason trail."""

    source: str
    text: str
    timestamp_ns: int


class RapiJobFailure(NamedTuple):
    """Why a job failed: ``["OpPrereqError", ["msg", "wrong_state"]]`` → fields.

    Not an exception: the value of :attr:`RapiJob.error`.
    """

    error_class: str | None
    message: str
    code: str | None


def _job_failure(result: Any) -> RapiJobFailure:
    if isinstance(result, list | tuple) and len(result) == 2 and isinstance(result[0], str):
        error_class, args = result
        if isinstance(args, list | tuple):
            message = str(args[0]) if args else error_class
            code = args[1] if len(args) > 1 and isinstance(args[1], str) else None
            return RapiJobFailure(error_class, message, code)
        return RapiJobFailure(error_class, str(args), None)
    return RapiJobFailure(None, str(result), None)


class RapiJob(RapiModel):
    """``GET /2/jobs/<id>`` (``oplog``/``opresult`` only there) and ``?bulk=1`` entries."""

    id: int | None = None
    ops: list[dict[str, Any]] | None = None
    status: JobStatusField = None
    summary: list[str] | None = None
    opstatus: list[JobStatusField] | None = None
    opresult: list[Any] | None = None
    oplog: list[list[RapiJobLogEntry]] | None = None
    received_ts: Timestamp | None = None
    start_ts: Timestamp | None = None
    end_ts: Timestamp | None = None

    @property
    def is_finalized(self) -> bool:
        return self.status in JOB_STATUS_FINALIZED

    @property
    def received_at(self) -> float | None:
        return _timestamp_seconds(self.received_ts)

    @property
    def started_at(self) -> float | None:
        return _timestamp_seconds(self.start_ts)

    @property
    def ended_at(self) -> float | None:
        return _timestamp_seconds(self.end_ts)

    @property
    def reason_trails(self) -> list[list[RapiReasonEntry]]:
        """Each opcode's reason trail; the first entry says who submitted it."""
        trails: list[list[RapiReasonEntry]] = []
        for op in self.ops or []:
            raw = op.get("reason") or []
            trails.append(
                [RapiReasonEntry(str(e[0]), str(e[1]), int(e[2])) for e in raw if len(e) == 3]
            )
        return trails

    @property
    def user_reasons(self) -> list[str]:
        """The ``reason=`` texts given at submission (``gnt:user`` entries), in order."""
        return [
            entry.text
            for trail in self.reason_trails
            for entry in trail
            if entry.source == REASON_SOURCE_USER
        ]

    @property
    def error(self) -> RapiJobFailure | None:
        """Why the job failed; None unless its status is ``error``.

        Class, message and Ganeti error code of the first failed opcode, or of
        the last result when no opcode is marked failed.
        """
        if self.status != JobStatus.ERROR:
            return None
        results = self.opresult or []
        for index, op_status in enumerate(self.opstatus or []):
            if op_status == JobStatus.ERROR and index < len(results):
                return _job_failure(results[index])
        failed = [r for r in results if r is not None]
        return _job_failure(failed[-1]) if failed else RapiJobFailure(None, "job failed", None)


class RapiJobWaitResult(RapiModel):
    """One answer of ``/2/jobs/<id>/wait``.

    ``changed`` is False both when Ganeti answered ``null`` (Python masterd)
    and when it sent back the unchanged ``job_info`` with no new log entries
    (Haskell luxid, after about 10 s).
    """

    changed: bool
    fields: list[str]
    job_info: list[Any]
    log_entries: list[RapiJobLogEntry] = []

    def get(self, name: str) -> Any:
        """The value of one requested field, e.g. ``get("status")``."""
        try:
            return self.job_info[self.fields.index(name)]
        except (ValueError, IndexError):
            return None

    @property
    def status(self) -> JobStatus | str | None:
        value = self.get("status")
        if value == JOB_STATUS_WAITLOCK_LEGACY:
            return JobStatus.WAITING
        try:
            return JobStatus(value)
        except ValueError:
            return value if isinstance(value, str) else None


class RapiCancelJobResult(NamedTuple):
    """``DELETE /2/jobs/<id>`` → ``[success, message]``."""

    success: bool
    message: str


class RapiQueryField(RapiModel):
    """A field definition from ``/2/query/<resource>[/fields]``."""

    name: str
    title: str | None = None
    kind: str | None = None
    doc: str | None = None


class RapiQueryCell(NamedTuple):
    """One ``[status, value]`` cell; ``value`` is meaningful only if ``status`` is NORMAL."""

    status: QueryFieldStatus
    value: Any


class RapiQueryResult(RapiModel):
    """``/2/query/<resource>``: field definitions and rows of ``[status, value]`` cells."""

    fields: list[RapiQueryField]
    data: list[list[RapiQueryCell]]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def rows(self) -> list[dict[str, RapiQueryCell]]:
        """Each row as ``{field name: RapiQueryCell}``."""
        names = self.names
        return [dict(zip(names, row, strict=False)) for row in self.data]

    def values(self) -> list[dict[str, Any]]:
        """Each row as ``{field name: value}``, None where the status is not NORMAL."""
        return [
            {
                name: cell.value if cell.status == QueryFieldStatus.NORMAL else None
                for name, cell in row.items()
            }
            for row in self.rows()
        ]


class RapiQueryFieldsResult(RapiModel):
    """``/2/query/<resource>/fields``."""

    fields: list[RapiQueryField]
