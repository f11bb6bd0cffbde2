"""``/2/info`` and ``/2/os``: the cluster itself and its operating systems."""

from __future__ import annotations

from typing import Any

from gwm.rapi.schemas.base import RapiModel


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
