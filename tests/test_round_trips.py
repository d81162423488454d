"""Fewer round trips (issue 28): --lf tied to the config, config paths from the working directory, every config
mistake at once, a model folder without a tokenizer and offline hub data found before any model loads."""
from __future__ import annotations

from tests.conftest import mmlu_tiny_config

SUBJECTS = ["anatomy", "astronomy", "high_school_geography"]


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
