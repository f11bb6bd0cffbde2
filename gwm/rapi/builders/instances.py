"""``/2/instances``: listing, creation, power, moves, renames and changes, console, tags.

The disks of an instance are in :mod:`gwm.rapi.builders.instance_disks`.
Every write answers a job id; whether the operation worked is in the job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gwm.rapi.builders._shared import change_tags, get_tags, path, read, read_bulk, write
from gwm.rapi.calls import (
    Query,
    RapiCall,
    RapiRequest,
    body_of,
    model_parser,
    parse_names,
)
from gwm.rapi.constants import INSTANCE_CREATE_REQUEST_VERSION, InstanceCreateMode
from gwm.rapi.schemas import RapiInstance, RapiInstanceConsole


def _subject(name: str) -> str:
    return f"instance {name!r}"


def list_instances() -> RapiCall[list[str]]:
    """``GET /2/instances``: instance names."""
    return read("/2/instances", "list instances", parse_names)


def list_instances_bulk() -> RapiCall[list[RapiInstance]]:
    """``GET /2/instances?bulk=1``: every instance with I_FIELDS.

    Includes runtime fields, so Ganeti asks every node: costly on big clusters.
    """
    return read_bulk("/2/instances", "list instances", RapiInstance)


def get_instance(name: str) -> RapiCall[RapiInstance]:
    """``GET /2/instances/<name>`` (404 → RapiNotFound)."""
    return read(path("instances", name), f"read {_subject(name)}", model_parser(RapiInstance))


def create_instance(
    instance_name: str,
    *,
    disk_template: str,
    disks: Sequence[Mapping[str, Any]],
    nics: Sequence[Mapping[str, Any]] = (),
    mode: str = InstanceCreateMode.CREATE,
    os_type: str | None = None,
    pnode: str | None = None,
    snode: str | None = None,
    iallocator: str | None = None,
    beparams: Mapping[str, Any] | None = None,
    hvparams: Mapping[str, Any] | None = None,
    osparams: Mapping[str, Any] | None = None,
    start: bool | None = None,
    name_check: bool | None = None,
    ip_check: bool | None = None,
    wait_for_sync: bool | None = None,
    no_install: bool | None = None,
    tags: Iterable[str] | None = None,
    dry_run: bool = False,
    reason: str | None = None,
    **extra: Any,
) -> RapiCall[int]:
    """``POST /2/instances`` with a version 1 creation body → job id.

    ``extra`` passes further OpInstanceCreate parameters (``hypervisor``,
    ``src_node``, ``forthcoming``...). The job's result is the list of nodes
    chosen. ``dry_run`` runs only the pre-checks.
    """
    body = {
        "__version__": INSTANCE_CREATE_REQUEST_VERSION,
        "mode": str(mode),
        "instance_name": instance_name,
        "disk_template": str(disk_template),
        "disks": [dict(d) for d in disks],
        "nics": [dict(n) for n in nics],
        **body_of(
            os_type=os_type,
            pnode=pnode,
            snode=snode,
            iallocator=iallocator,
            beparams=dict(beparams) if beparams is not None else None,
            hvparams=dict(hvparams) if hvparams is not None else None,
            osparams=dict(osparams) if osparams is not None else None,
            start=start,
            name_check=name_check,
            ip_check=ip_check,
            wait_for_sync=wait_for_sync,
            no_install=no_install,
            tags=list(tags) if tags is not None else None,
        ),
        **extra,
    }
    return write(
        "POST",
        "/2/instances",
        f"create {_subject(instance_name)}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body,
    )


def delete_instance(
    name: str,
    *,
    shutdown_timeout: int | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``DELETE /2/instances/<name>`` → job id."""
    return write(
        "DELETE",
        path("instances", name),
        f"delete {_subject(name)}",
        query=Query().dry_run(dry_run).reason(reason),
        body=body_of(shutdown_timeout=shutdown_timeout) or None,
    )


def request_instance_info(
    name: str, *, static: bool | None = None, reason: str | None = None
) -> RapiCall[int]:
    """``GET /2/instances/<name>/info`` → job id of an INSTANCE_QUERY_DATA job.

    The job's result is ``{name: {...details...}}``. ``static=True`` skips
    the runtime data (no node is asked).
    """
    query = Query().add("static", static).reason(reason)
    return write("GET", path("instances", name, "info"), f"query {_subject(name)}", query=query)


