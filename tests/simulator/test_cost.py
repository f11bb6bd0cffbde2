"""The cost model is a pure function calibrated on a real Ganeti 3.0 cluster."""

from __future__ import annotations

import pytest

from gwm.simulator.cost import CallKind, CostModel, busy_factor, request_cost

MODEL = CostModel()


def test_plain_and_config_queries_cost_about_15ms() -> None:
    assert request_cost(MODEL, CallKind.PLAIN) == pytest.approx(0.015)
    config = request_cost(MODEL, CallKind.CONFIG_QUERY, rows=630)
    assert 0.014 <= config <= 0.017


def test_runtime_query_costs_about_110ms_on_the_reference_cluster() -> None:
    cost = request_cost(MODEL, CallKind.RUNTIME_QUERY, nodes=2, instances=630)
    assert cost == pytest.approx(0.110, abs=0.002)


def test_runtime_query_grows_slowly_with_nodes_and_instances() -> None:
    small = request_cost(MODEL, CallKind.RUNTIME_QUERY, nodes=2, instances=630)
    big = request_cost(MODEL, CallKind.RUNTIME_QUERY, nodes=100, instances=10_000)
    assert small < big < 10 * small


def test_bulk_instances_cost_a_quarter_millisecond_per_instance() -> None:
    cost = request_cost(MODEL, CallKind.BULK_INSTANCES, nodes=2, instances=630)
    assert cost == pytest.approx(0.158, abs=0.003)
    assert cost / 630 == pytest.approx(0.00025, rel=0.05)


def test_running_jobs_make_everything_three_to_five_times_slower() -> None:
    assert busy_factor(MODEL, 0) == 1.0
    assert busy_factor(MODEL, 1) == 3.0
    assert 3.0 < busy_factor(MODEL, 3) <= 5.0
    assert busy_factor(MODEL, 50) == 5.0
    idle = request_cost(MODEL, CallKind.PLAIN)
    assert request_cost(MODEL, CallKind.PLAIN, running_jobs=2) == pytest.approx(3.5 * idle)


def test_an_unreachable_node_holds_runtime_queries_for_the_rpc_timeout() -> None:
    ok = request_cost(MODEL, CallKind.RUNTIME_QUERY, nodes=2, instances=10)
    down = request_cost(MODEL, CallKind.RUNTIME_QUERY, nodes=2, instances=10, unreachable=1)
    assert down - ok == pytest.approx(MODEL.rpc_timeout)
    # config-only calls do not talk to nodes
    assert request_cost(MODEL, CallKind.PLAIN, unreachable=1) == MODEL.plain


def test_time_scale_multiplies_and_zero_is_instant() -> None:
    half = CostModel(time_scale=0.5)
    assert request_cost(half, CallKind.PLAIN) == pytest.approx(0.0075)
    assert request_cost(CostModel(time_scale=0), CallKind.BULK_INSTANCES, instances=10_000) == 0
