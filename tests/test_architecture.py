"""The code's layers, checked from its import statements: no import cycle, dependencies pointing one way.

Rules (issue 25): the library never imports gradio, accelerate or the app (app.py, app_ui/); models
never import metrics, hub, probes, lab or data loaders (a model's loss gets what it needs from
facelab.models or is handed it); the data contract (datasets.py) never imports its loaders; nothing
below the app imports facelab.lab.
Function-level imports count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "facelab"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        name = ".".join(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(path: Path) -> set[str]:
    """Every module name path imports (absolute names; `from a import b` gives a and a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {m for m in _imports(path) if m in mods and m != name} for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_facelab():
    assert _cycles(_graph()) == []


def test_dependencies_point_one_way():
    mods = _modules()
    bad = []
    for name, path in mods.items():
        imported = _imports(path)
        if any(m.split(".")[0] in ("gradio", "accelerate", "app", "app_ui") for m in imported):
            bad.append(f"{name} imports gradio/accelerate/app")
        if name.startswith("facelab.models"):
            bad += [f"{name} -> {m}" for m in imported
                    if m.startswith(("facelab.metrics", "facelab.hub", "facelab.probes", "facelab.lab", "facelab.data"))]
        if name == "facelab.data.datasets":
            bad += [f"{name} -> {m}" for m in imported
                    if m in ("facelab.data.celeba", "facelab.data.ffhq", "facelab.data.hub_dataset", "facelab.data.build")]
        if not name.startswith("facelab.lab"):
            bad += [f"{name} -> {m}" for m in imported if m.startswith("facelab.lab")]
    assert bad == []


def test_top_level_holds_packages_and_a_few_single_purpose_modules():
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert not [m for m in top if m.startswith("lab")]
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} >= {"data", "models", "probes",
                                                                                    "metrics", "lab"}
