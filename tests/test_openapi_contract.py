"""The API contract, checked by machine.

- Every GET endpoint answers what the OpenAPI document declares for it
  (status code, content type and body, validated with ``jsonschema``).
- Every error in the document is ``application/problem+json``.
- ``docs/openapi-v1.json`` is the committed snapshot of ``/api/v1``: the live
  document may add to it, never take from it (see docs/CHANGELOG.md).

Update the snapshot after an addition with::

    .venv/bin/python -m tests.test_openapi_contract
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).resolve().parent.parent / "docs" / "openapi-v1.json"
PROBLEM = "application/problem+json"


def current_schema() -> dict[str, Any]:
    from gwm.api import api

    # A JSON round trip: the document exactly as clients read it (string keys).
    return json.loads(json.dumps(api.get_openapi_schema()))


# -- the document itself -------------------------------------------------------------------


def test_every_error_response_is_problem_json() -> None:
    schema = current_schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    assert list(response.get("content", {})) == [PROBLEM], (method, path, code)
                    assert response["content"][PROBLEM]["schema"] == {
                        "$ref": "#/components/schemas/Problem"
                    }


def test_every_operation_lists_400_and_its_body_codes() -> None:
    schema = current_schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "400" in codes, (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= codes, (method, path)
            if operation.get("security"):
                assert "401" in codes, (method, path)


def test_the_selectors_render_exactly_the_declared_fields() -> None:
    from gwm.clusters import schemas
    from gwm.clusters.selectors import fields

    for spec, model in [
        (fields.INSTANCE_FIELDS, schemas.InstanceOut),
        (fields.NODE_FIELDS, schemas.NodeOut),
        (fields.GROUP_FIELDS, schemas.GroupOut),
        (fields.NETWORK_FIELDS, schemas.NetworkOut),
    ]:
        assert set(spec) == set(model.model_fields), model.__name__


# -- responses against the document ------------------------------------------------------


class Contract:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema

    def check(self, path: str, concrete: str, response: Any, method: str = "get") -> None:
        import jsonschema

        operation = self.schema["paths"][path][method]
        code = str(response.status_code)
        assert code in operation["responses"], (
            f"{method.upper()} {concrete} answered undocumented {code}: {response.content[:300]}"
        )
        declared = operation["responses"][code]
        content = declared.get("content")
        if not content:
            assert not response.content, (concrete, code)
            return
        media = response["Content-Type"].split(";")[0].strip()
        assert media in content, f"{concrete} {code} is {media}, declared {list(content)}"
        body_schema = {**content[media]["schema"], "components": self.schema["components"]}
        validator = jsonschema.Draft202012Validator(body_schema)
        # JSON lines (the export) and event streams are declared as text.
        json_body = media in {"application/json", "application/problem+json"}
        document = response.json() if json_body else response.content.decode()
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, f"{concrete} {code}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5]
        )


@pytest.fixture
def populated(simulator, api, settings):
    """A synced simulated cluster with a network and a finished job; a webhook."""
    from django.contrib.auth.models import Group

    from gwm.accounts.models import ApiToken
    from gwm.clusters.models import Instance, Network, Node, NodeGroup
    from gwm.operations.models import Job
    from tests.clusters.helpers import full_sync, register

    cluster = register(simulator(nodes=2, instances=4), name="c1")
    full_sync(cluster)
    response = api.post(
        "/api/v1/clusters/c1/networks",
        {"name": "net1", "network": "10.9.0.0/24"},
        content_type="application/json",
    )
    assert response.status_code in (202, 422), response.content
    names = {
        "cluster": "c1",
        "node": Node.objects.filter(cluster=cluster).values_list("name", flat=True).first(),
        "group": NodeGroup.objects.filter(cluster=cluster).values_list("name", flat=True).first(),
        "instance": Instance.objects.filter(cluster=cluster).values_list("name", flat=True).first(),
        "network": Network.objects.filter(cluster=cluster).values_list("name", flat=True).first(),
        "job_id": Job.objects.values_list("pk", flat=True).first(),
        # the accounts domain: the superuser's own token, a user and a group
        "token_id": ApiToken.objects.values_list("pk", flat=True).first(),
        "username": "root",
        "name": Group.objects.create(name="team-a").name,
        # the tracker: an event type, a webhook (to a closed loopback port), no delivery
        "event_type": "instance.status_changed",
        "webhook_id": _webhook(api, settings),
        "delivery_id": 1,
    }
    return names


def _webhook(api, settings) -> int:
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    response = api.post(
        "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


# Streams never end: tests/events/test_stream.py reads this one frame by frame.
ENDLESS = frozenset({"/api/v1/changes/stream"})


QUERIES: dict[str, list[str]] = {
    "/api/v1/jobs/wait": ["ids={job_id}&timeout=0", "ids=999999&timeout=0", "ids=x"],
    "/api/v1/jobs/{job_id}/wait": ["timeout=0", "timeout=0&after_log=0&status=RUNNING"],
    "/api/v1/instances": ["", "fields=name,status", "limit=1", "status=RUNNING&status=ERROR"],
    "/api/v1/clusters/{cluster}/instances": ["", "fields=name", "limit=1&ordering=-memory"],
    "/api/v1/clusters/{cluster}/nodes": ["", "fields=name,status", "limit=1"],
    "/api/v1/jobs": ["", "limit=1", "status=SUCCESS,ERROR&cluster=c1", "since=nonsense"],
    "/api/v1/changes": ["", "limit=2&types=instance.*", "since=-1", "wait=0.01"],
}


@pytest.mark.django_db
def test_every_get_endpoint_answers_its_declared_schema(api, populated) -> None:
    schema = json.loads(api.get("/api/v1/openapi.json").content)
    contract = Contract(schema)
    checked = 0
    for path, operations in schema["paths"].items():
        if "get" not in operations or path in ENDLESS:
            continue
        concrete = path
        for name, value in populated.items():
            concrete = concrete.replace("{" + name + "}", str(value))
        assert "{" not in concrete, f"no value for a parameter of {path}"
        for query in [*QUERIES.get(path, [""]), "unknown_parameter=1"]:
            url = f"{concrete}?{query.format(**populated)}" if query else concrete
            response = api.get(url)
            contract.check(path, url, response)
            checked += 1
            if response.status_code == 200 and response.has_header("ETag"):
                again = api.get(url, headers={"If-None-Match": response["ETag"]})
                contract.check(path, url, again)
        if "{" in path:
            missing = path
            for name in populated:
                missing = missing.replace("{" + name + "}", "9" if name == "job_id" else "nope")
            response = api.get(missing)
            contract.check(path, missing, response)
    assert checked >= 20


@pytest.mark.django_db
def test_responses_of_errors_answer_the_problem_schema(api) -> None:
    contract = Contract(json.loads(api.get("/api/v1/openapi.json").content))
    contract.check(
        "/api/v1/clusters/{cluster}", "/api/v1/clusters/nope", api.get("/api/v1/clusters/nope")
    )
    contract.check("/api/v1/jobs/{job_id}", "/api/v1/jobs/x", api.get("/api/v1/jobs/x"))
    body = api.post("/api/v1/clusters", "{nope", content_type="application/json")
    contract.check("/api/v1/clusters", "/api/v1/clusters", body, method="post")


# -- the snapshot: additions only ---------------------------------------------------------


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _types(schema: dict[str, Any]) -> frozenset[str]:
    """A schema's shape in a word per alternative: a type, or the schema it refers to."""
    if not schema:
        return frozenset({"any"})
    if "$ref" in schema:
        return frozenset({f"ref:{_ref_name(schema)}"})
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return frozenset().union(*(_types(part) for part in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _types(schema["allOf"][0])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    if "array" in kinds:
        items = ",".join(sorted(_types(schema.get("items", {}))))
        kinds = [k if k != "array" else f"array[{items}]" for k in kinds]
    return frozenset(kinds)


def _request_schemas(schema: dict[str, Any]) -> set[str]:
    """Component schemas a request body reaches (new required fields break clients there)."""
    components = schema.get("components", {}).get("schemas", {})
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            name = _ref_name(node)
            if name and name not in found:
                found.add(name)
                walk(components.get(name, {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            walk(operation.get("requestBody", {}))
    return found


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every difference from ``old`` to ``new`` that is not an addition."""
    problems: list[str] = []
    for path, operations in old.get("paths", {}).items():
        if path not in new["paths"]:
            problems.append(f"path removed: {path}")
            continue
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            current = new["paths"][path].get(method)
            if current is None:
                problems.append(f"method removed: {where}")
                continue
            for code in operation.get("responses", {}):
                if code not in current.get("responses", {}):
                    problems.append(f"status code removed: {where} {code}")
            old_params = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
            new_params = {(p["in"], p["name"]): p for p in current.get("parameters", [])}
            for key, param in old_params.items():
                if key not in new_params:
                    problems.append(f"parameter removed: {where} {key[0]} {key[1]}")
                    continue
                if _types(param.get("schema", {})) != _types(new_params[key].get("schema", {})):
                    problems.append(f"parameter type changed: {where} {key[1]}")
                if new_params[key].get("required") and not param.get("required"):
                    problems.append(f"parameter newly required: {where} {key[1]}")
            for key, param in new_params.items():
                if key not in old_params and param.get("required"):
                    problems.append(f"new required parameter: {where} {key[1]}")
            old_body, new_body = operation.get("requestBody"), current.get("requestBody")
            if old_body and not new_body:
                problems.append(f"request body removed: {where}")
            if new_body and new_body.get("required") and not (old_body or {}).get("required"):
                problems.append(f"request body newly required: {where}")
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    requests = _request_schemas(new)
    for name, schema in old_schemas.items():
        if name not in new_schemas:
            problems.append(f"schema removed: {name}")
            continue
        current = new_schemas[name]
        for prop, prop_schema in schema.get("properties", {}).items():
            if prop not in current.get("properties", {}):
                problems.append(f"property removed or renamed: {name}.{prop}")
            elif _types(prop_schema) != _types(current["properties"][prop]):
                problems.append(f"property type changed: {name}.{prop}")
        if name in requests:
            for prop in set(current.get("required", [])) - set(schema.get("required", [])):
                problems.append(f"request property newly required: {name}.{prop}")
        if _types({k: v for k, v in schema.items() if k != "properties"}) != _types(
            {k: v for k, v in current.items() if k != "properties"}
        ):
            problems.append(f"schema type changed: {name}")
    return problems


def test_the_api_only_grows_from_its_snapshot() -> None:
    assert SNAPSHOT.exists(), f"no snapshot: run `.venv/bin/python -m {__name__}`"
    old = json.loads(SNAPSHOT.read_text())
    problems = breaking_changes(old, current_schema())
    assert not problems, (
        "/api/v1 changed in ways that are not additions (they wait for /api/v2):\n  "
        + "\n  ".join(problems)
    )


def test_the_snapshot_checker_tells_additions_from_breaks() -> None:
    base = current_schema()
    assert breaking_changes(base, base) == []
    grown = copy.deepcopy(base)
    grown["paths"]["/api/v1/new"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    grown["components"]["schemas"]["ClusterOut"]["properties"]["extra"] = {"type": "string"}
    grown["paths"]["/api/v1/jobs"]["get"]["responses"]["418"] = {"description": "tea"}
    assert breaking_changes(base, grown) == []

    def broken(change) -> list[str]:
        copied = copy.deepcopy(base)
        change(copied)
        return breaking_changes(base, copied)

    assert broken(lambda s: s["paths"].pop("/api/v1/jobs"))
    assert broken(lambda s: s["paths"]["/api/v1/clusters"].pop("post"))
    assert broken(lambda s: s["paths"]["/api/v1/jobs"]["get"]["responses"].pop("400"))
    assert broken(lambda s: s["components"]["schemas"]["ClusterOut"]["properties"].pop("name"))
    assert broken(
        lambda s: s["components"]["schemas"]["ClusterOut"]["properties"].update(
            name={"type": "integer"}
        )
    )
    assert broken(
        lambda s: s["paths"]["/api/v1/jobs"]["get"]["parameters"].append(
            {"in": "query", "name": "must", "required": True, "schema": {"type": "string"}}
        )
    )
    assert broken(lambda s: s["components"]["schemas"]["ClusterCreate"]["required"].append("x"))


def write_snapshot() -> None:
    SNAPSHOT.write_text(json.dumps(current_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gwm.settings")
    import django

    django.setup()
    if SNAPSHOT.exists():
        breaks = breaking_changes(json.loads(SNAPSHOT.read_text()), current_schema())
        if breaks:
            raise SystemExit(
                "refusing to record changes that are not additions:\n" + "\n".join(breaks)
            )
    write_snapshot()
    print(f"wrote {SNAPSHOT}")
