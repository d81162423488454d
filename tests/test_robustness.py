"""Crash safety, resume, bad input and determinism: kill real runs and rerun them, feed broken inputs, compare bytes."""
from __future__ import annotations

import fnmatch
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.journal import read_journal
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl

HELLASWAG = DATA / "hellaswag" / "validation.jsonl"


def hs_config(model, out, **engine):
    # batch_size 1 and small chunks make the run long enough to be killed mid-case
    return {"task": "hellaswag", "model": {"path": str(model)}, "report_dir": str(out),
            "dataset": {"data_files": {"validation": str(HELLASWAG)}, "limit": 30},
            "scoring": {"num_shards": 4}, "engine": {"batch_size": 1, **engine}}


def run_to_completion(cfg_path: Path, env: dict) -> int:
    """`pytest evals/` in a subprocess with the fault-injection plugin (tests/fault_injection.py); its exit code."""
    return subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-q", "-p", "no:cacheprovider",
                           "-p", "tests.fault_injection"], cwd=ROOT,
                          env={**os.environ, **env, "NANOEVAL_CONFIG": str(cfg_path)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600).returncode


def comparable(out: Path):
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    cases = dict(summary["cases"], per_case={c: {k: v for k, v in d.items() if k != "seconds"}
                                             for c, d in summary["cases"]["per_case"].items()})
    return preds, {**{k: summary[k] for k in ("metrics", "stderr", "per_subject", "counts")}, "cases": cases}


def test_killed_runs_resume_to_the_uninterrupted_result(tiny_lm, tmp_path):
    """Four runs each SIGKILLed at a seeded journal write (two of them halfway through the write: a torn line), then
    one run to the end: the same predictions and summary as a run never interrupted. Ctrl-C: tests/test_first_hour.py."""
    ref_cfg = tmp_path / "ref.yaml"
    ref_cfg.write_text(yaml.safe_dump(hs_config(tiny_lm, tmp_path / "ref")))
    assert run_to_completion(ref_cfg, {}) == 0
    ref_preds, ref_summary = comparable(tmp_path / "ref")

    rng = random.Random(9)
    cfg = tmp_path / "killed.yaml"
    cfg.write_text(yaml.safe_dump(hs_config(tiny_lm, tmp_path / "killed")))
    journaled = []
    for k in range(4):  # each run dies at its 1st..5th write; 30 examples take more than 4 x 5 writes
        at = f"{rng.randint(1, 5)}{':torn' if k % 2 else ''}"
        assert run_to_completion(cfg, {"NANOEVAL_FAULT_KILL_AT": at}) == -signal.SIGKILL
        journaled.append(sum(len(read_journal(p).records) for p in (tmp_path / "killed" / "journals").glob("*")))
    assert 0 < journaled[0] <= journaled[-1] < 30, journaled  # progress kept across kills, never the whole run
    assert run_to_completion(cfg, {}) == 0
    preds, summary = comparable(tmp_path / "killed")
    assert [(r["id"], r["pred"], r["pred_norm"]) for r in preds] == \
        [(r["id"], r["pred"], r["pred_norm"]) for r in ref_preds]
    for a, b in zip(preds, ref_preds):
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)
    assert summary == ref_summary
    assert not (tmp_path / "killed" / "previous").exists()  # same fingerprint: nothing moved aside


def test_torn_journal_line_is_dropped_and_the_case_continues(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = mmlu_tiny_config(tiny_lm, out)
    assert run_evals(cfg).ret == 0
    ref = read_jsonl(out / "predictions.jsonl")
    journal = out / "journals" / "anatomy.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:3]) + lines[3][:25])  # 3 records, then half a line: a crash mid-write
    j = read_journal(journal)
    assert j.torn and len(j.records) == 3 and j.complete is None
    (out / "summary.json").unlink()
    assert run_evals(cfg).ret == 0
    got = read_jsonl(out / "predictions.jsonl")
    assert [(r["id"], r["pred"]) for r in got] == [(r["id"], r["pred"]) for r in ref]
    for a, b in zip(got, ref):  # the resumed records come from other batches: equal within 1e-4
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)
    assert read_journal(journal).complete["scored_now"] == 4


def test_same_config_twice_gives_identical_bytes(run_evals, tiny_lm, tmp_path):
    outs = []
    for name in ("a", "b"):
        cfg = mmlu_tiny_config(tiny_lm, tmp_path / name, scoring={"strategy": "gen_letter", "max_new_tokens": 4})
        assert run_evals(cfg).ret == 0
        outs.append((tmp_path / name / "predictions.jsonl").read_bytes())
    assert outs[0] == outs[1]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["seed"] == 1234 and "seconds" not in outs[0].decode()


