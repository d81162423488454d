"""Layers import downward only: no import cycle between NanoEval's modules, not even through an import inside a
function (type-only imports under `if TYPE_CHECKING:` never run and are left out). The contract (benchmark.py) and
the config dataclasses (config.py) sit below the registry and the runner."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "nanoeval"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def runtime_imports(path: Path, name: str) -> set[str]:
    """The nanoeval modules `path` imports when it runs (anywhere in it), with the packages their import runs."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
        node.test) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names if is_module(f"{node.module}.{a.name}")]
            found |= {node.module, *subs}
    out = set()
    for imported in found:
        parts = imported.split(".")
        if parts[0] == "nanoeval":  # importing a.b.c runs a/__init__ and a/b/__init__ first
            out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if is_module(".".join(parts[:i]))}
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}  # itself and its packages: a
    return out - own  # module imports its siblings while its package is being imported, as Python allows


def graph() -> dict[str, set[str]]:
    return {module_name(p): runtime_imports(p, module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_of_nanoeval_imports_in_a_cycle():
    edges = graph()
    assert len(edges) > 20 and "nanoeval.benchmarks" in edges["nanoeval.runner"], "the scan found the imports"
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_contract_and_the_config_dataclasses_sit_below_the_registry_and_the_runner():
    edges = graph()
    above = {"nanoeval.benchmarks", "nanoeval.runner", "nanoeval.config_files", "nanoeval.session"}
    for low in ("nanoeval.benchmark", "nanoeval.config"):
        reached, todo = set(), [low]
        while todo:  # everything `low` imports, directly or not
            for nxt in edges[todo.pop()] - reached:
                reached.add(nxt)
                todo.append(nxt)
        assert not reached & above, (low, sorted(reached & above))


def test_the_scan_sees_an_import_inside_a_function(tmp_path):
    """The check itself: an import in a function body counts, a TYPE_CHECKING one does not."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nanoeval.engine import Engine\n"
                      "def f():\n    from nanoeval.engine.served import ServedEngine\n")
    assert runtime_imports(source, "m") == {"nanoeval.engine", "nanoeval.engine.served"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
