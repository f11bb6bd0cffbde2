"""Writes that can never finish must not be accepted, and jobs that cannot go on must end.

Each test injects one failure the issue named: an empty modify, a submission
the RAPI client itself refuses to build, a job whose cluster was unregistered,
and the cache writes that once went without their change row.
"""

from __future__ import annotations

from typing import Any

import pytest

from gwm.clusters.models import Cluster, Instance
from gwm.events.models import Change
from gwm.operations import tasks
from gwm.operations.actions import ACTIONS
from gwm.operations.models import Job, JobStatus
from gwm.operations.services import submit
from tests.clusters.helpers import gnt, runtime_sweep

pytestmark = pytest.mark.django_db(transaction=True)


def _patch(live, path: str, body: Any) -> Any:
    return live.api.patch(live.url(path), body, content_type="application/json")


@pytest.mark.parametrize(
    "path,body",
    [
        ("/instances/{instance}", {}),
        ("/instances/{instance}", {"force": True}),
        ("/instances/{instance}", {"beparams": {}}),
        ("/groups/{group}", {}),
        ("/networks/{network}", {}),
    ],
)
def test_an_empty_modify_is_422_and_writes_nothing(live, path: str, body: dict[str, Any]) -> None:
    state = live.running.sim.state
    instance = live.running_names()[0]
    target = path.format(
        instance=instance,
        group=sorted(g.name for g in state.groups.values())[0],
        network=sorted(n.name for n in state.networks.values())[0],
    )
    jobs_before = Job.objects.count()
    answer = _patch(live, target, body)
    assert answer.status_code == 422, answer.content
    problem = answer.json()
    assert answer["Content-Type"].startswith("application/problem+json")
    assert problem["code"] == "validation_failed"
    assert "nothing to change" in problem["detail"]
    assert Job.objects.count() == jobs_before
    assert live.instance(instance)["status"] == "RUNNING"


def test_a_modify_that_changes_something_is_still_accepted(live) -> None:
    instance = live.running_names()[0]
    before = live.instance(instance)["beparams"].get("maxmem")
    wanted = 96 if before != 96 else 80
    answer = _patch(live, f"/instances/{instance}", {"beparams": {"maxmem": wanted}})
    assert answer.status_code == 202, answer.content
    assert live.wait_done(answer.json())["status"] == "SUCCESS"
    assert live.instance(instance)["beparams"]["maxmem"] == wanted


def test_a_submission_the_client_cannot_build_ends_in_error_and_releases(live) -> None:
    # Bypass the API's validation, as a row written by an older gwm would: the RAPI
    # client refuses to send a modify without parameters, which no retry can change.
    live.workers.stop()
    instance = live.running_names()[0]
    job, _ = submit.operation_submit(
        actor=None,
        cluster=live.cluster,
        action=ACTIONS["instance.modify"],
        resource_name=instance,
        params={},
    )
    assert Instance.objects.get(cluster=live.cluster, name=instance).status == "BUSY"
    tasks.submit_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.ERROR
    assert job.error["code"] == "request_invalid"
    assert "at least one parameter" in job.error["message"]
    row = Instance.objects.get(cluster=live.cluster, name=instance)
    assert (row.status, row.held_by_job) == ("RUNNING", None)
    # The sweeper has nothing left to ring for it.
    assert tasks.sweep() == 0


def _pending_job(live, instance: str) -> Job:
    job, _ = submit.operation_submit(
        actor=None,
        cluster=live.cluster,
        action=ACTIONS["instance.shutdown"],
        resource_name=instance,
        params={},
    )
    return job


def test_unregistering_a_cluster_ends_its_jobs(live) -> None:
    live.workers.stop()
    names = live.running_names()
    pending = _pending_job(live, names[0])
    in_ganeti = _pending_job(live, names[1])
    Job.objects.filter(pk=in_ganeti.pk).update(status=JobStatus.RUNNING, ganeti_job_id=424242)
    answer = live.api.delete(f"/api/v1/clusters/{live.cluster.name}")
    assert answer.status_code == 204, answer.content

    first = live.api.get(f"/api/v1/jobs/{pending.pk}").json()
    assert first["status"] == "CANCELED"
    assert first["error"]["code"] == "cluster_unregistered"
    second = live.api.get(f"/api/v1/jobs/{in_ganeti.pk}").json()
    assert second["status"] == "ERROR"
    assert "424242" in second["error"]["message"]
    assert (
        Change.objects.filter(resource="job", name__in=[str(pending.pk), str(in_ganeti.pk)])
        .filter(data__status__in=["CANCELED", "ERROR"])
        .count()
        == 2
    )
    cancel = live.api.post(f"/api/v1/jobs/{pending.pk}/cancel")
    assert cancel.status_code == 409
    assert cancel.json()["code"] == "job_finished"


