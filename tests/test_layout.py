"""The package's shape: no import circles, imports only downward, small modules, stated concerns.

The import graph is read with :mod:`ast` (nothing is imported), counting every import
statement wherever it stands: module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "dynst_pyg"

#: Floors from the bottom up (DESIGN.md §3). A module may import its own floor or lower ones.
FLOORS = {
    "_version": 0, "_checks": 0, "linalg": 0, "metrics": 0, "data": 0,
    "datasets": 1, "selection": 1, "models": 1, "sampling": 1,
    "graph": 2, "placement": 2, "viz": 2,
    "scoring": 3, "transforms": 3,
    "training": 4,
    "cli": 5,
}
#: The public face and the ``python -m`` entry: they may import anything, nothing imports them.
FACE = {"dynst_pyg", "dynst_pyg.__main__"}
MAX_LINES = 500


def module_name(path: Path, root: Path = PKG) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """Module -> the package modules it imports.

    ``from a import b`` counts ``a.b`` when it is a module, else ``a``; importing ``a.b`` also
    counts the package ``a`` unless the importer lives inside it (then ``a`` is already loading).
    """
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    pkg = root.name
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # ``from pkg import mod`` depends on ``pkg.mod``; ``from pkg import name`` on ``pkg``
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in files else src for a in node.names]
            own = {".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 2)}
            for t in targets:
                if t != pkg and not t.startswith(pkg + "."):
                    continue
                # importing a.b.c also runs the packages a.b and a (those the importer is not inside)
                parts = t.split(".")
                for dep in {".".join(parts[:i]) for i in range(1, len(parts) + 1)} - own:
                    if dep in files:
                        graph[mod].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or :obj:`None`."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {m: WHITE for m in graph}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        colour[m] = GREY
        stack.append(m)
        for n in sorted(graph[m]):
            if colour[n] == GREY:
                return stack[stack.index(n):] + [n]
            if colour[n] == WHITE:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        colour[m] = BLACK
        return None

    for m in sorted(graph):
        if colour[m] == WHITE:
            found = visit(m)
            if found:
                return found
    return None


def floor(mod: str) -> int:
    return FLOORS[mod.split(".")[1]]


def test_find_cycle_on_tiny_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a2"}, "a2": set(), "x": {"y"}, "y": {"x"}}) == ["x", "y", "x"]


def test_import_graph_counts_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from .b import g\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n")
    g = import_graph(pkg)
    assert g["toy.a"] == {"toy.sub", "toy.sub.b"}
    assert g["toy.sub"] == {"toy.sub.b"}
    assert g["toy.sub.b"] == {"toy.a"}
    assert find_cycle(g) == ["toy.a", "toy.sub", "toy.sub.b", "toy.a"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_every_subpackage_has_a_floor():
    subs = {p.parent.name for p in PKG.glob("*/__init__.py")} | {p.stem for p in PKG.glob("*.py")}
    missing = subs - set(FLOORS) - {"__init__", "__main__"}
    assert not missing, f"subpackages or modules without a floor in FLOORS: {sorted(missing)}"


def test_imports_only_downward():
    upward = []
    for mod, deps in import_graph().items():
        if mod in FACE:
            continue
        for d in deps:
            if d in FACE:
                upward.append(f"{mod} -> {d} (the package face)")
            elif floor(d) > floor(mod):
                upward.append(f"{mod} (floor {floor(mod)}) -> {d} (floor {floor(d)})")
    assert not upward, "imports that run upward:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_module_size(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG.parent)} has {n} lines (limit {MAX_LINES})"


@pytest.mark.parametrize("init", sorted(PKG.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_subpackage_states_its_concern_and_exports(init):
    tree = ast.parse(init.read_text())
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{init.relative_to(PKG.parent)} has no docstring stating its concern"
    assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets)
               for n in tree.body), f"{init.relative_to(PKG.parent)} defines no __all__"
