"""Error bars and counts a reader can trust: no standard error of zero that the data did not earn, a Wilson
interval where the stderr says nothing, each metrics.csv row with its own n, and generations the parser could not
read counted and flagged (issue 27)."""
from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import pytest

from tests.conftest import ROOT, mmlu_tiny_config, read_jsonl


def records(subject_outcomes: dict[str, list[bool]]) -> list[dict]:
    return [{"id": f"{s}/{i}", "subject": s, "gold": 0, "pred": 0 if ok else 1, "correct": ok}
            for s, outcomes in subject_outcomes.items() for i, ok in enumerate(outcomes)]


# ------------------------------------------------------------------------------------- stats against hand numbers
def test_macro_stderr_gives_one_example_subjects_the_binomial_variance_at_the_pooled_accuracy():
    from nanoeval.scoring import by_subject, macro

    # 40 one-example subjects, 20 right: each contributes 0.5 * 0.5 / 1, so sqrt(40 * 0.25) / 40 = sqrt(10) / 40
    forty = records({f"s{i:02d}": [i % 2 == 0] for i in range(40)})
    acc, se = macro(by_subject(forty))
    assert acc == 0.5 and se == pytest.approx(math.sqrt(10) / 40, abs=1e-12)  # 0.0791, was 0.0000
    # a: [1, 0] has its own sample variance 0.5 / 2 = 0.25; b: [1] has none and c: [1, 1, 1] estimates 0, so both
    # take the pooled accuracy 5/6: b 5/36 / 1, c 5/36 / 3; macro = (0.5 + 1 + 1) / 3
    acc, se = macro(by_subject(records({"a": [True, False], "b": [True], "c": [True, True, True]})))
    assert acc == pytest.approx(2.5 / 3)
    assert se == pytest.approx(math.sqrt(0.25 + 5 / 36 + 5 / 108) / 3, abs=1e-12)
    # subjects that disagree within themselves keep lm-eval's sample variance
    acc, se = macro(by_subject(records({"a": [True, False], "b": [True, False, False, True]})))
    assert se == pytest.approx(math.sqrt(0.5 / 2 + (1 / 3) / 4) / 2, abs=1e-12)


def test_wilson_interval_matches_hand_computed_values():
    from nanoeval.scoring import wilson

    # center (p + z^2/2n) / (1 + z^2/n), half-width z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2), z = 1.96;
    # at p = 1 the lower end is n / (n + z^2), at p = 0 the upper end z^2 / (n + z^2)
    assert wilson(1.0, 1) == pytest.approx((1 / 4.8416, 1.0), abs=1e-9)   # one example, right: not "1 ± 0"
    assert wilson(0.0, 3) == pytest.approx((0.0, 3.8416 / 6.8416), abs=1e-9)
    assert wilson(0.5, 40) == pytest.approx((0.3519928, 0.6480072), abs=1e-6)
    assert wilson(None, 5) is None and wilson(0.5, 0) is None


def test_a_task_at_100_percent_shows_its_interval_in_summary_csv_and_table():
    from nanoeval.benchmarks.mmlu import summarize
    from nanoeval.reporting import _value, assemble, metrics_csv

    recs = records({"anatomy": [True, True], "astronomy": [True]})
    scores = assemble(summarize(recs, None), recs, task="mmlu", name="m")
    assert scores.stderr["acc_micro"] == 0.0 and scores.ci95["acc_micro"] == pytest.approx((3 / 6.8416, 1.0))
    assert _value(scores) == "1.0000 (95% CI 0.438-1.000)"  # acc_macro: 1 ± 0 earned nothing
    rows = {(r["row"], r["metric"]): r for r in csv.DictReader(io.StringIO(metrics_csv(scores)))}
    assert (rows["astronomy", "acc"]["n"], rows["astronomy", "acc"]["ci95_lo"]) == ("1", "0.206543")
    assert rows["all", "acc_micro"]["ci95_hi"] == "1.000000"


def test_metrics_csv_gives_each_category_row_its_own_n():
    from nanoeval.benchmarks.mmlu import summarize
    from nanoeval.reporting import assemble, metrics_csv

    # 12 STEM examples of 108: the row says 12, not the task's 108
    recs = records({"astronomy": [i % 3 == 0 for i in range(12)], "anatomy": [i % 2 == 0 for i in range(40)],
                    "philosophy": [True] * 30 + [False] * 26})
    scores = assemble(summarize(recs, None), recs, task="mmlu", name="m")
    rows = {(r["row"], r["metric"]): r for r in csv.DictReader(io.StringIO(metrics_csv(scores)))}
    assert {m: rows["all", m]["n"] for m in ("acc_stem", "acc_other", "acc_humanities", "acc_micro", "acc_macro")} \
        == {"acc_stem": "12", "acc_other": "40", "acc_humanities": "56", "acc_micro": "108", "acc_macro": "108"}
    assert scores.n["acc_stem"] == 12 and scores.ci95["acc_stem"] == pytest.approx((0.138118, 0.609382), abs=1e-6)
    # (p = 4/12: center 0.4934 / 1.320133 = 0.373750, half-width 1.484699 * 0.158707 = 0.235632: over 12, not 108)


