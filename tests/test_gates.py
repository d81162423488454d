"""Baseline gates compare like with like (issue 27): a baseline's predictions are the file beside its summary (never
the path recorded in it, which can be this run's own), a baseline of other data, another recipe or other examples
is refused or compared on the common examples only (saying how many), and a predictions file with an id twice is an
error naming file:line. Each test is a pytester run of `pytest evals/` on the tiny model and tests/data/mmlu_tiny."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA, build_tiny_lm, mmlu_tiny_config, read_jsonl


@pytest.fixture(scope="module")
def other_lm(tmp_path_factory) -> Path:
    """A second random tiny model (another seed, the same tokenizer): a 'new checkpoint' with other answers."""
    return build_tiny_lm(tmp_path_factory.mktemp("other_lm"), seed=1)


def summary_of(d: Path) -> dict:
    return json.loads((d / "summary.json").read_text())


def copy_report(src: Path, dst: Path) -> Path:
    """The README's workflow: keep a run's summary.json and predictions.jsonl as the baseline."""
    dst.mkdir(parents=True)
    for name in ("summary.json", "predictions.jsonl"):
        shutil.copyfile(src / name, dst / name)
    return dst / "summary.json"


def paired_counts(base: list[dict], new: list[dict]) -> tuple[int, int]:
    """(right before and wrong now, wrong before and right now) over the ids both hold."""
    was = {r["id"]: r["correct"] for r in base}
    b = sum(was[r["id"]] and not r["correct"] for r in new if r["id"] in was)
    c = sum(r["correct"] and not was[r["id"]] for r in new if r["id"] in was)
    return b, c


def macro(rows: list[dict]) -> float:
    subjects = {r["subject"] for r in rows}
    return sum(sum(r["correct"] for r in rows if r["subject"] == s) / sum(r["subject"] == s for r in rows)
               for s in subjects) / len(subjects)


# ------------------------------------------------------------------------------- a baseline's own predictions
def test_a_copied_baseline_is_paired_with_its_own_predictions_not_the_rerun_report_dir(
        run_evals, tiny_lm, other_lm, tmp_path):
    """The baseline was kept out of the report dir, which the next run (another model) reuses: the paired gate
    reads runs/v1/predictions.jsonl, not the path in the summary (the report dir, now the new run's)."""
    live = tmp_path / "live"
    assert run_evals(mmlu_tiny_config(tiny_lm, live)).ret == 0
    baseline = copy_report(live, tmp_path / "runs" / "v1")
    assert summary_of(baseline.parent)["artifacts"]["predictions.jsonl"] == str(live / "predictions.jsonl")
    cfg = mmlu_tiny_config(other_lm, live, gates={"baseline": str(baseline), "paired_alpha": 0.05})
    result = run_evals(cfg)
    b, c = paired_counts(read_jsonl(baseline.parent / "predictions.jsonl"), read_jsonl(live / "predictions.jsonl"))
    assert b + c > 0  # two random models disagree somewhere: a comparison with itself would say 0 and 0
    result.stdout.fnmatch_lines([f"*gate * mmlu paired: * -- p = * ({b} now wrong, {c} now right, "
                                 "21 examples compared)*"])
    assert summary_of(live)["gates"][0]["detail"].endswith(f"({b} now wrong, {c} now right, 21 examples compared)")

    # a baseline that is this report dir's own summary: its predictions are this run's file, refused
    cfg["gates"] = {"baseline": str(live / "summary.json"), "paired_alpha": 0.05, "max_drop": 0.5}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu max_drop: * -- baseline predictions {live / 'predictions.jsonl'}"
                                 " are this run's own file: nothing to compare*",
                                 "*gate FAILED: mmlu paired: * are this run's own file*"])

    # a summary.json kept without its predictions: refused, never read through the recorded path
    alone = tmp_path / "runs" / "v2"
    alone.mkdir()
    shutil.copyfile(baseline, alone / "summary.json")
    cfg["gates"] = {"baseline": str(alone / "summary.json"), "paired_alpha": 0.05}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu paired: * -- baseline predictions {alone / 'predictions.jsonl'}"
                                 " not found*"])


def test_a_copied_suite_baseline_finds_its_tasks_beside_the_suite_file(run_evals, tiny_lm, other_lm, tmp_path):
    """suite_summary.json records absolute artifact paths into the suite dir the next run reuses; its tasks are
    read from <suite file's dir>/<task>/ instead."""
    def suite(model, gates=None):
        base = mmlu_tiny_config(model, tmp_path)
        return {"suite": "s", "report_dir": str(tmp_path / "live"), "model": base["model"],
                "tasks": [{"task": "mmlu", "dataset": base["dataset"], **({"gates": gates} if gates else {})}]}

    assert run_evals(suite(tiny_lm), suite=True).ret == 0
    shutil.copytree(tmp_path / "live", tmp_path / "runs" / "v1", ignore=shutil.ignore_patterns("journals"))
    baseline = tmp_path / "runs" / "v1" / "suite_summary.json"
    result = run_evals(suite(other_lm, {"baseline": str(baseline), "paired_alpha": 0.05}), suite=True)
    b, c = paired_counts(read_jsonl(tmp_path / "runs" / "v1" / "mmlu" / "predictions.jsonl"),
                         read_jsonl(tmp_path / "live" / "mmlu" / "predictions.jsonl"))
    assert b + c > 0
    result.stdout.fnmatch_lines([f"*gate * mmlu paired: * -- p = * ({b} now wrong, {c} now right, "
                                 "21 examples compared)*"])

    # the suite file alone (its task dirs not kept): refused in one line that says where it looked
    shutil.rmtree(tmp_path / "runs" / "v1" / "mmlu")
    result = run_evals(suite(other_lm, {"baseline": str(baseline), "max_drop": 0.5}), suite=True)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu max_drop: * -- baseline {baseline}: task 'mmlu': "
                                 f"{tmp_path / 'runs' / 'v1' / 'mmlu' / 'summary.json'} not found*"])


