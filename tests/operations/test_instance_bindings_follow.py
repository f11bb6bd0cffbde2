"""An instance's role bindings follow it: renamed with it, gone with it.

Bindings name instances. If they outlived their instance, whoever owned
``web1`` would own the next instance called ``web1``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gwm.accounts.models import Role, RoleBinding
from gwm.accounts.services.tokens import token_create
from tests.clusters.helpers import full_sync, gnt

pytestmark = pytest.mark.django_db(transaction=True)


def _owner(live: Any, django_user_model: Any, instance: str) -> Client:
    ann = django_user_model.objects.create_user("ann", "ann@localhost", "pw-ann-12345")
    RoleBinding.objects.create(
        role=Role.objects.get(name="instance-owner"),
        user=ann,
        scope="instance",
        cluster=live.cluster,
        instance=instance,
    )
    _, token = token_create(actor=None, user=ann, name="t")
    return Client(headers={"Authorization": f"Bearer {token}"})


def _bound(live: Any) -> list[str]:
    return sorted(
        RoleBinding.objects.filter(cluster=live.cluster, scope="instance").values_list(
            "instance", flat=True
        )
    )


def test_a_rename_moves_the_owner_binding(live, django_user_model) -> None:
    live.quiet()
    old = live.stopped_names()[0]
    ann = _owner(live, django_user_model, old)
    assert ann.get(live.url(f"/instances/{old}")).status_code == 200
    done = live.wait_done(
        live.action(
            old, "rename", new_name="moved.example.test", name_check=False, ip_check=False
        ).json()
    )
    assert done["status"] == "SUCCESS", done["error"]
    assert _bound(live) == ["moved.example.test"]
    assert ann.get(live.url("/instances/moved.example.test")).status_code == 200
    assert ann.get(live.url(f"/instances/{old}")).status_code == 404


def test_a_delete_through_gwm_drops_the_binding(live, django_user_model) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    ann = _owner(live, django_user_model, name)
    assert _bound(live) == [name]
    job = live.api.delete(live.url(f"/instances/{name}"))
    assert job.status_code == 202, job.content
    assert live.wait_done(job.json())["status"] == "SUCCESS"
    assert _bound(live) == []
    assert ann.get("/api/v1/instances").json()["items"] == []


def test_an_instance_removed_outside_gwm_drops_its_binding(live, django_user_model) -> None:
    live.quiet()
    name = live.stopped_names()[0]
    _owner(live, django_user_model, name)
    assert _bound(live) == [name]
    gnt(live.running, "gnt-instance", "remove", name)
    full_sync(live.cluster)
    assert _bound(live) == []
