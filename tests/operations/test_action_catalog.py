"""The action catalogue: every action has a body to ask for it, and sends what it says.

No database and no cluster: the registry, the request bodies and each send
function against a client that only records what it is asked.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pydantic
import pytest

from gwm.operations.actions import ACTIONS, Action, SendRequest, actions_for
from gwm.operations.actions.base import Params
from gwm.operations.actions.bodies import (
    ClusterActionBody,
    GroupActionBody,
    InstanceActionBody,
    NetworkActionBody,
    NodeActionBody,
)
from gwm.operations.actions.groups import GroupModify
from gwm.operations.actions.instances import InstanceModify
from gwm.operations.actions.networks import NetworkModify
from gwm.rapi import RapiClient

RESOURCES = ("instance", "node", "group", "network", "cluster")
UNIONS: dict[str, Any] = {
    "instance": InstanceActionBody,
    "node": NodeActionBody,
    "group": GroupActionBody,
    "network": NetworkActionBody,
    "cluster": ClusterActionBody,
}
# Actions with an endpoint of their own (POST, PATCH and DELETE on the resource).
DEDICATED = {
    f"{resource}.{name}"
    for resource in ("instance", "group", "network")
    for name in ("create", "modify", "delete")
}
HOLDS = {None, "BUSY", "PROVISIONING", "DELETING"}


def members(union: Any) -> list[type[pydantic.BaseModel]]:
    inner, *_ = typing.get_args(union)  # Annotated[A | B | ..., Field(...)]
    return list(typing.get_args(inner))


def action_name(body: type[pydantic.BaseModel]) -> str:
    (name,) = typing.get_args(body.model_fields["action"].annotation)
    return str(name)


def body_classes() -> dict[str, type[pydantic.BaseModel]]:
    return {
        f"{resource}.{action_name(body)}": body
        for resource, union in UNIONS.items()
        for body in members(union)
    }


# -- the registry and the bodies ---------------------------------------------------------


def test_every_action_has_a_body_or_an_endpoint_of_its_own() -> None:
    bodies = body_classes()
    without = sorted(set(ACTIONS) - set(bodies) - DEDICATED)
    assert not without, f"no body class in gwm.operations.actions.bodies for {without}"
    assert not set(bodies) - set(ACTIONS), "a body class for an action that is not declared"
    assert not set(bodies) & DEDICATED, "create, modify and delete have endpoints of their own"
    assert set(ACTIONS) >= DEDICATED


@pytest.mark.parametrize("key", sorted(body_classes()))
def test_a_body_is_its_actions_parameters_plus_the_action(key: str) -> None:
    body, action = body_classes()[key], ACTIONS[key]
    resource, name = key.split(".")
    title = "".join(part.capitalize() for part in f"{resource}-{name}".split("-"))
    assert body.__name__ == f"{title}Request"  # the component name in the OpenAPI document
    assert issubclass(body, action.params)
    assert list(body.model_fields) == [*action.params.model_fields, "action"]
    assert body.model_fields["action"].is_required()
    assert body.model_fields["action"].description == (action.summary or name)
    assert body.__doc__ is None  # pydantic would publish it as the schema's description


@pytest.mark.parametrize("resource", RESOURCES)
def test_each_union_lists_its_bodies_by_action_name(resource: str) -> None:
    names = [action_name(body) for body in members(UNIONS[resource])]
    assert names == sorted(names)
    assert set(names) <= set(actions_for(resource))
    adapter = pydantic.TypeAdapter(UNIONS[resource])
    schema = adapter.json_schema()
    assert schema["discriminator"]["propertyName"] == "action"
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python({"action": "no-such-action"})
    with pytest.raises(pydantic.ValidationError):  # parameters reject unknown fields
        adapter.validate_python({"action": names[0], "surprise": 1})


def test_the_registry_is_keyed_by_resource_and_name() -> None:
    for key, action in ACTIONS.items():
        assert isinstance(action, Action)
        assert key == action.key == f"{action.resource}.{action.name}"
        assert action.resource in RESOURCES
        assert action.holds in HOLDS, key
        assert issubclass(action.params, Params)
        assert action.opcodes, f"{key}: adoption matches opcodes"
    for resource in RESOURCES:
        assert all(a.resource == resource for a in actions_for(resource).values())
    assert sum(len(actions_for(r)) for r in RESOURCES) == len(ACTIONS)


@pytest.mark.parametrize("key", sorted(ACTIONS))
def test_each_action_is_sent_by_a_named_function_after_its_client_method(key: str) -> None:
    send = ACTIONS[key].send
    assert inspect.isfunction(send) and send.__name__ != "<lambda>", key
    methods = {name for name in dir(RapiClient) if not name.startswith("_")}
    assert any(send.__name__.startswith(method) for method in methods), send.__name__
    assert list(inspect.signature(send).parameters) == ["client", "request"]


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (InstanceModify, {}),
        (InstanceModify, {"force": True, "wait_for_sync": True}),  # how, not what
        (InstanceModify, {"beparams": {}, "disks": [], "os_name": None}),
        (GroupModify, {}),
        (GroupModify, {"ndparams": {}}),
        (NetworkModify, {"add_reserved_ips": [], "gateway": None}),
    ],
)
def test_a_modify_must_change_something(model: type[Params], body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="nothing to change: give at least one of"):
        model.model_validate(body)


def test_a_modify_names_what_it_could_change() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        InstanceModify.model_validate({"force": True})
    assert (
        "nothing to change: give at least one of beparams, disk_template, disks, hvparams, "
        "nics, offline, os_name, osparams, remote_node"
    ) in str(caught.value)


def test_a_modify_with_a_change_is_valid() -> None:
    assert InstanceModify.model_validate({"beparams": {"maxmem": 512}, "force": True})
    assert GroupModify.model_validate({"alloc_policy": "preferred"})
    assert NetworkModify.model_validate({"gateway": "10.0.0.1"})


def test_send_request_keyword_arguments_are_the_set_parameters() -> None:
    request = SendRequest(
        name="x", params={"a": 1, "b": None, "c": False, "d": 0}, reason=None, dry_run=False
    )
    assert request.kwargs("a", "b", "c", "d", "missing") == {"a": 1, "c": False, "d": 0}
    assert request.kwargs() == {}


# -- what each action sends ------------------------------------------------------------------


class Recorder:
    """Answers every client method with job 7, and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> int:
            self.calls.append((method, args, kwargs))
            return 7

        return record


