"""Request and response shapes of the clusters API (the OpenAPI schema's source).

Query shapes (``?fields=&ordering=&cursor=&limit=`` and the instance filters)
list their choices from the output field specs (gwm.clusters.selectors.fields).

Response shapes are plain pydantic models, not ninja Schemas: every cached read
is validated against them before it is sent (gwm.kit.http.json_with_etag), and
ninja's Schema adds a Python-level wrap validator per object that would cost a
list of 1,000 instances tens of milliseconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from cryptography import x509
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gwm.clusters.selectors.cache import InstanceFilters, ListParams
from gwm.clusters.selectors.fields import GROUPS, INSTANCES, NETWORKS, NODES, Resource
from gwm.kit.pagination import MAX_LIMIT

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
#: A CA bundle is a few certificates; anything much larger is not one.
CA_PEM_MAX = 65536


def _pem_certificates(value: str) -> str:
    """``""`` (no CA) or one or more PEM X.509 certificates, checked by parsing them."""
    if value == "":
        return value
    try:
        certificates = x509.load_pem_x509_certificates(value.encode())
    except (ValueError, UnicodeEncodeError):
        certificates = []
    if not certificates:
        raise ValueError("tls_ca_pem is not a PEM certificate (-----BEGIN CERTIFICATE-----...)")
    return value


CaPem = Annotated[
    str,
    Field(max_length=CA_PEM_MAX, description="PEM certificate(s) to trust (Ganeti's own is fine)"),
    AfterValidator(_pem_certificates),
]


class ClusterCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SLUG, description="gwm's name for the cluster (a slug)")
    rapi_url: str = Field(
        pattern=r"^https?://", max_length=255, description="e.g. https://cluster.example.org:5080"
    )
    username: str = Field("", max_length=128)
    password: str = Field("", max_length=256, description="write-only; stored encrypted")
    tls_ca_pem: CaPem = ""
    tls_fingerprint: str = Field(
        "", max_length=128, description="SHA-256 fingerprint of the RAPI certificate to pin"
    )
    tls_verify: bool = Field(
        True, description="false turns certificate checks off; only when asked for explicitly"
    )
    description: str = ""
    watch_interval: float = Field(
        1.0,
        ge=0,
        le=3600,
        description="shortest seconds between reads of Ganeti's job list (0: no watch, a fast "
        "round every fast_interval instead); stretched to stay within 1 RAPI request/s",
    )
    fast_interval: float = Field(5.0, ge=1, le=3600)
    runtime_interval: float = Field(15.0, ge=1, le=86400)
    slow_interval: float = Field(60.0, ge=5, le=86400)
    stale_after: float = Field(180.0, ge=5, le=86400)


class ClusterUpdate(Schema):
    """Only the fields given change; a field that is ``null`` is left as it is."""

    model_config = ConfigDict(extra="forbid")

    rapi_url: str | None = Field(None, pattern=r"^https?://", max_length=255)
    username: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=256)
    tls_ca_pem: CaPem | None = None
    tls_fingerprint: str | None = Field(None, max_length=128)
    tls_verify: bool | None = None
    description: str | None = None
    watch_interval: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="shortest seconds between reads of Ganeti's job list (0: no watch, a fast "
        "round every fast_interval instead); stretched to stay within 1 RAPI request/s",
    )
    fast_interval: float | None = Field(None, ge=1, le=3600)
    runtime_interval: float | None = Field(None, ge=1, le=86400)
    slow_interval: float | None = Field(None, ge=5, le=86400)
    stale_after: float | None = Field(None, ge=5, le=86400)


class ClusterOut(BaseModel):
    name: str
    url: str
    status: str = Field(description="PROVISIONING, AVAILABLE, UNREACHABLE or ERROR")
    description: str
    rapi_url: str
    username: str
    tls_fingerprint: str | None
    tls_ca_pem: str | None
    tls_verify: bool
    error: str | None = Field(description="why the last round failed, while it does")
    error_at: str | None
    synced_at: str | None
    sync: dict[str, Any]
    ganeti: dict[str, Any]
    counts: dict[str, int]
    created_at: str
    updated_at: str


class ClusterPage(BaseModel):
    items: list[ClusterOut]
    next: str | None


class SyncQueued(BaseModel):
    cluster: str
    queued: bool


class _Cached(BaseModel):
    """Every field is optional in the schema because ``?fields=`` picks them.

    A test checks that the selectors render exactly the declared fields, so
    no field reaches a client unannounced.
    """

    name: str | None = None
    cluster: str | None = None
    url: str | None = None
    synced_at: str | None = Field(None, description="when gwm last confirmed this object")
    uuid: str | None = None
    tags: list[str] | None = None
    serial_no: int | None = None
    ctime: str | None = None
    mtime: str | None = None


class InstanceOut(_Cached):
    status: str | None = Field(
        None, description="PROVISIONING, RUNNING, STOPPED, BUSY, ERROR, DELETING or UNKNOWN"
    )
    os: str | None = None
    primary_node: str | None = None
    secondary_nodes: list[str] | None = None
    disk_template: str | None = None
    memory: int | None = Field(None, description="MiB")
    vcpus: int | None = None
    disks: list[dict[str, Any]] | None = None
    nics: list[dict[str, Any]] | None = None
    disk_usage: int | None = None
    network_port: int | None = None
    beparams: dict[str, Any] | None = None
    hvparams: dict[str, Any] | None = None
    osparams: dict[str, Any] | None = None
    runtime_synced_at: str | None = None
    ganeti: dict[str, Any] | None = Field(
        None, description="Ganeti's raw fields: status (e.g. ERROR_nodedown), admin_state, ..."
    )


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next: str | None


class NodeOut(_Cached):
    status: str | None = Field(None, description="ONLINE, DRAINED, OFFLINE, BUSY or UNKNOWN")
    role: str | None = None
    group: str | None = None
    primary_ip: str | None = None
    secondary_ip: str | None = None
    master_capable: bool | None = None
    vm_capable: bool | None = None
    memory_total: int | None = None
    memory_free: int | None = None
    disk_total: int | None = None
    disk_free: int | None = None
    cpu_total: int | None = None
    primary_instances: list[str] | None = None
    secondary_instances: list[str] | None = None
    ndparams: dict[str, Any] | None = None
    runtime_synced_at: str | None = None
    ganeti: dict[str, Any] | None = None


class NodePage(BaseModel):
    items: list[NodeOut]
    next: str | None


class GroupOut(_Cached):
    alloc_policy: str | None = None
    nodes: list[str] | None = None
    networks: list[Any] | None = None
    ipolicy: dict[str, Any] | None = None
    diskparams: dict[str, Any] | None = None
    ndparams: dict[str, Any] | None = None


class GroupPage(BaseModel):
    items: list[GroupOut]
    next: str | None


class NetworkOut(_Cached):
    network: str | None = None
    gateway: str | None = None
    network6: str | None = None
    gateway6: str | None = None
    mac_prefix: str | None = None
    free_count: int | None = None
    reserved_count: int | None = None
    groups: list[Any] | None = None
    instances: list[str] | None = None
    map: str | None = None
    external_reservations: str | None = None


class NetworkPage(BaseModel):
    items: list[NetworkOut]
    next: str | None


# -- query shapes --------------------------------------------------------------------


def _ordering(resource: Resource) -> Any:
    choices: list[Any] = [f"{sign}{name}" for name in resource.orderings for sign in ("", "-")]
    return Field(
        None,
        description="sort by this field, `-` first for descending (default: name)",
        json_schema_extra={"enum": choices},
    )


def _fields(resource: Resource) -> Any:
    return Field(
        None,
        description="comma-separated fields to return (default: all): "
        + ", ".join(resource.fields),
    )


def _or_list(what: str) -> Any:
    return Field(
        None,
        description=f"{what}; a comma-separated list or a repeated parameter means any of them",
    )


def _joined(values: list[str] | None) -> str | None:
    """Repeated values are one comma list: ``a&a`` is ``a,a``."""
    return ",".join(values) if values else None


class ListQuery(Schema):
    fields: str | None = None
    ordering: str | None = None
    cursor: str | None = Field(None, description="the `next` of the previous page")
    limit: int | None = Field(None, ge=1, le=MAX_LIMIT, description="page size (default 100)")

    def params(self) -> ListParams:
        return ListParams(
            fields=self.fields, ordering=self.ordering, cursor=self.cursor, limit=self.limit
        )


class NodeQuery(ListQuery):
    fields: str | None = _fields(NODES)
    ordering: str | None = _ordering(NODES)


class GroupQuery(ListQuery):
    fields: str | None = _fields(GROUPS)
    ordering: str | None = _ordering(GROUPS)


class NetworkQuery(ListQuery):
    fields: str | None = _fields(NETWORKS)
    ordering: str | None = _ordering(NETWORKS)


# The instance list's selection (fields, ordering, filters): its pages and its export.
_I_FIELDS: Any = _fields(INSTANCES)
_I_ORDERING: Any = _ordering(INSTANCES)
_I_CLUSTER: Any = _or_list("cluster names")
_I_STATUS: Any = _or_list("statuses")
_I_NODE: Any = _or_list("primary nodes")
_I_TAG: Any = _or_list("tags")
_I_SEARCH: Any = Field(None, description="the name contains this")


def _instance_filters(query: InstanceExportQuery | InstanceQuery) -> InstanceFilters:
    return InstanceFilters(
        cluster=_joined(query.cluster),
        status=_joined(query.status),
        node=_joined(query.node),
        tag=_joined(query.tag),
        search=query.search,
    )


class InstanceExportQuery(Schema):
    """The instance list's filters, fields and ordering, without pages."""

    fields: str | None = _I_FIELDS
    ordering: str | None = _I_ORDERING
    cluster: list[str] | None = _I_CLUSTER
    status: list[str] | None = _I_STATUS
    node: list[str] | None = _I_NODE
    tag: list[str] | None = _I_TAG
    search: str | None = _I_SEARCH

    def filters(self) -> InstanceFilters:
        return _instance_filters(self)


class InstanceQuery(ListQuery):
    fields: str | None = _I_FIELDS
    ordering: str | None = _I_ORDERING
    cluster: list[str] | None = _I_CLUSTER
    status: list[str] | None = _I_STATUS
    node: list[str] | None = _I_NODE
    tag: list[str] | None = _I_TAG
    search: str | None = _I_SEARCH

    def filters(self) -> InstanceFilters:
        return _instance_filters(self)
