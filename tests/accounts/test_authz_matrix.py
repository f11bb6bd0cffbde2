"""Every operation of the OpenAPI document, asked by every kind of caller, answers the
status tests/accounts/authz_rules.py says: 401 (with ``WWW-Authenticate``) without a
live token, 404 for what the caller may not see, 403 naming the verb for what it sees
but may not do, and 2xx otherwise, with the change made.

Two simulated clusters, A (``alpha``) and B (``bravo``), are registered and synced.
Every request runs in a savepoint that is rolled back after its answer and its effect
are checked, so one world serves every caller of an operation: nothing one request
writes changes what the next one sees. No worker runs, so accepted jobs stay PENDING.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from gwm.accounts.models import ApiToken, Quota, Role, RoleBinding
from gwm.accounts.services.tokens import token_create, token_revoke
from gwm.accounts.verbs import BUILTIN_ROLES
from gwm.clusters.models import Cluster, Instance, Node
from gwm.operations.models import Job
from gwm.simulator.app import DEFAULT_USERS, Simulator
from gwm.simulator.config import SimConfig
from gwm.simulator.data import generate_cluster
from gwm.simulator.server import Running, serve_in_thread
from tests.accounts.authz_rules import (
    CALLERS,
    COVERED_ELSEWHERE,
    KNOWN_BUGS,
    PLACES,
    RULES,
    Caller,
    Rule,
    cluster_wide,
    holds,
    sees_cluster,
    sees_instance,
    verbs_at,
)
from tests.clusters.helpers import full_sync, register

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
NAMES = {"a": "alpha", "b": "bravo"}
DOMAINS = {"a": "example.test", "b": "bravo.test"}
PASSWORD = "pw-root-123"


@dataclass
class World:
    sims: dict[str, Running]
    clusters: dict[str, Cluster] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # target -> instance name
    nodes: dict[str, str] = field(default_factory=dict)  # cluster label -> a node
    clients: dict[str, Client] = field(default_factory=dict)
    usernames: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, int] = field(default_factory=dict)
    other_token: int = 0
    bindings: dict[str, int] = field(default_factory=dict)  # cluster label -> a binding
    quotas: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)  # target -> a PENDING job


def _serve(label: str) -> Running:
    domain = DOMAINS[label]
    state = generate_cluster(
        nodes=3, instances=6, seed=0, cluster_name=f"c.{domain}", domain=domain
    )
    return serve_in_thread(Simulator(state, SimConfig(time_scale=0.02), dict(DEFAULT_USERS)))


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Running]]:
    """Ganeti keeps nothing of what these tests ask (dry runs, consoles, RAPI checks), so
    the two simulated clusters serve the whole module."""
    started = {label: _serve(label) for label in NAMES}
    yield started
    for running in started.values():
        running.stop()


def _bind(role: str, scope: str, cluster: Cluster | None = None, **who: Any) -> RoleBinding:
    return RoleBinding.objects.create(
        role=Role.objects.get(name=role), scope=scope, cluster=cluster, **who
    )


def _client(world: World, caller: str, user: User | None, **token: Any) -> None:
    headers = {}
    if user is not None:
        row, text = token_create(actor=None, user=user, name=caller, **token)
        world.token_ids[caller] = row.pk
        world.usernames[caller] = user.username
        headers["Authorization"] = f"Bearer {text}"
    world.clients[caller] = Client(headers=headers)


@pytest.fixture
def world(sims: dict[str, Running], settings: Any) -> World:
    # Only the superuser has a password (for the login), and its hash need not be slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    w = World(sims)
    for label, name in NAMES.items():
        cluster = register(sims[label], name=name)
        full_sync(cluster)
        cluster.refresh_from_db()
        w.clusters[label] = cluster
        w.nodes[label] = f"node002.{DOMAINS[label]}"
        running = cluster.instances.filter(status="RUNNING").order_by("name")
        names = list(running.values_list("name", flat=True))
        if label == "a":
            w.instances["a"], w.instances["a2"] = names[0], names[1]
        else:
            w.instances["b"] = names[0]
    a = w.clusters["a"]
    make = User.objects.create_user
    root = User.objects.create_superuser("root", "root@localhost", PASSWORD)
    gadmin, aadmin = make("gadmin"), make("aadmin")
    _bind("admin", "global", user=gadmin)
    _bind("admin", "cluster", a, user=aadmin)
    member = make("member")
    admins = Group.objects.create(name="admins-a")
    admins.user_set.add(member)
    _bind("admin", "cluster", a, group=admins)
    viewer, operator, owner = make("viewer"), make("operator"), make("owner")
    _bind("viewer", "cluster", a, user=viewer)
    _bind("operator", "cluster", a, user=operator)
    _bind("instance-owner", "instance", a, user=owner, instance=w.instances["a"])
    _client(w, "anonymous", None)
    for caller, user, token in (
        ("expired", root, {}),
        ("revoked", root, {}),
        ("superuser", root, {}),
        ("global_admin", gadmin, {}),
        ("read_only_global_admin", gadmin, {"read_only": True}),
        ("read_only_admin_a", aadmin, {"read_only": True}),
        ("token_for_b", gadmin, {"clusters": ["bravo"]}),
        ("admin_a", aadmin, {}),
        ("group_admin_a", member, {}),
        ("viewer_a", viewer, {}),
        ("operator_a", operator, {}),
        ("owner_a", owner, {}),
    ):
        _client(w, caller, user, **token)
    past = timezone.now() - timedelta(hours=1)
    ApiToken.objects.filter(pk=w.token_ids["expired"]).update(expires_at=past)
    token_revoke(ApiToken.objects.get(pk=w.token_ids["revoked"]), actor=None)
    w.other_token = token_create(actor=None, user=root, name="spare")[0].pk
    # What the accounts writes act on.
    victim = make("victim", "victim@localhost")
    make("stranger")
    Group.objects.create(name="spare-group")
    Role.objects.create(name="custom-x", verbs=["view"])
    for label, cluster in w.clusters.items():
        w.bindings[label] = _bind("viewer", "cluster", cluster, user=victim).pk
        w.quotas[label] = Quota.objects.create(user=victim, cluster=cluster, instances=5).pk
    return w


def make_jobs(world: World) -> None:
    """A PENDING job on each target instance, submitted by the superuser."""
    for target, (label, _) in PLACES.items():
        path = f"/api/v1/clusters/{NAMES[label]}/instances/{world.instances[target]}/actions"
        answer = world.clients["superuser"].post(
            path, {"action": "add-tags", "tags": ["held"]}, content_type="application/json"
        )
        assert answer.status_code == 202, answer.content
        world.jobs[target] = answer.json()["id"]


# -- one request ---------------------------------------------------------------------


def _path(world: World, key: str, caller: str, target: str) -> str:
    method, path = key.split(" ", 1)
    label = PLACES.get(target, ("a", ""))[0]
    values = {
        "cluster": NAMES[label],
        "instance": world.instances.get(target, ""),
        "node": world.nodes[label],
        "group": "default",
        "network": "net-backup",
        "job_id": world.jobs.get(target, 0),
        "token_id": world.token_ids.get(caller, 0) if target == "own" else world.other_token,
        "username": world.usernames.get(caller, "-") if target == "own" else "victim",
        "binding_id": world.bindings.get(target, 0),
        "quota_id": world.quotas.get(target, 0),
        "name": "custom-x"
        if path.startswith("/api/v1/roles/")
        else ("admins-a" if method == "GET" else "spare-group"),
    }
    return path.format(**values)


def _query(world: World, key: str, rule: Rule, target: str) -> dict[str, str]:
    query = dict(rule.query)
    if target in PLACES and key in {"GET /api/v1/me/permissions", "GET /api/v1/quotas"}:
        query["cluster"] = NAMES[PLACES[target][0]]
        if key.endswith("permissions"):
            query["instance"] = world.instances[target]
    if key == "GET /api/v1/jobs/wait":
        query["ids"] = str(world.jobs[target])
    return query


def _body(world: World, rule: Rule, caller: str, target: str) -> dict[str, Any] | None:
    label = PLACES.get(target, ("a", ""))[0]
    cluster = NAMES[label]
    if rule.body == "register":
        running = world.sims["a"]
        assert running.cert_path is not None
        return {
            "name": "charlie",
            "rapi_url": running.url,
            "username": "gwm",
            "password": "gwm",
            "tls_ca_pem": running.cert_path.read_text(),
        }
    if rule.body == "token":
        if caller == "anonymous":
            return {"username": "root", "password": PASSWORD}
        return {"description": "mine"}
    if rule.body == "check":
        return {"verb": "power", "cluster": cluster, "instance": world.instances[target]}
    if rule.body == "binding":
        return {"role": "viewer", "user": "stranger", "scope": "cluster", "cluster": cluster}
    if rule.body == "quota":
        return {"user": "victim", "cluster": cluster, "instances": 3}
    if not isinstance(rule.body, dict):
        return None
    if rule.verb == "create_vm":  # the sample's, on this target's cluster
        body = dict(rule.body)
        body["name"] = f"new1.{DOMAINS[label]}"
        body["os"] = next(iter(world.sims[label].sim.state.instances.values())).os
        body["pnode"] = world.nodes[label]
        return body
    return dict(rule.body) or None


def fingerprint() -> tuple[Any, ...]:
    """What any write of these operations would change."""
    return (
        list(Job.objects.order_by("pk").values_list("pk", "status")),
        list(Cluster.objects.order_by("pk").values_list("name", "description", "next_fast_at")),
        list(User.objects.order_by("pk").values_list("username", "email", "is_active")),
        list(Group.objects.order_by("pk").values_list("name")),
        list(User.groups.through.objects.order_by("pk").values_list("user_id", "group_id")),
        list(Role.objects.order_by("pk").values_list("name")),
        list(RoleBinding.objects.order_by("pk").values_list("pk")),
        list(Quota.objects.order_by("pk").values_list("pk", "instances")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(Instance.objects.order_by("pk").values_list("pk", "status")),
    )


def _due(cluster: str) -> bool:
    due = Cluster.objects.get(name=cluster).next_fast_at
    return due is not None and due <= timezone.now()


def _effect(world: World, rule: Rule, caller: Caller, target: str, body: Any) -> bool:
    label = PLACES.get(target, ("a", ""))[0]
    cluster = NAMES[label]
    body_id = world.token_ids.get(caller.name, 0) if target == "own" else world.other_token
    checks: dict[str, Callable[[], bool]] = {
        "job": lambda: Job.objects.filter(pk=body["id"], status="PENDING").exists(),
        "new": lambda: Cluster.objects.filter(name="charlie").exists(),
        "described": lambda: Cluster.objects.get(name=cluster).description == "changed",
        "unregistered": lambda: not Cluster.objects.filter(name=cluster).exists(),
        "due": lambda: _due(cluster),
        "canceled": lambda: Job.objects.get(pk=world.jobs[target]).status == "CANCELED",
        "token": lambda: ApiToken.objects.filter(pk=body["id"]).exists(),
        "revoked": lambda: ApiToken.objects.filter(pk=body_id, revoked_at__isnull=False).exists(),
        "verbs": lambda: body["verbs"] == verbs_at(caller, target),
        "allowed": lambda: body["allowed"] == holds(caller, "power", *PLACES[target]),
        "user": lambda: User.objects.filter(username="newbie").exists(),
        "email": lambda: User.objects.get(username="victim").email == "changed@localhost",
        "user_gone": lambda: not User.objects.filter(username="victim").exists(),
        "group": lambda: Group.objects.filter(name="newgroup").exists(),
        "members": lambda: (
            [u.username for u in Group.objects.get(name="spare-group").user_set.all()] == ["victim"]
        ),
        "group_gone": lambda: not Group.objects.filter(name="spare-group").exists(),
        "role": lambda: Role.objects.filter(name="newrole").exists(),
        "role_gone": lambda: not Role.objects.filter(name="custom-x").exists(),
        "binding": lambda: RoleBinding.objects.filter(
            user__username="stranger", cluster__name=cluster
        ).exists(),
        "binding_gone": lambda: not RoleBinding.objects.filter(pk=world.bindings[target]).exists(),
        "quota": lambda: (
            Quota.objects.get(user__username="victim", cluster__name=cluster).instances == 3
        ),
        "quota_gone": lambda: not Quota.objects.filter(pk=world.quotas[target]).exists(),
    }
    check = checks.get(rule.effect)
    return check is None or bool(check())


class _Undo(Exception):
    """Raised to roll a request's savepoint back."""