def sent(
    key: str, body: dict[str, Any], *, reason: str | None = "gwm:op:1", dry: bool = False
) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    action = ACTIONS[key]
    params = action.params.model_validate(body).model_dump()
    client = Recorder()
    request = SendRequest(name="subject", params=params, reason=reason, dry_run=dry)
    assert action.send(client, request) == 7  # type: ignore[arg-type]
    (call,) = client.calls
    return call


def test_instance_create_leaves_unset_disk_and_nic_fields_to_ganeti() -> None:
    method, args, kwargs = sent(
        "instance.create",
        {"name": "web1", "disk_template": "plain", "disks": [{"size": 1024}], "nics": [{}]},
        dry=True,
    )
    assert (method, args) == ("create_instance", ("subject",))
    assert kwargs == {
        "disk_template": "plain",
        "disks": [{"size": 1024}],
        "nics": [{}],
        "os_type": None,
        "beparams": None,
        "hvparams": None,
        "osparams": None,
        "tags": None,
        "start": True,
        "name_check": True,
        "ip_check": True,
        "dry_run": True,
        "reason": "gwm:op:1",
    }


def test_a_modify_passes_every_parameter_that_is_set() -> None:
    method, args, kwargs = sent("instance.modify", {"beparams": {"maxmem": 512}, "force": False})
    assert (method, args) == ("modify_instance", ("subject",))
    assert kwargs == {"reason": "gwm:op:1", "beparams": {"maxmem": 512}, "force": False}


def test_node_migrate_drops_the_reason_with_a_target_or_an_allocator() -> None:
    assert sent("node.migrate", {"mode": "live", "target_node": "n2"}) == (
        "migrate_node",
        ("subject",),
        {"mode": "live", "target_node": "n2"},
    )
    assert sent("node.migrate", {"iallocator": "hail"}) == (
        "migrate_node",
        ("subject",),
        {"iallocator": "hail"},
    )
    assert sent("node.migrate", {"mode": "live"}) == (
        "migrate_node",
        ("subject",),
        {"reason": "gwm:op:1", "mode": "live"},
    )


def test_node_flags_are_set_with_modify_node() -> None:
    expected = {
        "node.drain": {"drained": True},
        "node.undrain": {"drained": False},
        "node.offline": {"offline": True},
        "node.online": {"offline": False},
    }
    for key, flag in expected.items():
        assert sent(key, {}) == ("modify_node", ("subject",), {"reason": "gwm:op:1", **flag})


def test_cluster_actions_name_no_resource() -> None:
    assert sent("cluster.add-tags", {"tags": ["a"]}, dry=True) == (
        "add_cluster_tags",
        (["a"],),
        {"dry_run": True, "reason": "gwm:op:1"},
    )
    assert sent("cluster.redistribute-config", {}, reason=None) == (
        "redistribute_config",
        (),
        {"reason": None},
    )
