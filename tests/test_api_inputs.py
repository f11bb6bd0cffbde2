"""Bad input answers a clear RFC 9457 problem (4xx), never a 500.

Each test injects one kind of bad input the API once answered with 500 or
silently ignored.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

from gwm.clusters.models import Cluster
from tests.clusters.helpers import registration_body

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
NOT_A_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def _problem(response, status: int, parameter: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    if parameter is not None:
        assert parameter in body["detail"] or body.get("parameter") == parameter, body
    return body


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# -- tls_ca_pem ----------------------------------------------------------------------


@pytest.mark.parametrize("pem", ["not a pem", NOT_A_PEM, "-----BEGIN CERTIFICATE-----"])
def test_a_ca_that_is_not_a_pem_certificate_is_422_on_register(api: Client, pem: str) -> None:
    response = api.post(
        "/api/v1/clusters",
        {"name": "c1", "rapi_url": "https://127.0.0.1:9", "tls_ca_pem": pem},
        content_type="application/json",
    )
    body = _problem(response, 422)
    assert body["code"] == "validation_failed"
    assert any("tls_ca_pem" in error["loc"] for error in body["errors"])
    assert not Cluster.objects.exists()


def test_a_ca_that_is_not_a_pem_certificate_is_422_on_change(simulator, api: Client) -> None:
    from tests.clusters.helpers import register

    register(simulator(), name="c1")
    response = api.patch(
        "/api/v1/clusters/c1", {"tls_ca_pem": NOT_A_PEM}, content_type="application/json"
    )
    body = _problem(response, 422)
    assert any("tls_ca_pem" in error["loc"] for error in body["errors"])


def test_a_refused_registration_leaves_no_ca_file(simulator, api: Client, tmp_path: Path) -> None:
    running, other = simulator(), simulator(seed=3)
    with override_settings(DATA_DIR=tmp_path):
        refused = api.post(
            "/api/v1/clusters",
            registration_body(running, tls_ca_pem=other.cert_path.read_text()),
            content_type="application/json",
        )
        _problem(refused, 422)
        assert list((tmp_path / "tls").glob("*")) == []
        accepted = api.post(
            "/api/v1/clusters", registration_body(running), content_type="application/json"
        )
        assert accepted.status_code == 201, accepted.content
        assert len(list((tmp_path / "tls").glob("*.pem"))) == 1
        # A refused change of CA leaves the accepted one alone.
        changed = api.patch(
            "/api/v1/clusters/c1",
            {"tls_ca_pem": other.cert_path.read_text()},
            content_type="application/json",
        )
        _problem(changed, 422)
        assert len(list((tmp_path / "tls").glob("*.pem"))) == 1


# -- bodies ---------------------------------------------------------------------------


def test_a_body_over_the_size_limit_is_413(api: Client) -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = api.post(
            "/api/v1/clusters",
            {"name": "c1", "rapi_url": "https://x", "description": "x" * 5000},
            content_type="application/json",
        )
    body = _problem(response, 413)
    assert body["code"] == "payload_too_large"


def test_a_body_that_is_not_json_is_400(api: Client) -> None:
    response = api.post("/api/v1/clusters", "{nope", content_type="application/json")
    body = _problem(response, 400)
    assert body["code"] == "malformed_body"


# -- query parameters -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["since", "until"])
def test_a_time_out_of_range_is_400_naming_it(api: Client, name: str) -> None:
    _problem(api.get(f"/api/v1/jobs?{name}=2026-13-45T00:00:00Z"), 400, name)


@pytest.mark.parametrize(
    "payload",
    [
        ["-id", "abc", 5],
        ["-id", 5, "abc"],
        ["-id", {"a": 1}, 5],
        ["-id", 99999999999999999999999, 5],
        ["-id", 5, 99999999999999999999999],
        ["-id", [1], 5],
    ],
)
def test_a_crafted_job_cursor_is_400(api: Client, payload: list) -> None:
    _problem(api.get(f"/api/v1/jobs?cursor={_cursor(payload)}"), 400, "cursor")


@pytest.mark.parametrize(
    "payload", [["name", {"a": 1}, 5], ["name", 3, 5], ["name", "a", 1e300], ["name", None, True]]
)
def test_a_crafted_instance_cursor_is_400(api: Client, payload: list) -> None:
    _problem(api.get(f"/api/v1/instances?cursor={_cursor(payload)}"), 400, "cursor")


def test_a_huge_job_id_is_400(api: Client) -> None:
    _problem(api.get("/api/v1/jobs/wait?ids=99999999999999999999999&timeout=0"), 400, "ids")
    _problem(api.get("/api/v1/jobs/wait?ids=-1&timeout=0"), 400, "ids")
    body = _problem(api.get("/api/v1/jobs/99999999999999999999999"), 400, "job_id")
    assert body["parameter"] == "job_id"
    assert _problem(api.get("/api/v1/jobs/x"), 400)["parameter"] == "job_id"
    _problem(api.get("/api/v1/jobs/99999999999999999999999/wait?timeout=0"), 400, "job_id")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/instances?stauts=RUNNING",
        "/api/v1/clusters?stauts=RUNNING",
        "/api/v1/jobs?stauts=RUNNING",
        "/api/v1/jobs/wait?ids=1&stauts=RUNNING",
        "/api/v1/?stauts=RUNNING",
        "/api/v1/clusters/c1/nodes?stauts=RUNNING",
    ],
)
def test_an_unknown_query_parameter_is_400_naming_it(api: Client, path: str) -> None:
    body = _problem(api.get(path), 400, "stauts")
    assert body["parameter"] == "stauts"


def test_an_unknown_query_parameter_on_a_write_is_400(api: Client) -> None:
    response = api.post(
        "/api/v1/clusters?dryrun=true",
        {"name": "c1", "rapi_url": "https://x"},
        content_type="application/json",
    )
    assert _problem(response, 400)["parameter"] == "dryrun"


def test_a_scalar_parameter_given_twice_is_400(api: Client) -> None:
    body = _problem(api.get("/api/v1/instances?limit=5&limit=6"), 400, "limit")
    assert body["parameter"] == "limit"


def test_a_repeated_filter_means_or(simulator, api: Client) -> None:
    from gwm.clusters.models import Instance
    from tests.clusters.helpers import full_sync, register

    cluster = register(simulator(instances=12), name="c1")
    full_sync(cluster)
    names = list(Instance.objects.order_by("name").values_list("name", flat=True))
    Instance.objects.filter(name=names[0]).update(status="STOPPED")
    Instance.objects.filter(name=names[1]).update(status="ERROR")
    Instance.objects.exclude(name__in=names[:2]).update(status="RUNNING")

    def got(query: str) -> list[str]:
        response = api.get(f"/api/v1/instances?fields=name&{query}")
        assert response.status_code == 200, response.content
        return [item["name"] for item in response.json()["items"]]

    assert got("status=STOPPED&status=ERROR") == names[:2]
    assert got("status=STOPPED,ERROR") == names[:2]
    node = Instance.objects.get(name=names[0]).primary_node
    other = Instance.objects.exclude(primary_node=node).first()
    assert other is not None
    both = got(f"node={node}&node={other.primary_node}")
    assert set(both) == set(
        Instance.objects.filter(primary_node__in=[node, other.primary_node]).values_list(
            "name", flat=True
        )
    )
    assert got("cluster=c1&cluster=nope") == names


# -- names and headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "a..b",
        ".web",
        "web.",
        "wéb1",
        "\uff57\uff45\uff42",
        "web 1",
        "-web",
        "",
        "a" * 256,
    ],
)
def test_ganeti_names_refuse_dots_and_non_ascii(name: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from gwm.kit.names import GanetiName

    with pytest.raises(ValidationError):
        TypeAdapter(GanetiName).validate_python(name)


@pytest.mark.parametrize("name", ["web1", "web-1.example.org", "a", "x_y", "A1-b.c-d"])
def test_ganeti_names_accept_host_names(name: str) -> None:
    from pydantic import TypeAdapter

    from gwm.kit.names import GanetiName

    assert TypeAdapter(GanetiName).validate_python(name) == name


def test_an_idempotency_key_over_255_characters_is_400(simulator, api: Client) -> None:
    from tests.clusters.helpers import register

    register(simulator(), name="c1")
    response = api.post(
        "/api/v1/clusters/c1/actions",
        {"action": "redistribute-config"},
        content_type="application/json",
        headers={"Idempotency-Key": "k" * 256},
    )
    assert _problem(response, 400, "Idempotency-Key")["parameter"] == "Idempotency-Key"


# -- the database file -------------------------------------------------------------------


def test_the_sqlite_file_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GWM_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="gwm.settings")
    code = (
        "import os; os.umask(0o022); import django; django.setup(); "
        "from django.db import connection; connection.ensure_connection(); "
        "connection.cursor().execute('create table t (x int)')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.glob("gwm.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (data / "gwm.sqlite3").exists()


# -- found by schemathesis ---------------------------------------------------------------


def test_a_patch_with_null_fields_leaves_them_as_they_are(simulator, api: Client) -> None:
    from tests.clusters.helpers import register

    register(simulator(), name="c1")
    response = api.patch(
        "/api/v1/clusters/c1",
        {"tls_fingerprint": None, "tls_verify": None, "description": None},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    stored = Cluster.objects.get(name="c1")
    assert stored.tls_verify is True
    assert stored.tls_fingerprint == ""


def test_an_empty_ordering_is_400(api: Client) -> None:
    _problem(api.get("/api/v1/instances?ordering="), 400, "ordering")


@pytest.mark.parametrize(
    "path", ["/api/v1/instances?search=a%00b", "/api/v1/clusters/a%00b", "/api/v1/jobs?user=%00"]
)
def test_a_nul_character_in_a_parameter_is_400(api: Client, path: str) -> None:
    _problem(api.get(path), 400)


def test_the_console_of_an_instance_being_created_is_409(simulator, api: Client) -> None:
    from gwm.clusters.models import Instance
    from tests.clusters.helpers import full_sync, register

    cluster = register(simulator(), name="c1")
    full_sync(cluster)
    name = Instance.objects.filter(cluster=cluster).values_list("name", flat=True).first()
    Instance.objects.filter(cluster=cluster, name=name).update(status="PROVISIONING")
    body = _problem(api.get(f"/api/v1/clusters/c1/instances/{name}/console"), 409)
    assert body["code"] == "console_unavailable"


def test_a_nul_character_in_a_body_string_is_422(api: Client) -> None:
    response = api.post(
        "/api/v1/clusters",
        '{"name": "c1", "rapi_url": "https://127.0.0.1:9", "description": "a\\u0000b"}',
        content_type="application/json",
    )
    assert _problem(response, 422)["code"] == "validation_failed"
    # Its audit row is written too (PostgreSQL stores no NUL: gwm replaces it).
    from gwm.accounts.models import AuditEntry

    row = AuditEntry.objects.get(action="cluster.create", status=422)
    assert row.params["description"] == "a\ufffdb"
    # An escaped backslash before "u0000" is no NUL: the body goes on to the handler.
    response = api.post(
        "/api/v1/clusters",
        '{"name": "Not A Slug", "rapi_url": "https://127.0.0.1:9", "description": "a\\\\u0000b"}',
        content_type="application/json",
    )
    body = _problem(response, 422)
    assert any("name" in error["loc"] for error in body["errors"])
