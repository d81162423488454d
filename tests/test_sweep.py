"""Checkpoint sweeps (`model.checkpoints`, config.expand_checkpoints): `pytest evals/` runs every checkpoint x task
as its own task (report dir `step-N` under the task's, own fingerprint and resume), writes curves.csv / curves.png,
scores only a checkpoint that landed since the last run, keeps each checkpoint on one xdist worker, and
`nanoeval curves` redraws several runs."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nanoeval.config import ConfigError, expand_checkpoints
from nanoeval.config_files import load_suite
from tests.conftest import DATA, ROOT, read_jsonl

TASKS = [
    {"name": "arc_easy", "task": "arc", "scoring": {"num_shards": 2}, "dataset": {"name": "ARC-Easy", "data_files": {
        "test": str(DATA / "arc" / "ARC-Easy" / "test.jsonl"), "train": str(DATA / "arc" / "ARC-Easy" / "train.jsonl")}}},
    {"name": "winogrande", "task": "winogrande", "scoring": {"num_shards": 2}, "dataset": {"data_files": {
        "validation": str(DATA / "winogrande" / "validation.jsonl")}}},
]


def save_checkpoints(tiny_lm: Path, runs: Path, steps) -> None:
    """Each step a little further from the tiny model's weights, saved as the trainer would: runs/step-N."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_lm), AutoTokenizer.from_pretrained(tiny_lm)
    for step in steps:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(step + p.numel())) * 0.02)
        model.save_pretrained(runs / f"step-{step}")
        tok.save_pretrained(runs / f"step-{step}")


def sweep(runs: Path, out: Path) -> dict:
    return {"suite": "sweep", "sample": 24, "report_dir": str(out), "model": {"checkpoints": f"{runs}/step-*"},
            "tasks": TASKS}


def scored(out: Path, task: str, step: int) -> int:
    return json.loads((out / task / f"step-{step}" / "summary.json").read_text())["timing"]["examples_scored"]


