"""Cluster-wide resources: version, features, info, OS list, modify, tags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gwm.rapi.builders._shared import change_tags, get_tags, path, read, write
from gwm.rapi.calls import (
    Query,
    RapiCall,
    RapiRequest,
    model_list_parser,
    model_parser,
    parse_int,
    parse_str_list,
)
from gwm.rapi.schemas import RapiClusterInfo, RapiOperatingSystem

_CLUSTER = "the cluster"


def get_version() -> RapiCall[int]:
    """``GET /version``: the RAPI version, 2 on every Ganeti since 2.0."""
    return RapiCall(RapiRequest("GET", "/version", "read the RAPI version"), parse_int)


def get_features() -> RapiCall[list[str]]:
    """``GET /2/features``; servers older than 2.4 answer 404, read as no features."""
    return RapiCall(
        RapiRequest("GET", "/2/features", "read the RAPI features"),
        parse_str_list,
        on_status={404: lambda _error: []},
    )


def get_cluster_info() -> RapiCall[RapiClusterInfo]:
    """``GET /2/info``."""
    return read("/2/info", "read the cluster info", model_parser(RapiClusterInfo))


def list_os(*, reason: str | None = None) -> RapiCall[list[str]]:
    """``GET /2/os``: OS names such as ``debian+default``.

    Ganeti runs an OS_DIAGNOSE job on every node for each call: do not poll.
    """
    return read(
        "/2/os",
        "list the operating systems",
        parse_str_list,
        query=Query().reason(reason),
        creates_job=True,
    )


def _parse_os_bulk(value: Any) -> list[RapiOperatingSystem]:
    # Ganeti 3.0 ignores ?bulk=1 here and answers plain names.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [RapiOperatingSystem(name=name) for name in value]
    return model_list_parser(RapiOperatingSystem)(value)


def list_os_bulk(*, reason: str | None = None) -> RapiCall[list[RapiOperatingSystem]]:
    """``GET /2/os?bulk=1``: OS definitions with variants and parameters (runs a job).

    Released Ganeti (3.0 and older) ignores ``bulk`` here (added to its sources in
    December 2025): then only ``name`` is filled in.
    """
    return read(
        "/2/os",
        "list the operating systems",
        _parse_os_bulk,
        query=Query().add("bulk", True).reason(reason),
        creates_job=True,
    )


def modify_cluster(*, reason: str | None = None, **params: Any) -> RapiCall[int]:
    """``PUT /2/modify`` with OpClusterSetParams parameters → job id."""
    return write(
        "PUT", "/2/modify", "modify the cluster", query=Query().reason(reason), body=params
    )


def redistribute_config(*, reason: str | None = None) -> RapiCall[int]:
    """``PUT /2/redistribute-config`` → job id."""
    return write(
        "PUT",
        "/2/redistribute-config",
        "redistribute the cluster configuration",
        query=Query().reason(reason),
    )


def get_cluster_tags() -> RapiCall[list[str]]:
    return get_tags(path("tags"), _CLUSTER)


def add_cluster_tags(
    tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    return change_tags("PUT", path("tags"), _CLUSTER, tags, dry_run=dry_run, reason=reason)


def delete_cluster_tags(
    tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    return change_tags("DELETE", path("tags"), _CLUSTER, tags, dry_run=dry_run, reason=reason)
