"""Every write endpoint of /api/v1 with a request that is valid on the ``world`` cluster.

Shared by tests/test_write_permissions.py and tests/test_cluster_state_writes.py.
``test_every_openapi_write_endpoint_has_a_sample`` checks this table against
``/api/v1/openapi.json``: a new POST/PATCH/PUT/DELETE endpoint fails it until a
sample request is added here, and so gets the permission and state tests too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.test import Client

from gwm.clusters.models import Cluster, Instance, Network, Node, NodeGroup
from gwm.events.models import Change
from gwm.operations.models import Job
from gwm.simulator.server import Running

CLUSTER = "sim"
INSTANCE = "inst00001.example.test"  # running in generate_cluster(nodes=3, seed=0)
NODE = "node002.example.test"
GROUP = "default"
NETWORK = "net-backup"


@dataclass(frozen=True)
class Sample:
    method: str
    path: str  # as in the OpenAPI document
    body: dict[str, Any] | None = None
    dry_run: bool = False  # the endpoint takes ?dry_run=true
    operation: bool = True  # a Ganeti operation (a job), not a change of gwm's registry
    staff_status: int = 202
    query: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _create_instance() -> dict[str, Any]:
    return {
        "name": "new1.example.test",
        "disk_template": "plain",
        "disks": [{"size": 1024}],
        "nics": [],
        "os": "debootstrap+default",
        "pnode": NODE,
        "name_check": False,
        "ip_check": False,
    }


C = "/api/v1/clusters/{cluster}"
SAMPLES: list[Sample] = [
    # gwm's registry
    Sample("POST", "/api/v1/clusters", {"name": "registration"}, operation=False, staff_status=201),
    Sample("PATCH", C, {"description": "changed"}, operation=False, staff_status=200),
    Sample("DELETE", C, operation=False, staff_status=204),
    Sample("POST", f"{C}/sync", operation=False),
    # operations
    Sample("POST", f"{C}/instances", _create_instance(), dry_run=True),
    Sample("PATCH", f"{C}/instances/{{instance}}", {"beparams": {"maxmem": 2048}}),
    Sample("DELETE", f"{C}/instances/{{instance}}", dry_run=True),
    Sample("POST", f"{C}/instances/{{instance}}/actions", {"action": "reboot"}, dry_run=True),
    Sample("POST", f"{C}/nodes/{{node}}/actions", {"action": "evacuate"}, dry_run=True),
    Sample("POST", f"{C}/groups", {"name": "spare"}, dry_run=True),
    Sample("PATCH", f"{C}/groups/{{group}}", {"alloc_policy": "last_resort"}),
    Sample("DELETE", f"{C}/groups/{{group}}", dry_run=True),
    Sample("POST", f"{C}/groups/{{group}}/actions", {"action": "add-tags", "tags": ["t1"]}, True),
    Sample("POST", f"{C}/networks", {"name": "net-new", "network": "10.9.0.0/24"}, True),
    Sample("PATCH", f"{C}/networks/{{network}}", {"mac_prefix": "aa:00:00"}),
    Sample("DELETE", f"{C}/networks/{{network}}", dry_run=True),
    Sample(
        "POST", f"{C}/networks/{{network}}/actions", {"action": "add-tags", "tags": ["t1"]}, True
    ),
    Sample("POST", f"{C}/actions", {"action": "add-tags", "tags": ["t1"]}, dry_run=True),
    Sample("POST", "/api/v1/jobs/{job_id}/cancel", operation=False),
]
BY_KEY = {sample.key: sample for sample in SAMPLES}

#: A value for each required parameter an action may have (for "every action" loops).
PARAM_VALUES: dict[str, Any] = {
    "tags": ["t1"],
    "nodes": [NODE],
    "new_name": "renamed-1",
    "group": GROUP,
    "mode": "bridged",
    "link": "br0",
    "disk": 0,
    "amount": 1024,
    "role": "regular",
}
ACTION_PATHS = {
    "instance": f"{C}/instances/{{instance}}/actions",
    "node": f"{C}/nodes/{{node}}/actions",
    "group": f"{C}/groups/{{group}}/actions",
    "network": f"{C}/networks/{{network}}/actions",
    "cluster": f"{C}/actions",
}


def openapi_writes(client: Client) -> set[str]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.content[:2000]
    # The accounts domain (tokens, users, roles, bindings, quotas) changes gwm, not a
    # cluster: tests/accounts/test_authz_matrix.py covers its endpoints. Webhooks and
    # hooks change gwm's subscriptions, not Ganeti: tests/events/test_webhooks_api.py
    # and tests/events/test_hooks.py prove who may write them.
    return {
        f"{method.upper()} {path}"
        for path, operations in response.json()["paths"].items()
        for method, operation in operations.items()
        if method in {"post", "patch", "put", "delete"}
        and not {"accounts", "webhooks", "hooks"} & set(operation["tags"])
    }


def url(path: str, *, job_id: int | None = None, query: dict[str, str] | None = None) -> str:
    filled = path.format(
        cluster=CLUSTER,
        instance=INSTANCE,
        node=NODE,
        group=GROUP,
        network=NETWORK,
        job_id=job_id if job_id is not None else 0,
    )
    if query:
        filled += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return filled


def body_for(sample: Sample, running: Running) -> dict[str, Any] | None:
    if sample.key == "POST /api/v1/clusters":
        assert running.cert_path is not None
        return {
            "name": "another",
            "rapi_url": running.url,
            "username": "gwm",
            "password": "gwm",
            "tls_ca_pem": running.cert_path.read_text(),
        }
    if sample.key == f"POST {C}/instances":
        body = dict(sample.body or {})
        body["os"] = next(iter(running.sim.state.instances.values())).os
        return body
    return sample.body


def send(
    client: Client,
    sample: Sample,
    running: Running,
    *,
    job_id: int | None = None,
    dry_run: bool = False,
    body: dict[str, Any] | None = None,
    path: str | None = None,
) -> Any:
    query = {"dry_run": "true"} if dry_run else None
    target = url(path or sample.path, job_id=job_id, query=query)
    payload = body if body is not None else body_for(sample, running)
    method = getattr(client, sample.method.lower())
    if payload is None:
        return method(target)
    return method(target, payload, content_type="application/json")


def snapshot(running: Running) -> dict[str, Any]:
    """Everything a write could change, in gwm and in Ganeti."""
    return {
        model.__name__: list(model._default_manager.order_by("pk").values())
        for model in (Cluster, Instance, Node, NodeGroup, Network, Job, Change)
    } | {"ganeti_jobs": len(running.sim.queue.jobs)}
