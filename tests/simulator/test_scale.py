"""10,000 instances on 100 nodes must stay fast and correct."""

from __future__ import annotations

import time

import pytest

from tests.simulator.conftest import make_sim


@pytest.mark.slow
def test_bulk_instances_at_ten_thousand() -> None:
    started = time.monotonic()
    s = make_sim(nodes=100, instances=10_000, time_scale=0)
    try:
        rows = s.client.get("/2/instances?bulk=1").json()
        assert len(rows) == 10_000
        assert rows[0]["name"] == "inst00001.example.test"
        assert rows[-1]["name"] == "inst10000.example.test"
        assert len({r["uuid"] for r in rows}) == 10_000
        assert {r["status"] for r in rows} == {"running", "ADMIN_down"}
        assert len({r["pnode"] for r in rows}) == 100
        running = sum(r["status"] == "running" for r in rows)
        assert 0.75 * 10_000 < running < 0.95 * 10_000
        assert all(r["beparams"]["memory"] == r["beparams"]["maxmem"] for r in rows)
        nodes = s.client.get("/2/nodes?bulk=1").json()
        assert sum(n["pinst_cnt"] for n in nodes) == 10_000
        groups = s.client.get("/2/groups").json()
        assert len(groups) >= 2
        q = s.client.put(
            "/2/query/instance",
            json={"fields": ["name", "status"], "qfilter": ["=", "status", "ADMIN_down"]},
        ).json()
        assert len(q["data"]) == 10_000 - running
        assert time.monotonic() - started < 30
    finally:
        s.close()


def test_generation_is_deterministic_for_a_seed() -> None:
    from gwm.simulator import generate_cluster

    a = generate_cluster(nodes=5, instances=50, seed=7)
    b = generate_cluster(nodes=5, instances=50, seed=7)
    c = generate_cluster(nodes=5, instances=50, seed=8)

    def shape(state):
        return [
            (i.name, i.os, i.beparams, [d.size for d in i.disks], i.admin_state)
            for i in state.instances.values()
        ]

    assert shape(a) == shape(b)
    assert shape(a) != shape(c)
