"""The expected answer of every /api/v1 operation to every kind of caller.

``RULES`` maps "METHOD path" (as in the OpenAPI document) to a :class:`Rule`: the
targets it is tried on and a function ``(caller, target) -> status``. The functions
are written from the permission model as documented (gwm.accounts.grants and
gwm.accounts.permissions), not from the handlers: what a caller holds is described
here by its bindings and its token, and :func:`holds` decides from that alone.

Targets name where a request points: ``"a"`` is cluster A and the instance its
instance owner owns, ``"a2"`` another instance of A, ``"b"`` cluster B and one of its
instances; the accounts side adds ``"own"``/``"other"`` (tokens, users).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gwm.accounts.verbs import BUILTIN_ROLES, VERBS
from gwm.operations.actions import ACTIONS
from tests.write_endpoints import BY_KEY

ALL = frozenset(VERBS)
OPERATOR = BUILTIN_ROLES["operator"][1]
OWNER = BUILTIN_ROLES["instance-owner"][1]

# target -> (cluster label, instance label)
PLACES: dict[str, tuple[str, str]] = {"a": ("a", "a"), "a2": ("a", "a2"), "b": ("b", "b")}


@dataclass(frozen=True)
class Binding:
    scope: str  # global, cluster, instance
    verbs: frozenset[str]
    cluster: str | None = None
    instance: str | None = None


@dataclass(frozen=True)
class Caller:
    """What one caller holds: its bindings (its own and its groups'), narrowed by its token."""

    name: str
    authed: bool = True
    bindings: tuple[Binding, ...] = ()
    read_only: bool = False
    clusters: frozenset[str] | None = None  # the token's clusters; None: not limited
    submitted_jobs: bool = False  # the submitter of the jobs of the world


GLOBAL_ADMIN = (Binding("global", ALL),)
ADMIN_A = (Binding("cluster", ALL, "a"),)
CALLERS: dict[str, Caller] = {
    c.name: c
    for c in (
        Caller("anonymous", authed=False),
        Caller("expired", authed=False),
        Caller("revoked", authed=False),
        Caller("superuser", bindings=GLOBAL_ADMIN, submitted_jobs=True),
        Caller("global_admin", bindings=GLOBAL_ADMIN),
        Caller("read_only_global_admin", bindings=GLOBAL_ADMIN, read_only=True),
        Caller("read_only_admin_a", bindings=ADMIN_A, read_only=True),
        Caller("token_for_b", bindings=GLOBAL_ADMIN, clusters=frozenset({"b"})),
        Caller("admin_a", bindings=ADMIN_A),
        Caller("group_admin_a", bindings=ADMIN_A),
        Caller("viewer_a", bindings=(Binding("cluster", frozenset({"view"}), "a"),)),
        Caller("operator_a", bindings=(Binding("cluster", OPERATOR, "a"),)),
        Caller("owner_a", bindings=(Binding("instance", OWNER, "a", "a"),)),
    )
}


# -- the permission model, from its documentation ------------------------------------


def holds(c: Caller, verb: str, cluster: str | None = None, instance: str | None = None) -> bool:
    """Whether ``c`` may ``verb`` there (cluster None: everywhere, i.e. globally)."""
    if c.clusters is not None and (cluster is None or cluster not in c.clusters):
        return False
    if c.read_only and verb != "view":
        return False
    for b in c.bindings:
        if verb != "view" and verb not in b.verbs:  # any binding lets its holder view
            continue
        if b.scope == "global":
            return True
        if cluster is None or b.cluster != cluster:
            continue
        if b.scope == "cluster" or (b.scope == "instance" and b.instance == instance):
            return True
    return False


def sees_cluster(c: Caller, cluster: str) -> bool:
    """Any binding that applies to the cluster or something in it lets its holder see it."""
    if holds(c, "view", cluster):
        return True
    in_token = c.clusters is None or cluster in c.clusters
    return in_token and any(b.cluster == cluster for b in c.bindings)


def cluster_wide(c: Caller, cluster: str) -> bool:
    return holds(c, "view", cluster)


def sees_instance(c: Caller, target: str) -> bool:
    return holds(c, "view", *PLACES[target])


def global_admin(c: Caller) -> bool:
    return holds(c, "admin")


def admin_somewhere(c: Caller) -> bool:
    return global_admin(c) or any(holds(c, "admin", cl) for cl in ("a", "b"))


def verbs_at(c: Caller, target: str) -> list[str]:
    return sorted(v for v in VERBS if holds(c, v, *PLACES[target]))


# -- rules ---------------------------------------------------------------------------

Expect = Callable[[Caller, str], int]


@dataclass(frozen=True)
class Rule:
    expect: Expect
    targets: tuple[str, ...] = ("-",)
    verb: str | None = None  # the verb a 403 names
    body: Any = None  # a dict, or a function (caller name, target) -> dict, filled by the test
    query: dict[str, str] = field(default_factory=dict)
    public: bool = False  # answers without a token too
    effect: str = ""  # what a 2xx must have changed (checked by the test), by name


def always(status: int) -> Expect:
    return lambda c, t: status


def cluster_read(c: Caller, t: str) -> int:
    return 200 if sees_cluster(c, PLACES[t][0]) else 404


def cluster_object_read(c: Caller, t: str) -> int:
    """A node, group or network: seen through a cluster-wide binding only."""
    cluster = PLACES[t][0]
    return 200 if sees_cluster(c, cluster) and cluster_wide(c, cluster) else 404


def instance_read(c: Caller, t: str) -> int:
    return 200 if sees_cluster(c, PLACES[t][0]) and sees_instance(c, t) else 404


def write(verb: str, kind: str, ok: int) -> Expect:
    """A write on ``kind`` (instance, node, group, network, cluster, or "create": a new
    object in a cluster's collection): 404 unless the caller sees it, 403 unless it holds
    ``verb`` there."""

    def expect(c: Caller, t: str) -> int:
        cluster, instance = PLACES[t]
        if not sees_cluster(c, cluster):
            return 404
        if kind == "instance" and not sees_instance(c, t):
            return 404
        if kind in {"node", "group", "network"} and not cluster_wide(c, cluster):
            return 404
        name = instance if kind == "instance" else None
        return ok if holds(c, verb, cluster, name) else 403

    return expect


def global_only(ok: int) -> Expect:
    return lambda c, t: ok if global_admin(c) else 403


def some_admin(ok: int) -> Expect:
    return lambda c, t: ok if admin_somewhere(c) and not c.read_only else 403


def job_read(c: Caller, t: str) -> int:
    return 200 if c.submitted_jobs or sees_instance(c, t) else 404


def job_cancel(c: Caller, t: str) -> int:
    if job_read(c, t) == 404:
        return 404
    if c.read_only:
        return 403
    return 202 if c.submitted_jobs or holds(c, "tags", *PLACES[t]) else 403


def token_read(ok: int) -> Expect:
    return lambda c, t: ok if t == "own" or global_admin(c) else 404


def user_read(c: Caller, t: str) -> int:
    return 200 if t == "own" or (admin_somewhere(c) and not c.read_only) else 403


def role_create(c: Caller, t: str) -> int:
    # A role is one object for every cluster: an admin somewhere through a binding of
    # its own scope (a token limited to clusters keeps its global binding off).
    if c.read_only:
        return 403
    if global_admin(c):
        return 201
    in_token = c.clusters is None
    return 201 if in_token and any("admin" in b.verbs and b.cluster for b in c.bindings) else 403


def cluster_admin(ok: int) -> Expect:
    def expect(c: Caller, t: str) -> int:
        cluster = PLACES[t][0]
        if not sees_cluster(c, cluster):
            return 404
        return ok if holds(c, "admin", cluster) else 403

    return expect


def binding_delete(c: Caller, t: str) -> int:
    return 204 if holds(c, "admin", PLACES[t][0]) else 404


def audit_read(c: Caller, t: str) -> int:
    return 200 if admin_somewhere(c) else 403


def quotas_read(c: Caller, t: str) -> int:
    return 200 if t == "-" else cluster_admin(200)(c, t)


def token_login(c: Caller, t: str) -> int:
    # Anonymous logs in (no token needed); the others ask for a token of their own
    # with the one they hold, which an expired or revoked one cannot.
    return 201 if c.authed or c.name == "anonymous" else 401


ABC = ("a", "a2", "b")
AB = ("a", "b")
DRY = {"dry_run": "true"}
C = "/api/v1/clusters/{cluster}"
I = f"{C}/instances/{{instance}}"  # noqa: E741


def _op(path: str, resource: str, kind: str, targets: tuple[str, ...]) -> Rule:
    """A Ganeti operation, asked with the request of tests/write_endpoints.py (its dry run
    where it has one); the verb it needs is the action catalogue's."""
    sample = BY_KEY[path]
    body = sample.body or {}
    verbs = {"POST": "create", "PATCH": "modify", "DELETE": "delete"}
    verb = ACTIONS[f"{resource}.{body.get('action') or verbs[sample.method]}"].verb
    ok, query = (200, DRY) if sample.dry_run else (202, {})
    effect = "dry" if sample.dry_run else "job"
    return Rule(write(verb, kind, ok), targets, verb, sample.body, query, effect=effect)


RULES: dict[str, Rule] = {
    "GET /api/v1/": Rule(always(200)),  # it names gwm's version: a token is needed
    # the registry
    "GET /api/v1/clusters": Rule(always(200)),
    "POST /api/v1/clusters": Rule(global_only(201), verb="admin", body="register", effect="new"),
    f"GET {C}": Rule(cluster_read, AB),
    f"PATCH {C}": Rule(
        cluster_admin(200), AB, "admin", {"description": "changed"}, effect="described"
    ),
    f"DELETE {C}": Rule(cluster_admin(204), AB, "admin", effect="unregistered"),
    f"POST {C}/sync": Rule(cluster_admin(202), AB, "admin", effect="due"),
    f"POST {C}/actions": _op(f"POST {C}/actions", "cluster", "cluster", AB),
    # the cache, and its operations
    f"GET {C}/nodes": Rule(cluster_read, AB),
    f"GET {C}/nodes/{{node}}": Rule(cluster_object_read, AB),
    f"POST {C}/nodes/{{node}}/actions": _op(f"POST {C}/nodes/{{node}}/actions", "node", "node", AB),
    f"GET {C}/groups": Rule(cluster_read, AB),
    f"POST {C}/groups": _op(f"POST {C}/groups", "group", "create", AB),
    f"GET {C}/groups/{{group}}": Rule(cluster_object_read, AB),
    f"PATCH {C}/groups/{{group}}": _op(f"PATCH {C}/groups/{{group}}", "group", "group", AB),
    f"DELETE {C}/groups/{{group}}": _op(f"DELETE {C}/groups/{{group}}", "group", "group", AB),
    f"POST {C}/groups/{{group}}/actions": _op(
        f"POST {C}/groups/{{group}}/actions", "group", "group", AB
    ),
    f"GET {C}/networks": Rule(cluster_read, AB),
    f"POST {C}/networks": _op(f"POST {C}/networks", "network", "create", AB),
    f"GET {C}/networks/{{network}}": Rule(cluster_object_read, AB),
    f"PATCH {C}/networks/{{network}}": _op(
        f"PATCH {C}/networks/{{network}}", "network", "network", AB
    ),
    f"DELETE {C}/networks/{{network}}": _op(
        f"DELETE {C}/networks/{{network}}", "network", "network", AB
    ),
    f"POST {C}/networks/{{network}}/actions": _op(
        f"POST {C}/networks/{{network}}/actions", "network", "network", AB
    ),
    "GET /api/v1/instances": Rule(always(200)),
    "GET /api/v1/instances/export": Rule(always(200)),
    f"GET {C}/instances": Rule(cluster_read, AB),
    f"POST {C}/instances": _op(f"POST {C}/instances", "instance", "create", AB),
    f"GET {I}": Rule(instance_read, ABC),
    f"PATCH {I}": _op(f"PATCH {I}", "instance", "instance", ABC),
    f"DELETE {I}": _op(f"DELETE {I}", "instance", "instance", ABC),
    f"POST {I}/actions": _op(f"POST {I}/actions", "instance", "instance", ABC),
    f"GET {I}/console": Rule(write("console", "instance", 200), ABC, "console"),
    # jobs (submitted by the superuser on each target)
    "GET /api/v1/jobs": Rule(always(200)),
    "GET /api/v1/jobs/wait": Rule(job_read, ABC, query={"timeout": "0"}),
    "GET /api/v1/jobs/{job_id}": Rule(job_read, ABC),
    "POST /api/v1/jobs/{job_id}/cancel": Rule(job_cancel, ABC, "tags", effect="canceled"),
    "GET /api/v1/jobs/{job_id}/wait": Rule(job_read, ABC, query={"timeout": "0"}),
    # tokens
    "POST /api/v1/auth/tokens": Rule(token_login, public=True, body="token", effect="token"),
    "GET /api/v1/auth/tokens": Rule(always(200)),
    "GET /api/v1/auth/tokens/{token_id}": Rule(token_read(200), ("own", "other")),
    "DELETE /api/v1/auth/tokens/{token_id}": Rule(
        token_read(204), ("own", "other"), effect="revoked"
    ),
    # the caller
    "GET /api/v1/me": Rule(always(200)),
    "GET /api/v1/me/permissions": Rule(instance_read, ABC, effect="verbs"),
    "POST /api/v1/authz/check": Rule(instance_read, ABC, body="check", effect="allowed"),
    # the directory
    "GET /api/v1/users": Rule(some_admin(200), verb="admin"),
    "POST /api/v1/users": Rule(
        global_only(201),
        verb="admin",
        body={"username": "newbie", "password": "pw-newbie-123"},
        effect="user",
    ),
    "GET /api/v1/users/{username}": Rule(user_read, ("own", "other"), "admin"),
    "PATCH /api/v1/users/{username}": Rule(
        global_only(200), ("other",), "admin", {"email": "changed@localhost"}, effect="email"
    ),
    "DELETE /api/v1/users/{username}": Rule(
        global_only(204), ("other",), "admin", effect="user_gone"
    ),
    "GET /api/v1/groups": Rule(some_admin(200), verb="admin"),
    "POST /api/v1/groups": Rule(
        global_only(201), verb="admin", body={"name": "newgroup"}, effect="group"
    ),
    "GET /api/v1/groups/{name}": Rule(some_admin(200), verb="admin"),
    "PATCH /api/v1/groups/{name}": Rule(
        global_only(200), verb="admin", body={"members": ["victim"]}, effect="members"
    ),
    "DELETE /api/v1/groups/{name}": Rule(global_only(204), verb="admin", effect="group_gone"),
    "GET /api/v1/roles": Rule(always(200)),
    "POST /api/v1/roles": Rule(
        role_create, verb="admin", body={"name": "newrole", "verbs": ["view"]}, effect="role"
    ),
    "DELETE /api/v1/roles/{name}": Rule(global_only(204), verb="admin", effect="role_gone"),
    "GET /api/v1/role-bindings": Rule(always(200)),
    "POST /api/v1/role-bindings": Rule(
        cluster_admin(201), AB, "admin", body="binding", effect="binding"
    ),
    "DELETE /api/v1/role-bindings/{binding_id}": Rule(binding_delete, AB, effect="binding_gone"),
    # audit and quotas
    "GET /api/v1/audit": Rule(audit_read, verb="admin"),
    "GET /api/v1/me/quota": Rule(always(200)),
    "GET /api/v1/quotas": Rule(quotas_read, ("-", "a", "b"), "admin"),
    "PUT /api/v1/quotas": Rule(cluster_admin(200), AB, "admin", body="quota", effect="quota"),
    "DELETE /api/v1/quotas/{quota_id}": Rule(cluster_admin(204), AB, "admin", effect="quota_gone"),
    # the tracker: every caller reads the feed; what is in it is each caller's own
    # (tests/events/test_feed.py proves the scope, event by event)
    "GET /api/v1/changes": Rule(always(200)),
    "GET /api/v1/events/schemas": Rule(always(200)),
}

# Operations whose permissions a suite of their own proves, caller by caller, with the
# state it needs (a receiver, a stream held open, a webhook or hook of someone): each
# names that suite. The matrix leaves them out; the rest of the rules still hold.
COVERED_ELSEWHERE: dict[str, str] = {
    "GET /api/v1/changes/stream": "tests/events/test_stream.py (scope, revocation)",
    "GET /api/v1/events/schemas/{event_type}": "tests/events/test_event_docs.py",
    **{
        f"{method} /api/v1/webhooks{path}": "tests/events/test_webhooks_api.py"
        for method, path in (
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{webhook_id}"),
            ("PATCH", "/{webhook_id}"),
            ("DELETE", "/{webhook_id}"),
            ("GET", "/{webhook_id}/secret"),
            ("POST", "/{webhook_id}/rotate-secret"),
            ("GET", "/{webhook_id}/deliveries"),
            ("GET", "/{webhook_id}/deliveries/{delivery_id}"),
            ("POST", "/{webhook_id}/deliveries/{delivery_id}/redeliver"),
            ("POST", "/{webhook_id}/replay"),
        )
    },
    **{
        f"{method} {path}/hook": "tests/events/test_hooks.py"
        for method in ("GET", "PUT", "DELETE")
        for path in (f"{C}/instances/{{instance}}", f"{C}/nodes/{{node}}", "/api/v1/jobs/{job_id}")
    },
}

# Cases where gwm answers otherwise than these rules: (key, caller, target) -> why. The
# test xfails on them strictly (a fix fails it until removed). Empty: gwm follows them.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}
