"""The status an operation holds on a resource while its job runs, and its release.

An accepted operation shows at once in the cache: the instance or node reads
BUSY (or DELETING), a new instance is listed as PROVISIONING before Ganeti has
it, and ``held_by_job`` names the job. Sync rounds leave a held status alone;
the job's end releases it, back to what Ganeti's last answer says. Called
inside the operation's transaction, which records the returned change rows.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from gwm.clusters.models import Cluster, Instance, Node
from gwm.events.models import ChangeAction
from gwm.events.services import ChangeRecord
from gwm.ganeti import fields as gf


def hold_place(row: Instance | Node, *, kind: str, status: str, job_id: int) -> ChangeRecord:
    """``row`` (locked by the caller) shows ``status`` until job ``job_id`` ends."""
    before = row.status
    row.status = status
    row.held_by_job = job_id
    row.save(update_fields=["status", "held_by_job"])
    return ChangeRecord(
        kind,
        row.name,
        ChangeAction.UPDATED,
        ["status"],
        {"status": status, "job": job_id},
        {"status": before},
    )


def instance_placeholder(
    cluster: Cluster, name: str, *, status: str, job_id: int, params: dict[str, Any]
) -> ChangeRecord:
    """A new instance, listed at once with what its create asked for."""
    Instance.objects.create(
        cluster=cluster,
        name=name,
        status=status,
        held_by_job=job_id,
        synced_at=timezone.now(),
        disk_template=params.get("disk_template", ""),
        os=params.get("os") or "",
        primary_node=params.get("pnode") or "",
        tags=params.get("tags") or [],
        beparams=params.get("beparams") or {},
    )
    return ChangeRecord(
        "instance", name, ChangeAction.CREATED, ["status"], {"status": status, "job": job_id}
    )


def holds_release(job_id: int, *, created_nothing: bool) -> list[ChangeRecord]:
    """Give what job ``job_id`` held back its Ganeti-derived status.

    ``created_nothing``: the job was a create that did not succeed, so a
    placeholder Ganeti never had is removed instead. The job's re-read, written
    after this, may update the status again.
    """
    records: list[ChangeRecord] = []
    for instance in Instance.objects.select_for_update().filter(held_by_job=job_id):
        instance.held_by_job = None
        if created_nothing and instance.serial_no is None:
            instance.delete()
            records.append(ChangeRecord("instance", instance.name, ChangeAction.DELETED))
            continue
        instance.status = gf.instance_status(instance.ganeti_status, instance.admin_state)
        instance.save(update_fields=["held_by_job", "status"])
        records.append(
            ChangeRecord(
                "instance",
                instance.name,
                ChangeAction.UPDATED,
                ["status"],
                {"status": instance.status},
            )
        )
    for node in Node.objects.select_for_update().filter(held_by_job=job_id):
        node.held_by_job = None
        node.status = gf.node_status(
            offline=node.offline, drained=node.drained, reachable=node.reachable is not False
        )
        node.save(update_fields=["held_by_job", "status"])
        records.append(
            ChangeRecord(
                "node", node.name, ChangeAction.UPDATED, ["status"], {"status": node.status}
            )
        )
    return records
