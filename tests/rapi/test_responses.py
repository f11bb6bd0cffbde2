"""Reading answers: parsing, HTTP error mapping and messages, "not Ganeti" answers."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from gwm.rapi import errors
from gwm.rapi.builders import cluster, instances, jobs, nodes
from gwm.rapi.calls import RapiCall, complete, parse_job_id

BASE = "https://cluster:5080"


def answer(
    call: RapiCall[Any],
    status: int = 200,
    *,
    json: Any = None,
    text: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    username: str | None = "gwm",
) -> Any:
    request = httpx.Request(call.request.method, BASE + call.request.path)
    if text is None:
        # httpx sends no body for json=None; Ganeti sends "null".
        content = b"null" if json is None else None
        response = httpx.Response(
            status, json=json, content=content, request=request, headers=headers
        )
    else:
        response = httpx.Response(
            status,
            text=text,
            request=request,
            headers={"content-type": content_type, **(headers or {})},
        )
    return complete(call, response, base_url=BASE, username=username)


def ganeti(status: int, message: str, explain: str = "explanation") -> dict[str, Any]:
    return {"code": status, "message": message, "explain": explain}


@pytest.mark.parametrize(("value", "expected"), [(25, 25), ("25", 25), (" 7", 7)])
def test_job_ids_are_ints_or_digit_strings(value: Any, expected: int) -> None:
    assert parse_job_id(value) == expected


def test_an_empty_answer_is_not_ganeti() -> None:
    with pytest.raises(errors.RapiProtocolError, match="answered 200 with an empty answer"):
        answer(instances.startup_instance("web1"), text="", content_type="")


@pytest.mark.parametrize("value", [None, True, "abc", 1.5, [1], {"id": 1}])
def test_anything_else_is_not_a_job_id(value: Any) -> None:
    with pytest.raises(errors.RapiProtocolError, match="not have the shape"):
        answer(instances.startup_instance("web1"), json=value)


def test_features_404_means_no_features() -> None:
    assert answer(cluster.get_features(), 404, json=ganeti(404, "Not Found")) == []
    assert answer(cluster.get_features(), json=["instance-create-reqv1"]) == [
        "instance-create-reqv1"
    ]


def test_names_come_from_id_or_name() -> None:
    listed = [{"id": "a", "uri": "/2/instances/a"}, {"id": "b", "uri": "/2/instances/b"}]
    assert answer(instances.list_instances(), json=listed) == ["a", "b"]
    assert answer(jobs.list_jobs(), json=[{"id": 3, "uri": "/2/jobs/3"}]) == [3]


def test_node_role_and_cancel_results() -> None:
    assert answer(nodes.get_node_role("n1"), json="master-candidate") == "master-candidate"
    result = answer(jobs.cancel_job(36), json=[True, "Dequeued job 36"])
    assert result.success and result.message == "Dequeued job 36"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.RapiBadRequest),
        (401, errors.RapiUnauthorized),
        (403, errors.RapiForbidden),
        (404, errors.RapiNotFound),
        (405, errors.RapiMethodNotAllowed),
        (409, errors.RapiHTTPError),
        (413, errors.RapiHTTPError),
        (415, errors.RapiUnsupportedMediaType),
        (500, errors.RapiServerError),
        (501, errors.RapiNotImplemented),
        (502, errors.RapiMasterUnreachable),
        (503, errors.RapiUnavailable),
        (504, errors.RapiGatewayTimeout),
    ],
)
def test_each_status_has_its_class_and_keeps_ganetis_body(
    status: int, cls: type[errors.RapiHTTPError]
) -> None:
    body = ganeti(status, "Something &amp; more", "long explanation")
    with pytest.raises(cls) as raised:
        answer(instances.get_instance("web1"), status, json=body)
    error = raised.value
    assert type(error) is cls
    assert error.status == status
    assert error.code == status
    assert error.message == "Something & more"  # Ganeti html-escapes it
    assert error.explain == "long explanation"
    assert error.body == body
    assert error.response is not None and error.response.status_code == status
    assert error.request is not None and error.request.url.path == "/2/instances/web1"
    assert "Something & more" in str(error)


def test_hierarchy() -> None:
    assert issubclass(errors.RapiTimeout, errors.RapiConnectionError)
    assert issubclass(errors.RapiNotImplemented, errors.RapiMethodNotAllowed)
    for server in (errors.RapiMasterUnreachable, errors.RapiUnavailable, errors.RapiGatewayTimeout):
        assert issubclass(server, errors.RapiServerError)
    for cls in errors.STATUS_ERRORS.values():
        assert issubclass(cls, errors.RapiHTTPError)
    assert not issubclass(errors.RapiTLSError, errors.RapiConnectionError)
    assert not issubclass(errors.RapiProtocolError, errors.RapiHTTPError)


def test_messages_read_as_sentences() -> None:
    def message(call: RapiCall[Any], status: int, body: Any, **kw: Any) -> str:
        with pytest.raises(errors.RapiError) as raised:
            answer(call, status, json=body, **kw)
        return str(raised.value)

    assert message(instances.get_instance("web1"), 401, ganeti(401, "Unauthorized")) == (
        "authentication failed for user 'gwm' at https://cluster:5080 (401 Unauthorized)"
    )
    assert message(
        instances.get_instance("web1"), 401, ganeti(401, "Unauthorized"), username=None
    ) == (
        "https://cluster:5080 requires authentication and no username/password was given "
        "(401 Unauthorized)"
    )
    assert message(instances.shutdown_instance("web1"), 403, ganeti(403, "Forbidden")) == (
        "user 'gwm' may not shut down instance 'web1' on https://cluster:5080 (403 Forbidden); "
        "writes need 'write' access in Ganeti's RAPI users file"
    )
    assert message(instances.get_instance("web1"), 404, ganeti(404, "Not Found")) == (
        "cannot read instance 'web1': not found on https://cluster:5080 (404 Not Found)"
    )
    assert message(
        instances.create_instance("web1", disk_template="plain", disks=[]),
        400,
        ganeti(400, "Invalid body parameters: disks"),
    ) == (
        "Ganeti at https://cluster:5080 rejected the request to create instance 'web1' "
        "(400 Bad Request: Invalid body parameters: disks)"
    )
    assert message(
        instances.startup_instance("web1"), 503, ganeti(503, "Job queue is full, needs archiving")
    ) == (
        "cannot start instance 'web1': Ganeti at https://cluster:5080 is unavailable "
        "(503 Service Unavailable: Job queue is full, needs archiving); the job queue may be "
        "full or drained"
    )
    assert "cannot reach the Ganeti master daemon" in message(
        cluster.get_cluster_info(), 502, ganeti(502, "Master seems to be unreachable")
    )
    assert "does not support PUT /2/instances/web1/modify" in message(
        instances.modify_instance("web1", a=1), 501, ganeti(501, "Method PUT is unsupported")
    )


def test_a_200_html_page_is_not_ganeti() -> None:
    page = "<html><head><title>Welcome to nginx!</title></head><body>hi</body></html>"
    with pytest.raises(errors.RapiProtocolError) as raised:
        answer(cluster.get_cluster_info(), text=page, content_type="text/html")
    assert str(raised.value) == (
        "cannot read the cluster info: https://cluster:5080 answered 200 with an HTML page "
        '("Welcome to nginx!"), not Ganeti RAPI JSON; is this the Ganeti RAPI port?'
    )
    assert raised.value.status == 200


def test_non_json_text_is_not_ganeti() -> None:
    with pytest.raises(errors.RapiProtocolError, match="text/plain body starting 'hello world'"):
        answer(cluster.get_version(), text="hello world", content_type="text/plain")


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (cluster.get_cluster_info(), ["not", "a", "dict"]),
        (instances.list_instances(), {"instances": []}),
        (instances.list_instances(), [{"name_missing": 1}]),
        (instances.list_instances_bulk(), ["web1"]),
        (instances.get_instance("x"), {"snodes": "not-a-list"}),
        (jobs.get_job(1), {"id": 1, "received_ts": "yesterday"}),
        (jobs.wait_for_job_change(1), {"status": "running"}),
        (cluster.get_version(), "2"),
    ],
)
def test_json_of_the_wrong_shape_is_a_protocol_error(call: RapiCall[Any], body: Any) -> None:
    with pytest.raises(errors.RapiProtocolError, match="does not have the shape Ganeti RAPI uses"):
        answer(call, json=body)


def test_a_non_ganeti_404_is_a_protocol_error_not_a_missing_instance() -> None:
    page = "<!DOCTYPE html><html><title>404 Not Found</title></html>"
    with pytest.raises(errors.RapiProtocolError) as raised:
        answer(instances.get_instance("web1"), 404, text=page, content_type="text/html")
    assert not isinstance(raised.value, errors.RapiNotFound)
    assert "is this the Ganeti RAPI port?" in str(raised.value)


def test_a_redirect_is_a_protocol_error_naming_the_target() -> None:
    with pytest.raises(errors.RapiProtocolError, match="redirected to https://sso/login"):
        answer(
            cluster.get_version(),
            302,
            text="",
            content_type="text/html",
            headers={"location": "https://sso/login"},
        )


def test_a_proxy_502_page_is_still_master_unreachable() -> None:
    page = "<html><title>502 Bad Gateway</title></html>"
    with pytest.raises(errors.RapiMasterUnreachable) as raised:
        answer(cluster.get_cluster_info(), 502, text=page, content_type="text/html")
    assert "answered by something other than Ganeti" in str(raised.value)
    assert raised.value.code is None


def test_unknown_job_is_job_not_found_either_way() -> None:
    nulls = dict.fromkeys(["ops", "status", "summary", "opstatus", "opresult", "oplog"])
    with pytest.raises(errors.RapiJobNotFound) as raised:
        answer(jobs.get_job(99999), json={"id": 99999, **nulls})
    assert raised.value.job_id == 99999
    assert "job 99999 does not exist" in str(raised.value)
    with pytest.raises(errors.RapiJobNotFound):
        answer(jobs.get_job(99999), 404, json=ganeti(404, "Not Found"))


def test_errors_pickle_without_their_http_objects() -> None:
    with pytest.raises(errors.RapiNotFound) as raised:
        answer(instances.get_instance("web1"), 404, json=ganeti(404, "Not Found"))
    copy = pickle.loads(pickle.dumps(raised.value))
    assert type(copy) is errors.RapiNotFound
    assert str(copy) == str(raised.value)
    assert copy.status == 404 and copy.body == raised.value.body
    assert copy.request is None and copy.response is None
    tls = errors.RapiTLSError("x", url="u", reason="r", expected_fingerprint="AA")
    assert pickle.loads(pickle.dumps(tls)).expected_fingerprint == "AA"