def test_an_orphaned_job_from_before_ends_when_a_worker_or_a_cancel_meets_it(live) -> None:
    live.workers.stop()
    names = live.running_names()
    swept, canceled = _pending_job(live, names[0]), _pending_job(live, names[1])
    # Rows as an older gwm left them: the cluster gone, the jobs still PENDING.
    Job.objects.filter(pk__in=[swept.pk, canceled.pk]).update(cluster=None)
    tasks.submit_job(swept.pk)
    swept.refresh_from_db()
    assert (swept.status, swept.error["code"]) == (JobStatus.CANCELED, "cluster_unregistered")

    answer = live.api.post(f"/api/v1/jobs/{canceled.pk}/cancel")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "CANCELED"
    assert Job.objects.exclude(status__in=["SUCCESS", "ERROR", "CANCELED"]).count() == 0


def test_a_stopped_instance_loses_its_running_memory_and_vcpus(live) -> None:
    live.workers.stop()
    instance = live.running_names()[0]
    runtime_sweep(live.cluster)
    before = live.instance(instance)["ganeti"]
    assert before["oper_ram"] and before["oper_vcpus"], before
    gnt(live.running, "gnt-instance", "shutdown", instance)
    runtime_sweep(live.cluster)
    after = live.instance(instance)
    assert after["status"] == "STOPPED"
    assert (after["ganeti"]["oper_ram"], after["ganeti"]["oper_vcpus"]) == (None, None)


def test_a_node_that_does_not_answer_keeps_the_last_known_memory(live) -> None:
    from tests.conftest import sim_admin

    live.workers.stop()
    instance = live.running_names()[0]
    runtime_sweep(live.cluster)
    known = live.instance(instance)["ganeti"]["oper_ram"]
    assert known
    node = live.sim_instance(instance).pnode
    node_name = live.running.sim.state.node_by_uuid(node).name
    sim_admin(live.running, "PUT", f"nodes/{node_name}", {"unreachable": True})
    runtime_sweep(live.cluster)
    after = live.instance(instance)
    assert after["ganeti"]["status"] == "ERROR_nodedown"
    assert after["ganeti"]["oper_ram"] == known


def test_a_cluster_job_writes_the_cluster_with_its_change_row(live) -> None:
    tags = Cluster.objects.get(pk=live.cluster.pk).tags
    assert "gwm-proof" not in tags
    last = Change.objects.order_by("-seq").values_list("seq", flat=True).first()
    answer = live.post("/actions", {"action": "add-tags", "tags": ["gwm-proof"]})
    assert answer.status_code == 202, answer.content
    assert live.wait_done(answer.json())["status"] == "SUCCESS"
    assert "gwm-proof" in live.api.get(live.url("")).json()["ganeti"]["tags"]
    changes = Change.objects.filter(seq__gt=last or 0, resource="cluster", name=live.cluster.name)
    change = next((c for c in changes if "tags" in c.fields), None)
    assert change is not None, "the cluster's new tags were written without a change row"
    assert "gwm-proof" in change.data["tags"]


def test_an_instance_on_an_offline_node_has_no_running_state(live) -> None:
    from tests.conftest import sim_admin

    live.workers.stop()
    instance = live.running_names()[0]
    runtime_sweep(live.cluster)
    before = live.instance(instance)["ganeti"]
    assert before["oper_state"] is True and before["oper_ram"], before
    node = live.running.sim.state.node_by_uuid(live.sim_instance(instance).pnode).name
    sim_admin(live.running, "PUT", f"nodes/{node}", {"offline": True})
    runtime_sweep(live.cluster)
    after = live.instance(instance)
    assert after["ganeti"]["status"] == "ERROR_nodeoffline"
    assert (after["ganeti"]["oper_state"], after["ganeti"]["oper_ram"]) == (None, None)
