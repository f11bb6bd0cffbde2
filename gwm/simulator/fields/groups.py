"""The node group query fields, in luxid's order."""

from __future__ import annotations

from typing import Any

from gwm.simulator.fields.base import Ctx, FieldDef, attr, common_fields, computed
from gwm.simulator.state import Group, Node, nice_sort_key


def group_nodes(c: Ctx, g: Group) -> list[Node]:
    return [n for n in c.state.sorted_nodes() if n.group_uuid == g.uuid]


def _pinst(c: Ctx, g: Group) -> list[str]:
    return [name for n in group_nodes(c, g) for name in c.pinst(n)]


# (parameters, title, doc, title and doc of the group's own): merged are the cluster's
# under the group's
PARAMETERS = [
    (
        "ipolicy",
        "InstancePolicy",
        "Instance policy limitations (merged)",
        "CustomInstancePolicy",
        "Custom instance policy limitations",
    ),
    (
        "diskparams",
        "DiskParameters",
        "Disk parameters (merged)",
        "CustomDiskParameters",
        "Custom disk parameters",
    ),
    ("ndparams", "NDParams", "Node parameters", "CustomNDParams", "Custom node parameters"),
]


def _parameters(key: str, title: str, doc: str, own_title: str, own_doc: str) -> list[FieldDef]:
    def merged(c: Ctx, g: Group) -> dict[str, Any]:
        return {**c.state.info[key], **getattr(g, key)}

    return [
        computed(key, title, "other", doc, merged),
        computed(f"custom_{key}", own_title, "other", own_doc, lambda c, g: dict(getattr(g, key))),
    ]


def group_fields() -> list[FieldDef]:
    f = computed
    return [
        attr("alloc_policy", "AllocPolicy", "text", "Allocation policy for group"),
        attr("name", "Group", "text", "Group name"),
        f("node_cnt", "Nodes", "number", "Number of nodes", lambda c, g: len(group_nodes(c, g))),
        f(
            "node_list",
            "NodeList",
            "other",
            "List of nodes",
            lambda c, g: [n.name for n in group_nodes(c, g)],
        ),
        f(
            "pinst_cnt",
            "Instances",
            "number",
            "Number of primary instances",
            lambda c, g: len(_pinst(c, g)),
        ),
        f(
            "pinst_list",
            "InstanceList",
            "other",
            "List of primary instances",
            lambda c, g: sorted(_pinst(c, g), key=nice_sort_key),
        ),
        *[fd for row in PARAMETERS for fd in _parameters(*row)],
        f(
            "networks",
            "Networks",
            "other",
            "Node group networks",
            lambda c, g: [c.state.network_by_uuid(u).name for u in g.networks],
        ),
        *common_fields("Group"),
    ]
