"""Which events a user may see: the same rules as reading the objects themselves.

An event of a cluster, node, group or network needs ``view`` on the cluster;
an instance's event ``view`` on the instance (a cluster, instance or tag
binding: tags are read from the instance as it is now); a job's event the
job's own submitter or ``view`` on what the job changes; a webhook's event its
owner or a global admin. Grants are loaded once and re-loaded by
:meth:`Visibility.refresh` (streams call it when grants changed anywhere).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.utils import timezone

from gwm.accounts.grants import Grants, attach_token, token_of
from gwm.accounts.models import ApiToken
from gwm.clusters.models import Instance
from gwm.events.models import Change


class Visibility:
    def __init__(self, user: User) -> None:
        self.user = user
        self.grants = Grants.of(user)
        self._tags: dict[tuple[int, str], list[str]] = {}

    def refresh(self) -> bool:
        """Re-read the user, their token and grants; False when they may see nothing any
        more (the token was revoked or expired, or the user deactivated)."""
        token = token_of(self.user)
        user = User.objects.filter(pk=self.user.pk, is_active=True).first()
        if user is None:
            return False
        if token is not None:
            fresh = ApiToken.objects.filter(pk=token.pk).first()
            if fresh is None or not fresh.live(timezone.now()):
                return False
            attach_token(user, fresh)
        self.user = user
        self.grants = Grants.of(user)
        self._tags.clear()
        return True

    def expired(self) -> bool:
        """Whether the caller's token expired since it was checked (streams outlive it)."""
        token = token_of(self.user)
        return token is not None and not token.live(timezone.now())

    def cluster_filter(self) -> set[int] | None:
        """The clusters whose events may be visible at all (None: every cluster)."""
        return self.grants.visible_cluster_ids()

    def prepare(self, changes: Iterable[Change]) -> None:
        """Load, in one query per cluster, the tags of instances whose visibility needs them."""
        tagged = self.grants.instance_refs("view")[1]
        wanted: dict[int, set[str]] = defaultdict(set)
        for change in changes:
            key = (change.cluster_id, change.name)
            if (
                change.resource == "instance"
                and change.cluster_id in tagged
                and key not in self._tags
            ):
                wanted[change.cluster_id].add(change.name)
        for cluster_id, names in wanted.items():
            found = dict(
                Instance.objects.filter(cluster_id=cluster_id, name__in=names).values_list(
                    "name", "tags"
                )
            )
            for name in names:
                self._tags[(cluster_id, name)] = list(found.get(name) or [])

    def sees(self, change: Change) -> bool:
        grants = self.grants
        if change.resource == "webhook":
            return change.user_id == self.user.pk or grants.grant_for("admin", None) is not None
        if change.cluster_id is None:
            return grants.grant_for("view", None) is not None
        if grants.grant_for("view", change.cluster_id) is not None:
            return True
        if change.resource == "instance":
            return self._sees_instance(change.cluster_id, change.name)
        if change.resource == "job":
            if change.user_id == self.user.pk and grants.token_clusters is None:
                return True
            action = str(change.data.get("action") or "")
            target = str(change.data.get("resource") or "")
            if change.user_id == self.user.pk and change.cluster_id in (
                grants.token_clusters or ()
            ):
                return True
            return action.startswith("instance.") and self._sees_instance(change.cluster_id, target)
        return False

    def _sees_instance(self, cluster_id: int, name: str) -> bool:
        if not name:
            return False
        tags = self._tags.get((cluster_id, name), [])
        return self.grants.grant_for("view", cluster_id, name, tags) is not None
