"""Reruns reuse what they can (issue 28): what selects examples (`dataset.limit`, `dataset.subjects`, shards) is not
part of a record's identity, so a rerun with a larger or other selection keeps every journaled example and scores
only the new ones, and a smaller one reports only what it selects, without moving anything aside; the GGUF cache is
keyed by the file's content, so a second copy of the same file is never de-quantized again."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from nanoeval.config_files import load_task
from nanoeval.engine.loading import gguf_cache_dir
from nanoeval.journal import journal_path, read_journal
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl
from tests.test_hellaswag import config as hs_config

TWO = ["anatomy", "astronomy"]


def run(run_evals, model, rdir, **overrides):
    result = run_evals(mmlu_tiny_config(model, rdir, **overrides))
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "fingerprint changed" not in out and not (rdir / "previous").exists(), out
    return out


def journal_lines(rdir, case) -> list[dict]:
    return read_jsonl(journal_path(rdir, case))


def completions(rdir, case) -> list[dict]:
    return [line["_complete"] for line in journal_lines(rdir, case) if "_complete" in line]


def summary(rdir) -> dict:
    return json.loads((rdir / "summary.json").read_text())


def predicted(rdir) -> list[tuple]:
    return [(r["id"], r["pred"], r["correct"]) for r in read_jsonl(rdir / "predictions.jsonl")]


@pytest.mark.parametrize("lookahead", [None, 0], ids=["lookahead", "case_by_case"])
def test_a_larger_limit_scores_only_the_new_examples(run_evals, tiny_lm, tmp_path, lookahead):
    rdir = tmp_path / "r"
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=2, engine__lookahead=lookahead)
    first = {s: [line for line in journal_lines(rdir, s) if "id" in line] for s in TWO}
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=3, engine__lookahead=lookahead)
    for s in TWO:
        j = read_journal(journal_path(rdir, s))
        assert len(j.records) == 3
        assert [c["scored_now"] for c in completions(rdir, s)] == [2, 1]  # the rerun scored one example
        assert [line for line in journal_lines(rdir, s) if "id" in line][:2] == first[s]  # kept as they were
    assert summary(rdir)["counts"]["examples"] == 6
    # the reused run equals a fresh one at limit 3
    fresh = tmp_path / "fresh"
    run(run_evals, tiny_lm, fresh, dataset__subjects=TWO, dataset__limit=3)
    assert predicted(rdir) == predicted(fresh)  # other batches: bpb equal to float noise, accuracies exactly
    assert summary(rdir)["metrics"] == pytest.approx(summary(fresh)["metrics"], abs=1e-6)


def test_adding_a_subject_scores_only_it(run_evals, tiny_lm, tmp_path):
    rdir = tmp_path / "r"
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=2)
    before = {s: journal_path(rdir, s).read_bytes() for s in TWO}
    run(run_evals, tiny_lm, rdir, dataset__subjects=[*TWO, "high_school_geography"], dataset__limit=2)
    assert {s: journal_path(rdir, s).read_bytes() for s in TWO} == before  # nothing scored, nothing appended
    assert [c["scored_now"] for c in completions(rdir, "high_school_geography")] == [2]
    s = summary(rdir)
    assert s["counts"]["examples"] == 6 and sorted(s["per_subject"]) == sorted([*TWO, "high_school_geography"])
    # and a smaller subject list reports only its subjects
    run(run_evals, tiny_lm, rdir, dataset__subjects=["astronomy"], dataset__limit=2)
    assert sorted(summary(rdir)["per_subject"]) == ["astronomy"] and summary(rdir)["counts"]["examples"] == 2
    # runs of one fingerprint that select differently are not shards of one run: merge refuses them in one line
    other = tmp_path / "other"
    run(run_evals, tiny_lm, other, dataset__subjects=TWO, dataset__limit=2)
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(rdir), str(other), "--out",
                          str(tmp_path / "merged")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode != 0 and "shards select different examples" in res.stderr + res.stdout, res.stderr
    assert not (tmp_path / "merged").exists()


def test_selection_is_not_in_the_config_hash(tmp_path):
    """limit, subjects and shard counts select examples; a setting that changes a record still changes the hash."""
    def config_hash(**overrides):
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(mmlu_tiny_config("m", tmp_path / "r", **overrides)))
        return load_task(path).config_hash()

    base = config_hash()
    assert config_hash(dataset__limit=2) == config_hash(dataset__subjects=["anatomy"]) == base
    assert config_hash(scoring={"strategy": "rank_ll", "num_fewshot": 1}) != base
    hs = {"task": "hellaswag", "dataset": {"data_files": {"validation": "x.jsonl"}}}
    assert config_hash(**hs, scoring={"num_shards": 2}) == config_hash(**hs, scoring={"num_shards": 4}) == \
        config_hash(**hs, scoring={"shard_size": 3})


def test_a_smaller_limit_reports_only_what_it_selects(run_evals, tiny_lm, tmp_path):
    rdir = tmp_path / "r"
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=3)
    before = {s: journal_path(rdir, s).read_bytes() for s in TWO}
    three = predicted(rdir)
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=2)
    assert {s: journal_path(rdir, s).read_bytes() for s in TWO} == before  # nothing re-scored
    s = summary(rdir)
    assert s["counts"]["examples"] == 4 and all(c["n"] == 2 for c in s["cases"]["per_case"].values())
    assert predicted(rdir) == [p for p in three if int(p[0].split("/")[1]) < 2]  # the first 2 of each subject
    # back to 3: everything is still journaled, nothing scored
    run(run_evals, tiny_lm, rdir, dataset__subjects=TWO, dataset__limit=3)
    assert {s: journal_path(rdir, s).read_bytes() for s in TWO} == before
    assert predicted(rdir) == three


def test_a_smaller_limit_counts_the_engine_counters_of_its_own_examples_only(run_evals, tiny_lm, tmp_path):
    """Truncated prompts and generations cut at max_new_tokens are each example's own (a flag on its record), so a
    smaller limit counts those of the examples it selects, not every example its journals hold."""
    rdir = tmp_path / "r"
    gen = {"strategy": "gen_letter", "max_new_tokens": 2}
    run(run_evals, tiny_lm, rdir, scoring=gen, model__max_length=40)  # every prompt is longer: all truncated
    full = read_jsonl(rdir / "predictions.jsonl")
    assert len(full) == 21 and all(r["truncated_prompt"] for r in full)
    cut_ids = {r["id"] for r in full if r.get("hit_max_new_tokens")}
    assert cut_ids, "fixture: generations stop at max_new_tokens"
    out = run(run_evals, tiny_lm, rdir, scoring=gen, model__max_length=40, dataset__limit=3)
    s, preds = summary(rdir), read_jsonl(rdir / "predictions.jsonl")
    cut = len(cut_ids & {r["id"] for r in preds})
    assert len(preds) == 9 and s["counts"]["generations"] == 9
    assert s["counts"]["truncated_prompts"] == 9 and s["counts"]["hit_max_new_tokens"] == cut
    assert {c: (d["truncated_prompts"], d["n"]) for c, d in s["cases"]["per_case"].items()} == \
        {c: (3, 3) for c in ("anatomy", "astronomy", "high_school_geography")}
    assert sum(d["hit_max_new_tokens"] for d in s["cases"]["per_case"].values()) == cut
    assert f"{cut} of 9 generations" in out  # the warning counts the selection too


def test_a_new_shard_count_keeps_every_journaled_example(run_evals, tiny_lm, tmp_path):
    """Shards select examples: 4 shards of 5 rows and 2 shards of 10 are the same 20 rows (row i -> shard i % n), so
    the second run scores nothing and reports the same numbers; 2 shards of 12 score only the 4 new rows."""
    rdir = tmp_path / "r"
    first = run_evals(hs_config(tiny_lm, rdir, num_shards=4))  # limit 5
    assert first.ret == 0, first.stdout.str()
    by_id = {r["id"]: r for r in read_jsonl(rdir / "predictions.jsonl")}
    metrics = summary(rdir)["metrics"]

    def rerun(rdir, limit):
        cfg = hs_config(tiny_lm, rdir, num_shards=2)
        cfg["dataset"]["limit"] = limit
        result = run_evals(cfg)
        assert result.ret == 0 and not (rdir / "previous").exists(), result.stdout.str()
        return result.stdout.str()

    out = rerun(rdir, 10)
    assert [c["_complete"]["scored_now"] for case in ("shard0of2", "shard1of2")
            for c in journal_lines(rdir, case) if "_complete" in c] == [0, 0]
    assert "resumed 20 of 20 examples from journals" in out
    assert {r["id"]: r for r in read_jsonl(rdir / "predictions.jsonl")} == by_id
    assert summary(rdir)["metrics"] == metrics
    rerun(rdir, 12)  # rows 20-23 are new: only they are scored
    assert sum(c["_complete"]["scored_now"] for case in ("shard0of2", "shard1of2")
               for c in journal_lines(rdir, case) if "_complete" in c) == 4
    fresh = tmp_path / "fresh"
    rerun(fresh, 12)  # other batches: log-likelihoods (and bpb) equal to float noise, accuracies exactly
    assert summary(rdir)["metrics"] == pytest.approx(summary(fresh)["metrics"], abs=1e-6)
    assert [(r["id"], r["pred"]) for r in read_jsonl(rdir / "predictions.jsonl")] == \
        [(r["id"], r["pred"]) for r in read_jsonl(fresh / "predictions.jsonl")]


def test_skipping_bad_rows_after_they_stopped_a_run_keeps_what_was_scored(run_evals, tiny_lm, tmp_path):
    """The bad-row error says to set `dataset.on_bad_row: skip`; doing so scores only the good rows of the case
    that failed: the other cases' journals stay as they were (what to do with bad rows selects examples)."""
    rows = read_jsonl(DATA / "hellaswag" / "validation.jsonl")[:12]
    rows[1]["label"] = "7"  # row 1 -> shard 1 of 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rdir = tmp_path / "r"
    cfg = hs_config(tiny_lm, rdir, num_shards=2)
    cfg["dataset"]["data_files"] = {"validation": str(bad)}
    del cfg["dataset"]["limit"]
    first = run_evals(cfg)
    assert first.ret == 1 and f"{bad}:2: label: '7' is not one of the labels" in first.stdout.str()
    kept = journal_path(rdir, "shard0of2").read_bytes()
    cfg["dataset"]["on_bad_row"] = "skip"
    second = run_evals(cfg)
    out = second.stdout.str()
    assert second.ret == 0 and "fingerprint changed" not in out and not (rdir / "previous").exists(), out
    assert journal_path(rdir, "shard0of2").read_bytes() == kept  # nothing scored again
    assert [c["scored_now"] for c in completions(rdir, "shard1of2")] == [5]  # its 5 good rows
    assert summary(rdir)["counts"]["skipped_rows"] == 1 and "resumed 6 of 11 examples from journals" in out


def test_gguf_cache_is_keyed_by_content(tmp_path, monkeypatch):
    """Two clones holding the same GGUF file share one de-quantized folder; other content gets its own."""
    monkeypatch.setenv("NANOEVAL_CACHE", str(tmp_path / "cache"))
    a, b, c = (tmp_path / d for d in ("clone1", "clone2", "other"))
    for d in (a, b, c):
        d.mkdir()
    (a / "m.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    shutil.copy(a / "m.gguf", b / "copy.gguf")  # another name, path, inode and mtime
    (c / "m.gguf").write_bytes(b"GGUF" + bytes(range(255, -1, -1)) * 64)
    assert gguf_cache_dir(a / "m.gguf") == gguf_cache_dir(b / "copy.gguf")
    assert gguf_cache_dir(c / "m.gguf") != gguf_cache_dir(a / "m.gguf")