def test_unreadable_generations_are_counted_and_flagged_the_same_way_for_mmlu_and_mmmu_pro():
    from nanoeval.benchmarks import mmlu, mmmu_pro

    recs = [{**r, "response": "" if i < 10 else "A", "parse_failed": i < 10}
            for i, r in enumerate(records({"anatomy": [False] * 10 + [True] * 5}))]
    m = mmlu.summarize(recs, None)
    assert m.counts["fallback_rows"] == 10
    assert m.notes == [("FALLBACK 67%", "fallback on 67 % of rows (10 of 15 responses): the parser found no answer "
                                        "letter and counted those rows wrong, so this accuracy is mostly zeros")]
    assert "fallback_rows" not in mmlu.summarize([{k: v for k, v in r.items() if k not in ("response",
                                                  "parse_failed")} for r in recs], None).counts  # rank_ll
    few = [{**r, "parse_failed": False} for r in recs]
    few[0]["parse_failed"] = True  # 1 of 15 (7 %, over the 5 % mark): flagged, without "mostly"
    assert mmlu.summarize(few, None).notes == [("FALLBACK 7%", "fallback on 7 % of rows (1 of 15 responses): the "
                                                "parser found no answer letter and counted those rows wrong")]
    mm = [{**r, "options": ["x", "y"], "answer": "A", "nested_options": False, "gold_out_of_range": False}
          for r in recs]

    class Cfg:  # what mmmu_pro.summarize reads of a TaskConfig
        class scoring:
            fallback = "count_wrong"

    m2 = mmmu_pro.summarize(mm, Cfg)
    assert m2.counts["fallback_rows"] == 10 and m2.notes == m.notes  # the same count, flag and sentence


# ------------------------------------------------------------------------------------ a real run of `pytest evals/`
def test_limit_1_gen_letter_run_reports_intervals_own_n_and_unreadable_responses(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "g"
    cfg = mmlu_tiny_config(tiny_lm, out, scoring={"strategy": "gen_letter", "max_new_tokens": 3},
                           dataset__limit=1)
    html = tmp_path / "report.html"
    result = run_evals(cfg, f"--html={html}", "--self-contained-html")
    assert result.ret == 0, result.stdout.str()
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    failed = sum(r["parse_failed"] for r in preds)
    assert len(preds) == 3 and failed == 3  # the random tiny model writes no standalone letter
    assert summary["counts"]["fallback_rows"] == 3
    assert "FALLBACK 100%" in summary["flags"]  # (next to "max_new_tokens 100%": three tokens are too few for this model)
    assert "fallback on 100 % of rows (3 of 3 responses): the parser found no answer letter and counted those rows " \
           "wrong, so this accuracy is mostly zeros" in summary["warnings"]
    # 0 of 3 right: the stderr is 0, the interval says how little three examples know
    assert summary["metrics"]["acc_macro"] == 0 and summary["stderr"]["acc_macro"] == 0
    assert summary["ci95"]["acc_macro"] == pytest.approx([0.0, 3.8416 / 6.8416])
    assert summary["ci95"]["acc_other"] == pytest.approx([0.0, 3.8416 / 4.8416])  # anatomy alone: n = 1
    assert summary["n"] == {"acc_macro": 3, "acc_micro": 3, "acc_stem": 1, "acc_humanities": 0,
                            "acc_social_sciences": 1, "acc_other": 1}
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert {r["metric"]: r["n"] for r in rows if r["row"] == "all"} == {
        "acc_macro": "3", "acc_micro": "3", "acc_stem": "1", "acc_social_sciences": "1", "acc_other": "1"}
    assert all(r["ci95_lo"] and r["ci95_hi"] for r in rows)
    page = html.read_text()
    assert "<td>0.0000 (95% CI 0.000-0.562)</td>" in page and "FALLBACK 100%" in page
    table = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", str(out / "summary.json")],
                           capture_output=True, text=True, cwd=ROOT)
    assert table.stdout.splitlines()[2].endswith("| 0.0 [0.0, 56.2] (n=3) |"), table.stdout + table.stderr
    result.stdout.fnmatch_lines(["mmlu *acc_macro *0.0000 (95% CI 0.000-0.562) *3 *complete *FALLBACK 100%",
                                 "nanoeval WARNING: mmlu: fallback on 100 % of rows (3 of 3 responses)*"])
