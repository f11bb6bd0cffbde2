"""Request building: what each method sends, before any network."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest

from gwm.rapi.base import RapiMethods, raw_call
from gwm.rapi.builders import (
    cluster,
    groups,
    instance_disks,
    instances,
    jobs,
    networks,
    nodes,
    query,
)
from gwm.rapi.calls import RapiCall
from gwm.rapi.config import ClientConfig, normalize_base_url
from gwm.rapi.constants import MigrationMode, NodeRole, QueryResource, RebootType

Sent = tuple[str, str, list[tuple[str, str]], Any]


def sent(call: RapiCall[Any]) -> Sent:
    request = call.request
    return request.method, request.path, list(request.query), request.body


CASES: list[tuple[RapiCall[Any], Sent]] = [
    (cluster.get_version(), ("GET", "/version", [], None)),
    (cluster.get_features(), ("GET", "/2/features", [], None)),
    (cluster.get_cluster_info(), ("GET", "/2/info", [], None)),
    (cluster.list_os(), ("GET", "/2/os", [], None)),
    (cluster.list_os_bulk(reason="r"), ("GET", "/2/os", [("bulk", "1"), ("reason", "r")], None)),
    (
        cluster.modify_cluster(reason="r", candidate_pool_size=3),
        ("PUT", "/2/modify", [("reason", "r")], {"candidate_pool_size": 3}),
    ),
    (cluster.redistribute_config(), ("PUT", "/2/redistribute-config", [], None)),
    (cluster.get_cluster_tags(), ("GET", "/2/tags", [], None)),
    (
        cluster.add_cluster_tags(["a", "b"], dry_run=True, reason="r"),
        ("PUT", "/2/tags", [("tag", "a"), ("tag", "b"), ("dry-run", "1"), ("reason", "r")], None),
    ),
    (cluster.delete_cluster_tags(["a"]), ("DELETE", "/2/tags", [("tag", "a")], None)),
    (instances.list_instances(), ("GET", "/2/instances", [], None)),
    (instances.list_instances_bulk(), ("GET", "/2/instances", [("bulk", "1")], None)),
    (
        instances.get_instance("web1.example.com"),
        ("GET", "/2/instances/web1.example.com", [], None),
    ),
    (
        instances.delete_instance("web1", shutdown_timeout=30, dry_run=True, reason="r"),
        (
            "DELETE",
            "/2/instances/web1",
            [("dry-run", "1"), ("reason", "r")],
            {"shutdown_timeout": 30},
        ),
    ),
    (instances.delete_instance("web1"), ("DELETE", "/2/instances/web1", [], None)),
    (
        instances.request_instance_info("web1", static=True),
        ("GET", "/2/instances/web1/info", [("static", "1")], None),
    ),
    (
        instances.startup_instance("web1", force=True, no_remember=False, reason="r"),
        (
            "PUT",
            "/2/instances/web1/startup",
            [("force", "1"), ("no_remember", "0"), ("reason", "r")],
            None,
        ),
    ),
    (
        instances.shutdown_instance(
            "web1", timeout=5, force=True, no_remember=True, ignore_offline_nodes=False
        ),
        (
            "PUT",
            "/2/instances/web1/shutdown",
            [("no_remember", "1")],
            {"timeout": 5, "force": True, "ignore_offline_nodes": False},
        ),
    ),
    (instances.shutdown_instance("web1"), ("PUT", "/2/instances/web1/shutdown", [], {})),
    (
        instances.reboot_instance(
            "web1", reboot_type=RebootType.SOFT, ignore_secondaries=True, shutdown_timeout=10
        ),
        (
            "POST",
            "/2/instances/web1/reboot",
            [("type", "soft"), ("ignore_secondaries", "1")],
            {"shutdown_timeout": 10},
        ),
    ),
    (
        instances.reinstall_instance("web1", os_type="debian", start=False, osparams={"a": 1}),
        (
            "POST",
            "/2/instances/web1/reinstall",
            [],
            {"os": "debian", "start": False, "osparams": {"a": 1}},
        ),
    ),
    (
        instances.migrate_instance(
            "web1", mode=MigrationMode.NON_LIVE, cleanup=False, allow_failover=True, reason="r"
        ),
        (
            "PUT",
            "/2/instances/web1/migrate",
            [("reason", "r")],
            {"mode": "non-live", "cleanup": False, "allow_failover": True},
        ),
    ),
    (
        instances.failover_instance("web1", target_node="n2", ignore_consistency=True),
        (
            "PUT",
            "/2/instances/web1/failover",
            [],
            {"ignore_consistency": True, "target_node": "n2"},
        ),
    ),
    (
        instances.rename_instance("web1", "web2", name_check=False),
        ("PUT", "/2/instances/web1/rename", [], {"new_name": "web2", "name_check": False}),
    ),
    (
        instances.modify_instance("web1", beparams={"maxmem": 2048}, reason="r"),
        ("PUT", "/2/instances/web1/modify", [("reason", "r")], {"beparams": {"maxmem": 2048}}),
    ),
    (instances.get_instance_console("web1"), ("GET", "/2/instances/web1/console", [], None)),
    (
        instance_disks.activate_instance_disks("web1", ignore_size=True),
        ("PUT", "/2/instances/web1/activate-disks", [("ignore_size", "1")], None),
    ),
    (
        instance_disks.deactivate_instance_disks("web1", force=True),
        ("PUT", "/2/instances/web1/deactivate-disks", [("force", "1")], None),
    ),
    (
        instance_disks.grow_instance_disk("web1", 0, 1024, absolute=False, wait_for_sync=True),
        (
            "POST",
            "/2/instances/web1/disk/0/grow",
            [],
            {"amount": 1024, "absolute": False, "wait_for_sync": True},
        ),
    ),
    (
        instance_disks.replace_instance_disks("web1", disks=[0, 1], early_release=True),
        (
            "POST",
            "/2/instances/web1/replace-disks",
            [],
            {"mode": "replace_auto", "disks": [0, 1], "early_release": True},
        ),
    ),
    (
        instance_disks.recreate_instance_disks("web1", nodes=["n1", "n2"]),
        ("POST", "/2/instances/web1/recreate-disks", [], {"nodes": ["n1", "n2"]}),
    ),
    (instances.get_instance_tags("web1"), ("GET", "/2/instances/web1/tags", [], None)),
    (
        instances.add_instance_tags("web1", ["x:y"]),
        ("PUT", "/2/instances/web1/tags", [("tag", "x:y")], None),
    ),
    (
        instances.delete_instance_tags("web1", ["x:y"], reason="r"),
        ("DELETE", "/2/instances/web1/tags", [("tag", "x:y"), ("reason", "r")], None),
    ),
    (nodes.list_nodes(), ("GET", "/2/nodes", [], None)),
    (nodes.list_nodes_bulk(), ("GET", "/2/nodes", [("bulk", "1")], None)),
    (nodes.get_node("n1"), ("GET", "/2/nodes/n1", [], None)),
    (nodes.get_node_role("n1"), ("GET", "/2/nodes/n1/role", [], None)),
    (
        nodes.set_node_role("n1", NodeRole.DRAINED, force=True, auto_promote=True, reason="r"),
        (
            "PUT",
            "/2/nodes/n1/role",
            [("force", "1"), ("auto-promote", "1"), ("reason", "r")],
            "drained",
        ),
    ),
    (
        nodes.evacuate_node("n1", mode="secondary-only", remote_node="n3", early_release=False),
        (
            "POST",
            "/2/nodes/n1/evacuate",
            [],
            {"mode": "secondary-only", "remote_node": "n3", "early_release": False},
        ),
    ),
    (
        nodes.migrate_node("n1", mode="live", target_node="n2"),
        ("POST", "/2/nodes/n1/migrate", [], {"mode": "live", "target_node": "n2"}),
    ),
    (
        nodes.migrate_node("n1", mode="live", reason="r"),
        ("POST", "/2/nodes/n1/migrate", [("mode", "live"), ("reason", "r")], None),
    ),
    (
        nodes.modify_node("n1", offline=True),
        ("POST", "/2/nodes/n1/modify", [], {"offline": True}),
    ),
    (
        nodes.powercycle_node("n1", force=True),
        ("POST", "/2/nodes/n1/powercycle", [("force", "1")], None),
    ),
    (nodes.add_node_tags("n1", ["t"]), ("PUT", "/2/nodes/n1/tags", [("tag", "t")], None)),
    (groups.list_groups_bulk(), ("GET", "/2/groups", [("bulk", "1")], None)),
    (groups.get_group("default"), ("GET", "/2/groups/default", [], None)),
    (
        groups.create_group("g2", alloc_policy="preferred", dry_run=True),
        (
            "POST",
            "/2/groups",
            [("dry-run", "1")],
            {"group_name": "g2", "alloc_policy": "preferred"},
        ),
    ),
    (
        groups.modify_group("g2", alloc_policy="last_resort"),
        ("PUT", "/2/groups/g2/modify", [], {"alloc_policy": "last_resort"}),
    ),
    (groups.rename_group("g2", "g3"), ("PUT", "/2/groups/g2/rename", [], {"new_name": "g3"})),
    (groups.delete_group("g2", reason="r"), ("DELETE", "/2/groups/g2", [("reason", "r")], None)),
    (
        groups.assign_group_nodes("g2", ["n1"], force=True),
        ("PUT", "/2/groups/g2/assign-nodes", [("force", "1")], {"nodes": ["n1"]}),
    ),
    (groups.delete_group_tags("g2", ["t"]), ("DELETE", "/2/groups/g2/tags", [("tag", "t")], None)),
    (networks.list_networks(), ("GET", "/2/networks", [], None)),
    (networks.get_network("net1"), ("GET", "/2/networks/net1", [], None)),
    (
        networks.create_network("net1", "10.0.0.0/24", gateway="10.0.0.1", tags=["t"]),
        (
            "POST",
            "/2/networks",
            [],
            {
                "network_name": "net1",
                "network": "10.0.0.0/24",
                "gateway": "10.0.0.1",
                "tags": ["t"],
            },
        ),
    ),
    (
        networks.connect_network("net1", "default", mode="bridged", link="br0"),
        (
            "PUT",
            "/2/networks/net1/connect",
            [],
            {"group_name": "default", "network_mode": "bridged", "network_link": "br0"},
        ),
    ),
    (
        networks.disconnect_network("net1", "default"),
        ("PUT", "/2/networks/net1/disconnect", [], {"group_name": "default"}),
    ),
    (
        networks.rename_network("net1", "net2"),
        ("PUT", "/2/networks/net1/rename", [], {"new_name": "net2"}),
    ),
    (
        networks.modify_network("net1", gateway="10.0.0.254"),
        ("PUT", "/2/networks/net1/modify", [], {"gateway": "10.0.0.254"}),
    ),
    (networks.delete_network("net1"), ("DELETE", "/2/networks/net1", [], None)),
    (jobs.list_jobs(), ("GET", "/2/jobs", [], None)),
    (jobs.list_jobs_bulk(), ("GET", "/2/jobs", [("bulk", "1")], None)),
    (jobs.get_job(42), ("GET", "/2/jobs/42", [], None)),
    (jobs.cancel_job(42), ("DELETE", "/2/jobs/42", [], None)),
    (
        jobs.wait_for_job_change(42, previous_job_info=["running"], previous_log_serial=3),
        (
            "GET",
            "/2/jobs/42/wait",
            [],
            {"fields": ["status"], "previous_job_info": ["running"], "previous_log_serial": 3},
        ),
    ),
    (
        query.query(QueryResource.INSTANCE, ["name", "status"]),
        ("GET", "/2/query/instance", [("fields", "name,status")], None),
    ),
    (
        query.query("node", ["name"], qfilter=["=", "name", "n1"]),
        ("PUT", "/2/query/node", [], {"fields": ["name"], "qfilter": ["=", "name", "n1"]}),
    ),
    (query.query_fields("instance"), ("GET", "/2/query/instance/fields", [], None)),
    (
        query.query_fields("instance", fields=["name", "os"]),
        ("GET", "/2/query/instance/fields", [("fields", "name,os")], None),
    ),
]


@pytest.mark.parametrize(("call", "expected"), CASES, ids=[c[1][0] + " " + c[1][1] for c in CASES])
def test_request(call: RapiCall[Any], expected: Sent) -> None:
    assert sent(call) == expected


def test_create_instance_sends_a_version_1_body_with_extras() -> None:
    call = instances.create_instance(
        "web1",
        disk_template="drbd",
        disks=[{"size": 1024}],
        nics=[{"link": "br0"}],
        os_type="debian",
        iallocator="hail",
        beparams={"maxmem": 512},
        start=False,
        name_check=False,
        tags=["a"],
        dry_run=True,
        reason="gwm:op:7",
        hypervisor="kvm",
    )
    assert sent(call) == (
        "POST",
        "/2/instances",
        [("dry-run", "1"), ("reason", "gwm:op:7")],
        {
            "__version__": 1,
            "mode": "create",
            "instance_name": "web1",
            "disk_template": "drbd",
            "disks": [{"size": 1024}],
            "nics": [{"link": "br0"}],
            "os_type": "debian",
            "iallocator": "hail",
            "beparams": {"maxmem": 512},
            "start": False,
            "name_check": False,
            "tags": ["a"],
            "hypervisor": "kvm",
        },
    )


def test_names_are_quoted_so_they_cannot_change_the_path() -> None:
    assert instances.get_instance("../jobs/1").request.path == "/2/instances/..%2Fjobs%2F1"
    assert instances.get_instance("a b").request.path == "/2/instances/a%20b"


def test_only_reads_that_submit_no_job_are_idempotent() -> None:
    assert instances.get_instance("x").request.idempotent
    assert jobs.wait_for_job_change(1).request.idempotent
    assert query.query("node", ["name"]).request.idempotent
    assert not query.query("node", ["name"], qfilter=["=", "name", "x"]).request.idempotent  # PUT
    assert not cluster.list_os().request.idempotent  # runs OS_DIAGNOSE
    assert not instances.request_instance_info("x").request.idempotent  # runs a job
    assert not instances.shutdown_instance("x").request.idempotent
    assert not jobs.cancel_job(1).request.idempotent


def test_console_is_not_retried_on_503_which_means_not_running() -> None:
    assert 503 not in instances.get_instance_console("x").request.retry_statuses
    assert 503 in instances.get_instance("x").request.retry_statuses


def _builders() -> dict[str, Any]:
    return {
        name: method._source
        for name, method in vars(RapiMethods).items()
        if not name.startswith("_") and name != "raw"
    }


def test_every_write_takes_a_reason_and_keyword_only_options() -> None:
    for name, builder in _builders().items():
        signature = inspect.signature(builder)
        for param in signature.parameters.values():
            if param.default is not inspect.Parameter.empty:
                assert param.kind is param.KEYWORD_ONLY, f"{name}({param.name}) is positional"
        if name.startswith(("get_", "list_", "query", "wait_")) or name == "cancel_job":
            continue
        assert "reason" in signature.parameters, f"{name} takes no reason"


def test_every_write_with_a_reason_sends_it_as_the_reason_query_parameter() -> None:
    required: dict[str, Any] = {
        "add_cluster_tags": (["t"],),
        "delete_cluster_tags": (["t"],),
        "rename_instance": ("x", "y"),
        "grow_instance_disk": ("x", 0, 1),
        "set_node_role": ("x", "drained"),
        "rename_group": ("x", "y"),
        "assign_group_nodes": ("x", ["n"]),
        "rename_network": ("x", "y"),
        "create_network": ("x", "10.0.0.0/24"),
        "connect_network": ("x", "g"),
        "disconnect_network": ("x", "g"),
    }
    keywords: dict[str, dict[str, Any]] = {
        "create_instance": {"disk_template": "plain", "disks": []},
        "connect_network": {"mode": "bridged", "link": "br0"},
    }
    for name, builder in _builders().items():
        params = inspect.signature(builder).parameters
        if "reason" not in params or name in ("list_os", "list_os_bulk"):
            continue
        args = required.get(name) or tuple(
            "x" for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD
        )
        extra = {"a": 1} if any(p.kind is p.VAR_KEYWORD for p in params.values()) else {}
        if name.endswith("_tags") and name not in required:
            args = ("x", ["t"])
        call = builder(*args, reason="gwm:op:1", **keywords.get(name, {}), **extra)
        if name == "reinstall_instance":
            # rlib2 takes no reason here and rejects a body with a query string.
            assert ("reason", "gwm:op:1") not in call.request.query
            continue
        assert ("reason", "gwm:op:1") in call.request.query, name
        assert call.request.creates_job and not call.request.idempotent


def test_node_migration_with_a_reason_cannot_also_send_a_body() -> None:
    with pytest.raises(ValueError, match="reason"):
        nodes.migrate_node("n1", target_node="n2", reason="r")


def test_argument_mistakes_are_caught_before_sending() -> None:
    with pytest.raises(ValueError):
        instances.modify_instance("x")
    with pytest.raises(ValueError):
        instances.add_instance_tags("x", [])
    with pytest.raises(ValueError):
        nodes.evacuate_node("n", iallocator="hail", remote_node="n2")
    with pytest.raises(ValueError):
        query.query("node", [])


def _config(**options: Any) -> ClientConfig:
    defaults: dict[str, Any] = {
        "username": None,
        "password": None,
        "timeout": httpx.Timeout(30.0, connect=5.0),
        "transport_given": False,
        "verify": True,
        "ca_file": None,
        "fingerprint": None,
        "check_hostname": True,
        "retries": 2,
        "retry_backoff": 0.5,
        "retry_backoff_max": 8.0,
        "headers": None,
    }
    return ClientConfig("https://cluster:5080", **{**defaults, **options})


def test_bodies_are_json_with_the_content_type_and_bodyless_requests_have_none() -> None:
    config = _config()
    with httpx.Client(base_url="https://cluster:5080") as http:
        with_body = config.build(http, nodes.set_node_role("n1", "offline"))
        assert with_body.headers["content-type"] == "application/json"
        assert with_body.content == b'"offline"'
        assert str(with_body.url) == "https://cluster:5080/2/nodes/n1/role"
        without = config.build(http, instances.startup_instance("web1", force=True))
        assert "content-type" not in without.headers
        assert without.content == b""
        assert str(without.url) == "https://cluster:5080/2/instances/web1/startup?force=1"


def test_job_wait_gets_a_read_timeout_longer_than_the_server_blocks() -> None:
    config = _config(timeout=httpx.Timeout(5.0))
    wait = config.timeout_for(jobs.wait_for_job_change(1).request)
    assert wait.read is not None and wait.read > 10
    assert wait.connect == 5.0
    assert config.timeout_for(jobs.get_job(1).request).read == 5.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("cluster", "https://cluster:5080"),
        ("cluster:5081", "https://cluster:5081"),
        ("https://cluster:5080/", "https://cluster:5080"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_base_url(given: str, expected: str) -> None:
    assert str(normalize_base_url(given)).rstrip("/") == expected


@pytest.mark.parametrize("bad", ["ftp://cluster", "https://", ""])
def test_bad_base_url(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_base_url(bad)


def test_conflicting_tls_options_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        _config(ca_file="ca.pem", fingerprint="ab" * 32)
    with pytest.raises(ValueError, match="verify=False"):
        _config(verify=False, ca_file="ca.pem")
    with pytest.raises(ValueError, match="transport"):
        _config(fingerprint="ab" * 32, transport_given=True)
    with pytest.raises(ValueError, match="username and password"):
        _config(username="u")


def test_raw_call_for_anything_else() -> None:
    call = raw_call("put", "/2/instances/x/export", query={"mode": "local"}, body={"a": 1})
    assert sent(call) == ("PUT", "/2/instances/x/export", [("mode", "local")], {"a": 1})
    assert call.request.creates_job