def ask(world: World, key: str, caller_name: str, target: str) -> str | None:
    """Send one request in a savepoint that is then rolled back; what went wrong, or None."""
    rule, caller = RULES[key], CALLERS[caller_name]
    expected = rule.expect(caller, target) if caller.authed or rule.public else 401
    method = key.split(" ", 1)[0].lower()
    path = _path(world, key, caller_name, target)
    query = _query(world, key, rule, target)
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = _body(world, rule, caller_name, target)
    client = world.clients[caller_name]
    problem: str | None = None
    try:
        with transaction.atomic():
            before = fingerprint()
            send = getattr(client, method)
            answer = (
                send(path, body, content_type="application/json")
                if body is not None
                else send(path)
            )
            problem = _judge(world, rule, caller, target, expected, answer, before)
            raise _Undo
    except _Undo:
        pass
    return problem and f"{caller_name} {method.upper()} {path}: {problem}"


def _judge(
    world: World,
    rule: Rule,
    caller: Caller,
    target: str,
    expected: int,
    answer: Any,
    before: tuple[Any, ...],
) -> str | None:
    got = answer.status_code
    content = answer.content[:300]
    if got != expected:
        return f"expected {expected}, got {got} {content!r}"
    if got >= 400:
        if answer["Content-Type"] != PROBLEM or answer.json()["status"] != got:
            return f"{got} is not a problem: {content!r}"
        if got == 401 and answer.get("WWW-Authenticate") != "Bearer":
            return "401 without WWW-Authenticate: Bearer"
        if got == 403 and rule.verb and answer.json().get("verb") != rule.verb:
            return f"403 names verb {answer.json().get('verb')!r}, not {rule.verb!r}"
        if fingerprint() != before:
            return f"refused with {got} but wrote"
        return None
    data: Any = answer.json() if answer.content and _is_json(answer) else None
    if rule.effect == "dry" and (fingerprint() != before or not isinstance(data["ok"], bool)):
        return "a dry run kept something or gave no verdict"
    if not _effect(world, rule, caller, target, data):
        return f"{got} but not the change {rule.effect!r}: {content!r}"
    return None


