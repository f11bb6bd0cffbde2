"""Instances: ``/2/instances`` entries (NICs and disks as records) and the console."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import Field

from gwm.rapi.constants import AdminState, InstanceStatus
from gwm.rapi.schemas.base import RapiModel, RapiResource


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


class RapiInstance(RapiResource):
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