# ----------------------------------------------------------------------------------- like with like
def test_max_drop_against_a_baseline_of_other_examples_compares_the_common_ones(run_evals, tiny_lm, tmp_path):
    """A baseline on other subjects and fewer examples per subject (the smoke suite's 57 x 3 against 8 x 10): the
    headlines are recomputed on the examples both runs scored, and the gate says how many."""
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "base")
    cfg["dataset"].update(subjects=["anatomy", "astronomy"], limit=3)
    assert run_evals(cfg).ret == 0
    base = tmp_path / "base"
    new = tmp_path / "new"
    cfg = mmlu_tiny_config(tiny_lm, new, gates={"baseline": str(base / "summary.json"), "max_drop": 0.05,
                                                "max_drop_stderr": 2.0})
    cfg["dataset"]["subjects"] = ["astronomy", "high_school_geography"]
    result = run_evals(cfg)
    common = [r for r in read_jsonl(new / "predictions.jsonl") if r["id"] in {"astronomy/0", "astronomy/1",
                                                                               "astronomy/2"}]
    assert len(common) == 3
    counted = "compared on 3 common examples of 14 here / 6 in the baseline"
    result.stdout.fnmatch_lines([f"*gate * mmlu max_drop: acc_macro = {macro(common):.4f} *{counted}*",
                                 f"*gate * mmlu max_drop_stderr: *{counted}*"])

    # the baseline right on those three: it is a drop on the examples compared, whatever its 6-example headline
    rows = read_jsonl(base / "predictions.jsonl")
    (base / "predictions.jsonl").write_text("".join(json.dumps(dict(r, correct=True)) + "\n" for r in rows))
    assert macro(common) < 0.95
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu max_drop: acc_macro = {macro(common):.4f} (needs >= baseline "
                                 f"1.0000 - 0.05) -- drop {1 - macro(common):+.4f}, {counted}*"])

    # a baseline on other subjects only: nothing in common, nothing compared
    cfg["dataset"]["subjects"] = ["high_school_geography"]
    cfg["report_dir"] = str(tmp_path / "geo")
    cfg["gates"] = {"baseline": str(base / "summary.json"), "max_drop": 1.0}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: * -- no example ids in common with the baseline "
                                 "(7 here, 6 in *): nothing to compare*"])


def test_a_baseline_scored_on_other_data_or_another_recipe_is_refused(run_evals, tiny_lm, tmp_path):
    """Ids are `subject/k`, so other data has the same ids: its data identity (the files' sha256) decides; a
    different recipe (here 1-shot against 0-shot) or benchmark is another measurement."""
    data = tmp_path / "data"
    data.mkdir()
    rows = (DATA / "mmlu_tiny" / "test.jsonl").read_text().splitlines()
    first = json.loads(rows[0])
    first["question"] += " (edited)"
    (data / "test.jsonl").write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n")
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "other_data")
    cfg["dataset"]["data_files"]["test"] = str(data / "test.jsonl")
    assert run_evals(cfg).ret == 0
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "new", gates={"baseline": str(tmp_path / "other_data" / "summary.json"),
                                                              "max_drop": 1.0, "max_drop_stderr": 5.0})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: acc_macro = * (needs a comparable baseline) -- "
                                 "baseline *other_data*summary.json: scored on other data (files?test?: '*' here, "
                                 "'*' in the baseline): nothing to compare*", "*gate FAILED: mmlu max_drop_stderr:*"])

    shots = mmlu_tiny_config(tiny_lm, tmp_path / "one_shot", scoring={"strategy": "rank_ll", "num_fewshot": 1})
    assert run_evals(shots).ret == 0
    cfg["gates"]["baseline"] = str(tmp_path / "one_shot" / "summary.json")
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: * -- baseline *: another recipe (num_fewshot: 0 here, "
                                 "1 in the baseline; fewshot_source: None here, * in the baseline): nothing to "
                                 "compare*"])

    summary = summary_of(tmp_path / "one_shot")
    (tmp_path / "one_shot" / "summary.json").write_text(json.dumps(dict(summary, task="arc")))
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: * -- baseline *: another benchmark or headline (mmlu "
                                 "acc_macro here, arc acc_macro in the baseline): nothing to compare*"])


# ------------------------------------------------------------------------------------------ unique ids
def test_duplicate_ids_in_a_baseline_predictions_file_are_named_with_file_and_line(run_evals, tiny_lm, tmp_path):
    base = tmp_path / "base"
    assert run_evals(mmlu_tiny_config(tiny_lm, base)).ret == 0
    preds = base / "predictions.jsonl"
    rows = read_jsonl(preds)
    twice = dict(rows[0], correct=not rows[0]["correct"])  # a second run's row of the same example
    preds.write_text("".join(json.dumps(r) + "\n" for r in [*rows, twice]))
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "new", gates={"baseline": str(base / "summary.json"),
                                                              "paired_alpha": 0.05})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*gate FAILED: mmlu paired: * -- {preds}:22: duplicate example id "
                                 f"'{rows[0]['id']}' (first at line 1): each example must appear once*"])