def _is_json(answer: Any) -> bool:
    """JSON, not JSON lines (the export's application/x-ndjson)."""
    return str(answer["Content-Type"]).startswith("application/json")


def _check(world: World, keys: list[str]) -> None:
    failures, known = [], []
    for key in keys:
        for caller in CALLERS:
            for target in RULES[key].targets:
                problem = ask(world, key, caller, target)
                bug = KNOWN_BUGS.get((key, caller, target))
                if bug and problem:
                    known.append(f"{problem} [{bug}]")
                elif bug:
                    failures.append(f"{key} {caller} {target}: a known bug is gone ({bug})")
                elif problem:
                    failures.append(problem)
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures)
    if known:
        pytest.xfail("known bugs: " + "; ".join(known))


# -- the tests -----------------------------------------------------------------------


def _documented(client: Client) -> dict[str, dict[str, Any]]:
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    return {
        f"{method.upper()} {path}": operation
        for path, operations in answer.json()["paths"].items()
        for method, operation in operations.items()
    }


def test_every_operation_has_a_rule_and_every_rule_an_operation(client: Client) -> None:
    documented = _documented(client)
    missing = sorted(set(documented) - set(RULES) - set(COVERED_ELSEWHERE))
    assert not missing, f"operations without a rule in tests/accounts/authz_rules.py: {missing}"
    stale = sorted((set(RULES) | set(COVERED_ELSEWHERE)) - set(documented))
    assert not stale, f"rules for operations the API no longer has: {stale}"


