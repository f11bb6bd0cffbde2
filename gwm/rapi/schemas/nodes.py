"""Nodes, node groups and networks: ``/2/nodes``, ``/2/groups``, ``/2/networks`` entries."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gwm.rapi.constants import NODE_ROLE_BY_LETTER, NodeRole
from gwm.rapi.schemas.base import RapiResource


class RapiNode(RapiResource):
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


class RapiGroup(RapiResource):
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


class RapiNetwork(RapiResource):
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
