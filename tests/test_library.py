"""The library without pytest, and the registry as the one list of benchmarks (everything else derives from it)."""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
import yaml

from nanoeval.benchmark import STRATEGIES, Benchmark, Options
from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config_files import load_task
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl

NAMES = list(BENCHMARKS)


def test_a_task_runs_end_to_end_through_the_library_alone(tiny_lm, tmp_path):
    """session -> run_case per case -> finish_task, in a fresh interpreter that never imports pytest."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r")))
    code = f"""
import sys
from pathlib import Path
from nanoeval.journal import journal_path, prepare_report_dir
from nanoeval.pool import ModelPool
from nanoeval.runner import benchmark, finish_task, run_case
from nanoeval.session import open_session

s = open_session(Path({str(ROOT)!r}), {str(cfg)!r}, None)
t = s.tasks[0]
prepare_report_dir(s.dirs[t.name], s.infos[t.name], t.name, fresh=False)
engine = ModelPool().get(t, s.root)
for case in benchmark(t).cases(t, s.root):
    run_case(t, case, s.root, journal_path(s.dirs[t.name], case), engine)
summary, gates = finish_task(t, s.dirs[t.name], s.infos[t.name], None)
assert "pytest" not in sys.modules and "evals" not in sys.modules, sorted(m for m in sys.modules if "test" in m)
print(summary.headline, summary.counts["examples"], sorted(summary.cases["done"]))
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    subjects = mmlu_tiny_config(tiny_lm, tmp_path)["dataset"]["subjects"]
    rows = sum(r["subject"] in subjects for r in read_jsonl(DATA / "mmlu_tiny" / "test.jsonl"))
    assert res.stdout.split()[:2] == ["acc_macro", str(rows)], res.stdout
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["cases"]["complete"] is True
    assert len(read_jsonl(tmp_path / "r" / "predictions.jsonl")) == rows


@pytest.mark.parametrize("name", NAMES)
def test_each_registered_benchmark_is_whole(name, tmp_path):
    """Registered under its own name, a test module in evals/ that hands it over, options of its own that resolve,
    a shipped config that loads."""
    b = BENCHMARKS[name]
    assert isinstance(b, Benchmark) and b.name == name and issubclass(b.options, Options)
    assert b.strategies and set(b.strategies) <= set(STRATEGIES)
    b.options(strategy=b.strategies[0]).resolve()
    module = ROOT / "evals" / f"test_{name}.py"
    tree = ast.parse(module.read_text())
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
    assert any(n.module == f"nanoeval.benchmarks.{name}" and n.names[0].name == "BENCHMARK" for n in imports)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == [f"test_{name}"]
    configs = [p for p in (ROOT / "configs").glob("*.yaml") if yaml.safe_load(p.read_text()).get("task") == name]
    assert configs, f"no config under configs/ for {name}"
    for p in configs:
        assert load_task(p).task == name


def test_nothing_outside_the_benchmarks_names_one():
    """In the library and the plugin, a benchmark's name appears only in the registry (docstrings, comments and
    the benchmarks' own files aside)."""
    files = [p for p in (ROOT / "nanoeval").rglob("*.py") if "benchmarks" not in p.parts]
    files.append(ROOT / "evals" / "plugin.py")
    for path in files:
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(
            n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and n.body and isinstance(
            n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings else node.id if isinstance(node, ast.Name) else \
                node.attr if isinstance(node, ast.Attribute) else None
            words = set(re.findall(r"[a-z0-9_]+", text.lower())) if text else set()  # whole identifiers only
            assert not words & set(NAMES), (path, text)


def test_cli_lists_the_benchmarks_and_their_options():
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "benchmarks"], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    for name, b in BENCHMARKS.items():
        assert f"{name}: {b.doc}" in res.stdout
        assert all(f"{k}=" in res.stdout for k in b.options.keys())


@pytest.mark.parametrize("name", NAMES)
def test_null_options_mean_the_benchmarks_defaults(name, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"task": name, "model": {"path": "m"},
                                 "scoring": {"strategy": None, "max_new_tokens": None}}))
    s = load_task(p).scoring
    assert s.strategy == BENCHMARKS[name].strategies[0] and isinstance(s.max_new_tokens, int) and s.max_new_tokens >= 1


def test_merge_refuses_a_run_json_of_another_version_in_one_line(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    assert run_evals(mmlu_tiny_config(tiny_lm, out)).ret == 0
    info = json.loads((out / "run.json").read_text())
    info["config"]["scoring"]["setting"] = "vision"  # a key this version's MMLU options do not have
    (out / "run.json").write_text(json.dumps(info))
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(out), "--out", str(tmp_path / "m")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"{out / 'run.json'}: config of task 'mmlu': written by another version of NanoEval (" in res.stderr
    assert not (tmp_path / "m").exists()
