"""``/2/instances/<name>/...-disks`` and ``/disk/<n>/grow``: an instance's disks.

Activation, growth, replacement (DRBD) and recreation; every call answers a job id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gwm.rapi.builders._shared import path, write
from gwm.rapi.calls import Query, RapiCall, body_of
from gwm.rapi.constants import ReplaceDisksMode


def _subject(name: str) -> str:
    return f"instance {name!r}"


def activate_instance_disks(
    name: str, *, ignore_size: bool | None = None, reason: str | None = None
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/activate-disks`` → job id."""
    return write(
        "PUT",
        path("instances", name, "activate-disks"),
        f"activate the disks of {_subject(name)}",
        query=Query().add("ignore_size", ignore_size).reason(reason),
    )


def deactivate_instance_disks(
    name: str, *, force: bool | None = None, reason: str | None = None
) -> RapiCall[int]:
    """``PUT /2/instances/<name>/deactivate-disks`` → job id."""
    return write(
        "PUT",
        path("instances", name, "deactivate-disks"),
        f"deactivate the disks of {_subject(name)}",
        query=Query().add("force", force).reason(reason),
    )


def grow_instance_disk(
    name: str,
    disk: int,
    amount: int,
    *,
    absolute: bool | None = None,
    wait_for_sync: bool | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/instances/<name>/disk/<disk>/grow`` → job id.

    ``amount`` in MiB: added to the size, or the new size if ``absolute``.
    """
    return write(
        "POST",
        path("instances", name, "disk", int(disk), "grow"),
        f"grow disk {disk} of {_subject(name)}",
        query=Query().reason(reason),
        body={"amount": amount, **body_of(absolute=absolute, wait_for_sync=wait_for_sync)},
    )


def replace_instance_disks(
    name: str,
    *,
    mode: str = ReplaceDisksMode.AUTO,
    disks: Sequence[int] | None = None,
    remote_node: str | None = None,
    iallocator: str | None = None,
    early_release: bool | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/instances/<name>/replace-disks`` → job id (DRBD instances)."""
    body = {
        "mode": str(mode),
        **body_of(
            disks=list(disks) if disks is not None else None,
            remote_node=remote_node,
            iallocator=iallocator,
            early_release=early_release,
        ),
    }
    return write(
        "POST",
        path("instances", name, "replace-disks"),
        f"replace the disks of {_subject(name)}",
        query=Query().reason(reason),
        body=body,
    )


def recreate_instance_disks(
    name: str,
    *,
    disks: Sequence[Any] | None = None,
    nodes: Sequence[str] | None = None,
    iallocator: str | None = None,
    reason: str | None = None,
) -> RapiCall[int]:
    """``POST /2/instances/<name>/recreate-disks`` → job id.

    ``disks``: indexes, or ``[index, {param: value}]`` pairs; ``nodes``: new placement.
    """
    body = body_of(
        disks=list(disks) if disks is not None else None,
        nodes=list(nodes) if nodes is not None else None,
        iallocator=iallocator,
    )
    return write(
        "POST",
        path("instances", name, "recreate-disks"),
        f"recreate the disks of {_subject(name)}",
        query=Query().reason(reason),
        body=body,
    )