def test_the_document_says_which_operations_need_a_token(client: Client) -> None:
    documented = _documented(client)
    public = {key for key, operation in documented.items() if not operation.get("security")}
    expected = {key for key, rule in RULES.items() if rule.public}
    wrong = public ^ expected
    assert not wrong, f"security in the OpenAPI document differs from what gwm answers: {wrong}"


def test_every_rule_admits_someone_and_refuses_someone() -> None:
    """No rule is vacuous: each lets some caller through and turns some caller away."""
    for key, rule in RULES.items():
        for target in rule.targets:
            answers = {
                rule.expect(c, target) if c.authed or rule.public else 401 for c in CALLERS.values()
            }
            assert any(a < 300 for a in answers), (key, target, answers)
            assert any(a >= 400 for a in answers), (key, target, answers)


def test_the_documents_and_health_are_public(client: Client) -> None:
    for path in ("/api/v1/openapi.json", "/api/v1/docs", "/healthz"):
        assert client.get(path).status_code == 200, path


def _area(key: str) -> str:
    """Operations are checked in groups, one world each (a world takes seconds to make)."""
    path = key.split(" ", 1)[1]
    if "/jobs" in path:
        return "jobs"
    if "/instances" in path:
        return "instances"
    if any(part in path for part in ("/nodes", "/groups", "/networks")) and "clusters" in path:
        return "nodes-groups-networks"
    if path == "/api/v1/" or path.startswith("/api/v1/clusters"):
        return "registry"
    return "accounts"