def test_changed_fingerprint_moves_the_old_run_aside(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    assert run_evals(mmlu_tiny_config(tiny_lm, out)).ret == 0
    old = (out / "summary.json").read_bytes()
    result = run_evals(mmlu_tiny_config(tiny_lm, out, scoring={"num_fewshot": 1}))
    assert result.ret == 0
    result.stdout.fnmatch_lines(["nanoeval: mmlu: fingerprint changed (config settings (scoring.num_fewshot 0 -> 1): "
                                 "* -> *); previous run moved to *"])  # the key that changed, named
    moved = list((out / "previous").iterdir())
    assert len(moved) == 1 and (moved[0] / "summary.json").read_bytes() == old
    result = run_evals(mmlu_tiny_config(tiny_lm, out, scoring={"num_fewshot": 1}), "--nanoeval-fresh")
    result.stdout.fnmatch_lines(["nanoeval: mmlu: --nanoeval-fresh; previous run moved to *"])
    assert len(list((out / "previous").iterdir())) == 2


def _nan_model(tiny_lm: Path, tmp_path: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    out = tmp_path / "nan_model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_lm).save_pretrained(out)
    return out


def bad_inputs(tiny_lm: Path, tmp_path: Path):
    """(name, config dict or raw YAML text, expected message fragment, exit code): the bad-input corpus."""
    good = mmlu_tiny_config(tiny_lm, tmp_path / "out")
    bad_rows = tmp_path / "rows.jsonl"
    rows = read_jsonl(DATA / "mmlu_tiny" / "test.jsonl")
    (tmp_path / "nocol.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "choices"}) + "\n"
                                                  for r in rows))
    short = [dict(r, choices=r["choices"][:3], answer=3) if r["subject"] == "anatomy" else r for r in rows]
    bad_rows.write_text("".join(json.dumps(r) + "\n" for r in short))
    unreadable = tmp_path / "locked.jsonl"
    unreadable.write_text("{}\n")
    unreadable.chmod(0)
    (tmp_path / "file_not_dir").write_text("x")

    def with_data(path, **extra):
        cfg = json.loads(json.dumps(good))
        cfg["dataset"] = {"data_files": {"test": str(path)}, "fewshot_split": None,
                          "subjects": ["anatomy"], **extra}
        return cfg

    return [
        ("yaml_syntax", "task: mmlu\nmodel: {path: [\n", "invalid YAML: line", 4),
        ("empty", "", "empty file", 4),
        ("list", "- task: mmlu\n", "top level: expected a mapping of config keys, got list", 4),
        ("unknown_top", {**good, "sedd": 1}, "sedd: unknown key", 4),
        ("unknown_nested", {**good, "engine": {"batchsize": 2}}, "engine.batchsize: unknown key", 4),
        ("wrong_type", {**good, "seed": "x"}, "seed: expected an integer, got str 'x'", 4),
        ("missing_file", with_data(tmp_path / "nope.jsonl"), f"dataset.data_files: {tmp_path / 'nope.jsonl'}: "
                                                             "file not found", 4),
        ("unreadable_file", with_data(unreadable), f"dataset.data_files: {unreadable}: file not readable", 4),
        ("missing_column", with_data(tmp_path / "nocol.jsonl"), "nocol.jsonl:8: missing column 'choices'", 1),
        ("fewer_options_than_letters", with_data(bad_rows), ":8: answer 3 out of range (expected 0..2", 1),
        ("report_dir_is_a_file", {**good, "report_dir": str(tmp_path / "file_not_dir")},
         "report_dir: report dir * exists and is a file (expected a folder)", 4),
        ("nan_loglikelihoods", {**good, "model": {"path": str(_nan_model(tiny_lm, tmp_path))}},
         "the model returned a non-finite log-likelihood", 1),
        ("unknown_suite_task", None, f"tasks[[]0[]].task: expected one of {', '.join(BENCHMARKS)}, got str 'nope'", 4),
    ]


def test_bad_input_corpus(run_evals, tiny_lm, tmp_path):
    """Each bad input: its one-line error, a non-zero exit, and the artifacts of an earlier good run intact."""
    out = tmp_path / "out"
    assert run_evals(mmlu_tiny_config(tiny_lm, out)).ret == 0
    artifacts = ("predictions.jsonl", "summary.json", "metrics.csv", "accuracy.png")
    good = {name: (out / name).read_bytes() for name in artifacts}
    tree = lambda: {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}  # noqa: E731
    for name, cfg, message, code in bad_inputs(tiny_lm, tmp_path):
        before = tree()
        if name == "unknown_suite_task":
            result = run_evals({"suite": "s", "model": {"path": str(tiny_lm)}, "tasks": [{"task": "nope"}]}, suite=True)
        elif name == "unreadable_file" and os.geteuid() == 0:
            continue  # root reads any file: this entry only means something for ordinary users
        else:
            if isinstance(cfg, str):
                (tmp_path / "raw.yaml").write_text(cfg)
                cfg = str(tmp_path / "raw.yaml")
            result = run_evals(cfg)
        text = result.stdout.str() + result.stderr.str()
        assert result.ret == code, (name, text[-2000:])
        assert any(fnmatch.fnmatch(line, f"*{message}*") for line in text.splitlines()), (name, text[-3000:])
        if code == 4:  # config errors: one line, no traceback, nothing touched
            assert "Traceback" not in text, name
            assert tree() == before, name
        else:  # data errors: no new artifacts; the good run's files are where they were or moved aside intact
            assert not any((out / n).exists() for n in artifacts) or \
                {n: (out / n).read_bytes() for n in artifacts} == good, name
            kept = [d for d in [out, *sorted((out / "previous").glob("*"))] if (d / "summary.json").exists()]
            assert any({n: (d / n).read_bytes() for n in artifacts} == good for d in kept), name
