"""Issue 28, the command-line side: a model override that gives each checkpoint its own report dir, what
`nanoeval benchmarks` says about each option, prompts in predictions.jsonl, and `nanoeval table` over runs of one
benchmark."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nanoeval.benchmarks import BENCHMARKS
from tests.conftest import ROOT, build_tiny_lm, mmlu_tiny_config, read_jsonl

PLACEHOLDERS = len(BENCHMARKS) - 1  # one skipped case for each benchmark the config does not name


@pytest.fixture(scope="module")
def second_lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("models") / "ckpt-b", seed=1)


def test_a_model_override_runs_that_model_in_a_report_dir_named_for_it(run_evals, tiny_lm, second_lm, tmp_path):
    config = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    run_evals(config).assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    first = json.loads((tmp_path / "r" / "summary.json").read_text())
    # the same YAML, another checkpoint: its own dir, and the YAML's run is neither moved aside nor re-scored
    result = run_evals(config, "--nanoeval-model", str(second_lm))
    result.assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    other = tmp_path / "r-ckpt-b"
    summary = json.loads((other / "summary.json").read_text())
    assert json.loads((other / "run.json").read_text())["config"]["model"]["path"] == str(second_lm)
    assert summary["model"] != first["model"]
    assert not (tmp_path / "r" / "previous").exists() and not (other / "previous").exists()
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == first
    # NANOEVAL_MODEL does the same, and a rerun of the same checkpoint finds its own journals
    again = run_evals(config, env={"NANOEVAL_MODEL": str(second_lm)})
    again.assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    assert not (other / "previous").exists()
    assert json.loads((other / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_a_model_override_of_a_suite_names_the_suite_dir(run_evals, tiny_lm, second_lm, tmp_path):
    task = mmlu_tiny_config(tiny_lm, tmp_path / "unused")
    suite = {"suite": "s", "model": task["model"], "report_dir": str(tmp_path / "suite"),
             "tasks": [{k: v for k, v in task.items() if k not in ("model", "report_dir")}]}
    run_evals(suite, "--nanoeval-model", str(second_lm), suite=True).assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    assert (tmp_path / "suite-ckpt-b" / "suite_summary.json").is_file()
    assert (tmp_path / "suite-ckpt-b" / "mmlu" / "summary.json").is_file()
    assert not (tmp_path / "suite").exists()


def test_a_model_override_that_does_not_exist_is_one_line(run_evals, tiny_lm, tmp_path):
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "r"), "--nanoeval-model", str(tmp_path / "nope"))
    assert result.ret != 0
    result.stderr.fnmatch_lines([f"ERROR: *config.yaml: model.path: *nope*"])
    assert not (tmp_path / "r-nope").exists()
