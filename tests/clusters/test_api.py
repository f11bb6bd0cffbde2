"""The clusters API: registry, cached reads, filters, pagination, ETags, problems."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from django.test import Client

from gwm.clusters.models import Cluster, Instance
from tests.clusters.helpers import full_sync, gnt, register, registration_body

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


# -- authentication -------------------------------------------------------------


def test_reads_need_a_token(client: Client) -> None:
    response = client.get("/api/v1/instances")
    body = _problem(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"
    assert "token" in body["detail"]
    bad = Client(headers={"Authorization": "Bearer gwm_nope_nope"}).get("/api/v1/clusters")
    _problem(bad, 401, "unauthorized")


def test_only_staff_register_clusters(simulator, reader_api: Client) -> None:
    running = simulator()
    response = reader_api.post(
        "/api/v1/clusters", registration_body(running), content_type="application/json"
    )
    _problem(response, 403, "forbidden")
    assert not Cluster.objects.exists()


# -- registration ---------------------------------------------------------------


def test_register_a_cluster(simulator, api: Client) -> None:
    running = simulator()
    response = api.post(
        "/api/v1/clusters",
        registration_body(running, description="lab", fast_interval=2),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "c1"
    assert body["status"] == "PROVISIONING"
    assert body["url"] == "/api/v1/clusters/c1"
    assert body["sync"]["fast_interval"] == 2
    assert "password" not in body
    stored = Cluster.objects.get(name="c1")
    assert stored.password_encrypted and "gwm" not in stored.password_encrypted


def test_a_taken_name_is_a_conflict(simulator, api: Client) -> None:
    running = simulator()
    register(running, name="c1")
    response = api.post(
        "/api/v1/clusters", registration_body(running), content_type="application/json"
    )
    _problem(response, 409, "name_taken")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Not A Slug"}, "name"),
        ({"rapi_url": "ftp://x"}, "rapi_url"),
        ({"fast_interval": 0}, "fast_interval"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_malformed_registrations_are_422(simulator, api: Client, overrides, field) -> None:
    running = simulator()
    response = api.post(
        "/api/v1/clusters", registration_body(running, **overrides), content_type="application/json"
    )
    body = _problem(response, 422, "validation_failed")
    assert any(field in error["loc"] for error in body["errors"])
    assert not Cluster.objects.exists()


def test_unreachable_rapi_is_named(api: Client) -> None:
    response = api.post(
        "/api/v1/clusters",
        {
            "name": "gone",
            "rapi_url": "https://127.0.0.1:9",
            "username": "u",
            "password": "p",
            "tls_verify": False,
        },
        content_type="application/json",
    )
    body = _problem(response, 422, "rapi_unreachable")
    assert "127.0.0.1:9" in body["detail"]
    assert not Cluster.objects.exists()


def test_wrong_password_is_named(simulator, api: Client) -> None:
    running = simulator()
    response = api.post(
        "/api/v1/clusters",
        registration_body(running, password="wrong"),
        content_type="application/json",
    )
    body = _problem(response, 422, "rapi_auth_failed")
    assert "gwm" in body["detail"]


def test_tls_mismatch_is_named(simulator, api: Client) -> None:
    running = simulator()
    other = simulator(seed=3)
    response = api.post(
        "/api/v1/clusters",
        registration_body(running, tls_ca_pem=other.cert_path.read_text()),
        content_type="application/json",
    )
    _problem(response, 422, "rapi_tls_failed")
    pinned = api.post(
        "/api/v1/clusters",
        registration_body(running, tls_ca_pem="", tls_fingerprint="AA" * 32),
        content_type="application/json",
    )
    body = _problem(pinned, 422, "rapi_tls_failed")
    assert "fingerprint" in body["detail"].lower()
    system = api.post(
        "/api/v1/clusters",
        registration_body(running, tls_ca_pem=""),
        content_type="application/json",
    )
    _problem(system, 422, "rapi_tls_failed")


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that is not Ganeti."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>It works!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_something_that_is_not_ganeti_is_named(api: Client, html_server: str) -> None:
    response = api.post(
        "/api/v1/clusters",
        {"name": "web", "rapi_url": html_server, "username": "u", "password": "p"},
        content_type="application/json",
    )
    _problem(response, 422, "not_ganeti")


def test_patch_checks_new_connection_settings(simulator, api: Client) -> None:
    running = simulator()
    register(running, name="c1")
    response = api.patch(
        "/api/v1/clusters/c1", {"password": "wrong"}, content_type="application/json"
    )
    _problem(response, 422, "rapi_auth_failed")
    response = api.patch(
        "/api/v1/clusters/c1",
        {"description": "prod", "slow_interval": 120},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["description"] == "prod"
    assert response.json()["sync"]["slow_interval"] == 120


def test_delete_and_sync_and_unknown_cluster(simulator, api: Client) -> None:
    running = simulator(instances=3)
    cluster = register(running, name="c1")
    full_sync(cluster)
    assert api.post("/api/v1/clusters/c1/sync").status_code == 202
    assert api.delete("/api/v1/clusters/c1").status_code == 204
    assert not Instance.objects.exists()
    _problem(api.get("/api/v1/clusters/c1"), 404, "not_found")
    _problem(api.post("/api/v1/clusters/c1/sync"), 404, "not_found")
    _problem(api.get("/api/v1/clusters/c1/instances"), 404, "not_found")


# -- cached reads ---------------------------------------------------------------


@pytest.fixture
def synced(simulator):
    running = simulator(nodes=3, instances=30)
    cluster = register(running, name="c1")
    full_sync(cluster)
    return running, cluster


def test_cluster_detail_shows_ganeti_and_freshness(synced, api: Client) -> None:
    running, _ = synced
    body = api.get("/api/v1/clusters/c1").json()
    assert body["status"] == "AVAILABLE"
    assert body["ganeti"]["name"] == running.sim.state.info["name"]
    assert body["counts"] == {"nodes": 3, "instances": 30}
    assert body["synced_at"].endswith("Z")
    listing = api.get("/api/v1/clusters").json()
    assert [c["name"] for c in listing["items"]] == ["c1"]


def test_instance_detail_has_status_ganeti_status_and_synced_at(synced, api: Client) -> None:
    running, _ = synced
    name = sorted(running.sim.state.instances)[0]
    body = api.get(f"/api/v1/clusters/c1/instances/{name}").json()
    assert body["name"] == name
    assert body["cluster"] == "c1"
    assert body["url"] == f"/api/v1/clusters/c1/instances/{name}"
    assert body["status"] in {"RUNNING", "STOPPED"}
    assert body["ganeti"]["status"] in {"running", "ADMIN_down"}
    assert body["synced_at"]
    assert isinstance(body["disks"], list) and isinstance(body["nics"], list)
    _problem(api.get("/api/v1/clusters/c1/instances/nope"), 404, "not_found")


def test_nodes_groups_networks(synced, api: Client) -> None:
    running, _ = synced
    state = running.sim.state
    nodes = api.get("/api/v1/clusters/c1/nodes").json()["items"]
    assert {n["name"] for n in nodes} == set(state.nodes)
    assert {n["status"] for n in nodes} == {"ONLINE"}
    node = api.get(f"/api/v1/clusters/c1/nodes/{nodes[0]['name']}").json()
    assert node["memory_total"] and node["ganeti"]["role"] in "MCR"
    groups = api.get("/api/v1/clusters/c1/groups").json()["items"]
    assert {g["name"] for g in groups} == {g.name for g in state.groups.values()}
    group = api.get(f"/api/v1/clusters/c1/groups/{groups[0]['name']}")
    assert group.status_code == 200
    networks = api.get("/api/v1/clusters/c1/networks").json()["items"]
    assert {n["name"] for n in networks} == {n.name for n in state.networks.values()}
    _problem(api.get("/api/v1/clusters/c1/nodes/nope"), 404, "not_found")
    _problem(api.get("/api/v1/clusters/c1/groups/nope"), 404, "not_found")
    _problem(api.get("/api/v1/clusters/c1/networks/nope"), 404, "not_found")


def test_fields_selection_returns_only_those(synced, api: Client) -> None:
    items = api.get("/api/v1/instances?fields=name,status").json()["items"]
    assert len(items) == 30
    assert all(set(item) == {"name", "status"} for item in items)
    body = _problem(api.get("/api/v1/instances?fields=name,bogus"), 400, "bad_request")
    assert "bogus" in body["detail"]


def test_filters(synced, api: Client) -> None:
    running, _ = synced
    state = running.sim.state
    stopped = {n for n, i in state.instances.items() if not i.running_on}
    got = api.get("/api/v1/instances?status=STOPPED&fields=name").json()["items"]
    assert {i["name"] for i in got} == stopped
    node = next(iter(state.nodes))
    on_node = {n for n, i in state.instances.items() if i.pnode == state.nodes[node].uuid}
    got = api.get(f"/api/v1/instances?node={node}&fields=name&limit=1000").json()["items"]
    assert {i["name"] for i in got} == on_node
    tagged = next(i for i in state.instances.values() if i.tags)
    tag = tagged.tags[0]
    got = api.get(f"/api/v1/instances?tag={tag}&fields=name").json()["items"]
    assert {i["name"] for i in got} == {n for n, i in state.instances.items() if tag in i.tags}
    got = api.get("/api/v1/instances?search=0001&fields=name").json()["items"]
    assert all("0001" in i["name"] for i in got) and got
    assert api.get("/api/v1/instances?cluster=other").json()["items"] == []
    assert len(api.get("/api/v1/clusters/c1/instances?limit=1000").json()["items"]) == 30
    _problem(api.get("/api/v1/instances?status=SLEEPING"), 400, "bad_request")


def test_ordering_and_cursor_pagination(synced, api: Client) -> None:
    names: list[str] = []
    url = "/api/v1/instances?fields=name&limit=7&ordering=-name"
    while url:
        page = api.get(url).json()
        names += [item["name"] for item in page["items"]]
        url = (
            f"/api/v1/instances?fields=name&limit=7&ordering=-name&cursor={page['next']}"
            if (page["next"])
            else ""
        )
    assert names == sorted(names, reverse=True)
    assert len(names) == len(set(names)) == 30

    by_memory = api.get("/api/v1/instances?fields=name,memory&ordering=memory&limit=1000")
    memories = [item["memory"] for item in by_memory.json()["items"]]
    assert memories == sorted(memories)

    _problem(api.get("/api/v1/instances?cursor=%%%"), 400, "bad_request")
    first = api.get("/api/v1/instances?limit=5").json()["next"]
    _problem(
        api.get(f"/api/v1/instances?limit=5&ordering=-name&cursor={first}"), 400, "bad_request"
    )
    _problem(api.get("/api/v1/instances?ordering=uuid"), 400, "bad_request")
    _problem(api.get("/api/v1/instances?limit=0"), 400, "bad_request")
    _problem(api.get("/api/v1/instances?limit=5000"), 400, "bad_request")
    _problem(api.get("/api/v1/instances?limit=abc"), 400, "bad_request")


def test_etag_and_if_none_match(synced, api: Client) -> None:
    running, cluster = synced
    first = api.get("/api/v1/instances?fields=name,status")
    etag = first["ETag"]
    assert etag
    again = api.get("/api/v1/instances?fields=name,status", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""

    victim = next(n for n, i in running.sim.state.instances.items() if i.running_on)
    gnt(running, "gnt-instance", "shutdown", victim)
    full_sync(cluster)
    changed = api.get("/api/v1/instances?fields=name,status", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    one = api.get(f"/api/v1/clusters/c1/instances/{victim}")
    assert (
        api.get(
            f"/api/v1/clusters/c1/instances/{victim}", headers={"If-None-Match": one["ETag"]}
        ).status_code
        == 304
    )


def test_openapi_documents_every_status_code(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    listing = schema["paths"]["/api/v1/instances"]["get"]["responses"]
    assert {"200", "304", "400", "401"} <= set(listing)
    create = schema["paths"]["/api/v1/clusters"]["post"]["responses"]
    assert {"201", "401", "403", "409", "422"} <= set(create)
    # Errors are problem+json in the document too, not ninja's application/json.
    for code in ("400", "401", "403", "409", "413", "422"):
        assert list(create[code]["content"]) == [PROBLEM], code
    job = schema["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"]
    assert "400" in job  # a job id that is not an integer


@pytest.mark.parametrize("ordering", ["memory", "-memory", "mtime", "-mtime"])
def test_paging_through_nulls_returns_every_row_once(synced, api: Client, ordering) -> None:
    """Rows without memory or mtime yet (PROVISIONING) sort last, or first descending."""
    _, cluster = synced
    names = list(Instance.objects.filter(cluster=cluster).values_list("name", flat=True))
    Instance.objects.filter(name__in=names[::3]).update(memory=None, mtime=None)
    seen: list[str] = []
    url = f"/api/v1/instances?fields=name&limit=4&ordering={ordering}"
    page = api.get(url).json()
    seen += [item["name"] for item in page["items"]]
    while page["next"]:
        page = api.get(f"{url}&cursor={page['next']}").json()
        seen += [item["name"] for item in page["items"]]
        assert len(seen) <= len(names)
    assert sorted(seen) == sorted(names)
