"""What every query field is made of: result statuses, definitions, the context.

A field has a definition (name, title, kind, doc) and a getter that returns
``(result_status, value)`` for one object. Runtime fields are flagged: they
are what makes Ganeti ask the nodes, hence what the cost model charges for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gwm.simulator.derived import instance_maxmem
from gwm.simulator.state import ClusterState, Network, Node

if TYPE_CHECKING:
    from gwm.simulator.jobs import Job

# luxid's result statuses (the first item of every query cell)
RS_NORMAL = 0
RS_UNKNOWN = 1
RS_NODATA = 2
RS_UNAVAIL = 3
RS_OFFLINE = 4

Entry = tuple[int, Any]
Getter = Callable[["Ctx", Any], Entry]


class QueryError(Exception):
    """A luxid error; RAPI answers these with a 500 showing (message, code)."""

    def __init__(self, message: str, code: str = "wrong_input") -> None:
        super().__init__(message)
        self.code = code

    def rapi_message(self) -> str:
        return str((str(self), self.code))


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    title: str
    kind: str  # text, bool, number, unit, timestamp, other, unknown
    doc: str
    getter: Getter
    runtime: bool = False

    def definition(self) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "kind": self.kind, "doc": self.doc}


def ok(value: Any) -> Entry:
    return (RS_NORMAL, value)


UNAVAILABLE: Entry = (RS_UNAVAIL, None)


def attr(name: str, title: str, kind: str, doc: str, attribute: str | None = None) -> FieldDef:
    """A field that is an attribute of the object as it is (``name`` by default)."""
    key = attribute or name
    return FieldDef(name, title, kind, doc, lambda c, o: ok(getattr(o, key)))


def computed(name: str, title: str, kind: str, doc: str, fn: Callable[[Ctx, Any], Any]) -> FieldDef:
    """A field whose value ``fn`` computes; always available."""
    return FieldDef(name, title, kind, doc, lambda c, o: ok(fn(c, o)))


# The names of the fields every configuration object has, as rlib2 lists them last.
COMMON_FIELDS = ["ctime", "mtime", "uuid", "serial_no", "tags"]


def common_fields(kind: str) -> list[FieldDef]:
    """The fields every configuration object has (``state.ConfigObject``)."""
    return [
        attr("ctime", "CTime", "timestamp", "Creation timestamp"),
        attr("mtime", "MTime", "timestamp", "Modification timestamp"),
        attr("uuid", "UUID", "text", f"{kind} UUID"),
        attr(
            "serial_no",
            "SerialNo",
            "number",
            f"{kind} object serial number, incremented on each modification",
        ),
        FieldDef("tags", "Tags", "other", "Tags", lambda c, o: ok(list(o.tags))),
    ]


def by_name(fields: list[FieldDef]) -> dict[str, FieldDef]:
    return {fd.name: fd for fd in fields}


@dataclass
class NodeIndex:
    """Per node uuid: instances (primary, secondary), memory and disk in use."""

    primary: dict[str, list[str]]
    secondary: dict[str, list[str]]
    mem_used: dict[str, int]
    disk_used: dict[str, int]

    @classmethod
    def build(cls, state: ClusterState) -> NodeIndex:
        uuids = list(state._node_by_uuid)
        index = cls({u: [] for u in uuids}, {u: [] for u in uuids}, {}, {})
        for name in state.sorted_instance_names():
            inst = state.instances[name]
            index.primary.setdefault(inst.pnode, []).append(name)
            used = sum(d.size for d in inst.disks)
            index.disk_used[inst.pnode] = index.disk_used.get(inst.pnode, 0) + used
            for s in inst.snodes:
                index.secondary.setdefault(s, []).append(name)
                index.disk_used[s] = index.disk_used.get(s, 0) + used
            if inst.running_on is not None:
                memory = instance_maxmem(state, inst)
                index.mem_used[inst.running_on] = index.mem_used.get(inst.running_on, 0) + memory
        return index


@dataclass
class Ctx:
    """Per-request caches: indexes computed once, used for every row."""

    state: ClusterState
    jobs: dict[int, Job] = field(default_factory=dict)
    _nodes: NodeIndex | None = None
    _net_insts: dict[str, list[str]] | None = None

    @property
    def nodes(self) -> NodeIndex:
        if self._nodes is None:
            self._nodes = NodeIndex.build(self.state)
        return self._nodes

    def pinst(self, node: Node) -> list[str]:
        return self.nodes.primary.get(node.uuid, [])

    def sinst(self, node: Node) -> list[str]:
        return self.nodes.secondary.get(node.uuid, [])

    def mem_used(self, node: Node) -> int:
        return self.nodes.mem_used.get(node.uuid, 0)

    def disk_used(self, node: Node) -> int:
        return self.nodes.disk_used.get(node.uuid, 0)

    def net_instances(self, net: Network) -> list[str]:
        if self._net_insts is None:
            idx: dict[str, list[str]] = {}
            for name in self.state.sorted_instance_names():
                for nic in self.state.instances[name].nics:
                    if nic.network is not None:
                        lst = idx.setdefault(nic.network, [])
                        if not lst or lst[-1] != name:
                            lst.append(name)
            self._net_insts = idx
        return self._net_insts.get(net.uuid, [])


def node_rpc_status(node: Node) -> int | None:
    """Status for runtime fields of a node that cannot be asked, else None."""
    if node.offline:
        return RS_OFFLINE
    if node.unreachable:
        return RS_NODATA
    return None
