"""Error answers: the exception classes and Ganeti's code/message/explain, kept.

Semantic failures (already exists, unknown entity, wrong state) are not HTTP
errors but failed jobs: see test_instances.py and test_jobs.py.
"""

from __future__ import annotations

import pytest

from gwm.rapi import (
    RapiBadRequest,
    RapiForbidden,
    RapiHTTPError,
    RapiNotFound,
    RapiNotImplemented,
    RapiUnauthorized,
)
from tests.contract.conftest import Target

BAD_REQUEST = "Bad request syntax or unsupported method"
FORBIDDEN = ("Forbidden", "Request forbidden -- authorization will not help")
UNAUTHORIZED = ("Unauthorized", "No permission -- see authorization schemes")


def _ganeti_error(error: RapiHTTPError) -> tuple[int, int | None, str | None, str | None]:
    return (error.status, error.code, error.message, error.explain)


def test_no_credentials_is_401(target: Target) -> None:
    with pytest.raises(RapiUnauthorized) as caught:
        target.anonymous.get_cluster_info()
    assert _ganeti_error(caught.value) == (401, 401, *UNAUTHORIZED)
    response = caught.value.response
    assert response is not None
    assert response.headers["www-authenticate"] == 'Basic realm="Ganeti Remote API"'
    # a write without credentials is 401 too (not 403)
    with pytest.raises(RapiUnauthorized):
        target.anonymous.add_cluster_tags([target.unique_name("tag")])


def test_a_wrong_password_is_401(target: Target) -> None:
    user = target.backend.write_auth[0]
    with (
        target.backend.make_client((user, "wrong-password")) as client,
        pytest.raises(RapiUnauthorized) as caught,
    ):
        client.get_version()
    assert _ganeti_error(caught.value) == (401, 401, *UNAUTHORIZED)


def test_the_read_only_user_cannot_write(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    with pytest.raises(RapiForbidden) as caught:
        target.reader.create_instance(name, **target.instance_spec())
    assert _ganeti_error(caught.value) == (403, 403, *FORBIDDEN)
    assert caught.value.body == {"code": 403, "message": FORBIDDEN[0], "explain": FORBIDDEN[1]}
    with pytest.raises(RapiForbidden):
        target.reader.add_cluster_tags([target.unique_name("tag")])
    with pytest.raises(RapiForbidden):
        target.reader.startup_instance(name)
    with pytest.raises(RapiNotFound):
        target.client.get_instance(name)  # nothing was submitted


def test_an_invalid_disk_template_is_400(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    with pytest.raises(RapiBadRequest) as caught:
        target.client.create_instance(name, **target.instance_spec(disk_template="nosuch"))
    assert _ganeti_error(caught.value) == (
        400,
        400,
        "Invalid body parameters: (\"Parameter 'OP_INSTANCE_CREATE.disk_template' fails"
        " validation\", 'wrong_input')",
        BAD_REQUEST,
    )
    # the raw body keeps Ganeti's HTML escaping; `message` is unescaped
    assert caught.value.body is not None
    assert "&#x27;" in caught.value.body["message"]


def test_an_unknown_opcode_parameter_is_400(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    with pytest.raises(RapiBadRequest) as caught:
        target.client.create_instance(name, **target.instance_spec(), no_such_parameter=1)
    assert caught.value.message == (
        "Invalid body parameters: Object OpInstanceCreate doesn't support the parameter"
        " 'no_such_parameter'"
    )


def test_an_old_creation_request_version_is_400(target: Target) -> None:
    name = target.unique_name()
    target.track_instance(name)
    body = {"instance_name": name, **target.instance_spec(), "__version__": 0}
    with pytest.raises(RapiBadRequest) as caught:
        target.client.raw("POST", "/2/instances", body=body)
    assert caught.value.message == "Instance creation request version 0 is no longer supported"


def test_unknown_objects_are_404(target: Target) -> None:
    for read in (
        lambda: target.client.get_instance(target.unique_name()),
        lambda: target.client.get_node(target.unique_name("node")),
        lambda: target.client.get_group(target.unique_name("group")),
        lambda: target.client.get_network(target.unique_name("net")),
        lambda: target.client.raw("GET", "/2/no-such-resource"),
    ):
        with pytest.raises(RapiNotFound) as caught:
            read()
        assert _ganeti_error(caught.value) == (
            404,
            404,
            "Not Found",
            "Nothing matches the given URI",
        )


def test_an_unsupported_method_is_501(target: Target) -> None:
    with pytest.raises(RapiNotImplemented) as caught:
        target.client.raw("DELETE", "/2/info")
    assert _ganeti_error(caught.value) == (
        501,
        501,
        "Method DELETE is unsupported for path /2/info",
        "Server does not support this operation",
    )
