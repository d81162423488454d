"""ARC: lm-eval 0.4.13's recipe character for character, the upstream schema's quirks (digit labels, 3 to 5
choices), row shards, config and data errors. Per-example agreement with lm-eval's own task (real SmolLM2 against
lm-eval's predictions on the same rows, tests/data/arc/lmeval_0.4.13_smollm2.jsonl) is part of
tests/test_small_core.py's one real-model suite run."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS, arc
from nanoeval.config import ConfigError
from nanoeval.config_files import load_task
from tests.conftest import DATA, ROOT, read_jsonl

ARC = DATA / "arc"
SETS = ("ARC-Easy", "ARC-Challenge")
LMEVAL = ARC / "lmeval_0.4.13_smollm2.jsonl"   # lm-eval 0.4.13's own arc_easy task on these rows (README)


def arc_config(model, report_dir, name: str = "ARC-Easy", **scoring) -> dict:
    return {"task": "arc", "model": {"path": str(model)}, "report_dir": str(report_dir),
            "dataset": {"name": name, "data_files": {"test": str(ARC / name / "test.jsonl"),
                                                     "train": str(ARC / name / "train.jsonl")}},
            "scoring": {"num_shards": 4, **scoring}}


def items(cfg) -> list:
    """Every row of the split as the benchmark reads it, in the data's order (row i is in shard i % n)."""
    shards = [arc.BENCHMARK.load(cfg, case, ROOT).examples for case in arc.BENCHMARK.cases(cfg, ROOT)]
    return [shards[i % len(shards)][i // len(shards)] for i in range(sum(map(len, shards)))]


def load(tmp_path, cfg: dict):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return load_task(p)


class Recorder:
    """Records the log-likelihood requests `arc.score` builds (the prompt recipe is what is under test)."""

    def __init__(self):
        self.requests = []

    def loglikelihoods(self, requests):
        self.requests += requests
        return [[-1.0] * len(r.continuations) for r in requests]

    def token_counts(self, requests):
        return [[1] * len(r.continuations) for r in requests]


def test_prompt_is_lm_evals_character_for_character(tmp_path):
    cfg = load(tmp_path, arc_config("m", tmp_path / "r"))
    questions = {q.id: q for q in items(cfg)}
    engine = Recorder()
    arc.BENCHMARK.score(engine, cfg, [questions["Mercury_7090318"], questions["NYSEDREGENTS_2012_4_32"]], [])
    # the `arguments` of these two docs in lm-eval 0.4.13's samples file (--log_samples)
    assert [(r.context, r.continuations) for r in engine.requests] == [
        ("Question: Which of these is a learned behavior?\nAnswer:",
         [" a bird building a nest", " a baby crying when hungry", ' a dog sitting when its owner says "sit"',
          " a turtle laying eggs in the sand"]),
        ("Question: Pure water freezes at what temperature?\nAnswer:", [" 100 °C", " 0 °C", " 32 °C", " −10 °C"])]


@pytest.mark.parametrize("name", SETS)
def test_fixture_covers_the_upstream_schema_and_gold_is_lm_evals(tmp_path, name):
    rows = read_jsonl(ARC / name / "test.jsonl")
    assert all(list(r) == ["id", "question", "choices", "answerKey"] for r in rows)
    shapes = Counter((len(r["choices"]["label"]), r["choices"]["label"][0]) for r in rows)
    assert {(3, "A"), (4, "A"), (5, "A"), (3, "1"), (4, "1")} <= set(shapes), shapes
    cfg = load(tmp_path, arc_config("m", tmp_path / "r", name))
    questions = items(cfg)
    lmeval = {r["id"]: r for r in read_jsonl(LMEVAL) if r["set"] == name}
    assert [q.id for q in questions] == [r["id"] for r in rows] and lmeval.keys() == {q.id for q in questions}
    for q, r in zip(questions, rows):
        assert q.gold == r["choices"]["label"].index(r["answerKey"]) == lmeval[q.id]["gold"]
        assert q.choices == r["choices"]["text"]


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "xdist2"])
def test_arc_end_to_end_cases_are_row_shards(run_evals, tiny_lm, tmp_path, workers):
    out = tmp_path / "r"
    result = run_evals(arc_config(tiny_lm, out), *(["-n", str(workers)] if workers else []))
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4, skipped=len(BENCHMARKS) - 1)  # 4 shards; other benchmarks' placeholders
    rows = read_jsonl(ARC / "ARC-Easy" / "test.jsonl")
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(p["id"] for p in preds) == sorted(r["id"] for r in rows)
    assert summary["cases"]["done"] == [f"shard{i}of4" for i in range(4)]
    by_id = {r["id"]: r for r in rows}
    for p in preds:  # row i went to shard i % 4; each record ranks its own number of choices
        assert len(p["lls"]) == len(by_id[p["id"]]["choices"]["text"])
        assert p["pred_norm"] == max(range(len(p["lls"])), key=lambda k: p["lls"][k] / len(
            by_id[p["id"]]["choices"]["text"][k]))
    assert summary["headline"] == "acc_norm" and summary["task"] == "arc"
    assert summary["metrics"]["acc_norm"] == pytest.approx(sum(p["correct_norm"] for p in preds) / len(preds))
    assert summary["chance"] == pytest.approx(sum(1 / len(p["lls"]) for p in preds) / len(preds))
    assert summary["dataset"]["config"] == "ARC-Easy" and "'Question: {question}\\nAnswer:'" in summary["recipe"][
        "template"]
    assert set(summary["per_subject"]) == {r["id"].split("_")[0] for r in rows}


def test_arc_options_and_bad_rows_are_named(run_evals, tiny_lm, tmp_path):
    with pytest.raises(ConfigError, match="scoring.fallback: not a setting of arc"):
        load(tmp_path, arc_config("m", tmp_path / "r", fallback="seeded"))
    with pytest.raises(ConfigError, match="scoring.strategy: arc supports only rank_ll, got 'gen_letter'"):
        load(tmp_path, arc_config("m", tmp_path / "r", strategy="gen_letter"))
    rows = (ARC / "ARC-Easy" / "test.jsonl").read_text().splitlines()[:8]
    bad = json.loads(rows[2])
    bad["answerKey"] = "Z"
    rows[2] = json.dumps(bad)
    (tmp_path / "bad.jsonl").write_text("\n".join(rows) + "\n")
    cfg = arc_config(tiny_lm, tmp_path / "r", num_shards=2)
    cfg["dataset"]["data_files"] = {"test": str(tmp_path / "bad.jsonl")}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*bad.jsonl:3: answerKey: 'Z' is not one of the labels*"])


def test_paired_gate_compares_the_headlines_own_correctness(run_evals, tiny_lm, tmp_path):
    """acc_norm is the headline: the paired gate pairs `correct_norm`, not `correct`. A baseline right on every
    example by acc_norm (and wrong on every one by acc) makes the new run significantly worse."""
    base = tmp_path / "base"
    assert run_evals(arc_config(tiny_lm, base)).ret == 0
    preds = read_jsonl(base / "predictions.jsonl")
    for r in preds:
        r["correct_norm"], r["correct"] = True, False
    (base / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    cfg = arc_config(tiny_lm, tmp_path / "new")
    cfg["gates"] = {"baseline": str(base / "summary.json"), "paired_alpha": 0.05}
    result = run_evals(cfg)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*gate FAILED: arc paired: acc_norm = * -- p = * now wrong, 0 now right*"])
