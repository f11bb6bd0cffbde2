"""The clusters domain's router: the registry, the cache's reads and the writes on them.

One module per resource path, each with its path's read and writes together
(ninja routes a path to the first router that declares it): clusters,
instances, nodes, groups, networks. Every endpoint needs a token.
"""

from __future__ import annotations

from ninja import Router

from gwm.accounts.auth import caller_auth
from gwm.clusters.api import clusters, groups, instances, networks, nodes

router = Router(auth=caller_auth, tags=["clusters"])
for part in (clusters, nodes, groups, networks, instances):
    router.add_router("", part.router)
