"""/api/v1/webhooks as its owners use it: the subscriptions, their checks and who may see them.

What is sent and how is tests/events/test_webhooks_delivery.py; here nothing is sent
(every URL is a public address nobody calls, or refused before any connection).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import AuditEntry, Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from gwm.clusters.models import Cluster
from gwm.events.models import ChangeCounter, Delivery, Webhook
from gwm.events.services import last_seq

pytestmark = pytest.mark.django_db

PUBLIC = "https://93.184.215.14/hooks/gwm"  # a public address: accepted, never called here
PROBLEM = "application/problem+json"


def _client(user: Any, **token: Any) -> Client:
    _, secret = token_create(actor=None, user=user, name="webhooks", **token)
    return Client(headers={"Authorization": f"Bearer {secret}"})


def _user(django_user_model: Any, name: str) -> Any:
    return django_user_model.objects.create_user(name, f"{name}@localhost", "pw-long-enough-1")


def _post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(f"/api/v1{path}", body or {}, content_type="application/json")


def _patch(client: Client, path: str, body: Any) -> Any:
    return client.patch(f"/api/v1{path}", body, content_type="application/json")


def _create(client: Client, **body: Any) -> dict[str, Any]:
    answer = _post(client, "/webhooks", {"url": PUBLIC, **body})
    assert answer.status_code == 201, answer.content
    return answer.json()


def _problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["code"] == code, problem
    return problem


def test_create_read_change_and_delete(api) -> None:
    Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")
    assert api.get("/api/v1/webhooks").json() == {"items": [], "next": None}

    made = _create(api, types=["instance.*", "job.succeeded"], clusters=["prod"], description="ops")
    assert made["secret"].startswith("whsec_")
    assert made["url"] == PUBLIC and made["api_url"] == f"/api/v1/webhooks/{made['id']}"
    assert (made["owner"], made["payload"], made["active"]) == ("root", "full", True)
    assert made["cursor"] == last_seq()  # history only through a replay
    assert made["health"]["state"] == "healthy" and made["health"]["backlog"] == 0
    listed = api.get("/api/v1/webhooks").json()["items"]
    assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]

    changed = _patch(
        api, f"/webhooks/{made['id']}", {"description": "night shift", "payload": "thin"}
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["description"] == "night shift"
    assert changed.json()["payload"] == "thin"
    assert changed.json()["types"] == ["instance.*", "job.succeeded"]  # not given: kept
    assert api.get(f"/api/v1/webhooks/{made['id']}").json()["payload"] == "thin"

    assert api.delete(f"/api/v1/webhooks/{made['id']}").status_code == 204
    _problem(api.get(f"/api/v1/webhooks/{made['id']}"), 404, "not_found")
    assert AuditEntry.objects.filter(action="webhook.create", outcome="success").exists()
    assert AuditEntry.objects.filter(action="webhook.delete", outcome="success").exists()


def test_listing_pages_with_a_cursor(api) -> None:
    ids = [_create(api)["id"] for _ in range(3)]
    first = api.get("/api/v1/webhooks?limit=2").json()
    assert [w["id"] for w in first["items"]] == ids[:2] and first["next"]
    rest = api.get(f"/api/v1/webhooks?limit=2&cursor={first['next']}").json()
    assert [w["id"] for w in rest["items"]] == ids[2:] and rest["next"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"types": ["instance.exploded"]}, "types"),
        ({"types": ["vm.*"]}, "types"),
        ({"resources": ["instance:web1"]}, "resources"),
        ({"resources": ["vm:prod/web1"]}, "resources"),
        ({"resources": ["job:twelve"]}, "resources"),
        ({"clusters": ["nowhere"]}, "clusters"),
    ],
)
def test_bad_filters_are_422_problems_naming_the_field(api, body, field) -> None:
    problem = _problem(_post(api, "/webhooks", {"url": PUBLIC, **body}), 422, "validation_failed")
    assert problem["field"] == field
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},  # no url
        {"url": PUBLIC, "payload": "medium"},
        {"url": PUBLIC, "colour": "red"},
        {"url": PUBLIC, "types": "instance.*"},
        {"url": PUBLIC, "types": [f"instance.{n}" for n in range(101)]},
    ],
)
def test_malformed_bodies_are_422(api, body) -> None:
    _problem(_post(api, "/webhooks", body), 422, "validation_failed")


def test_a_body_that_is_not_json_is_400(api) -> None:
    answer = api.post("/api/v1/webhooks", "{not json", content_type="application/json")
    _problem(answer, 400, "malformed_body")


def test_patch_with_null_is_422_and_changes_nothing(api) -> None:
    made = _create(api, types=["node.*"])
    _problem(_patch(api, f"/webhooks/{made['id']}", {"types": None}), 422, "validation_failed")
    assert Webhook.objects.get().types == ["node.*"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.215.14/hook",
        "http://user:secret@93.184.215.14/hook",
    ],
)
def test_internal_targets_are_refused(api, url) -> None:
    problem = _problem(_post(api, "/webhooks", {"url": url}), 422, "target_refused")
    assert problem["field"] == "url" and problem["reason"]
    assert not Webhook.objects.exists()


def test_a_change_to_an_internal_target_is_refused_too(api) -> None:
    made = _create(api)
    answer = _patch(api, f"/webhooks/{made['id']}", {"url": "http://169.254.169.254/"})
    assert "metadata" in _problem(answer, 422, "target_refused")["reason"]
    assert Webhook.objects.get().url == PUBLIC


def test_the_allow_list_lets_an_operator_use_internal_receivers(api, settings) -> None:
    _problem(_post(api, "/webhooks", {"url": "http://127.0.0.1:9/hook"}), 422, "target_refused")
    settings.GWM_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert _create(api, url="http://127.0.0.1:9/hook")["url"] == "http://127.0.0.1:9/hook"
    assert _create(api, url="http://localhost:9/hook")["url"] == "http://localhost:9/hook"
    # Only what is listed: the metadata service stays refused.
    _problem(_post(api, "/webhooks", {"url": "http://169.254.169.254/"}), 422, "target_refused")


def test_others_webhooks_are_404_and_admins_see_all(api, django_user_model) -> None:
    ann, bob = _user(django_user_model, "ann"), _user(django_user_model, "bob")
    as_ann, as_bob = _client(ann), _client(bob)
    mine = _create(as_ann)
    theirs = _create(as_bob)
    assert [w["id"] for w in as_ann.get("/api/v1/webhooks").json()["items"]] == [mine["id"]]
    path = f"/webhooks/{theirs['id']}"
    for answer in [
        as_ann.get(f"/api/v1{path}"),
        _patch(as_ann, path, {"description": "mine now"}),
        as_ann.delete(f"/api/v1{path}"),
        as_ann.get(f"/api/v1{path}/secret"),
        _post(as_ann, f"{path}/rotate-secret"),
        as_ann.get(f"/api/v1{path}/deliveries"),
        _post(as_ann, f"{path}/replay", {"since": 0}),
    ]:
        _problem(answer, 404, "not_found")
    assert Webhook.objects.get(pk=theirs["id"]).description == ""
    # A global admin (the superuser) sees and manages everyone's.
    assert {w["id"] for w in api.get("/api/v1/webhooks").json()["items"]} == {
        mine["id"],
        theirs["id"],
    }
    assert api.get(f"/api/v1{path}").json()["owner"] == "bob"
    assert _patch(api, path, {"active": False}).json()["active"] is False


def test_a_read_only_token_reads_but_changes_nothing(django_user_model) -> None:
    ann = _user(django_user_model, "ann")
    made = _create(_client(ann))
    reader = _client(ann, read_only=True)
    path = f"/webhooks/{made['id']}"
    assert reader.get(f"/api/v1{path}").status_code == 200
    assert reader.get(f"/api/v1{path}/deliveries").status_code == 200
    for answer in [
        _post(reader, "/webhooks", {"url": PUBLIC}),
        _patch(reader, path, {"description": "x"}),
        reader.delete(f"/api/v1{path}"),
        _post(reader, f"{path}/rotate-secret"),
        _post(reader, f"{path}/replay", {"since": 0}),
        reader.get(f"/api/v1{path}/secret"),  # a secret lets its holder forge deliveries
    ]:
        _problem(answer, 403, "forbidden")
    assert Webhook.objects.count() == 1 and Webhook.objects.get().description == ""


def test_no_token_is_401(client) -> None:
    assert client.get("/api/v1/webhooks").status_code == 401
    assert _post(client, "/webhooks", {"url": PUBLIC}).status_code == 401


def test_a_token_limited_to_clusters_makes_webhooks_limited_to_them(django_user_model) -> None:
    prod = Cluster.objects.create(name="prod", rapi_url="https://prod.invalid:5080")
    Cluster.objects.create(name="test", rapi_url="https://test.invalid:5080")
    ann = _user(django_user_model, "ann")
    RoleBinding.objects.create(role=Role.objects.get(name="viewer"), user=ann, scope="global")
    limited = _client(ann, clusters=["prod"])
    _problem(_post(limited, "/webhooks", {"url": PUBLIC}), 403, "forbidden")
    _problem(
        _post(limited, "/webhooks", {"url": PUBLIC, "clusters": ["test"]}), 422, "validation_failed"
    )
    assert _create(limited, clusters=[prod.name])["clusters"] == ["prod"]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_rotating_keeps_the_old_secret_for_the_overlap(api, settings) -> None:
    settings.GWM_WEBHOOK_SECRET_OVERLAP_HOURS = 24
    made = _create(api)
    path = f"/api/v1/webhooks/{made['id']}"
    assert api.get(f"{path}/secret").json() == {
        "secrets": [{"secret": made["secret"], "expires_at": None}]
    }
    rotated = _post(api, f"/webhooks/{made['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.content
    new, old = rotated.json()["secrets"]
    assert new["expires_at"] is None and new["secret"] != made["secret"]
    assert old["secret"] == made["secret"]
    left = _parse(old["expires_at"]) - timezone.now()
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)
    assert api.get(f"{path}/secret").json()["secrets"] == [new, old]
    # A leaked secret: rotate with no overlap, and only the newest signs.
    again = _post(api, f"/webhooks/{made['id']}/rotate-secret", {"overlap_hours": 0}).json()
    assert [entry["expires_at"] for entry in again["secrets"]] == [None]
    assert again["secrets"][0]["secret"] not in (new["secret"], old["secret"])


def test_replay_below_the_retention_floor_is_410(api) -> None:
    made = _create(api)
    ChangeCounter.objects.update_or_create(pk=1, defaults={"last_seq": 50, "floor_seq": 40})
    problem = _problem(
        _post(api, f"/webhooks/{made['id']}/replay", {"since": 10}), 410, "cursor_gone"
    )
    assert problem["floor"] == 40
    answer = _post(api, f"/webhooks/{made['id']}/replay", {"since": 40})
    assert answer.status_code == 202, answer.content
    assert answer.json()["queued"] == 0 and not Delivery.objects.exists()


def test_bad_delivery_parameters_are_400(api) -> None:
    made = _create(api)
    answer = api.get(f"/api/v1/webhooks/{made['id']}/deliveries?status=lost")
    assert _problem(answer, 400, "bad_request")["parameter"] == "status"
    _problem(api.get(f"/api/v1/webhooks/{made['id']}/deliveries/99"), 404, "not_found")


def test_a_hook_is_a_webhook_here_but_keeps_its_resource(api, admin_user) -> None:
    hook = Webhook.objects.create(
        owner=admin_user, kind="hook", url=PUBLIC, resources=["instance:prod/web1"], secrets=[]
    )
    plain = _create(api)
    assert api.get(f"/api/v1/webhooks/{hook.pk}").json()["kind"] == "hook"
    both = api.get("/api/v1/webhooks").json()["items"]
    assert [w["id"] for w in both] == [hook.pk, plain["id"]]
    hooks = api.get("/api/v1/webhooks?kind=hook").json()["items"]
    assert [w["id"] for w in hooks] == [hook.pk]
    assert api.get("/api/v1/webhooks?kind=other").status_code == 400
    answer = _patch(api, f"/webhooks/{hook.pk}", {"resources": ["node"]})
    assert _problem(answer, 409, "hook_field")
    assert _patch(api, f"/webhooks/{hook.pk}", {"active": False}).json()["active"] is False
    assert Webhook.objects.get(pk=hook.pk).resources == ["instance:prod/web1"]
