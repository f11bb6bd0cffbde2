"""Node, group, network, cluster and instance operations that fail inside Ganeti.

What each action does when it succeeds is proved, action by action, against gwm's
API and the simulator's RAPI in ``test_action_proofs.py``. Here Ganeti accepts the
job and then fails it: the job must end ERROR with Ganeti's message, whatever it
held must be free again, and neither Ganeti nor gwm's cache may show the change.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import sim_admin

pytestmark = pytest.mark.django_db(transaction=True)


def _node(live) -> str:
    return sorted(live.running.sim.state.nodes)[1]  # not the master


def _plain(live) -> str:
    state = live.running.sim.state
    return next(n for n in live.running_names() if state.instances[n].disk_template == "plain")


def _rapi(live, path: str) -> httpx.Response:
    return httpx.get(f"{live.running.url}{path}", auth=("gwm", "gwm"), verify=False, timeout=10)


def _gwm(live, path: str) -> httpx.Response:
    return live.api.get(live.url(path))


# What the action would change, as (gwm's view, Ganeti's view): both must read the
# same before the failed action as after it, and differ from what success gives.
CASES: dict[str, dict[str, Any]] = {
    "node.drain": {
        "request": lambda live: (
            "post",
            f"/nodes/{_node(live)}/actions",
            {"action": "drain"},
        ),
        "view": lambda live: (
            _gwm(live, f"/nodes/{_node(live)}").json()["status"],
            _rapi(live, f"/2/nodes/{_node(live)}").json()["drained"],
        ),
        "before": ("ONLINE", False),
        "held": lambda live: _gwm(live, f"/nodes/{_node(live)}").json()["status"],
    },
    "instance.grow-disk": {
        "request": lambda live: (
            "post",
            f"/instances/{_plain(live)}/actions",
            {"action": "grow-disk", "disk": 0, "amount": 512},
        ),
        "view": lambda live: (
            _gwm(live, f"/instances/{_plain(live)}").json()["disks"][0]["size"],
            _rapi(live, f"/2/instances/{_plain(live)}").json()["disk.sizes"][0],
        ),
        "before": None,  # the disk's size, the same in both
        "held": lambda live: _gwm(live, f"/instances/{_plain(live)}").json()["status"],
    },
    "group.create": {
        "request": lambda live: ("post", "/groups", {"name": "spare"}),
        "view": lambda live: (
            _gwm(live, "/groups/spare").status_code,
            _rapi(live, "/2/groups/spare").status_code,
        ),
        "before": (404, 404),
    },
    "network.create": {
        "request": lambda live: (
            "post",
            "/networks",
            {"name": "lab", "network": "10.99.0.0/24", "gateway": "10.99.0.1"},
        ),
        "view": lambda live: (
            _gwm(live, "/networks/lab").status_code,
            _rapi(live, "/2/networks/lab").status_code,
        ),
        "before": (404, 404),
    },
    "cluster.add-tags": {
        "request": lambda live: ("post", "/actions", {"action": "add-tags", "tags": ["prod"]}),
        "view": lambda live: (
            "prod" in _gwm(live, "").json()["ganeti"]["tags"],
            "prod" in _rapi(live, "/2/tags").json(),
        ),
        "before": (False, False),
    },
}


def _send(live, method: str, path: str, body: dict[str, Any]) -> Any:
    call = getattr(live.api, method)
    return call(live.url(path), body, content_type="application/json")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failure_inside_ganeti_ends_the_job_error(live, case: str) -> None:
    live.quiet()
    spec = CASES[case]
    before = spec["view"](live)
    if spec["before"] is not None:
        assert before == spec["before"]
    else:
        assert before[0] == before[1]
    sim_admin(
        live.running,
        "POST",
        "job-failures",
        {"opcode": "*", "error_type": "OpExecError", "message": "disk on fire"},
    )
    method, path, body = spec["request"](live)
    response = _send(live, method, path, body)
    assert response.status_code == 202, response.content
    if "held" in spec:
        assert spec["held"](live) == "BUSY"
    done = live.wait_done(response.json())
    assert done["status"] == "ERROR"
    assert done["action"] == case
    assert "disk on fire" in done["error"]["message"]
    ganeti = _rapi(live, f"/2/jobs/{done['ganeti']['job_id']}").json()
    assert ganeti["status"] == "error"
    assert ganeti["opresult"] == [["OpExecError", ["disk on fire"]]]
    # Nothing changed, in Ganeti or in gwm...
    assert spec["view"](live) == before
    # ... and whatever it held is free again.
    if "held" in spec:
        assert spec["held"](live) == ("ONLINE" if case.startswith("node.") else "RUNNING")
