"""Numbers you can trust: what decides a result is in the fingerprint (model files, recipe code, environment), a
stale run is never resumed, nothing passes with nothing scored, gates fail in pytest's own terms, counters and
timing say what they mean, and merge needs nothing but the shards."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from nanoeval.config import ConfigError
from nanoeval.config_files import load_task
from nanoeval.identity import file_digest, model_identity
from tests.conftest import DATA, ROOT, build_tiny_lm, mmlu_tiny_config, read_jsonl

HELLASWAG = DATA / "hellaswag" / "validation.jsonl"


def summary_of(d: Path) -> dict:
    return json.loads((d / "summary.json").read_text())


# ------------------------------------------------------------------------------------------------ model identity
def test_retrained_checkpoint_in_the_same_folder_is_never_resumed(run_evals, tiny_lm, tmp_path):
    model, out = tmp_path / "ckpt", tmp_path / "r"
    shutil.copytree(tiny_lm, model)
    cfg = mmlu_tiny_config(model, out)
    assert run_evals(cfg).ret == 0
    before = read_jsonl(out / "predictions.jsonl")
    ident = summary_of(out)["model"]["identity"]
    assert ident["kind"] == "files" and {"model.safetensors", "tokenizer.json", "config.json"} <= set(ident["files"])
    assert ident["files"]["model.safetensors"] == file_digest(model / "model.safetensors")

    build_tiny_lm(model, seed=1)  # "retrained": new weights written into the same folder
    result = run_evals(cfg)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["nanoeval: mmlu: fingerprint changed (model files (weights, tokenizer, chat "
                                 "template): * -> *); previous run moved to *"])
    after = read_jsonl(out / "predictions.jsonl")
    assert [r["lls"] for r in after] != [r["lls"] for r in before]  # scored again, not served from the journals
    assert summary_of(out)["model"]["identity"]["files"]["model.safetensors"] != ident["files"]["model.safetensors"]
    assert len(list((out / "previous").iterdir())) == 1


def test_tokenizer_and_chat_template_are_part_of_the_model_identity(tiny_lm, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_lm, model)
    base = model_identity(str(model), None, None)["digest"]
    (model / "README.md").write_text("notes")  # documentation changes nothing
    assert model_identity(str(model), None, None)["digest"] == base
    tc = json.loads((model / "tokenizer_config.json").read_text())
    tc["chat_template"] = "{{ messages[0]['content'] }}"
    (model / "tokenizer_config.json").write_text(json.dumps(tc))
    templated = model_identity(str(model), None, None)["digest"]
    assert templated != base
    (model / "chat_template.jinja").write_text("{{ messages }}")
    assert model_identity(str(model), None, None)["digest"] not in (base, templated)


def test_file_digests_are_remembered_by_path_size_mtime_and_inode(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOEVAL_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights v1")
    real = file_digest(f)
    memo = next((tmp_path / "cache" / "digests").rglob("*"))
    while memo.is_dir():
        memo = next(memo.iterdir())
    memo.write_text("0" * 64)  # the remembered digest is what a second call returns: the file is not read again
    assert file_digest(f) == "0" * 64
    f.write_bytes(b"weights v2")  # same path, new size/mtime: hashed afresh
    assert file_digest(f) not in ("0" * 64, real)


def test_hub_model_is_identified_by_its_resolved_commit(tiny_lm, tmp_path, monkeypatch):
    """A hub id in the local HF cache (offline): the commit `refs/main` points to is the identity, and the engine
    loads exactly that snapshot."""
    from huggingface_hub import constants

    from nanoeval.config import EngineConfig, ModelConfig
    from nanoeval.engine import Engine

    hub = tmp_path / "hub"
    repo = hub / "models--nanoeval--tiny"
    commits = ["a" * 40, "b" * 40]
    for c in commits:
        shutil.copytree(tiny_lm, repo / "snapshots" / c)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commits[0])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    first = model_identity("nanoeval/tiny", None, None)
    assert first["kind"] == "hub" and first["commit"] == commits[0]
    assert model_identity("nanoeval/tiny", None, commits[1])["commit"] == commits[1]
    (repo / "refs" / "main").write_text(commits[1])  # the branch moved: another identity
    assert model_identity("nanoeval/tiny", None, None)["digest"] != first["digest"]
    engine = Engine(ModelConfig(path="nanoeval/tiny"), EngineConfig(), tmp_path)
    assert engine.meta["commit"] == commits[1]
    with pytest.raises(LookupError, match="no such local folder, and no hub model of that name at revision 'main' in the local Hugging Face cache"):
        model_identity("nanoeval/absent", None, None)


# ------------------------------------------------------------------------------------------------- recipe code
def copy_project(dest: Path) -> Path:
    """The package and the pytest wiring in a folder of their own, to edit code without touching the repo."""
    for package in ("nanoeval", "evals"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, dest / name)
    return dest


def code_hashes(project: Path) -> dict[str, str]:
    code = ("import json; from nanoeval.runner import benchmark_code_hash; from nanoeval.benchmarks import "
            "BENCHMARKS; import nanoeval; assert nanoeval.__file__.startswith('%s'); print(json.dumps({t: "
            "benchmark_code_hash(b) for t, b in BENCHMARKS.items()}))" % project)
    res = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_code_hash_follows_what_builds_records_not_where_it_lives(tmp_path):
    project = copy_project(tmp_path / "p")
    base = code_hashes(project)
    mmlu, mmmu_pro = project / "nanoeval" / "benchmarks" / "mmlu.py", project / "nanoeval" / "benchmarks" / "mmmu_pro.py"
    # comments, docstrings and moving a function to another module change nothing
    edit(mmlu, "def header(subject: str) -> str:\n",
         "def header(subject: str) -> str:\n    \"\"\"A new docstring.\"\"\"\n    # and a comment\n")
    scoring = project / "nanoeval" / "scoring.py"
    text = scoring.read_text()
    start = text.index("def first_letter(")
    end = text.index("\n\n\n", start) + 3
    scoring.write_text(text[:start] + text[end:])
    mmlu.write_text(mmlu.read_text() + "\n\nimport re  # noqa: E402\n\n\n" + text[start:end])
    edit(mmlu, "first_letter, macro", "macro")
    # metrics and aggregation are not part of it: artifacts are rebuilt from the same journals
    edit(mmlu, 'return Metrics("acc_macro"', 'return Metrics("acc_micro"')
    assert code_hashes(project) == base
    # what builds prompts or parses answers is
    edit(mmlu, '{options}Answer:"', '{options}Answer: "')
    edit(mmmu_pro, 'for ch in [",", ".", "!", "?", ";", ":", "\'"]:', 'for ch in [",", ".", "!", "?", ";", ":"]:')
    # a benchmark stated as data (multiple_choice.py): its lambdas, and the helpers they call
    edit(project / "nanoeval" / "benchmarks" / "piqa.py", 'f"Question: {row[\'goal\']}\\nAnswer:"',
         'f"Question: {row[\'goal\']}\\nAnswer: "')
    edit(project / "nanoeval" / "benchmarks" / "winogrande.py", 'return row["sentence"].index("_")',
         'return row["sentence"].rindex("_")')
    # ... and a generative one (generative.py): a pattern of an extractor, held in a formulation of the declaration
    edit(project / "nanoeval" / "benchmarks" / "gsm8k.py", 'Extractor(r"#### (\\-?[0-9\\.\\,]+)")',
         'Extractor(r"#### (\\-?[0-9\\.]+)")')
    changed = code_hashes(project)
    edited = ("mmlu", "mmmu_pro", "piqa", "winogrande", "gsm8k")
    assert all(changed[t] != base[t] for t in edited), changed
    assert all(changed[t] == base[t] for t in base if t not in edited)  # the others use none of it


def test_code_hash_follows_what_a_function_imports_inside_itself(tmp_path):
    """generation.py imports its cache layers (kvcache.py: they import transformers) inside the functions that use
    them; an edit there still changes the hash of every benchmark (all of them may generate)."""
    project = copy_project(tmp_path / "p")
    base = code_hashes(project)
    edit(project / "nanoeval" / "engine" / "kvcache.py", "self.room_keys[:, :, self.filled:end] = key_states",
         "self.room_keys[:, :, self.filled:end] = key_states * 1")
    changed = code_hashes(project)
    assert all(changed[t] != base[t] for t in base), changed


def test_edited_prompt_moves_the_run_aside_and_an_edited_metric_rebuilds_from_journals(tiny_lm, tmp_path):
    project = copy_project(tmp_path / "p")
    out = tmp_path / "r"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, out)))

    def run():
        return subprocess.run([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"],
                              cwd=project, env={**os.environ, "NANOEVAL_CONFIG": str(cfg)}, capture_output=True,
                              text=True)

    assert run().returncode == 0
    first = summary_of(out)
    journals = {p.name: p.read_bytes() for p in (out / "journals").iterdir()}
    edit(project / "nanoeval" / "benchmarks" / "mmlu.py", 'return Metrics("acc_macro"', 'return Metrics("acc_micro"')
    res = run()
    assert res.returncode == 0 and "previous run moved" not in res.stdout
    assert summary_of(out)["headline"] == "acc_micro" and summary_of(out)["fingerprint"] == first["fingerprint"]
    assert {p.name: p.read_bytes() for p in (out / "journals").iterdir()} == journals  # nothing scored again
    edit(project / "nanoeval" / "benchmarks" / "mmlu.py", 'return f"{question.strip()}\\n{options}Answer:"',
         'return f"Question: {question.strip()}\\n{options}Answer:"')
    res = run()
    assert res.returncode == 0
    assert "nanoeval: mmlu: fingerprint changed (recipe code: " in res.stdout and "previous run moved to" in res.stdout
    assert summary_of(out)["recipe"]["code_hash"] != first["recipe"]["code_hash"]


# -------------------------------------------------------------------------------------------------- environment
def test_environment_is_part_of_the_fingerprint(run_evals, tiny_lm, tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert run_evals(mmlu_tiny_config(tiny_lm, out)).ret == 0
    from importlib import metadata

    import platform

    assert summary_of(out)["environment"] == {
        "torch": metadata.version("torch"), "dtype": "float32", "transformers": metadata.version("transformers"),
        "device_type": "cpu", "python": platform.python_version(), "tokenizers": metadata.version("tokenizers"),
        "datasets": metadata.version("datasets"), "jinja2": metadata.version("jinja2"),
        "gguf": metadata.version("gguf"), "Pillow": metadata.version("Pillow")}
    from nanoeval import runner

    cfg = load_task(_write(tmp_path / "c.yaml", mmlu_tiny_config(tiny_lm, out)))
    real = runner.task_info(cfg, ROOT)
    assert real["fingerprint"] == json.loads((out / "run.json").read_text())["fingerprint"]
    real_env = runner.environment
    monkeypatch.setattr(runner, "environment", lambda dtype, device: {**real_env(dtype, device), "torch": "0.0.1"})
    changed = runner.task_info(cfg, ROOT)
    monkeypatch.undo()
    assert changed["fingerprint"] != real["fingerprint"] and \
        {k for k in real["fingerprint_parts"] if real["fingerprint_parts"][k] != changed["fingerprint_parts"][k]} \
        == {"environment"}
    run_json = json.loads((out / "run.json").read_text())  # as if the journals came from another torch
    run_json["fingerprint_parts"]["environment"] = "0" * 16
    run_json["fingerprint"] = "0" * 16
    (out / "run.json").write_text(json.dumps(run_json))
    result = run_evals(mmlu_tiny_config(tiny_lm, out))
    result.stdout.fnmatch_lines(["nanoeval: mmlu: fingerprint changed (environment (library versions, dtype, "
                                 "device): * -> *); previous run moved to *"])


# ----------------------------------------------------------------------------------------------- report dirs
@pytest.mark.parametrize("second,message", [
    ("same", "tasks[[]1[]].report_dir (*) is the same folder as tasks[[]0[]].report_dir (*)"),
    ("inside", "tasks[[]1[]].report_dir (*) is inside tasks[[]0[]].report_dir (*)"),
    ("suite", "tasks[[]0[]].report_dir (*) holds the suite's report_dir (*)"),
])
def test_equal_or_nested_report_dirs_are_refused_at_config_time(run_evals, tiny_lm, tmp_path, second, message):
    base = mmlu_tiny_config(tiny_lm, tmp_path)
    a = {"name": "a", "task": "mmlu", "dataset": base["dataset"], "report_dir": str(tmp_path / "x")}
    b = {"name": "b", "task": "mmlu", "dataset": base["dataset"]}
    if second == "same":
        b["report_dir"] = str(tmp_path / "x")
    elif second == "inside":
        b["report_dir"] = str(tmp_path / "x" / "b")
    else:
        a["report_dir"] = str(tmp_path)
    suite = {"suite": "s", "report_dir": str(tmp_path / "s"), "model": base["model"], "tasks": [a, b]}
    result = run_evals(suite, suite=True)
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: *suite.yaml: {message}*"])
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------- nothing scored, no pass
def test_cases_that_would_score_nothing_are_refused_before_the_model_loads(run_evals, tmp_path):
    missing_model = tmp_path / "no_model_needed"  # the data check comes first: this folder is never opened
    missing_model.mkdir()
    for f in ("config.json", "tokenizer_config.json"):  # what the model check looks for
        (missing_model / f).write_text("{}")
    hs = {"task": "hellaswag", "model": {"path": str(missing_model)}, "report_dir": str(tmp_path / "h"),
          "dataset": {"data_files": {"validation": str(tmp_path / "five.jsonl")}}, "scoring": {"num_shards": 8}}
    (tmp_path / "five.jsonl").write_text("".join(HELLASWAG.read_text().splitlines(keepends=True)[:5]))
    result = run_evals(hs)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *config.yaml: scoring.num_shards: 8 shards but split 'validation' has 5 "
                                 "row(s), so shards 5..7 would be empty (use at most 5 shards)"])
    mmlu = mmlu_tiny_config(missing_model, tmp_path / "m", scoring={"num_fewshot": 7, "fewshot_from": "test_head"})
    mmlu["dataset"]["fewshot_split"] = None
    result = run_evals(mmlu)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *dataset.subjects: 3 subject(s) have no more than the 7 test rows that "
                                 "fewshot_from: test_head takes as shots in split 'test': anatomy, astronomy, *"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_case_whose_rows_are_all_skipped_fails_naming_the_case(run_evals, tiny_lm, tmp_path):
    rows = read_jsonl(DATA / "mmlu_tiny" / "test.jsonl")
    bad = [dict(r, answer=9) if r["subject"] == "anatomy" else r for r in rows]
    data = tmp_path / "t.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in bad))
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    cfg["dataset"] = {"data_files": {"test": str(data)}, "fewshot_split": None, "on_bad_row": "skip",
                      "subjects": ["anatomy", "astronomy"]}
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*EmptyCaseError: mmlu:anatomy: no examples to score (the data has no rows for this "
                                 "case; all 7 of its rows were skipped as bad rows)*", "*1 failed, 1 passed*"])


# ------------------------------------------------------------------------------------------------------- gates
def test_gate_thresholds_are_checked_at_config_time(tmp_path):
    base = {"task": "mmlu", "model": {"path": "m"}}
    for gates, message in [({"min": 30}, "gates.min: expected a fraction between 0 and 1 (accuracy 0.30, not 30)"),
                           ({"min_per_subject": -0.1}, "gates.min_per_subject: expected a fraction"),
                           ({"baseline": "b.json", "max_drop": 2}, "gates.max_drop: expected a fraction"),
                           ({"baseline": "b.json", "paired_alpha": 5}, "gates.paired_alpha: expected a significance"),
                           ({"baseline": "b.json", "max_drop_stderr": -1}, "gates.max_drop_stderr: expected a number")]:
        p = tmp_path / "c.yaml"
        p.write_text(yaml.safe_dump({**base, "gates": gates}))
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_task(p)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_failed_gate_is_a_failed_test_everywhere(run_evals, tiny_lm, tmp_path, workers):
    suite = {"suite": "s", "report_dir": str(tmp_path / "s"), "model": {"path": str(tiny_lm)}, "tasks": [
        {"task": "mmlu", "dataset": mmlu_tiny_config(tiny_lm, tmp_path)["dataset"], "gates": {"min": 0.99}},
        {"task": "hellaswag", "dataset": {"data_files": {"validation": str(HELLASWAG)}, "limit": 2},
         "scoring": {"num_shards": 2}, "gates": {"min": 0.0}}]}
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    result = run_evals(suite, "-n", workers, f"--junitxml={junit}", f"--html={html}", "--self-contained-html",
                       suite=True)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu min: acc_macro = * (needs >= 0.99)*",
                                 "FAILED *evals/test_mmlu.py::gates[[]mmlu[]]*", "*1 failed, 6 passed*"])
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["gates[mmlu]"].find("failure") is not None and cases["gates[hellaswag]"].find("failure") is None
    page = html.read_text()
    assert "1 Failed" in page and "gates[mmlu]" in page
    suite_summary = json.loads((tmp_path / "s" / "suite_summary.json").read_text())
    assert [g["passed"] for g in suite_summary["tasks"]["mmlu"]["gates"]] == [False]
    assert [g["passed"] for g in suite_summary["tasks"]["hellaswag"]["gates"]] == [True]


def test_paired_gate_needs_common_examples_and_a_baseline_metric(run_evals, tiny_lm, tmp_path):
    base = tmp_path / "base"
    assert run_evals(mmlu_tiny_config(tiny_lm, base)).ret == 0
    preds = read_jsonl(base / "predictions.jsonl")
    (base / "predictions.jsonl").write_text("".join(json.dumps(dict(r, id="other/" + r["id"])) + "\n"
                                                    for r in preds))
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "new", gates={"baseline": str(base / "summary.json"),
                                                              "paired_alpha": 0.05})
    result = run_evals(cfg)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu paired: * -- no example ids in common with the baseline "
                                 "(21 here, 21 in *): nothing to compare*"])
    (base / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds[:10]))
    result = run_evals(cfg)
    result.stdout.fnmatch_lines(["*gate * mmlu paired: * -- p = * (* now wrong, * now right, compared on 10 common "
                                 "examples of 21 here / 10 in the baseline)*"])
    summary = json.loads((base / "summary.json").read_text())
    summary["metrics"]["acc_macro"] = None
    (base / "summary.json").write_text(json.dumps(summary))
    cfg["gates"] = {"baseline": str(base / "summary.json"), "max_drop": 0.1}
    result = run_evals(cfg)
    assert result.ret == 1 and "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu max_drop: * -- baseline *summary.json: metric 'acc_macro' is "
                                 "missing or null*"])
    (base / "summary.json").write_text(json.dumps({"tasks": {"mmlu": []}}))  # a baseline of an unexpected shape
    result = run_evals(cfg)
    assert result.ret == 1 and "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*gate FAILED: mmlu baseline: * -- *summary.json: AttributeError*", "*1 failed*"])
    assert summary_of(tmp_path / "new")["gates"][0]["passed"] is False


# ------------------------------------------------------------------------------------------ counters and timing
def test_truncation_and_generation_limits_are_counted_per_case(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = mmlu_tiny_config(tiny_lm, out, scoring={"strategy": "gen_letter", "max_new_tokens": 2})
    cfg["model"]["max_length"] = 40  # every prompt is longer: each one is left-truncated
    result = run_evals(cfg)
    assert result.ret == 0
    s = summary_of(out)
    per_case = s["cases"]["per_case"]
    assert all(v["truncated_prompts"] == 7 for v in per_case.values())
    assert s["counts"]["truncated_prompts"] == 21 == sum(v["truncated_prompts"] for v in per_case.values())
    cut = sum(v["hit_max_new_tokens"] for v in per_case.values())
    assert s["counts"]["hit_max_new_tokens"] == cut and s["counts"]["generations"] == 21
    assert cut > 1  # a random 2-layer model rarely says EOS within 2 tokens (seeded: the same every run)
    result.stdout.fnmatch_lines([f"nanoeval WARNING: mmlu: {cut} of 21 generations (*) hit max_new_tokens=2*"])
    result.stdout.fnmatch_lines(["nanoeval WARNING: mmlu: 21 of 21 prompts (100 %) were longer than model.max_length "
                                 "(40) and lost their beginning (left-truncated)*"])
    assert "truncated 100%" in s["flags"]
    # a rerun serves everything from the journals and reports the same counts, not twice as many, and no
    # throughput or wall time from the earlier session
    assert run_evals(cfg).ret == 0
    again = summary_of(out)
    assert again["counts"]["truncated_prompts"] == 21
    assert again["timing"]["examples_scored"] == 0 and again["timing"]["task_wall_seconds"] is None
    assert again["timing"]["examples_per_second"] is None


def test_timing_separates_session_wall_from_case_seconds_and_survives_merge(run_evals, tiny_lm, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "mmlu_tiny", data)
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "x")
    cfg["dataset"]["data_files"] = {"test": str(data / "test.jsonl"), "dev": str(data / "dev.jsonl")}
    for i in range(2):
        cfg["report_dir"] = str(tmp_path / f"shard{i}")
        assert run_evals(cfg, "-n", "2", "--nanoeval-shard", f"{i}/2").ret == 0
    t = summary_of(tmp_path / "shard0")["timing"]
    assert t["session_wall_seconds"] >= t["task_wall_seconds"] > 0
    assert t["case_seconds_sum"] == pytest.approx(sum(
        v["seconds"] for v in summary_of(tmp_path / "shard0")["cases"]["per_case"].values()), abs=0.02)
    assert "case_seconds_sum" in t["examples_per_second_basis"]

    # merge reads only the shards: the data files are gone and it runs from another directory
    shutil.rmtree(data)
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bad = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0"), "--out", str(out)],
                         capture_output=True, text=True, cwd=elsewhere)
    assert bad.returncode == 2 and "complete in no shard" in bad.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # a failed merge leaves --out as it was
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0"),
                          str(tmp_path / "shard1"), "--out", str(out)], capture_output=True, text=True, cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    merged = summary_of(out)
    assert merged["cases"]["complete"] and merged["counts"]["examples"] == 21
    assert merged["timing"]["session_wall_seconds"] is None
    assert set(merged["timing"]["shard_session_wall_seconds"]) == {str(tmp_path / "shard0"), str(tmp_path / "shard1")}
    assert merged["artifacts"]["summary.json"] == str(out / "summary.json")
    assert not [p for p in tmp_path.iterdir() if ".merging-" in p.name or ".old-" in p.name]

    run_json = json.loads((tmp_path / "shard1" / "run.json").read_text())
    run_json["environment"]["torch"] = "0.0.1"
    (tmp_path / "shard1" / "run.json").write_text(json.dumps(run_json))
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0"),
                          str(tmp_path / "shard1"), "--out", str(tmp_path / "m2")], capture_output=True, text=True,
                         cwd=elsewhere)
    assert res.returncode == 2 and "mmlu: shards ran with different versions or devices" in res.stderr
    assert "torch 0.0.1" in res.stderr and not (tmp_path / "m2").exists()


def test_rescore_rejects_non_utf8_and_non_object_lines(tmp_path):
    good = json.dumps({"id": "1", "response": "Answer: A", "options": "['x', 'y']", "answer": "A"})
    for name, content, message in [
        ("latin1.jsonl", good.encode() + b"\n" + "{\"id\": \"caf\xe9\"}".encode("latin-1") + b"\n",
         "latin1.jsonl: line 2: not UTF-8 text (byte 0xe9 at column 12); expected JSON lines"),
        ("list.jsonl", (good + "\n[1, 2]\n").encode(), "list.jsonl: line 2: expected a JSON object (a row with id, "
                                                       "response, options, answer), got a list"),
    ]:
        (tmp_path / name).write_bytes(content)
        res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "rescore", str(tmp_path / name)],
                             capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert res.stderr.strip().endswith(message), res.stderr


# ---------------------------------------------------------------------------------------- published defaults
def test_mmmu_pro_defaults_are_the_published_recipe(tmp_path):
    p = tmp_path / "c.yaml"
    for style, tokens in [("direct", 50), ("cot", 1024)]:
        p.write_text(yaml.safe_dump({"task": "mmmu_pro", "model": {"path": "m"}, "scoring": {"prompt_style": style}}))
        s = load_task(p).scoring
        assert (s.strategy, s.max_new_tokens) == ("gen_letter", tokens)
    p.write_text(yaml.safe_dump({"task": "mmlu", "model": {"path": "m"}}))
    assert (load_task(p).scoring.strategy, load_task(p).scoring.max_new_tokens) == ("rank_ll", 5)


def test_mostly_fallback_and_cut_generations_are_marked_everywhere(run_evals, tmp_path):
    from tests.test_mmmu_pro import TINY_VLM

    task = {"task": "mmmu_pro", "dataset": {"data_files": {"test": str(DATA / "mmmu_pro" / "standard10.parquet")},
                                            "subjects": ["Art", "Math"]}, "scoring": {"max_new_tokens": 3}}
    suite = {"suite": "s", "report_dir": str(tmp_path / "s"), "model": {"path": str(TINY_VLM)}, "tasks": [task]}
    html = tmp_path / "report.html"
    result = run_evals(suite, f"--html={html}", "--self-contained-html", suite=True)
    assert result.ret == 0, result.stdout.str()
    s = json.loads((tmp_path / "s" / "suite_summary.json").read_text())["tasks"]["mmmu_pro"]
    rate = s["metrics"]["fallback_rate"]
    assert rate >= 0.5  # a random-init model never writes a letter the parser finds
    assert f"FALLBACK {100 * rate:.0f}%" in s["flags"] and any("mostly chance" in w for w in s["warnings"])
    result.stdout.fnmatch_lines([f"mmmu_pro *acc * FALLBACK {100 * rate:.0f}%*",
                                 "nanoeval WARNING: mmmu_pro: * generations (*) hit max_new_tokens=3*",
                                 "nanoeval WARNING: mmmu_pro: fallback on * % of rows*"])
    assert f"FALLBACK {100 * rate:.0f}%" in html.read_text()


def test_hellaswag_fixture_has_no_length_tell():
    from nanoeval.benchmarks.hellaswag import preprocess as hellaswag_preprocess

    rows = read_jsonl(HELLASWAG)
    lengths = [[len(hellaswag_preprocess(e)) for e in r["endings"]] for r in rows]
    longest = sum(max(range(4), key=n.__getitem__) == int(r["label"]) for n, r in zip(lengths, rows)) / len(rows)
    shortest = sum(min(range(4), key=n.__getitem__) == int(r["label"]) for n, r in zip(lengths, rows)) / len(rows)
    assert longest == pytest.approx(0.25, abs=0.06) and shortest == pytest.approx(0.25, abs=0.06)


# ----------------------------------------------------------------------------------------------------- hygiene
def test_one_model_per_process_and_each_models_cases_together(run_evals, tiny_lm, tmp_path):
    from nanoeval.pool import ModelPool
    from tests.test_mmmu_pro import TINY_VLM

    other = build_tiny_lm(tmp_path / "other", seed=3)
    cfg_a, cfg_b = (load_task(_write(tmp_path / f"{n}.yaml", mmlu_tiny_config(m, tmp_path / n)))
                    for n, m in (("a", tiny_lm), ("b", other)))
    pool = ModelPool()
    first = pool.get(cfg_a, ROOT)
    assert pool.get(cfg_a, ROOT) is first
    pool.get(cfg_b, ROOT)
    assert len(pool.engines) == 1 and not hasattr(first, "model")  # the first model was released

    base = mmlu_tiny_config(tiny_lm, tmp_path)
    suite = {"suite": "s", "report_dir": str(tmp_path / "s"), "model": {"path": str(tiny_lm)}, "tasks": [
        {"name": "m1", "task": "mmlu", "dataset": base["dataset"]},
        {"name": "vlm", "task": "mmlu", "dataset": base["dataset"], "model": {"path": str(TINY_VLM)}},
        {"name": "m2", "task": "mmlu", "dataset": base["dataset"]}]}
    result = run_evals(suite, "--co", "-q", suite=True)
    order = [line.split("[")[1].split(":")[0] for line in result.stdout.lines if "::test_mmlu[" in line]
    assert order == ["m1"] * 3 + ["m2"] * 3 + ["vlm"] * 3


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_fault_injection_lives_in_the_tests():
    product = "".join(p.read_text() for d in ("evals", "nanoeval") for p in (ROOT / d).rglob("*.py"))
    assert "NANOEVAL_TEST" not in product and "NANOEVAL_FAULT" not in product and "os._exit" not in product
