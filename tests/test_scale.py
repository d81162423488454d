"""Suites at scale: xdist workers give the same artifacts, a crashed worker is an error, shards + merge equal one
run, merge refuses bad inputs, gates pass and fail with the right exit code and lines, tables and HTML."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl


def suite(tmp_path, model, name="s", **mmlu_extra):
    """A two-task suite on the tiny model: MMLU (3 subjects) and HellaSwag (3 shards)."""
    base = mmlu_tiny_config(model, tmp_path)
    return {"suite": name, "report_dir": str(tmp_path / name), "model": base["model"], "tasks": [
        {"task": "mmlu", "dataset": base["dataset"], **mmlu_extra},
        {"task": "hellaswag", "dataset": {"data_files": {"validation": str(DATA / "hellaswag" / "validation.jsonl")},
                                          "limit": 4}, "scoring": {"num_shards": 3}}]}


def strip_timing(summary: dict) -> dict:
    drop = {"timing", "model", "report_dir", "artifacts", "versions"}
    return {k: v for k, v in summary.items() if k not in drop}


def artifacts(d):
    return {t: (read_jsonl(d / t / "predictions.jsonl"), strip_timing(json.loads((d / t / "summary.json").read_text())))
            for t in ("mmlu", "hellaswag")}


def assert_same(a, b):
    for task in a:
        pa, pb = a[task][0], b[task][0]
        assert [(r["id"], r["pred"], r["correct"]) for r in pa] == [(r["id"], r["pred"], r["correct"]) for r in pb]
        for x, y in zip(pa, pb):
            assert x["lls"] == pytest.approx(y["lls"], abs=1e-4)
        sa, sb = a[task][1], b[task][1]
        assert sa["metrics"] == pytest.approx(sb["metrics"]) and sa["cases"]["done"] == sb["cases"]["done"]


def test_workers_give_the_same_artifacts(run_evals, tiny_lm, tmp_path):
    runs = {}
    for n in (0, 2, 3):
        cfg = suite(tmp_path / f"n{n}", tiny_lm)
        result = run_evals(cfg, "-n", str(n), suite=True)
        assert result.ret == 0, result.stdout.str()
        if n:
            result.stdout.fnmatch_lines(["*[[]gw?[]] mmlu:anatomy: 7 examples, acc *"])
        runs[n] = artifacts(tmp_path / f"n{n}" / "s")
    assert_same(runs[0], runs[2])
    assert_same(runs[0], runs[3])


def test_killed_worker_is_an_error_not_silent_partial_results(run_evals, tiny_lm, tmp_path):
    cfg = suite(tmp_path, tiny_lm)
    result = run_evals(cfg, "-n", "2", "-p", "tests.fault_injection", suite=True,
                       env={"NANOEVAL_FAULT_EXIT": "mmlu:astronomy"})
    assert result.ret == 1
    # the worker dies at astronomy's first journal write, in astronomy's own run or in the look-ahead of the case
    # before it on that worker (then that case is cut short too)
    result.stdout.fnmatch_lines(["nanoeval ERROR: mmlu: * case(s) did not complete (failed, or a crashed worker): "
                                 "*astronomy*; their journals are kept: fix what failed (above) and rerun to "
                                 "continue them"])
    summary = json.loads((tmp_path / "s" / "mmlu" / "summary.json").read_text())
    assert "astronomy" in summary["cases"]["not_completed"] and not summary["cases"]["complete"]
    # the rerun continues the crashed case from its journal and completes the task
    result = run_evals(cfg, suite=True)
    assert result.ret == 0
    assert json.loads((tmp_path / "s" / "mmlu" / "summary.json").read_text())["cases"]["complete"]


def test_deselected_cases_are_not_errors(run_evals, tiny_lm, tmp_path):
    result = run_evals(suite(tmp_path, tiny_lm), "-k", "anatomy", suite=True)
    assert result.ret == 0
    summary = json.loads((tmp_path / "s" / "mmlu" / "summary.json").read_text())
    assert summary["cases"]["not_completed"] == [] and len(summary["cases"]["missing"]) == 2


def test_shards_and_merge_equal_a_single_run(run_evals, tiny_lm, tmp_path):
    single = suite(tmp_path / "single", tiny_lm)
    assert run_evals(single, suite=True).ret == 0
    for i in range(2):
        cfg = suite(tmp_path / f"shard{i}", tiny_lm)
        result = run_evals(cfg, "--nanoeval-shard", f"{i}/2", suite=True)
        assert result.ret == 0, result.stdout.str()
    merged = tmp_path / "merged"
    cli = [sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0" / "s"), str(tmp_path / "shard1" / "s"),
           "--out", str(merged)]
    res = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert_same(artifacts(tmp_path / "single" / "s"), artifacts(merged))
    merged_suite = json.loads((merged / "suite_summary.json").read_text())
    assert merged_suite["tasks"].keys() == {"mmlu", "hellaswag"}
    one = json.loads((tmp_path / "single" / "s" / "suite_summary.json").read_text())["aggregate"]
    assert sorted(merged_suite["aggregate"]["tasks"]) == sorted(one["tasks"]) == ["hellaswag", "mmlu"]
    assert merged_suite["aggregate"]["centered_mean"] == pytest.approx(one["centered_mean"])

    # refusals: a missing shard, an overlapping shard, a shard from another config
    def merge(*dirs):
        return subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", *map(str, dirs), "--out",
                               str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    res = merge(tmp_path / "shard0" / "s")
    assert res.returncode == 2 and "complete in no shard (a shard is missing?)" in res.stderr
    res = merge(tmp_path / "shard0" / "s", tmp_path / "shard1" / "s", tmp_path / "single" / "s")
    assert res.returncode == 2 and "is complete in two shards" in res.stderr
    other = suite(tmp_path / "other", tiny_lm, scoring={"num_fewshot": 1})
    assert run_evals(other, "--nanoeval-shard", "1/2", suite=True).ret == 0
    res = merge(tmp_path / "shard0" / "s", tmp_path / "other" / "s")
    assert res.returncode == 2 and "mmlu: shards come from different runs (config settings differ" in res.stderr


def test_shard_env_variable_selects_disjoint_cases(run_evals, tiny_lm, tmp_path):
    seen = []
    for i in range(3):
        result = run_evals(suite(tmp_path / str(i), tiny_lm), "--co", "-q", suite=True, env={"NANOEVAL_SHARD": f"{i}/3"})
        seen.append({line for line in result.stdout.lines if "::test_" in line and "[skipped]" not in line})
    assert all(seen) and not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and sum(map(len, seen)) == 6


def test_gates_pass_and_fail(run_evals, tiny_lm, tmp_path):
    base = tmp_path / "base"
    cfg = mmlu_tiny_config(tiny_lm, base)
    assert run_evals(cfg).ret == 0
    acc = json.loads((base / "summary.json").read_text())["metrics"]["acc_macro"]

    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "pass")
    cfg["gates"] = {"min": round(acc - 0.01, 4), "baseline": str(base / "summary.json"), "max_drop": 0.0,
                    "max_drop_stderr": 1.0, "paired_alpha": 0.05}
    result = run_evals(cfg)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*gate PASSED: mmlu min: acc_macro = *", "*gate PASSED: mmlu max_drop:*",
                                 "*gate PASSED: mmlu max_drop_stderr:*", "*gate PASSED: mmlu paired:*"])
    summary = json.loads((tmp_path / "pass" / "summary.json").read_text())
    assert len(summary["gates"]) == 4 and all(g["passed"] for g in summary["gates"])

    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "fail", gates={"min": round(acc + 0.05, 4)})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu min: acc_macro = {acc:.4f} (needs >= {round(acc + 0.05, 4)})*"])
    result.stdout.fnmatch_lines(["*3 passed*"])  # low accuracy fails the gate, not the cases

    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "subj", gates={"min_per_subject": 0.99})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate min_per_subject: mmlu:anatomy: acc * < 0.99*", "*gate FAILED: mmlu min_per_subject*"])

    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "inc", gates={"min": 0.0})
    result = run_evals(cfg, "-k", "anatomy")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu min: *run incomplete: 2 case(s) missing*"])

    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "nob", gates={"baseline": str(tmp_path / "nope.json"), "max_drop": 0.1})
    result = run_evals(cfg)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: *gates.baseline: {tmp_path / 'nope.json'}: file not found"])


def test_paired_gate_fails_against_a_better_baseline(run_evals, tiny_lm, tmp_path):
    base = tmp_path / "base"
    assert run_evals(mmlu_tiny_config(tiny_lm, base)).ret == 0
    preds = read_jsonl(base / "predictions.jsonl")
    for r in preds:  # a baseline that got every question right
        r["correct"] = True
    (base / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    summary = json.loads((base / "summary.json").read_text())
    summary["metrics"]["acc_macro"] = 1.0
    (base / "summary.json").write_text(json.dumps(summary))
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "new", gates={"baseline": str(base / "summary.json"),
                                                              "paired_alpha": 0.05, "max_drop": 0.05})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: *", "*gate FAILED: mmlu paired: * -- p = *"])


def test_table_markdown_and_latex(run_evals, tiny_lm, tmp_path):
    for name in ("ckpt_a", "ckpt_b"):
        assert run_evals(suite(tmp_path, tiny_lm, name=name), suite=True).ret == 0
    files = [str(tmp_path / n / "suite_summary.json") for n in ("ckpt_a", "ckpt_b")]
    md = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", *files], capture_output=True, text=True, cwd=ROOT)
    lines = md.stdout.splitlines()
    assert lines[0].startswith("| Checkpoint | mmlu (acc_macro) | hellaswag (acc_norm) |") and len(lines) == 4
    assert lines[2].startswith("| ckpt_a (") and " ± " in lines[2]
    tex = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", "--latex", *files], capture_output=True,
                         text=True, cwd=ROOT).stdout
    assert "\\begin{tabular}{lcccc}" in tex and "$\\pm$" in tex and "ckpt\\_a" in tex
    assert lines[0].endswith("| macro avg (2 shared tasks) | centered (2 shared tasks) |")
    assert "(n=21)" in lines[2] and "(n=12)" in lines[2]  # examples per cell: mmlu 3 x 7, hellaswag 3 shards x 4
    labelled = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", files[0], files[0], "--label", "before",
                               "--label", "after"], capture_output=True, text=True, cwd=ROOT).stdout.splitlines()
    assert labelled[2].startswith("| before | ") and labelled[3].startswith("| after | ")
    same = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", files[0], files[0]], capture_output=True,
                          text=True, cwd=ROOT).stdout.splitlines()
    assert same[2].startswith("| ckpt_a (") and f"[{tmp_path / 'ckpt_a'}]" in same[2]


def test_html_report_has_table_gates_and_plots(run_evals, tiny_lm, tmp_path):
    cfg = suite(tmp_path, tiny_lm, gates={"min": 0.0})
    report = tmp_path / "report.html"
    result = run_evals(cfg, "-n", "2", f"--html={report}", "--self-contained-html", suite=True)
    assert result.ret == 0, result.stdout.str()
    page = report.read_text()
    assert "<h2>NanoEval</h2>" in page and "gate PASSED: mmlu min" in page
    assert page.count("data:image/png;base64,") >= 2 and "predictions.jsonl</a>" in page
    assert "<th>Headline</th>" in page and "<th>Examples</th>" in page
    assert "acc_norm 0." in page and "acc 0." in page  # each case: its headline (one subject: its acc, not a macro)
    assert "<th>gates</th>" in page and "<td>pass</td>" in page
    assert "<b>suite (2 of 2 tasks): macro avg 0." in page  # the aggregate row, from the controller under -n
    assert "href='s/mmlu/predictions.jsonl'" in page and "file://" not in page.split("<h2>NanoEval</h2>")[1][:4000]
    assert '"lls"' not in page  # predictions are linked, not embedded
