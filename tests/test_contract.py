"""The benchmark contract where it used to fight benchmarks (issue 29): per-subject gates, the per-case accuracy and
the plot read the headline's own correctness (HellaSwag's acc_norm, not acc). pytester runs of `pytest evals/`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from nanoeval.journal import journal_path, read_journal
from tests.conftest import ROOT
from tests.test_hellaswag import config as hs_config


def test_per_subject_gates_and_case_lines_use_the_headlines_own_correctness(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "hs"
    cfg = hs_config(tiny_lm, out)
    cfg["dataset"]["limit"] = 8
    cfg["gates"] = {"min_per_subject": 0.99}  # fails: the gate's line and value are what is checked
    result = run_evals(cfg, "-v")
    text = result.stdout.str()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"] == "acc_norm" and summary["subject_metric"] == "acc_norm"
    per = summary["per_subject"]
    assert any(v["acc"] != v["acc_norm"] for v in per.values()), "fixture: acc and acc_norm differ for a subject"
    gate = next(g for g in summary["gates"] if g["gate"] == "min_per_subject")
    assert gate["metric"] == "worst subject acc_norm" and gate["value"] == min(v["acc_norm"] for v in per.values())
    for case in ("shard0of3", "shard1of3", "shard2of3"):  # each case's line: its records' acc_norm
        records = read_journal(journal_path(out, case)).records
        acc_norm = sum(r["correct_norm"] for r in records) / len(records)
        assert f"hellaswag:{case}: {len(records)} examples, acc_norm {acc_norm:.3f}" in text, text
    # `nanoeval table` of two runs lays out the same per-subject values
    shutil.copytree(out, tmp_path / "again")
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", str(out / "summary.json"),
                          str(tmp_path / "again" / "summary.json")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    subject, v = next((s, v) for s, v in sorted(per.items()) if v["acc"] != v["acc_norm"])
    row = next(line for line in res.stdout.splitlines() if line.startswith(f"| {subject} "))
    assert f"| {100 * v['acc_norm']:.1f}" in row, (row, v)