def startup_instance(
    name: str,
    *,
    force: bool | None = None,
    no_remember: bool | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/startup`` → job id."""
    query = Query().add("force", force).add("no_remember", no_remember)
    return write(
        "PUT",
        path("instances", name, "startup"),
        f"start {_subject(name)}",
        query=query.dry_run(dry_run).reason(reason),
    )


def shutdown_instance(
    name: str,
    *,
    timeout: int | None = None,
    force: bool | None = None,
    no_remember: bool | None = None,
    ignore_offline_nodes: bool | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/shutdown`` → job id. ``timeout`` in seconds."""
    return write(
        "PUT",
        path("instances", name, "shutdown"),
        f"shut down {_subject(name)}",
        query=Query().add("no_remember", no_remember).dry_run(dry_run).reason(reason),
        body=body_of(timeout=timeout, force=force, ignore_offline_nodes=ignore_offline_nodes),
    )


def reboot_instance(
    name: str,
    *,
    reboot_type: str | None = None,
    ignore_secondaries: bool | None = None,
    shutdown_timeout: int | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/instances/<name>/reboot`` → job id. ``reboot_type``: soft, hard (default), full."""
    query = Query().add("type", str(reboot_type) if reboot_type else None)
    query.add("ignore_secondaries", ignore_secondaries).dry_run(dry_run).reason(reason)
    return write(
        "POST",
        path("instances", name, "reboot"),
        f"reboot {_subject(name)}",
        query=query,
        body=body_of(shutdown_timeout=shutdown_timeout),
    )


def reinstall_instance(
    name: str,
    *,
    os_type: str | None = None,
    start: bool | None = None,
    osparams: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/instances/<name>/reinstall`` → one job: shutdown, reinstall, startup.

    ``reason`` is accepted for symmetry but **not sent**: rlib2 builds this
    job itself without a reason trail, and answers 400 to a body combined
    with any query parameter. Find the job by its summary instead.
    """
    del reason
    body = body_of(
        os=os_type, start=start, osparams=dict(osparams) if osparams is not None else None
    )
    return write(
        "POST",
        path("instances", name, "reinstall"),
        f"reinstall {_subject(name)}",
        body=body,
    )


def migrate_instance(
    name: str,
    *,
    mode: str | None = None,
    cleanup: bool | None = None,
    target_node: str | None = None,
    allow_failover: bool | None = None,
    iallocator: str | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/migrate`` → job id. ``mode``: live or non-live."""
    body = body_of(
        mode=str(mode) if mode else None,
        cleanup=cleanup,
        target_node=target_node,
        allow_failover=allow_failover,
        iallocator=iallocator,
    )
    return write(
        "PUT",
        path("instances", name, "migrate"),
        f"migrate {_subject(name)}",
        query=Query().reason(reason),
        body=body,
    )


def failover_instance(
    name: str,
    *,
    iallocator: str | None = None,
    ignore_consistency: bool | None = None,
    target_node: str | None = None,
    shutdown_timeout: int | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/failover`` → job id."""
    body = body_of(
        iallocator=iallocator,
        ignore_consistency=ignore_consistency,
        target_node=target_node,
        shutdown_timeout=shutdown_timeout,
    )
    return write(
        "PUT",
        path("instances", name, "failover"),
        f"fail over {_subject(name)}",
        query=Query().reason(reason),
        body=body,
    )


def rename_instance(
    name: str,
    new_name: str,
    *,
    ip_check: bool | None = None,
    name_check: bool | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/rename`` → job id; the job's result is the new name."""
    return write(
        "PUT",
        path("instances", name, "rename"),
        f"rename {_subject(name)} to {new_name!r}",
        query=Query().reason(reason),
        body={"new_name": new_name, **body_of(ip_check=ip_check, name_check=name_check)},
    )


def modify_instance(name: str, *, reason: str | None = None, **params: Any) -> RapiCall[int]:
    """``PUT /2/instances/<name>/modify`` with OpInstanceSetParams parameters → job id.

    E.g. ``beparams={"maxmem": 2048}``, ``os_name=...``, ``disks=[["add", {...}]]``.
    The job's result lists ``[[parameter, change], ...]``.
    """
    if not params:
        raise ValueError("modify_instance needs at least one parameter to change")
    return write(
        "PUT",
        path("instances", name, "modify"),
        f"modify {_subject(name)}",
        query=Query().reason(reason),
        body=params,
    )


def get_instance_console(name: str) -> RapiCall[RapiInstanceConsole]:
    """``GET /2/instances/<name>/console``; 503 (RapiUnavailable) if it is not running."""
    request = RapiRequest(
        "GET",
        path("instances", name, "console"),
        f"read the console of {_subject(name)}",
        # 503 here means "not running", which waiting will not change.
        retry_statuses=frozenset({502, 504}),
    )
    return RapiCall(request, model_parser(RapiInstanceConsole))


def get_instance_tags(name: str) -> RapiCall[list[str]]:
    return get_tags(path("instances", name, "tags"), _subject(name))


def add_instance_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("instances", name, "tags")
    return change_tags("PUT", url, _subject(name), tags, dry_run=dry_run, reason=reason)


def delete_instance_tags(
    name: str, tags: Iterable[str], *, dry_run: bool = False, reason: str | None = None
) -> RapiCall[int]:
    url = path("instances", name, "tags")
    return change_tags("DELETE", url, _subject(name), tags, dry_run=dry_run, reason=reason)
