"""Transport, auth and error bodies exactly as Ganeti's rapi daemon answers."""

from __future__ import annotations

import httpx

from tests.simulator.conftest import Sim

CREATE = {
    "__version__": 1,
    "mode": "create",
    "instance_name": "web1.example.test",
    "disk_template": "plain",
    "os_type": "noop",
    "disks": [{"size": 1024}],
    "nics": [],
    "beparams": {"memory": 512},
}


def test_plain_reads(sim: Sim) -> None:
    assert sim.client.get("/").json() is None
    assert sim.client.get("/2").json() is None
    assert sim.client.get("/version").json() == 2
    assert sim.client.get("/2/features").json() == [
        "instance-create-reqv1",
        "node-migrate-reqv1",
        "instance-reinstall-reqv1",
        "node-evac-res1",
    ]
    info = sim.client.get("/2/info").json()
    assert info["name"] == "cluster.example.test"
    assert "serial_no" not in info
    assert info["software_version"] == "3.0.2"


def test_https_with_the_pinned_certificate(sim: Sim) -> None:
    assert sim.running.url.startswith("https://127.0.0.1:")
    assert sim.running.cert_path is not None
    with httpx.Client(verify=True) as strict:
        try:
            strict.get(sim.running.url + "/version")
        except httpx.ConnectError:
            pass  # an unpinned client rejects the self-signed certificate
        else:
            raise AssertionError("self-signed certificate accepted without pinning")


def test_plain_http_with_no_tls(sim_factory) -> None:
    s = sim_factory(tls=False)
    assert s.running.url.startswith("http://")
    assert s.client.get("/version").json() == 2


def test_auth_401_with_realm_and_403_for_read_users(sim: Sim) -> None:
    response = sim.anon.get("/2/info")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Ganeti Remote API"'
    assert response.json() == {
        "code": 401,
        "message": "Unauthorized",
        "explain": "No permission -- see authorization schemes",
    }
    wrong = sim.anon.get("/2/info", auth=("gwm", "nope"))
    assert wrong.status_code == 401
    assert sim.reader.get("/2/instances").status_code == 200
    assert sim.reader.put("/2/query/instance", json={"fields": ["name"]}).status_code == 200
    forbidden = sim.reader.post("/2/instances", json=CREATE)
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "code": 403,
        "message": "Forbidden",
        "explain": "Request forbidden -- authorization will not help",
    }


def test_unknown_path_and_method(sim: Sim) -> None:
    missing = sim.anon.get("/2/nosuch")  # routing happens before auth
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 404,
        "message": "Not Found",
        "explain": "Nothing matches the given URI",
    }
    name = sim.first_instance()
    put_reboot = sim.client.put(f"/2/instances/{name}/reboot")
    assert put_reboot.status_code == 501
    assert put_reboot.json()["message"] == (
        f"Method PUT is unsupported for path /2/instances/{name}/reboot"
    )
    assert sim.client.get("/2/instances/nosuch.example.test").status_code == 404
    assert sim.client.get("/2/nodes/nosuch").status_code == 404
    assert sim.client.get("/2/groups/nosuch").status_code == 404
    assert sim.client.get("/2/networks/nosuch").status_code == 404


def test_body_content_type_and_json(sim: Sim) -> None:
    import json

    raw = json.dumps(CREATE)
    no_type = sim.client.post("/2/instances", content=raw, headers={"content-type": ""})
    assert no_type.status_code == 415
    text = sim.client.post("/2/instances", content=raw, headers={"content-type": "text/plain"})
    assert text.status_code == 415
    assert text.json()["explain"] == "Entity body in unsupported format"
    bad = sim.client.post(
        "/2/instances", content="{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == "Unable to parse JSON data"


def test_boolean_query_parameters_take_only_integers(sim: Sim) -> None:
    response = sim.client.get("/2/instances?bulk=yes")
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid value for the &#x27;bulk&#x27; parameter"
    assert isinstance(sim.client.get("/2/instances?bulk=0").json()[0], dict)


def test_instance_create_versions_and_validation(sim: Sim) -> None:
    v0 = sim.client.post(
        "/2/instances", json={k: v for k, v in CREATE.items() if k != "__version__"}
    )
    assert v0.status_code == 400
    assert v0.json()["message"] == "Instance creation request version 0 is no longer supported"
    unknown_param = sim.client.post("/2/instances", json={**CREATE, "bogus": 1})
    assert unknown_param.status_code == 400
    assert "doesn&#x27;t support the parameter &#x27;bogus&#x27;" in unknown_param.json()["message"]
    no_template = sim.client.post(
        "/2/instances", json={k: v for k, v in CREATE.items() if k != "disk_template"}
    )
    assert no_template.status_code == 400
    assert no_template.json()["message"] == (
        "Invalid body parameters: (&quot;Parameter &#x27;OP_INSTANCE_CREATE.disk_template&#x27;"
        " fails validation&quot;, &#x27;wrong_input&#x27;)"
    )


def test_console(sim: Sim) -> None:
    name = sim.first_instance("running")
    console = sim.client.get(f"/2/instances/{name}/console").json()
    assert console["instance"] == name
    assert console["kind"] == "vnc"
    assert sim.reader.get(f"/2/instances/{name}/console").status_code == 200
    stopped = sim.first_instance("ADMIN_down")
    unavailable = sim.client.get(f"/2/instances/{stopped}/console")
    assert unavailable.status_code == 503
    assert unavailable.json()["message"] == "Instance console unavailable"
    assert sim.client.get("/2/instances/nosuch/console").status_code == 500


def test_tags_read_from_the_query_string(sim: Sim) -> None:
    name = sim.first_instance()
    job = sim.run("PUT", f"/2/instances/{name}/tags?tag=a&tag=b")
    assert job["ops"][0]["tags"] == ["a", "b"]
    assert {"a", "b"} <= set(sim.client.get(f"/2/instances/{name}/tags").json())
    sim.run("DELETE", f"/2/instances/{name}/tags?tag=a")
    assert "a" not in sim.client.get(f"/2/instances/{name}/tags").json()
    sim.run("PUT", "/2/tags?tag=site:lab")
    assert sim.client.get("/2/tags").json() == ["site:lab"]
    unknown = sim.client.get("/2/instances/nosuch/tags")
    assert unknown.status_code == 500
