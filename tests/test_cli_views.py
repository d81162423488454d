"""Issue 28, the command-line side: a model override that gives each checkpoint its own report dir, what
`nanoeval benchmarks` says about each option, prompts in predictions.jsonl, and `nanoeval table` over runs of one
benchmark."""
from __future__ import annotations

import json
import shutil
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config_files import load_task
from tests.conftest import DATA, ROOT, build_tiny_lm, mmlu_tiny_config, read_jsonl

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
    result.stderr.fnmatch_lines(["ERROR: *config.yaml: model.path: *nope*"])
    assert not (tmp_path / "r-nope").exists()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nanoeval.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def listing() -> dict[str, dict[str, str]]:
    """`nanoeval benchmarks` as {benchmark: {"columns": ..., "scoring": ...}}."""
    out = cli("benchmarks")
    assert out.returncode == 0, out.stderr
    found: dict[str, dict[str, str]] = {}
    for line in out.stdout.splitlines():
        if not line.startswith(" "):
            current = found.setdefault(line.split(":")[0], {})
        else:
            key, _, rest = line.strip().partition(": ")
            current[key] = rest
    return found


def test_benchmarks_shows_real_and_dependent_defaults_and_only_usable_options(tmp_path):
    from nanoeval.benchmarks.mmmu_pro import MMMUProOptions
    from nanoeval.shards import num_shards

    shown = listing()
    assert set(shown) == set(BENCHMARKS)
    for name in ("hellaswag", "arc"):  # the shard count a config without num_shards really gets
        p = tmp_path / f"{name}.yaml"
        p.write_text(f"task: {name}\nmodel: {{path: m}}\n")
        assert f"num_shards={num_shards(load_task(p), ROOT)}," in shown[name]["scoring"]
        assert "None," not in shown[name]["scoring"].split("shard_size")[0]
        assert "max_new_tokens" not in shown[name]["scoring"]  # rank-only: no generation option
    assert "max_new_tokens=5 (gen_letter only)" in shown["mmlu"]["scoring"]
    assert "fewshot_from='split', formulation='letters'" in shown["mmlu"]["scoring"]  # cloze: the other choice
    cot = MMMUProOptions(prompt_style="cot").resolve().max_new_tokens
    assert f"max_new_tokens=50 (direct), {cot} (cot)," in shown["mmmu_pro"]["scoring"] and cot == 1024


