"""Cross-case batching (nanoeval/lookahead.py), end to end through `pytest evals/`: the same artifacts as case by
case, single-process and under -n 2; only the selected cases are scored ahead (-k); a run killed in the middle of a
look-ahead keeps what it journaled and resumes to the uninterrupted result (tests/test_interrupt.py: at any batch);
a look-ahead that fails changes nothing. The engine-level equivalence is in tests/test_engine.py."""
from __future__ import annotations

import json

import pytest

from nanoeval.journal import journal_path, read_journal
from tests.conftest import mmlu_tiny_config, read_jsonl
from tests.test_scale import artifacts, assert_same, suite

SUBJECTS = mmlu_tiny_config("m", "r")["dataset"]["subjects"]


def scored_ahead(report_dir) -> dict[str, int]:
    """Per case: how many of its requests were answered from a look-ahead (its journal's completion line)."""
    return {p.stem: read_journal(p).complete["scored_ahead"] for p in (report_dir / "journals").glob("*.jsonl")}


def ahead_log(path) -> list[dict]:
    return read_jsonl(path) if path.exists() else []


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "xdist2"])
def test_lookahead_gives_the_case_by_case_artifacts(run_evals, tiny_lm, tmp_path, workers):
    runs = {}
    for name, lookahead in (("ahead", None), ("off", 0)):
        cfg = suite(tmp_path / name, tiny_lm)
        cfg["engine"] = {"lookahead": lookahead}
        result = run_evals(cfg, "-n", str(workers), suite=True)
        assert result.ret == 0, result.stdout.str()
        runs[name] = artifacts(tmp_path / name / "s")
        ahead = {t: scored_ahead(tmp_path / name / "s" / t) for t in ("mmlu", "hellaswag")}
        if lookahead == 0:
            assert not any(v for t in ahead.values() for v in t.values())
        else:  # every case but possibly a worker's last one (alone: nothing queued after it) came from a look-ahead
            for t, per_case in ahead.items():
                assert sum(v > 0 for v in per_case.values()) >= len(per_case) - workers, (t, per_case)
    assert_same(runs["ahead"], runs["off"])


def test_lookahead_scores_only_the_selected_cases(run_evals, tiny_lm, tmp_path):
    log = tmp_path / "ahead.jsonl"
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "k"), "-k", "anatomy or geography",
                       "-p", "tests.fault_injection", env={"NANOEVAL_FAULT_AHEAD_LOG": str(log)})
    assert result.ret == 0, result.stdout.str()
    assert [e["cases"] for e in ahead_log(log)] == [["anatomy", "high_school_geography"]]
    assert not journal_path(tmp_path / "k", "astronomy").exists()
    assert sorted(scored_ahead(tmp_path / "k")) == ["anatomy", "high_school_geography"]


def test_under_xdist_each_worker_looks_ahead_at_its_own_cases(run_evals, tiny_lm, tmp_path):
    log = tmp_path / "ahead.jsonl"
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "n"), "-n", "2", "-p", "tests.fault_injection",
                       env={"NANOEVAL_FAULT_AHEAD_LOG": str(log)})
    assert result.ret == 0, result.stdout.str()
    entries = ahead_log(log)
    assert entries and all(e["worker"].startswith("gw") for e in entries)
    cases = [c for e in entries for c in e["cases"]]
    assert len(cases) == len(set(cases)) and set(cases) <= set(SUBJECTS)  # no case scored ahead twice


def test_a_failing_lookahead_leaves_each_case_to_score_its_own(run_evals, tiny_lm, tmp_path):
    ref = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "ref", engine={"lookahead": 0}))
    assert ref.ret == 0
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "run"), "-p", "tests.fault_injection",
                       env={"NANOEVAL_FAULT_PRESCORE": "1"})
    assert result.ret == 0, result.stdout.str()
    assert set(scored_ahead(tmp_path / "run").values()) == {0}
    assert [r["pred"] for r in read_jsonl(tmp_path / "run" / "predictions.jsonl")] == \
        [r["pred"] for r in read_jsonl(tmp_path / "ref" / "predictions.jsonl")]


def test_a_run_killed_in_the_middle_of_a_lookahead_resumes(run_evals, tiny_lm, tmp_path):
    ref = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "ref", engine={"lookahead": 0}))
    assert ref.ret == 0
    cfg, log = mmlu_tiny_config(tiny_lm, tmp_path / "run"), tmp_path / "ahead.jsonl"
    # the process dies right after astronomy's first journal write, made by the first case's look-ahead (of all
    # three subjects), which journals each example as soon as it is scored (tests/test_interrupt.py: at any batch)
    killed = run_evals(cfg, "-p", "tests.fault_injection",
                       env={"NANOEVAL_FAULT_EXIT": "mmlu:astronomy", "NANOEVAL_FAULT_AHEAD_LOG": str(log)})
    assert killed.ret == 3
    assert not ahead_log(log), "the look-ahead never ended"
    journals = {s: read_journal(journal_path(tmp_path / "run", s)) for s in SUBJECTS}
    assert journals["astronomy"].records and not any(j.complete for j in journals.values())
    rerun = run_evals(cfg)
    assert rerun.ret == 0, rerun.stdout.str()
    got, want = read_jsonl(tmp_path / "run" / "predictions.jsonl"), read_jsonl(tmp_path / "ref" / "predictions.jsonl")
    assert [(r["id"], r["pred"]) for r in got] == [(r["id"], r["pred"]) for r in want]
    for a, b in zip(got, want):
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cases"]["complete"] and not (tmp_path / "run" / "previous").exists()
