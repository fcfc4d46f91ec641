"""The harness's shape, checked: floors that import only downwards, no import circle anywhere in
it (type-only and late imports count: a crossing or a circle through them is still a tangle), no
module over 400 lines, and the harness and the bundled exporter never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every module named by an import anywhere in the file (top level, functions, TYPE_CHECKING)."""
    named: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
    return named


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


# The floors, ground first: a module may import its own floor and the floors below it, never one
# above (ARCHITECTURE.md, "Floors"). Folders are floors; three modules at the root are the ground.
FLOORS = ("ground", "provision", "infra", "services", "report", "model", "backends", "judge", "checks",
          "rig", "steps", "catalogue", "play", "search", "cli")
# Public faces: stable names for scenario authors and teams. They may import any floor; no module
# inside the harness imports them (a floor that did would reach up through the face).
FACES = ("harness.scenario",)


GROUND = ("harness", "harness.errors", "harness.inputs", "harness.paths")


def _floor(module: str) -> str:
    return "ground" if module in GROUND else module.split(".")[1]


def _upward_imports(modules: dict[str, Path]) -> list[str]:
    rank = {floor: n for n, floor in enumerate(FLOORS)}
    crossings = []
    for name, path in modules.items():
        if name in FACES:
            continue
        for target in sorted(_imports(path, name)):
            if target in FACES:
                crossings.append(f"{name} imports the face {target}")
            elif target in modules and rank[_floor(target)] > rank[_floor(name)]:
                crossings.append(f"{name} ({_floor(name)}) imports {target} ({_floor(target)})")
    return crossings


def test_every_module_lives_on_a_floor() -> None:
    homeless = {name for name in _modules("harness") if name not in FACES and _floor(name) not in FLOORS}
    assert homeless == set(), f"give these a floor (a folder in FLOORS): {sorted(homeless)}"


def test_floors_import_only_downwards() -> None:
    assert _upward_imports(_modules("harness")) == []


def test_an_upward_import_is_seen(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("from harness.play.run import Run\n")
    (tmp_path / "face.py").write_text("from harness.scenario import Scenario\n")
    (tmp_path / "down.py").write_text("from harness.infra.stack import Stack\n")
    modules = {"harness.model.x": tmp_path / "model.py", "harness.judge.y": tmp_path / "face.py",
               "harness.play.z": tmp_path / "down.py", "harness.play.run": tmp_path / "down.py",
               "harness.infra.stack": tmp_path / "down.py", "harness.scenario": tmp_path / "down.py"}
    assert _upward_imports(modules) == ["harness.model.x (model) imports harness.play.run (play)",
                                        "harness.judge.y imports the face harness.scenario"]


def test_the_harness_has_no_import_circle() -> None:
    modules = _modules("harness")
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}
    assert _circles(graph) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", ["harness"])
def test_no_module_is_over_the_limit(package: str) -> None:
    long = {name: n for name, path in _modules(package).items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by what they do: {long}"


def test_the_harness_and_the_exporter_never_import_each_other() -> None:
    for package, other in (("harness", "exporter"), ("exporter", "harness")):
        for name, path in _modules(package).items():
            crossing = {m for m in _imports(path, name) if m == other or m.startswith(f"{other}.")}
            assert not crossing, f"{name} imports {sorted(crossing)}"
