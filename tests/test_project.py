"""The project's wiring: API root, schema, docs, admin, probes, problem responses."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def test_api_root_names_versions_and_features(client: Client, api: Client) -> None:
    # Only health, the schema and the docs answer without a token.
    anonymous = client.get("/api/v1/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Bearer"
    response = api.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["api_version"] == "v1"
    assert body["gwm_version"]
    assert "problem-json" in body["features"]


def test_openapi_schema_is_served_and_documents_the_problem_shape(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/" in schema["paths"]


def test_rendered_docs_and_their_shortcut(client: Client) -> None:
    assert client.get("/api/v1/docs").status_code == 200
    shortcut = client.get("/api/docs")
    assert shortcut.status_code == 302
    assert shortcut["Location"] == "/api/v1/docs"


def test_admin_login_page(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"gwm administration" in response.content
    assert b'name="password"' in response.content


def test_healthz(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_ready(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@override_settings(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//")
def test_readyz_names_an_unreachable_broker(client: Client) -> None:
    from gwm.celery import app

    app.conf.broker_url = "amqp://guest:guest@127.0.0.1:1//"
    try:
        response = client.get("/readyz")
    finally:
        app.conf.broker_url = "memory://"
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert response["Retry-After"]
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert "unreachable" in body["checks"]["broker"]


def test_unknown_api_path_is_a_problem(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404
    assert body["code"] == "not_found"
    assert body["instance"] == "/api/v1/no-such-thing"
    assert body["type"].startswith("https://")


def test_wrong_method_is_a_problem(client: Client) -> None:
    response = client.delete("/api/v1/")
    assert response.status_code == 405
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "method_not_allowed"
