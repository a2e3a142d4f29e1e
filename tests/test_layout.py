"""The layout keeps its promises: the pure parts import no I/O, and no two modules need each
other (an import cycle is a sign that one job is split across two files)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "corsproxy"
PURE = ("config", "cors")  # decisions on plain data: no event loop, no HTTP library
IO_MODULES = {"aiohttp", "asyncio", "multidict", "yarl"}  # the issue: no event loop, no HTTP lib


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports, at any depth (a lazy import is still a dependency)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def corsproxy_graph() -> dict[str, set[str]]:
    return {
        name: {m for m in imports_of(path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if n.split(".")[1:2] and n.split(".")[1] in PURE)
)
def test_a_pure_module_imports_no_io(name: str) -> None:
    io = {m for m in imports_of(MODULES[name]) if m.split(".")[0] in IO_MODULES}
    assert io == set(), f"{name} imports {sorted(io)}; config/ and cors/ stay pure"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_two_modules_import_each_other() -> None:
    graph = {
        n: {m for m in deps if not m.endswith("__init__")} for n, deps in corsproxy_graph().items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_400_lines() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    assert {n: size for n, size in long.items() if size > 400} == {}