AREAS = sorted({_area(key) for key in RULES})


@pytest.mark.parametrize("area", AREAS)
def test_operations_answer_every_caller_as_the_rules_say(world: World, area: str) -> None:
    if area == "jobs":
        make_jobs(world)
    _check(world, sorted(key for key in RULES if _area(key) == area))


def test_the_builtin_roles_are_what_the_rules_assume() -> None:
    assert BUILTIN_ROLES["viewer"][1] == {"view"}
    assert {"power", "console", "migrate"} <= BUILTIN_ROLES["operator"][1]
    assert "admin" not in BUILTIN_ROLES["instance-owner"][1]


# -- what each caller reads ----------------------------------------------------------

# Callers that do not see everything: what they read must stay inside what they see.
NARROW = [
    name
    for name, c in CALLERS.items()
    if c.authed and not (cluster_wide(c, "a") and cluster_wide(c, "b"))
]


def _seen_instances(world: World, c: Caller) -> dict[str, set[str]]:
    """Cluster label -> the instances ``c`` may see there, by the rules."""
    seen: dict[str, set[str]] = {}
    for label, name in NAMES.items():
        every = set(Instance.objects.filter(cluster__name=name).values_list("name", flat=True))
        if cluster_wide(c, label):
            seen[label] = every
        else:
            seen[label] = {
                world.instances[t]
                for t, (cl, _) in PLACES.items()
                if cl == label and sees_instance(c, t)
            }
    return seen


def _get(client: Client, path: str, texts: list[str]) -> Any:
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.content[:300])
    texts.append(f"{path} {answer.content.decode()}")
    return answer.json()


def _check_cluster_body(c: Caller, body: dict[str, Any], seen: dict[str, set[str]]) -> None:
    label = next(lb for lb, name in NAMES.items() if name == body["name"])
    nodes = Node.objects.filter(cluster__name=body["name"]).count()
    expected = {"nodes": nodes if cluster_wide(c, label) else 0, "instances": len(seen[label])}
    assert body["counts"] == expected, (c.name, body["name"], body["counts"], expected)
    if holds(c, "admin", label):
        assert body["rapi_url"] and body["username"], (c.name, body["name"])
    else:
        blank = (body["rapi_url"], body["username"], body["tls_ca_pem"], body["tls_fingerprint"])
        assert blank == ("", "", None, None), (c.name, body["name"], blank)


