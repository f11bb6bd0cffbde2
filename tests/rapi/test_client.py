"""The two clients over a real local HTTP server: what goes on the wire, and parity."""

from __future__ import annotations

import base64
import inspect

import httpx
import pytest

from gwm.rapi import AsyncRapiClient, RapiClient, RapiMethods
from gwm.rapi.base import _Method
from tests.rapi.server import RapiTestServer, Reply


def test_credentials_reason_booleans_and_json_body_on_the_wire(http_server: RapiTestServer) -> None:
    http_server.route("PUT", "/2/instances/web1/shutdown", Reply(json=27))
    http_server.route("PUT", "/2/instances/web1/tags", Reply(json="28"))
    with RapiClient(http_server.url, username="gwm", password="s3cret") as rapi:
        assert rapi.shutdown_instance("web1", timeout=5, no_remember=True, reason="gwm:op:42") == 27
        assert rapi.add_instance_tags("web1", ["a", "b c"], dry_run=True) == 28
    shutdown, tags = http_server.requests
    assert shutdown.headers["authorization"] == "Basic " + base64.b64encode(b"gwm:s3cret").decode()
    assert shutdown.headers["content-type"] == "application/json"
    assert shutdown.query == {"no_remember": ["1"], "reason": ["gwm:op:42"]}
    assert shutdown.json() == {"timeout": 5}
    assert tags.query == {"tag": ["a", "b c"], "dry-run": ["1"]}
    assert tags.body == b"" and "content-type" not in tags.headers


def test_no_credentials_no_authorization_header(http_server: RapiTestServer) -> None:
    with RapiClient(http_server.url) as rapi:
        assert rapi.get_version() == 2
    assert "authorization" not in http_server.requests[0].headers
    assert http_server.requests[0].headers["accept"] == "application/json"


async def test_the_async_client_sends_the_same_requests(http_server: RapiTestServer) -> None:
    http_server.route("PUT", "/2/nodes/n1/role", Reply(json=30))
    for client_class in (RapiClient, AsyncRapiClient):
        if client_class is RapiClient:
            with RapiClient(http_server.url) as rapi:
                rapi.set_node_role("n1", "drained", force=True, reason="r")
        else:
            async with AsyncRapiClient(http_server.url) as arapi:
                await arapi.set_node_role("n1", "drained", force=True, reason="r")
    sync_request, async_request = http_server.requests
    assert (sync_request.method, sync_request.path, sync_request.query, sync_request.body) == (
        async_request.method,
        async_request.path,
        async_request.query,
        async_request.body,
    )
    assert sync_request.body == b'"drained"'


def test_both_clients_have_every_method_with_one_signature() -> None:
    names = [n for n, v in vars(RapiMethods).items() if isinstance(v, _Method)]
    assert len(names) > 70
    sync, asynchronous = RapiClient("http://h"), AsyncRapiClient("http://h")
    for name in names:
        sync_method, async_method = getattr(sync, name), getattr(asynchronous, name)
        assert inspect.signature(sync_method) == inspect.signature(async_method), name
        assert inspect.iscoroutinefunction(async_method), name
        assert not inspect.iscoroutinefunction(sync_method), name
        assert sync_method.__doc__ == async_method.__doc__
    sync.close()


def test_a_custom_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=["instance-create-reqv1"])

    with RapiClient("https://cluster:5080", transport=httpx.MockTransport(handler)) as rapi:
        assert rapi.get_features() == ["instance-create-reqv1"]
    assert str(seen[0].url) == "https://cluster:5080/2/features"


def test_repr_shows_where_and_how_but_never_the_password() -> None:
    client = RapiClient("cluster", username="gwm", password="s3cret", verify=False)
    assert repr(client) == "<RapiClient <https://cluster:5080 user='gwm' tls=insecure>>"
    assert "s3cret" not in repr(client)
    client.close()


def test_a_path_prefix_is_kept(http_server: RapiTestServer) -> None:
    http_server.route("GET", "/ganeti/version", Reply(json=2))
    with RapiClient(http_server.url + "/ganeti") as rapi:
        assert rapi.get_version() == 2
        assert rapi.base_url == http_server.url + "/ganeti"


def test_raw_reaches_any_resource(http_server: RapiTestServer) -> None:
    http_server.route("GET", "/2", Reply(json=None))
    with RapiClient(http_server.url) as rapi:
        assert rapi.raw("GET", "/2") is None


def test_multi_step_flows_and_plain_calls_share_send(http_server: RapiTestServer) -> None:
    with RapiClient(http_server.url) as rapi:
        from gwm.rapi.builders import cluster

        assert rapi.send(cluster.get_version()) == 2


@pytest.mark.parametrize("bad", [{"username": "u"}, {"password": "p"}])
def test_half_credentials_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="username and password"):
        RapiClient("http://h", **bad)  # type: ignore[arg-type]
