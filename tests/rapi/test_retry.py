"""Retries: idempotent reads only, on connection errors, timeouts and 502/503/504."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest

from gwm.rapi import (
    AsyncRapiClient,
    RapiClient,
    RapiConnectionError,
    RapiMasterUnreachable,
    RapiNotFound,
    RapiTimeout,
    RapiUnavailable,
)
from gwm.rapi.builders import instances, query
from gwm.rapi.errors import RapiConnectionError as ConnectionFailure
from gwm.rapi.errors import RapiHTTPError, RapiProtocolError, RapiTLSError
from gwm.rapi.retry import RetryPolicy
from tests.rapi.server import RapiTestServer, Reply, ganeti_error

FAST: dict[str, Any] = {"retry_backoff": 0.001, "retry_backoff_max": 0.01}


def _http_error(status: int, headers: dict[str, str] | None = None) -> RapiHTTPError:
    response = httpx.Response(status, headers=headers, request=httpx.Request("GET", "http://x"))
    return RapiHTTPError(
        "x", status=status, code=status, message="", explain="", body=None, response=response
    )


def test_policy_retries_reads_on_transient_failures_only() -> None:
    policy = RetryPolicy(retries=2, backoff=1.0, uniform=lambda low, high: high)
    read = instances.get_instance("x").request
    connection = ConnectionFailure("x", url="u", reason="refused")
    assert policy.delay(read, 0, connection) == 1.0
    assert policy.delay(read, 1, connection) == 2.0
    assert policy.delay(read, 2, connection) is None  # retries used up
    assert policy.delay(read, 0, _http_error(503)) == 1.0
    assert policy.delay(read, 0, _http_error(404)) is None
    assert policy.delay(read, 0, _http_error(500)) is None
    assert policy.delay(read, 0, RapiTLSError("x", url="u", reason="r")) is None
    assert policy.delay(read, 0, RapiProtocolError("x", url="u")) is None


def test_policy_never_retries_writes_or_job_creating_reads() -> None:
    policy = RetryPolicy(retries=5)
    connection = ConnectionFailure("x", url="u", reason="refused")
    for request in (
        instances.shutdown_instance("x").request,
        instances.request_instance_info("x").request,  # a GET that submits a job
        query.query("instance", ["name"], qfilter=["=", "name", "x"]).request,  # a PUT
    ):
        assert policy.delay(request, 0, connection) is None
        assert policy.delay(request, 0, _http_error(503)) is None


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    low = RetryPolicy(retries=10, backoff=0.5, max_backoff=4.0, uniform=lambda a, b: a)
    high = RetryPolicy(retries=10, backoff=0.5, max_backoff=4.0, uniform=lambda a, b: b)
    read = instances.get_instance("x").request
    error = _http_error(502)
    assert [low.delay(read, n, error) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [high.delay(read, n, error) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=2, backoff=0.1, max_backoff=5.0, uniform=lambda a, b: a)
    read = instances.get_instance("x").request
    assert policy.delay(read, 0, _http_error(503, {"retry-after": "3"})) == 3.0
    assert policy.delay(read, 0, _http_error(503, {"retry-after": "60"})) == 5.0


def test_a_read_is_retried_on_503_until_it_succeeds(http_server: RapiTestServer) -> None:
    http_server.route(
        "GET",
        "/2/instances",
        ganeti_error(503, "Job queue is drained"),
        ganeti_error(502, "Master seems to be unreachable"),
        Reply(json=[{"id": "web1", "uri": "/2/instances/web1"}]),
    )
    with RapiClient(http_server.url, retries=2, **FAST) as rapi:
        assert rapi.list_instances() == ["web1"]
    assert len(http_server.requests) == 3


def test_a_read_gives_up_after_its_retries(
    http_server: RapiTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    http_server.route("GET", "/2/info", ganeti_error(502, "Master seems to be unreachable"))
    caplog.set_level(logging.WARNING, logger="gwm.rapi")
    with (
        RapiClient(http_server.url, retries=3, **FAST) as rapi,
        pytest.raises(RapiMasterUnreachable),
    ):
        rapi.get_cluster_info()
    assert len(http_server.requests) == 4
    assert len(caplog.records) == 3
    assert caplog.records[0].message.startswith("retrying in")


def test_a_write_is_never_retried(http_server: RapiTestServer) -> None:
    http_server.route("PUT", "/2/instances/web1/startup", ganeti_error(503, "Job queue is full"))
    with RapiClient(http_server.url, retries=5, **FAST) as rapi, pytest.raises(RapiUnavailable):
        rapi.startup_instance("web1", reason="gwm:op:1")
    assert len(http_server.requests) == 1


def test_a_404_is_not_retried(http_server: RapiTestServer) -> None:
    with RapiClient(http_server.url, retries=5, **FAST) as rapi, pytest.raises(RapiNotFound):
        rapi.get_instance("nope")
    assert len(http_server.requests) == 1


def test_console_503_is_final(http_server: RapiTestServer) -> None:
    http_server.route(
        "GET", "/2/instances/web1/console", ganeti_error(503, "Instance console unavailable")
    )
    with RapiClient(http_server.url, retries=5, **FAST) as rapi, pytest.raises(RapiUnavailable):
        rapi.get_instance_console("web1")
    assert len(http_server.requests) == 1


def test_read_timeouts_are_retried_for_reads_only(http_server: RapiTestServer) -> None:
    slow = Reply(json=[], delay=0.5)
    http_server.route("GET", "/2/nodes", slow)
    http_server.route("PUT", "/2/redistribute-config", Reply(json=1, delay=0.5))
    timeout = httpx.Timeout(0.1, connect=1.0)
    with RapiClient(http_server.url, timeout=timeout, retries=2, **FAST) as rapi:
        with pytest.raises(RapiTimeout) as raised:
            rapi.list_nodes()
        assert raised.value.phase == "read"
        assert (
            str(raised.value) == f"cannot list nodes: {http_server.url} sent no answer within 0.1 s"
        )
        assert len(http_server.requests) == 3
        with pytest.raises(RapiTimeout):
            rapi.redistribute_config()
        assert len(http_server.requests) == 4


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_connection_errors_are_retried_for_reads_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gwm.rapi")
    with RapiClient(_refused_url(), retries=2, **FAST) as rapi:
        with pytest.raises(RapiConnectionError):
            rapi.get_version()
        assert len(caplog.records) == 2
        caplog.clear()
        with pytest.raises(RapiConnectionError):
            rapi.shutdown_instance("web1")
        assert caplog.records == []


async def test_async_retries_the_same_way(http_server: RapiTestServer) -> None:
    http_server.route(
        "GET",
        "/2/groups",
        ganeti_error(504, "Timeout"),
        Reply(json=[{"name": "default", "uri": "x"}]),
    )
    http_server.route("POST", "/2/groups", ganeti_error(504, "Timeout"))
    async with AsyncRapiClient(http_server.url, retries=2, **FAST) as rapi:
        assert await rapi.list_groups() == ["default"]
        with pytest.raises(RapiHTTPError):
            await rapi.create_group("g2")
    assert [r.method for r in http_server.requests] == ["GET", "GET", "POST"]