@pytest.mark.parametrize("caller", NARROW)
def test_a_narrow_caller_reads_nothing_outside_its_scope(world: World, caller: str) -> None:
    make_jobs(world)
    c, client = CALLERS[caller], world.clients[caller]
    texts: list[str] = []
    seen = _seen_instances(world, c)
    visible = [label for label in NAMES if sees_cluster(c, label)]
    clusters = _get(client, "/api/v1/clusters", texts)["items"]
    assert sorted(b["name"] for b in clusters) == sorted(NAMES[lb] for lb in visible)
    for body in clusters:
        _check_cluster_body(c, body, seen)
    listed = _get(client, "/api/v1/instances", texts)["items"]
    assert {i["name"] for i in listed} == set().union(*seen.values())
    for label in visible:
        base = f"/api/v1/clusters/{NAMES[label]}"
        _check_cluster_body(c, _get(client, base, texts), seen)
        names = {i["name"] for i in _get(client, f"{base}/instances", texts)["items"]}
        assert names == seen[label], (caller, label)
        for name in names:
            _get(client, f"{base}/instances/{name}", texts)
        for kind in ("nodes", "groups", "networks"):
            items = _get(client, f"{base}/{kind}", texts)["items"]
            assert bool(items) == cluster_wide(c, label), (caller, kind)
            for item in items:
                _get(client, f"{base}/{kind}/{item['name']}", texts)
    jobs = _get(client, "/api/v1/jobs", texts)["items"]
    for job in jobs:
        label = next(lb for lb, name in NAMES.items() if name == job["cluster"])
        assert cluster_wide(c, label) or job["resource"]["name"] in seen[label], (caller, job)
        _get(client, f"/api/v1/jobs/{job['id']}", texts)
    mine = {world.jobs[t] for t in PLACES if sees_instance(c, t)}
    assert mine <= {job["id"] for job in jobs}, (caller, mine)
    assert len(mine) < len(world.jobs)  # a narrow caller misses one at least
    for path in ("/me", "/me/quota", "/quotas", "/role-bindings", "/roles", "/auth/tokens"):
        _get(client, f"/api/v1{path}", texts)
    for path in ("/users", "/groups", "/audit"):
        if client.get(f"/api/v1{path}").status_code == 200:
            _get(client, f"/api/v1{path}", texts)
    hidden = {NAMES[lb] for lb in NAMES if lb not in visible}
    for label, name in NAMES.items():
        every = Instance.objects.filter(cluster__name=name).values_list("name", flat=True)
        hidden |= set(every) - seen[label]
        if label not in visible:
            hidden |= set(Node.objects.filter(cluster__name=name).values_list("name", flat=True))
    assert hidden
    leaks = sorted({h for h in hidden for text in texts if h in text})
    where = [text[:120] for text in texts if any(h in text for h in leaks)]
    assert not leaks, f"{caller} reads {leaks} in {where}"


def test_the_etag_of_a_list_depends_on_who_reads_it(world: World) -> None:
    viewer, owner = world.clients["viewer_a"], world.clients["owner_a"]
    everyone = world.clients["read_only_global_admin"]
    for path, wide in (
        ("/api/v1/clusters/alpha/instances", viewer),
        ("/api/v1/instances", everyone),
        ("/api/v1/clusters", everyone),
    ):
        seen_wide, seen_narrow = wide.get(path), owner.get(path)
        assert seen_wide.status_code == seen_narrow.status_code == 200
        assert seen_wide["ETag"] != seen_narrow["ETag"], path
        # The wide reader's ETag is no 304 for the narrow one: it gets its own list.
        again = owner.get(path, headers={"If-None-Match": seen_wide["ETag"]})
        assert again.status_code == 200, path
        assert again.json() == seen_narrow.json()
        assert owner.get(path, headers={"If-None-Match": seen_narrow["ETag"]}).status_code == 304


@pytest.mark.parametrize("caller", ["read_only_global_admin", "token_for_b"])
def test_a_narrowed_token_mints_no_wider_token(world: World, caller: str) -> None:
    """A token asks for a token of its own user: what it gets must not do more than it."""
    client = world.clients[caller]
    answer = client.post(
        "/api/v1/auth/tokens", {"description": "wider"}, content_type="application/json"
    )
    if answer.status_code == 403:
        return
    assert answer.status_code == 201, answer.content
    minted = Client(headers={"Authorization": f"Bearer {answer.json()['token']}"})
    if caller == "read_only_global_admin":
        before = client.patch(
            "/api/v1/clusters/alpha", {"description": "x"}, content_type="application/json"
        )
        assert before.status_code == 403
        after = minted.patch(
            "/api/v1/clusters/alpha", {"description": "x"}, content_type="application/json"
        )
        wider = after.status_code != 403
    else:
        assert client.get("/api/v1/clusters/alpha").status_code == 404
        wider = minted.get("/api/v1/clusters/alpha").status_code != 404
    minted_scope = {k: answer.json()[k] for k in ("read_only", "clusters")}
    assert not wider, f"{caller} minted a wider token: {minted_scope}"
