"""An interrupt during a look-ahead keeps what it scored: a real Ctrl-C (SIGINT) or SIGKILL delivered in the middle
of Engine.prescore (after K batches, tests/fault_injection.py) leaves every example scored so far in its own case's
journal, in order; the rerun scores only the rest and gives the artifacts of an uninterrupted run. Truncated prompts
are counted once, in their own case's journal, as without the look-ahead."""
from __future__ import annotations

import json
import signal

import pytest

from nanoeval.journal import journal_path, read_journal
from tests.conftest import mmlu_tiny_config, read_jsonl

SUBJECTS = mmlu_tiny_config("m", "r")["dataset"]["subjects"]
K = 5  # batches scored ahead before the signal: with batch_size 1, one MMLU question each


def journals(out) -> dict:
    return {s: read_journal(journal_path(out, s)) for s in SUBJECTS}


def comparable(out):
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    return preds, {k: summary[k] for k in ("metrics", "stderr", "per_subject", "counts")}, summary["cases"]["done"]


@pytest.mark.parametrize("sig", ["INT", "KILL"])
def test_an_interrupt_in_the_middle_of_a_lookahead_keeps_every_example_scored(run_evals, tiny_lm, tmp_path, sig):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "run", engine={"batch_size": 1})  # the look-ahead is on by default
    ref = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "ref", engine={"batch_size": 1}))
    assert ref.ret == 0, ref.stdout.str()
    ref_preds, ref_scores, ref_done = comparable(tmp_path / "ref")
    order = {s: [r["id"] for r in ref_preds if r["subject"] == s] for s in SUBJECTS}  # each case's example order

    killed = run_evals(cfg, "-p", "tests.fault_injection", env={"NANOEVAL_FAULT_AHEAD_SIGNAL": f"{K}:{sig}"})
    out = killed.stdout.str()
    if sig == "INT":  # what Ctrl-C does: pytest stops, the plugin says what is kept
        assert killed.ret == 2, out
        assert f"nanoeval: mmlu: interrupted; rerun to resume (0 of 3 cases done, {K} examples of unfinished cases " \
            "journaled; a rerun keeps them and scores only what is missing)" in out, out
    else:
        assert killed.ret == -signal.SIGKILL, out
    kept = journals(tmp_path / "run")
    assert not any(j.complete for j in kept.values()), "the signal came before the first case finished"
    # every example scored before the signal is journaled: one per batch, each in its own case, in the case's order
    assert sum(len(j.records) for j in kept.values()) == K, {s: len(j.records) for s, j in kept.items()}
    by_id = {r["id"]: r for r in ref_preds}
    for s, j in kept.items():
        ids = [r["id"] for r in j.records]
        assert ids == [i for i in order[s] if i in ids], (s, ids)
        for r in j.records:
            assert (r["subject"], r["pred"]) == (s, by_id[r["id"]]["pred"])
            assert r["lls"] == pytest.approx(by_id[r["id"]]["lls"], abs=1e-4)

    rerun = run_evals(cfg)
    assert rerun.ret == 0, rerun.stdout.str()
    done = journals(tmp_path / "run")
    assert sum(j.complete["scored_now"] for j in done.values()) == 21 - K  # only the rest is scored again
    preds, scores, cases = comparable(tmp_path / "run")
    assert [(r["id"], r["pred"], r["correct"]) for r in preds] == \
        [(r["id"], r["pred"], r["correct"]) for r in ref_preds]
    for a, b in zip(preds, ref_preds):
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)
    assert scores == ref_scores and cases == ref_done
    assert not (tmp_path / "run" / "previous").exists()


def test_truncated_prompts_are_counted_once_in_their_own_case_under_the_lookahead(run_evals, tiny_lm, tmp_path):
    per_case = {}
    for name, lookahead in (("ahead", None), ("off", 0)):
        cfg = mmlu_tiny_config(tiny_lm, tmp_path / name, model__max_length=100,
                               engine={"lookahead": lookahead})
        result = run_evals(cfg)
        assert result.ret == 0, result.stdout.str()
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        per_case[name] = {c: d["truncated_prompts"] for c, d in summary["cases"]["per_case"].items()}
        ahead = [read_journal(journal_path(tmp_path / name, s)).complete["scored_ahead"] for s in SUBJECTS]
        assert (sum(ahead) > 0) == (lookahead is None)
    assert 0 < sum(per_case["off"].values()) < 21, "fixture: some prompts, not all, are truncated"
    assert per_case["ahead"] == per_case["off"]


def test_a_served_lookahead_journals_each_round_of_answers_before_the_server_dies(run_evals, tiny_lm, tmp_path):
    """A served model's look-ahead (engine.lookahead > 0) sends its requests in rounds of `concurrency` and
    journals each round's examples before the next: a server that dies mid look-ahead loses none of them."""
    from tests.test_served import answered, openai_server, predictions, served_mmlu, server_log

    local = tmp_path / "local"
    assert run_evals(mmlu_tiny_config(tiny_lm, local)).ret == 0
    out, log = tmp_path / "out", tmp_path / "second.jsonl"
    with openai_server(tiny_lm, "--fault", "die-after:9") as (url, proc):
        cfg = {**served_mmlu(tiny_lm, out, url, concurrency=2, max_retries=1), "engine": {"lookahead": 64}}
        first = run_evals(cfg)
        assert proc.wait(timeout=10) != 0  # the server died in the middle of the look-ahead
    assert first.ret == 1 and "cannot connect" in first.stdout.str()
    kept = answered(out)
    assert 0 < kept <= 8  # the probe and 8 questions were answered before it died: those are journaled
    with openai_server(tiny_lm, "--log", str(log)) as (url, _):
        second = run_evals({**served_mmlu(tiny_lm, out, url, concurrency=2), "engine": {"lookahead": 64}})
    assert second.ret == 0, second.stdout.str()
    assert len(server_log(log)) == 1 + 21 - kept  # the probe, then only the missing questions
    assert [(r["id"], r["pred"]) for r in predictions(out)] == [(r["id"], r["pred"]) for r in predictions(local)]
