"""What one caller holds: their role bindings (their own and their groups'), narrowed by
the token they came with. Computed once per request, in one query, then asked in memory.

Scopes nest: a global binding holds on every cluster; a cluster binding on the
cluster and everything in it; an instance binding on one instance (by name); a
tag binding on the instances of one cluster that carry the tag. A superuser
holds every verb everywhere. A token narrows all of it: a read-only token keeps
only ``view``; a token limited to named clusters holds nothing elsewhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db.models import Q

from gwm.accounts.models import ApiToken, RoleBinding, Scope
from gwm.clusters.models import Cluster

_GRANTS = "_gwm_grants"  # where a User instance keeps its Grants for this request
_TOKEN = "_gwm_token"  # the token the caller authenticated with, if any


@dataclass(frozen=True)
class Grant:
    """One binding as it applies: which verbs, where, and through whom."""

    binding_id: int | None  # None: the superuser flag
    role: str
    verbs: frozenset[str]
    scope: str
    cluster_id: int | None = None
    instance: str = ""
    tag: str = ""
    group: str = ""  # the group it came through, "" when bound to the user

    def describe(self) -> str:
        if self.binding_id is None:
            return "superuser"
        where = {
            Scope.GLOBAL: "global",
            Scope.CLUSTER: "cluster",
            Scope.INSTANCE: f"instance {self.instance}",
            Scope.TAG: f"tag {self.tag}",
        }[Scope(self.scope)]
        via = f" via group {self.group}" if self.group else ""
        return f"role {self.role} ({where}){via}"


SUPERUSER = Grant(None, "superuser", frozenset(), Scope.GLOBAL)


def attach_token(user: User, token: ApiToken) -> None:
    """Remember which token ``user`` (this request's instance of it) came with."""
    user.__dict__[_TOKEN] = token
    user.__dict__.pop(_GRANTS, None)


def token_of(user: User) -> ApiToken | None:
    token = user.__dict__.get(_TOKEN)
    return token if isinstance(token, ApiToken) else None


@dataclass
class Grants:
    user: User
    grants: list[Grant]
    superuser: bool = False
    read_only: bool = False
    # The token's clusters (ids), or None when the token is not limited to some.
    token_clusters: frozenset[int] | None = None
    _by_verb: dict[str, list[Grant]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, user: User) -> Grants:
        cached = user.__dict__.get(_GRANTS)
        if isinstance(cached, Grants):
            return cached
        grants = cls._load(user)
        user.__dict__[_GRANTS] = grants
        return grants

    @classmethod
    def _load(cls, user: User) -> Grants:
        token = token_of(user)
        token_clusters = None
        if token is not None and token.clusters:
            token_clusters = frozenset(
                Cluster.objects.filter(name__in=token.clusters).values_list("pk", flat=True)
            )
        read_only = token is not None and token.read_only
        if not user.is_active:
            return cls(user, [], read_only=read_only, token_clusters=frozenset())
        if user.is_superuser:
            return cls(user, [], superuser=True, read_only=read_only, token_clusters=token_clusters)
        # Tuples, not model instances: a caller may have a thousand bindings, and this
        # runs on every request (BENCHMARKS.md, permission filtering). The group subquery
        # keeps to the indexes; a join through the membership table would not.
        rows = RoleBinding.objects.filter(
            Q(user=user) | Q(group_id__in=user.groups.values("pk"))
        ).values_list(
            "pk",
            "role__name",
            "role__verbs",
            "scope",
            "cluster_id",
            "instance",
            "tag",
            "group__name",
        )
        verbs: dict[str, frozenset[str]] = {}  # one set per role, shared by its bindings
        grants = [
            Grant(
                pk,
                role,
                verbs.setdefault(role, frozenset(role_verbs)),
                scope,
                cluster_id,
                instance,
                tag,
                group or "",
            )
            for pk, role, role_verbs, scope, cluster_id, instance, tag, group in rows
        ]
        return cls(user, grants, read_only=read_only, token_clusters=token_clusters)

    # -- asking ----------------------------------------------------------------------

    def _holding(self, verb: str) -> list[Grant]:
        if verb not in self._by_verb:
            if verb == "view":  # any binding lets its holder see what it applies to
                self._by_verb[verb] = list(self.grants)
            elif self.read_only:
                self._by_verb[verb] = []
            else:
                self._by_verb[verb] = [g for g in self.grants if verb in g.verbs]
        return self._by_verb[verb]

    def _in_token(self, cluster_id: int | None) -> bool:
        return self.token_clusters is None or cluster_id in self.token_clusters

    def grant_for(
        self,
        verb: str,
        cluster_id: int | None,
        instance: str | None = None,
        tags: Iterable[str] = (),
    ) -> Grant | None:
        """The grant that lets the caller do ``verb`` there (cluster None: globally), or None."""
        if cluster_id is None and self.token_clusters is not None:
            return None
        if not self._in_token(cluster_id):
            return None
        if self.read_only and verb != "view":
            return None
        if self.superuser:
            return SUPERUSER
        tag_set = set(tags)
        for grant in self._holding(verb):
            if grant.scope == Scope.GLOBAL:
                return grant
            if cluster_id is None or grant.cluster_id != cluster_id:
                continue
            if grant.scope == Scope.CLUSTER:
                return grant
            if (
                instance is not None
                and grant.scope == Scope.INSTANCE
                and grant.instance == instance
            ):
                return grant
            if instance is not None and grant.scope == Scope.TAG and grant.tag in tag_set:
                return grant
        return None

    def verbs_at(
        self, cluster_id: int | None, instance: str | None = None, tags: Iterable[str] = ()
    ) -> set[str]:
        from gwm.accounts.verbs import VERBS

        tags = list(tags)
        return {v for v in VERBS if self.grant_for(v, cluster_id, instance, tags) is not None}

    def everywhere(self, verb: str) -> bool:
        """Whether ``verb`` holds on every cluster (so a list needs no filter)."""
        if self.token_clusters is not None or (self.read_only and verb != "view"):
            return False
        return self.superuser or any(g.scope == Scope.GLOBAL for g in self._holding(verb))

    def cluster_ids(self, verb: str) -> set[int] | None:
        """The clusters where ``verb`` holds cluster-wide; None: all of them."""
        if self.everywhere(verb):
            return None
        if self.read_only and verb != "view":
            return set()
        if self.superuser or any(g.scope == Scope.GLOBAL for g in self._holding(verb)):
            return set(self.token_clusters or ())
        return {
            g.cluster_id
            for g in self._holding(verb)
            if g.scope == Scope.CLUSTER
            and g.cluster_id is not None
            and self._in_token(g.cluster_id)
        }

    def instance_refs(self, verb: str) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
        """Where ``verb`` holds on single instances: names and tags, by cluster id."""
        names: dict[int, set[str]] = defaultdict(set)
        tags: dict[int, set[str]] = defaultdict(set)
        for g in self._holding(verb):
            if g.cluster_id is None or not self._in_token(g.cluster_id):
                continue
            if g.scope == Scope.INSTANCE:
                names[g.cluster_id].add(g.instance)
            elif g.scope == Scope.TAG:
                tags[g.cluster_id].add(g.tag)
        return names, tags

    def visible_cluster_ids(self) -> set[int] | None:
        """Clusters the caller sees at all: any binding in them; None: all."""
        if self.everywhere("view"):
            return None
        ids = self.cluster_ids("view") or set()
        names, tags = self.instance_refs("view")
        return ids | set(names) | set(tags)
