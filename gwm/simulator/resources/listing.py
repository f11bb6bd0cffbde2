"""The list/add and read/remove resources node groups and networks share.

``/2/KIND`` lists the objects (names, or ``?bulk=1`` rows of the classic
fields) and adds one; ``/2/KIND/NAME`` reads and removes one. Both read the
configuration only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gwm.simulator.cost import CallKind, Cost
from gwm.simulator.http import HttpError, Req, Resources, uri_list
from gwm.simulator.query import classic_rows
from gwm.simulator.state import ClusterState, Group, Network, nice_sort_key

Listed = Group | Network


@dataclass(frozen=True)
class Listing:
    plural: str  # in the path: groups, networks
    kind: str  # the query resource: group, network
    fields: list[str]  # what rlib2 asks for in bulk lists and single reads
    name_param: str  # the opcodes' parameter naming the object
    add_op: str
    remove_op: str
    remove_takes_body: bool  # whether DELETE passes its body on to the opcode
    table: Callable[[ClusterState], Mapping[str, Listed]]  # the objects by name

    def objects(self, r: Req) -> Mapping[str, Listed]:
        return self.table(r.sim.state)

    def rows(self, r: Req, objects: list[Listed]) -> list[dict[str, Any]]:
        return classic_rows(r.sim.ctx(), self.kind, self.fields, objects)


def add_listing(table: Resources, listing: Listing) -> None:
    async def list_all(r: Req) -> Any:
        objects = listing.objects(r)
        ordered = [objects[n] for n in sorted(objects, key=nice_sort_key)]
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=len(ordered))
        if r.bulk:
            return listing.rows(r, ordered)
        return uri_list([o.name for o in ordered], f"/2/{listing.plural}/%s", "name")

    async def add(r: Req) -> Any:
        rename = {"name": listing.name_param}
        return r.submit_one(listing.add_op, r.body, {"dry_run": r.dry_run}, rename=rename)

    async def read(r: Req) -> Any:
        obj = listing.objects(r).get(r.items[0])
        if obj is None:
            raise HttpError(404)
        r.cost = Cost(CallKind.CONFIG_QUERY, rows=1)
        return listing.rows(r, [obj])[0]

    async def remove(r: Req) -> Any:
        static = {listing.name_param: r.items[0], "dry_run": r.dry_run}
        body = r.body if listing.remove_takes_body else {}
        return r.submit_one(listing.remove_op, body, static)

    plural = listing.plural
    table.add(f"/2/{plural}", plural, {"GET": list_all, "POST": add})
    table.add(f"/2/{plural}/{{name}}", f"{plural}_name", {"GET": read, "DELETE": remove})
