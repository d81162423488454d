"""Fewer round trips (issue 28): --lf tied to the config, config paths from the working directory, every config
mistake at once, a model folder without a tokenizer and offline hub data found before any model loads."""
from __future__ import annotations

import dataclasses
import shutil
import time

import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import EngineConfig
from nanoeval.session import config_file
from tests.conftest import mmlu_tiny_config

SUBJECTS = ["anatomy", "astronomy", "high_school_geography"]


def engine_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(EngineConfig)]


def scoring_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(BENCHMARKS["mmlu"].options)]


def test_lf_on_a_second_config_runs_none_of_the_firsts_failures(run_evals, tiny_lm, tmp_path):
    first = mmlu_tiny_config(tiny_lm, tmp_path / "first", name="first")
    result = run_evals(first, "-p", "tests.fault_injection", "-v", env={"NANOEVAL_FAULT_FAIL": "first:anatomy"})
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*::test_mmlu[[]first:anatomy[]] FAILED*"])
    # the same cache, another config: its ids are its own, so --lf finds no failure of it and runs everything
    second = mmlu_tiny_config(tiny_lm, tmp_path / "second", name="second")
    result = run_evals(second, "--lf", "-v")
    assert result.ret == 0, result.stdout.str()
    for s in SUBJECTS:
        result.stdout.fnmatch_lines([f"*::test_mmlu[[]second:{s}[]] PASSED*"])
    assert "first:" not in result.stdout.str()
    # and --lf on the first config reruns exactly its failure
    result = run_evals(first, "--lf", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*::test_mmlu[[]first:anatomy[]] PASSED*", "*1 passed in*"])


def test_a_relative_config_path_is_taken_from_the_working_directory(run_evals, pytester, tiny_lm, tmp_path):
    sub = pytester.path / "my"
    sub.mkdir()
    (sub / "mmlu8.yaml").write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "run", name="mmlu8")))
    pytester._monkeypatch.chdir(sub)  # `cd my; NANOEVAL_CONFIG=mmlu8.yaml pytest ../evals/`
    result = run_evals("mmlu8.yaml", "--co", "-q")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_mmlu[[]mmlu8:anatomy[]]*"])
    result = run_evals("nothere.yaml", "--co", "-q")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {sub / 'nothere.yaml'}: file not found (NANOEVAL_CONFIG=nothere.yaml, "
                                 "taken from the working directory; not in the project root * either)"])


def test_a_config_path_only_in_the_project_root_is_used_and_said(tmp_path):
    root, cwd = tmp_path / "root", tmp_path / "cwd"
    (root / "suites").mkdir(parents=True)
    cwd.mkdir()
    (root / "suites" / "s.yaml").write_text("suite: s\n")
    path, note = config_file("suites/s.yaml", "NANOEVAL_SUITE", cwd, root)
    assert path == root / "suites" / "s.yaml"
    assert note == f"NANOEVAL_SUITE=suites/s.yaml: not in the working directory {cwd}; using {path} (project root)"
    (cwd / "suites").mkdir()
    (cwd / "suites" / "s.yaml").write_text("suite: s\n")
    assert config_file("suites/s.yaml", "NANOEVAL_SUITE", cwd, root) == (cwd / "suites" / "s.yaml", None)


def test_several_config_mistakes_come_together_with_did_you_mean(run_evals, pytester, tiny_lm, tmp_path):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "run", sed=1, engine={"batchsize": 2})
    cfg["scoring"]["num_fewshots"] = 2
    result = run_evals(cfg)
    assert result.ret == 4
    src = pytester.path / "config.yaml"
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == [
        f"ERROR: {src}: sed: unknown key (expected one of: dataset, engine, gates, model, name, report, report_dir, "
        "scoring, seed, task); did you mean 'seed'?",
        f"ERROR: {src}: engine.batchsize: unknown key (expected one of: {', '.join(engine_keys())}); "
        "did you mean 'batch_size'?",
        f"ERROR: {src}: scoring.num_fewshots: unknown key (expected one of: {', '.join(scoring_keys())}); "
        "did you mean 'num_fewshot'?"], result.stderr.str()
    assert not (tmp_path / "run").exists()


def test_a_task_config_given_as_suite_says_use_nanoeval_config(run_evals, tiny_lm, tmp_path):
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "run"), suite=True)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: *suite.yaml: top level: this is a task config (it has `task`, no "
                                 "`suite`/`tasks`); use NANOEVAL_CONFIG"])


def test_a_model_folder_without_a_tokenizer_is_one_line_before_the_model_loads(run_evals, tiny_lm, tmp_path):
    weights_only = tmp_path / "weights_only"
    shutil.copytree(tiny_lm, weights_only)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (weights_only / f).unlink()
    result = run_evals(mmlu_tiny_config(weights_only, tmp_path / "run"))
    assert result.ret == 4
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ERROR: ") and \
        f": model.path: {weights_only}: the folder holds no tokenizer (none of tokenizer.json," in errors[0], errors
    assert "Traceback" not in result.stdout.str() + result.stderr.str() and not (tmp_path / "run").exists()


def _hub_config(tiny_lm, report_dir) -> dict:
    return {"task": "mmlu", "model": {"path": str(tiny_lm)}, "report_dir": str(report_dir),
            "dataset": {"path": "nanoeval-test/surely-not-cached", "name": "all", "subjects": ["anatomy"]}}


HUB_MISSING = ("ERROR: *config.yaml: dataset.path: hub dataset 'nanoeval-test/surely-not-cached (all)' is not in the "
               "local Hugging Face cache and the hub is offline (*): download it once with network, or point "
               "dataset.data_files at local json/parquet files")


def test_an_offline_hub_dataset_without_a_local_copy_fails_in_one_line_fast(run_evals, tiny_lm, tmp_path):
    empty_cache = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
                   "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}
    start = time.monotonic()
    result = run_evals(_hub_config(tiny_lm, tmp_path / "run"), env={**empty_cache, "HF_DATASETS_OFFLINE": "1"})
    assert result.ret == 4 and time.monotonic() - start < 15  # the libraries' retries alone took ~27 s
    result.stderr.fnmatch_lines([HUB_MISSING])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1 and not (tmp_path / "run").exists()


def test_without_offline_variables_an_unreachable_hub_means_offline(run_evals, pytester, tiny_lm, tmp_path):
    """As a README command is typed (no HF_*_OFFLINE): a hub that cannot be reached is found in seconds."""
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        pytester._monkeypatch.delenv(k, raising=False)
    nowhere = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets")}
    start = time.monotonic()
    result = run_evals(_hub_config(tiny_lm, tmp_path / "hub"), env=nowhere)
    assert result.ret == 4 and time.monotonic() - start < 15
    result.stderr.fnmatch_lines([HUB_MISSING])
    # local files need no hub at all: the run works as typed
    result = run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "local"), "-k", "anatomy", env=nowhere)
    assert result.ret == 0, result.stdout.str()