def benchmark_configs() -> list[dict]:
    """A config of each benchmark on NanoEval's own test data (MMMU-Pro in both settings)."""
    def cfg(task, data_files, **scoring):
        return {"task": task, "model": {"path": "m"}, "dataset": {"data_files": {k: str(DATA / v) for k, v in
                                                                                  data_files.items()}},
                "scoring": scoring}

    return [cfg("mmlu", {"test": "mmlu_tiny/test.jsonl", "dev": "mmlu_tiny/dev.jsonl"}, num_fewshot=1),
            cfg("hellaswag", {"validation": "hellaswag/validation.jsonl"}, num_shards=2),
            cfg("arc", {"test": "arc/ARC-Easy/test.jsonl"}, num_shards=2),
            *(cfg(task, {split: f"{task}/{split}.jsonl"}, num_shards=2) for task, split in (
                ("piqa", "validation"), ("winogrande", "validation"), ("commonsense_qa", "validation"),
                ("openbookqa", "test"), ("social_iqa", "validation"), ("boolq", "validation"))),
            cfg("gsm8k", {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"}, num_shards=2),
            cfg("mmmu_pro", {"test": "mmmu_pro/standard10.parquet"}, strategy="gen_letter",
                setting="standard (10 options)"),
            cfg("mmmu_pro", {"test": "mmmu_pro/vision.parquet"}, strategy="gen_letter", setting="vision")]


def test_the_columns_listed_are_the_columns_each_parser_reads(tmp_path, monkeypatch):
    """Every column a benchmark reads through data.get (the names dataset.columns maps) is listed, and no other."""
    import nanoeval.data

    shown, read = listing(), {name: set() for name in BENCHMARKS}
    for i, config in enumerate(benchmark_configs()):
        name = config["task"]
        bench = BENCHMARKS[name]
        module = sys.modules[bench.load.__module__]

        def recording(row, ds, column, where, _real=nanoeval.data.get, _name=name):
            read[_name].add(column)
            return _real(row, ds, column, where)

        with monkeypatch.context() as m:
            m.setattr(nanoeval.data, "get", recording)
            if hasattr(module, "get"):  # a benchmark module's own import of it (the declarative forms read rows
                m.setattr(module, "get", recording)  # through data.Row)
            p = tmp_path / f"{i}.yaml"
            p.write_text(yaml.safe_dump(config))
            cfg = load_task(p)
            for case in bench.cases(cfg, ROOT):
                assert bench.load(cfg, case, ROOT).examples
    for name, bench in BENCHMARKS.items():
        assert set(bench.columns) == read[name], name
        assert shown[name]["columns"].startswith(", ".join(bench.columns) + " ")


def test_report_prompts_puts_each_examples_full_prompt_in_predictions(run_evals, tiny_lm, tmp_path):
    from nanoeval.benchmarks.mmlu import question_text

    out = tmp_path / "r"
    config = mmlu_tiny_config(tiny_lm, out, scoring={"strategy": "rank_ll", "num_fewshot": 5})
    run_evals(config).assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    plain = read_jsonl(out / "predictions.jsonl")
    assert not any("prompt" in r for r in plain)  # off by default: predictions as they were
    config["report"] = {"prompts": True}
    result = run_evals(config)
    result.assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    result.stdout.fnmatch_lines(["*fingerprint changed*"])  # records with prompts are other records: re-scored
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in plain]
    test_rows = [json.loads(line) for line in (DATA / "mmlu_tiny" / "test.jsonl").read_text().splitlines()]
    for r in rows:
        subject = r["subject"]
        ends = [x for x in test_rows if r["prompt"].endswith(question_text(x["question"], x["choices"]))]
        assert len(ends) == 1 and ends[0]["subject"] == subject
        # the whole context the model ranked " A".." D" after: header, 5 solved shots, then this question
        assert r["prompt"].startswith(f"The following are multiple choice questions (with answers) about "
                                      f"{subject.replace('_', ' ')}.\n\n")
        assert r["prompt"].count("\nAnswer:") == 6
        assert {k: v for k, v in r.items() if k != "prompt"} == \
            next(p for p in plain if p["id"] == r["id"])  # same scores


def test_report_prompts_is_checked_like_any_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: mmlu\nmodel: {path: m}\nreport: {prompts: yes please}\n")
    with pytest.raises(ValueError, match=r"c.yaml: report.prompts: expected true or false, got str"):
        load_task(p)
    p.write_text("task: mmlu\nmodel: {path: m}\nreport: {prompt: true}\n")
    with pytest.raises(ValueError, match=r"c.yaml: report.prompt: unknown key \(expected one of: prompts\)"):
        load_task(p)


def test_table_of_one_benchmark_has_a_column_per_run_and_warns_when_examples_differ(run_evals, tiny_lm, second_lm,
                                                                                    tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_evals(mmlu_tiny_config(tiny_lm, a, name="mmlu_a")).assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    run_evals(mmlu_tiny_config(second_lm, b, name="mmlu_b", dataset__limit=3)).assert_outcomes(
        passed=3, skipped=PLACEHOLDERS)
    shutil.copytree(a, c, ignore=shutil.ignore_patterns(".nanoeval.lock"))
    out = cli("table", str(a / "summary.json"), str(b / "summary.json"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"| mmlu (acc_macro) | {tiny_lm.name} (n=21) | ckpt-b (n=9) |"  # not mmlu_a / mmlu_b columns
    rows = {line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ")[1:] for line in lines[2:]}
    summaries = [json.loads((d / "summary.json").read_text()) for d in (a, b)]
    assert [r.split(" ")[0] for r in rows["acc_macro"]] == [f"{100 * s['metrics']['acc_macro']:.1f}" for s in summaries]
    assert {"acc_micro", "anatomy", "astronomy", "high_school_geography"} <= set(rows)
    assert all(len(cells) == 2 for cells in rows.values())
    assert "warning: mmlu: the runs scored different examples" in out.stderr
    assert "9 examples in all runs, 12 in only some" in out.stderr
    same = cli("table", str(a / "summary.json"), str(c / "summary.json"))
    assert same.returncode == 0 and "warning" not in same.stderr
    assert same.stdout.splitlines()[0] == (f"| mmlu (acc_macro) | {tiny_lm.name} (n=21) [{a}] | "
                                           f"{tiny_lm.name} (n=21) [{c}] |")


def test_a_suite_shows_its_aggregate_and_table_averages_only_the_shared_tasks(run_evals, tiny_lm, second_lm,
                                                                             tmp_path):
    """suite_summary.json's aggregate is the mean of the tasks' own summary.json headlines and centered accuracies,
    over the tasks with a chance level (the others named); the terminal and HTML say it in one line; a run with
    cases missing is partial; `nanoeval table` averages only what every run it compares can average."""
    import html

    base = mmlu_tiny_config(tiny_lm, tmp_path)
    mmlu = {"task": "mmlu", "dataset": base["dataset"]}
    hellaswag = {"task": "hellaswag", "dataset": {"data_files": {"validation": str(DATA / "hellaswag" /
                                                                                  "validation.jsonl")}, "limit": 4},
                 "scoring": {"num_shards": 2}}
    arc = {"task": "arc", "dataset": {"name": "ARC-Easy", "data_files": {"test": str(DATA / "arc" / "ARC-Easy" /
                                                                                     "test.jsonl")}, "limit": 4},
           "scoring": {"num_shards": 2}}
    page = tmp_path / "a.html"
    result = run_evals({"suite": "a", "report_dir": str(tmp_path / "a"), "model": base["model"],
                        "tasks": [mmlu, hellaswag, arc]}, "-p", "tests.fault_injection", f"--html={page}",
                       suite=True, env={"NANOEVAL_FAULT_NO_CHANCE": "arc"})  # arc's summarize: no chance level
    assert result.ret == 0, result.stdout.str()
    s = json.loads((tmp_path / "a" / "suite_summary.json").read_text())
    own = {t: json.loads((tmp_path / "a" / t / "summary.json").read_text()) for t in ("mmlu", "hellaswag", "arc")}
    assert own["arc"]["chance"] is None and own["mmlu"]["chance"] == 0.25 and 0 < own["hellaswag"]["chance"] < 1
    value = {t: own[t]["metrics"][own[t]["headline"]] for t in ("mmlu", "hellaswag")}
    centered = {t: (value[t] - own[t]["chance"]) / (1 - own[t]["chance"]) for t in value}
    agg = s["aggregate"]
    assert agg["tasks"] == ["mmlu", "hellaswag"] and agg["of"] == 3 and agg["left_out"] == {"arc": "no chance level"}
    assert agg["macro_average"] == pytest.approx(sum(value.values()) / 2)
    assert agg["centered_mean"] == pytest.approx(sum(centered.values()) / 2)
    assert agg["partial"] is False and s["schema_version"] == 5
    assert [s["tasks"][t]["chance"] for t in own] == [own[t]["chance"] for t in own]
    assert s["tasks"]["hellaswag"]["centered"] == pytest.approx(centered["hellaswag"])
    assert s["tasks"]["arc"]["centered"] is None
    line = (f"suite (2 of 3 tasks): macro avg {agg['macro_average']:.4f}, centered {agg['centered_mean']:.4f}; "
            "left out: arc (no chance level)")
    lines = result.stdout.lines
    assert line in lines and lines[lines.index(line) - 1].startswith("arc "), lines  # the table's closing line
    assert f"<b>{html.escape(line)}</b>" in page.read_text(encoding="utf-8")

    # another checkpoint, another task set, a case deselected: the aggregate is partial and says where
    result = run_evals({"suite": "b", "report_dir": str(tmp_path / "b"), "model": {"path": str(second_lm)},
                        "tasks": [mmlu, arc]}, "-k", "not anatomy", suite=True)
    assert result.ret == 0, result.stdout.str()
    b = json.loads((tmp_path / "b" / "suite_summary.json").read_text())["aggregate"]
    assert b["tasks"] == ["mmlu", "arc"] and b["partial"] is True and b["incomplete"] == {"mmlu": "1 of 3 cases missing"}
    result.stdout.fnmatch_lines([f"suite (2 of 2 tasks, PARTIAL: mmlu 1 of 3 cases missing): macro avg "
                                 f"{b['macro_average']:.4f}, centered {b['centered_mean']:.4f}"])

    # the table: hellaswag is only in a, arc has no chance level in a: the aggregate columns average mmlu alone
    out = cli("table", str(tmp_path / "a" / "suite_summary.json"), str(tmp_path / "b" / "suite_summary.json"))
    assert out.returncode == 0, out.stderr
    head, _, row_a, row_b = out.stdout.splitlines()
    assert head.endswith("| macro avg (1 shared task) | centered (1 shared task) |"), head
    mmlu_b = json.loads((tmp_path / "b" / "mmlu" / "summary.json").read_text())
    for row, m, partial in ((row_a, own["mmlu"], ""), (row_b, mmlu_b, " (partial)")):
        v = m["metrics"]["acc_macro"]
        c = (v - m["chance"]) / (1 - m["chance"])
        assert row.endswith(f"| {100 * v:.1f}{partial} | {100 * c:.1f}{partial} |"), row
    assert "averages 1 of 3 tasks, those every run has with a value and a chance level (mmlu); left out: " \
           "hellaswag (not in every run), arc (no chance level in a (" in out.stderr, out.stderr
    assert "partial: b (" in out.stderr and "mmlu 1 of 3 cases missing" in out.stderr
