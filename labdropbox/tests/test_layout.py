"""The shape of the code, read from the source: packages import each other in one direction, and
no production module grows past what one reading takes in."""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "labdropbox",
    "accounts",
    "metrics",
    "traces",
    "files",
    "dav",
    "web",
    "testing",
    "bench",
)
# Shared test and benchmark machinery: it may use anything, and production code never uses it.
TOOLS = {"testing", "bench"}
# The project's entry points assemble the apps (the URLconf, the WSGI application): they import
# every app and nothing imports them, so they are no part of the graph between packages.
ENTRY_POINTS = {"labdropbox.urls", "labdropbox.wsgi"}
MAX_LINES = 300
# The settings are one flat list read top to bottom, as Django keeps them: cut in two, they would
# be a second settings system. Everything else is held to MAX_LINES.
LONGER_ALLOWED = {"labdropbox.settings"}


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the packages, by dotted name, without the test suites."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            if "tests" in relative.parts or "node_modules" in relative.parts:
                continue
            name = ".".join(relative.parts).removesuffix(".__init__")
            yield name, path


def imported_modules(path: Path) -> Iterator[tuple[str, int]]:
    """The absolute modules a source file imports anywhere in it, with their line numbers."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def package_imports() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where: `module:line` of each import."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in modules():
        if name in ENTRY_POINTS:
            continue
        source = name.split(".")[0]
        for target, line in imported_modules(path):
            package = target.split(".")[0]
            if package in PACKAGES and package != source:
                edges[source, package].append(f"{name}:{line}")
    return edges


def find_cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    """A cycle of the directed graph, as the packages along it, or None."""
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", path.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == "open":
                return [*path[path.index(successor) :], successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        state[node], _ = "done", path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_packages_import_each_other_in_one_direction() -> None:
    edges = package_imports()
    cycle = find_cycle(set(edges))
    steps = list(itertools.pairwise(cycle or []))
    where = [f"{a} -> {b}: {', '.join(edges[a, b][:3])}" for a, b in steps]
    assert cycle is None, "packages import each other in a circle:\n" + "\n".join(where)


def test_production_code_never_imports_the_test_machinery() -> None:
    edges = package_imports()
    leaks = {
        edge: where for edge, where in edges.items() if edge[1] in TOOLS and edge[0] not in TOOLS
    }
    assert leaks == {}


def test_no_production_module_imports_an_entry_point() -> None:
    importers = [
        f"{name} imports {target}"
        for name, path in modules()
        if name.split(".")[0] not in TOOLS
        for target, _ in imported_modules(path)
        if target in ENTRY_POINTS
    ]
    assert importers == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == ["a", "b", "c", "a"]
    assert find_cycle({("a", "b"), ("b", "c"), ("a", "c")}) is None


def test_no_production_module_is_longer_than_one_reading() -> None:
    long = {
        name: length
        for name, path in modules()
        if name.split(".")[0] not in TOOLS
        and name not in LONGER_ALLOWED
        and ".migrations." not in f".{name}."
        and (length := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