def test_a_sweep_writes_curves_and_a_new_checkpoint_is_all_a_rerun_scores(tiny_lm, tmp_path, run_evals):
    runs, out = tmp_path / "runs", tmp_path / "out"
    save_checkpoints(tiny_lm, runs, (100, 200, 300, 400))
    result = run_evals(sweep(runs, out), suite=True)
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes()["passed"] == 16  # 4 checkpoints x 2 tasks x 2 shards
    with open(out / "curves.csv") as f:
        table = list(csv.DictReader(f))
    steps = sorted({int(r["step"]) for r in table})
    assert steps == [100, 200, 300, 400]
    for step in steps:
        for task, head in (("arc_easy", "acc_norm"), ("winogrande", "acc")):
            row = next(r for r in table if int(r["step"]) == step and r["task"] == task and r["metric"] == head)
            summary = json.loads((out / task / f"step-{step}" / "summary.json").read_text())
            assert float(row["value"]) == summary["metrics"][head] and int(row["n"]) == 24
            assert [float(row["ci95_low"]), float(row["ci95_high"])] == summary["ci95"][head]
            assert row["checkpoint"] == str(runs / f"step-{step}")
        assert any(r["task"] == "suite" and r["metric"] == "macro_average" and int(r["step"]) == step for r in table)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lls = {s: read_jsonl(out / "arc_easy" / f"step-{s}" / "predictions.jsonl")[0]["lls"] for s in steps}
    assert len({json.dumps(v) for v in lls.values()}) == 4  # each checkpoint's own weights

    save_checkpoints(tiny_lm, runs, (500,))  # a new checkpoint lands
    again = run_evals(sweep(runs, out), suite=True)
    assert again.ret == 0, again.stdout.str()
    for task in ("arc_easy", "winogrande"):
        assert [scored(out, task, s) for s in (100, 200, 300, 400, 500)] == [0, 0, 0, 0, 24]
        for s in (100, 200, 300, 400):  # the old journals hold one completion line each: never scored again
            journals = (out / task / f"step-{s}" / "journals").glob("*.jsonl")
            assert all(sum('"_complete"' in line for line in open(j)) == 1 for j in journals)
    with open(out / "curves.csv") as f:
        assert sorted({int(r["step"]) for r in csv.DictReader(f)}) == [100, 200, 300, 400, 500]

    only = run_evals(sweep(runs, tmp_path / "k"), "-k", "step-200", suite=True)
    assert only.ret == 0
    assert only.parseoutcomes()["passed"] == 4 and "failed" not in only.parseoutcomes()

    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "curves", str(out), str(out), "--label", "a",
                          "--label", "b", "--out", str(tmp_path / "two.png")], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "two.png").read_bytes()[:4] == b"\x89PNG"
    cmp = subprocess.run([sys.executable, "-m", "nanoeval.cli", "compare", str(out / "arc_easy" / "step-100"),
                          str(out / "arc_easy" / "step-500"), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert cmp.returncode == 0, cmp.stderr
    assert json.loads(cmp.stdout)["tasks"][0]["matched"] == 24


def test_under_xdist_each_checkpoint_stays_on_one_worker(tiny_lm, tmp_path, run_evals):
    runs, out = tmp_path / "runs", tmp_path / "out"
    save_checkpoints(tiny_lm, runs, (1, 2, 3))
    result = run_evals(sweep(runs, out), "-n", "2", "-v", suite=True)
    assert result.ret == 0, result.stdout.str()
    workers: dict[str, set] = {}
    for line in result.stdout.lines:
        if m := re.search(r"\[(gw\d)\] .*PASSED .*\[(?:arc_easy|winogrande)@step-(\d+):", line):
            workers.setdefault(m.group(2), set()).add(m.group(1))
    assert sorted(workers) == ["1", "2", "3"] and all(len(w) == 1 for w in workers.values()), workers
    assert (out / "curves.png").exists()


def test_checkpoint_lists_revisions_and_mistakes(tmp_path):
    (tmp_path / "a" / "ckpt-7").mkdir(parents=True)
    p = tmp_path / "s.yaml"

    def expand(model: dict):
        p.write_text(json.dumps({"suite": "s", "model": model, "tasks": [TASKS[0]]}))
        s = load_suite(p)
        return expand_checkpoints(s.tasks, s, tmp_path)[0]

    tasks = expand({"checkpoints": ["a/ckpt-7", {"path": "a/final", "step": 9000}]})
    assert [(t.name, t.step, t.sweep, t.model.path) for t in tasks] == [
        ("arc_easy@step-7", 7, "arc_easy", str(tmp_path / "a" / "ckpt-7")),
        ("arc_easy@step-9000", 9000, "arc_easy", str(tmp_path / "a" / "final"))]
    tasks = expand({"path": "EleutherAI/pythia-70m", "revisions": ["step3000", "step1000"]})
    assert [(t.step, t.model.revision, t.model.path) for t in tasks] == [
        (1000, "step1000", "EleutherAI/pythia-70m"), (3000, "step3000", "EleutherAI/pythia-70m")]
    assert tasks[0].report_dir.endswith("/s/arc_easy/step-1000")
    for model, message in (({"checkpoints": "nothing/step-*"}, "matches no folder"),
                           ({"checkpoints": ["a/final"]}, "no step in its name"),
                           ({"checkpoints": ["a/ckpt-7", "b/step-7"]}, "step 7 twice"),
                           ({"checkpoints": [{"path": "x", "step": 0}, {"path": "y", "step": 0}]}, "step 0 twice")):
        with pytest.raises(ConfigError, match=message):
            expand(model)


def test_hub_revisions_are_checkpoints_resolved_to_commits(tiny_lm, tmp_path, run_evals):
    """A Pythia-style repo in the local HF cache (offline): each revision a checkpoint, its fingerprint the commit
    its ref points to, its step the revision's number."""
    runs, hub = tmp_path / "runs", tmp_path / "hub"
    save_checkpoints(tiny_lm, runs, (1000, 2000))
    repo = hub / "models--nanoeval--tiny"
    (repo / "refs").mkdir(parents=True)
    commits = {1000: "a" * 40, 2000: "b" * 40}
    for step, commit in commits.items():
        (repo / "snapshots").mkdir(exist_ok=True)
        (runs / f"step-{step}").rename(repo / "snapshots" / commit)
        (repo / "refs" / f"step{step}").write_text(commit)
    cfg = {"suite": "pythia", "sample": 12, "report_dir": str(tmp_path / "out"),
           "model": {"path": "nanoeval/tiny", "revisions": ["step2000", "step1000"]}, "tasks": TASKS[:1]}
    result = run_evals(cfg, suite=True, env={"HF_HUB_CACHE": str(hub)})
    assert result.ret == 0, result.stdout.str()
    for step, commit in commits.items():
        summary = json.loads((tmp_path / "out" / "arc_easy" / f"step-{step}" / "summary.json").read_text())
        assert summary["model"]["identity"]["commit"] == commit and summary["model"]["revision"] == f"step{step}"
    with open(tmp_path / "out" / "curves.csv") as f:
        assert sorted({(int(r["step"]), r["checkpoint"]) for r in csv.DictReader(f)}) == [
            (1000, "step1000"), (2000, "step2000")]


def test_a_sweep_runs_with_xdist_disabled(tiny_lm, tmp_path, run_evals):
    """The plugin's xdist hooks (worker count, scheduler, worker setup) are optional: `-p no:xdist` still runs."""
    runs = tmp_path / "runs"
    save_checkpoints(tiny_lm, runs, (1, 2))
    result = run_evals(sweep(runs, tmp_path / "out"), "-p", "no:xdist", suite=True)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert result.parseoutcomes()["passed"] == 8 and (tmp_path / "out" / "curves.csv").is_file()
