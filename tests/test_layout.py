"""The shape of gwm/, as tests: who may import whom, and how big a module may grow.

gwm is layered. Each module has a rank (LAYERS below); a module may import
modules of its own rank or lower, never higher, so a change high up (an HTTP
handler, the admin) can never be needed by the code below it, and the code
below can be read, tested and reused without the edges:

0 foundation     kit, errors, schemas and the RAPI client: no gwm domain at all
1 models         Django models, app configs, domain packages' __init__: the shared tables
2 Ganeti, log    gwm's one door to Ganeti, and the change log (events)
3 identity       accounts: tokens, users, permissions
4 cache          the cluster registry and gwm's cache of Ganeti's objects
5 operations     jobs: the changes gwm asks of Ganeti
6 orchestration  sync rounds, and the registry (unregistering a cluster ends its jobs)
7 edges          HTTP (ninja routers, OpenAPI, health) and the Django admin
8 wiring         settings, URLs, Celery, entry points: may import anything

The simulator (a fake Ganeti for tests and demos) is outside the table: it
shares no code with gwm in either direction, and only wiring starts it.

Besides ranks: no import cycles; tasks are rung by name (Celery finds them,
services ring them after commit), so only wiring imports a ``*.tasks``
module; modules stay small enough to read (SIZE_EXCEPTIONS says who may not).

Imports are read with ``ast``, everywhere in a file (inside functions and
``if TYPE_CHECKING:`` too): a local import is a dependency all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]

# (rank, layer, glob patterns on dotted module names, space-separated). First
# match wins, so the exceptions (the edges inside a domain, the registry above
# operations) come before the general rule of their domain.
LAYERS: list[tuple[int, str, str]] = [
    # Foundation: plain helpers and the RAPI client; they know nothing of gwm's apps.
    (0, "foundation", "gwm.kit gwm.kit.* gwm.errors gwm.schemas gwm.rapi gwm.rapi.*"),
    # Observability: the log context, formats and figures anything may record into;
    # its Celery hooks read a job's row; the scrape endpoint reads every app's tables.
    (0, "foundation", "gwm.observability gwm.observability.context gwm.observability.logs"),
    (0, "foundation", "gwm.observability.metrics gwm.observability.multiprocess"),
    (1, "models", "gwm.observability.apps gwm.observability.tasklog"),
    (7, "edges", "gwm.observability.collector gwm.observability.endpoint"),
    (7, "edges", "gwm.observability.broker"),
    # Wiring: settings, URLs, Celery, entry points; they put everything together.
    (8, "wiring", "gwm.urls gwm.settings gwm.settings_* gwm.celery gwm.asgi gwm.wsgi"),
    (8, "wiring", "gwm.server_cli gwm.startup"),
    (8, "wiring", "gwm.demo gwm.embedded gwm.serving gwm.worker_process gwm.__main__ gwm"),
    # The accounts commands of the server's shell (only gwm.server_cli imports them).
    (8, "wiring", "gwm.accounts.cli gwm.accounts.cli.*"),
    # Edges: HTTP (routers, OpenAPI, health) and every domain's admin; nothing calls them.
    (7, "edges", "gwm.api gwm.openapi gwm.query_guard gwm.audit_writes gwm.health gwm.middleware"),
    (7, "edges", "gwm.*.api gwm.*.api.* gwm.*.api_* gwm.*.admin gwm.*.admin.*"),
    # Models, and a domain package's __init__ (Django imports it while loading apps).
    (1, "models", "gwm.*.models gwm.*.models.* gwm.*.apps gwm.accounts.verbs"),
    (1, "models", "gwm.accounts gwm.clusters gwm.events gwm.operations"),
    # Ganeti's door (every RAPI call goes through it) and the change log.
    # The tracker reads the change log as each user may see it (accounts) and feeds
    # streams and webhooks: above identity, below the edges.
    (6, "tracker", "gwm.events.visibility gwm.events.feed gwm.events.stream gwm.events.stream.*"),
    (6, "tracker", "gwm.events.webhooks gwm.events.webhooks.* gwm.events.tasks"),
    (2, "Ganeti's door and the change log", "gwm.ganeti gwm.ganeti.* gwm.events.*"),
    # Identity: tokens and permissions; used by everything that acts for a user.
    (3, "identity", "gwm.accounts.*"),
    # Orchestration: sync rounds; the registry too (unregistering a cluster ends its jobs).
    (6, "orchestration", "gwm.sync gwm.sync.* gwm.clusters.services.registry"),
    # The cache of Ganeti's objects, and reads and writes of the registry.
    (4, "cache and registry", "gwm.clusters.*"),
    # Operations: jobs, their catalogue and their services.
    (5, "operations", "gwm.operations.*"),
]
WIRING = 8
SIMULATOR = "gwm.simulator"
SIZE_LIMIT, SIMULATOR_SIZE_LIMIT = 400, 900
# path (relative to the repository) -> (limit, why this module may be bigger).
SIZE_EXCEPTIONS: dict[str, tuple[int, str]] = {}


class Edge(NamedTuple):
    source: str
    target: str
    path: str  # relative to the repository: gwm/x.py
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path, package: str = "gwm") -> dict[str, Path]:
    paths = sorted((root / package).rglob("*.py"))
    return {module_name(p, root): p for p in paths if "migrations" not in p.parts}


def collect(root: Path, package: str = "gwm") -> tuple[set[str], list[Edge]]:
    """Every module of ``package`` and every import of one by another."""
    files = source_files(root, package)
    modules = set(files)

    def existing(name: str) -> str | None:  # the longest prefix of name that is a module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for name, path in files.items():
        where = path.relative_to(root).as_posix()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t if t in modules else base for t in targets]
            for target in targets:
                if target == package or target.startswith(package + "."):
                    resolved = existing(target)
                    if resolved:
                        edges.append(Edge(name, resolved, where, node.lineno))
    return modules, sorted(edges, key=lambda e: (e.path, e.line, e.target))


@cache
def tree() -> tuple[set[str], list[Edge]]:
    return collect(ROOT)


def in_simulator(module: str) -> bool:
    return module == SIMULATOR or module.startswith(SIMULATOR + ".")


def rank_of(module: str, layers: Iterable[tuple[int, str, str]] = LAYERS) -> int | None:
    for rank, _, patterns in layers:
        if any(fnmatchcase(module, pattern) for pattern in patterns.split()):
            return rank
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative) of more than one module,
    and modules importing themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    work: list[tuple[str, Iterator[str]]] = []
    found = []

    def push(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        work.append((node, iter(sorted(graph.get(node, ())))))

    for start in sorted(graph):
        if start not in index:
            push(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(sorted(component))
            elif child not in index:
                push(child)
            elif child in stack:
                low[node] = min(low[node], index[child])
    return found


def upward(edges: Iterable[Edge], layers: list[tuple[int, str, str]]) -> list[str]:
    problems = []
    for edge in edges:
        source, target = rank_of(edge.source, layers), rank_of(edge.target, layers)
        if source is not None and target is not None and target > source:
            problems.append(
                f"{edge.where}: {edge.source} (rank {source}) imports {edge.target} (rank {target})"
            )
    return problems


def test_no_import_cycles() -> None:
    _, edges = tree()
    kept = [e for e in edges if e.source != "gwm" and not in_simulator(e.source)]
    kept = [e for e in kept if not in_simulator(e.target)]
    graph: dict[str, set[str]] = {}
    for edge in kept:
        graph.setdefault(edge.source, set()).add(edge.target)
    report = []
    for component in cycles(graph):
        members = set(component)
        lines = [
            f"  {e.where}: {e.source} -> {e.target}"
            for e in kept
            if e.source in members and e.target in members
        ]
        report.append("cycle among " + ", ".join(component) + ":\n" + "\n".join(lines))
    assert not report, "import cycles among gwm modules:\n" + "\n".join(report)


def test_every_module_has_a_layer() -> None:
    modules, _ = tree()
    missing = sorted(m for m in modules if not in_simulator(m) and rank_of(m) is None)
    assert not missing, "add these modules to the layer table (LAYERS): " + ", ".join(missing)


def test_no_upward_imports() -> None:
    _, edges = tree()
    kept = [e for e in edges if not in_simulator(e.source) and not in_simulator(e.target)]
    problems = upward(kept, LAYERS)
    assert not problems, "imports of a higher layer:\n" + "\n".join(problems)


def test_tasks_are_rung_by_name() -> None:
    _, edges = tree()
    problems = [
        f"{e.where}: {e.source} imports {e.target}"
        for e in edges
        if rank_of(e.target, [(0, "tasks", "*.tasks *.tasks.*")]) == 0
        and rank_of(e.source) != WIRING
    ]
    assert not problems, "only wiring imports a tasks module (send tasks by name):\n" + "\n".join(
        problems
    )


def test_simulator_stands_alone() -> None:
    _, edges = tree()
    problems = [
        f"{e.where}: {e.source} imports {e.target}"
        for e in edges
        if in_simulator(e.source) != in_simulator(e.target)
        and not (in_simulator(e.target) and rank_of(e.source) == WIRING)
    ]
    assert not problems, "the simulator shares no code with gwm:\n" + "\n".join(problems)


def test_module_sizes() -> None:
    oversized = []
    for module, path in source_files(ROOT).items():
        where = path.relative_to(ROOT).as_posix()
        limit = SIMULATOR_SIZE_LIMIT if in_simulator(module) else SIZE_LIMIT
        limit = SIZE_EXCEPTIONS.get(where, (limit, ""))[0]
        lines = len(path.read_text().splitlines())
        if lines > limit:
            oversized.append(f"{where}: {lines} lines (limit {limit})")
    assert not oversized, "modules over their size limit:\n" + "\n".join(oversized)


def test_the_guards_bite(tmp_path: Path) -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    chains = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}}
    assert cycles(chains) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
    layers = [(5, "operations", "x.ops"), (6, "orchestration", "x.sync")]
    assert upward([Edge("x.ops", "x.sync", "x/ops.py", 1)], layers) == [
        "x/ops.py:1: x.ops (rank 5) imports x.sync (rank 6)"
    ]
    assert upward([Edge("x.sync", "x.ops", "x/sync.py", 1)], layers) == []
    # Local, TYPE_CHECKING and relative imports are all seen and resolved.
    (tmp_path / "gwm" / "a").mkdir(parents=True)
    for name in ("__init__.py", "b.py", "a/__init__.py", "a/c.py"):
        (tmp_path / "gwm" / name).touch()
    (tmp_path / "gwm" / "a" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gwm.a import c\n"
        "def f():\n    from .. import b\n    from . import x\n"
    )
    _, edges = collect(tmp_path)
    assert edges == [
        Edge("gwm.a.d", "gwm.a.c", "gwm/a/d.py", 3),
        Edge("gwm.a.d", "gwm.b", "gwm/a/d.py", 5),
        Edge("gwm.a.d", "gwm.a", "gwm/a/d.py", 6),
    ]
