"""A run owns its report dir, and example ids are unique or refused (issue 27): a second run of one report dir is
refused in one line naming the holder, a dead run's lock is taken over, and a repeated id in a journal or in the
user's data is an error naming the id and file:line, never an example counted twice or skipped on resume."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from nanoeval.config import DatasetConfig
from nanoeval.data import DataLoadError, parse_rows
from nanoeval.journal import read_journal
from nanoeval.runner import score_examples
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl

LOCK_FILE = ".nanoeval.lock"  # in the report dir: the holder's pid, host and start time (README)


def tree(d: Path) -> dict:
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_a_second_run_of_one_report_dir_is_refused_in_one_line_and_writes_nothing(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = mmlu_tiny_config(tiny_lm, out, engine={"batch_size": 1, "lookahead": 0})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    marker = tmp_path / "paused"
    env = {**os.environ, "NANOEVAL_CONFIG": str(tmp_path / "c.yaml"), "PYTHONPATH": str(ROOT),
           "NANOEVAL_FAULT_PAUSE": "mmlu:astronomy", "NANOEVAL_FAULT_PAUSE_FILE": str(marker)}
    first = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "tests.fault_injection",
                              "-p", "no:cacheprovider"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not marker.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), first.communicate(timeout=30)[0]
        before = tree(out)
        second = run_evals(cfg)  # the same config while the first run is scoring
        text = second.stdout.str() + second.stderr.str()
        assert second.ret == 4, text
        said = [line for line in text.splitlines() if "in use by another run" in line]
        assert len(said) == 1 and "Traceback" not in text, text
        assert f"report dir {out} is in use by another run (pytest evals/: pid {first.pid} on " \
               f"{socket.gethostname()}, started " in said[0]
        assert tree(out) == before and not (out / "previous").exists()  # nothing written, nothing moved aside
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the first run dies holding the lock: the OS drops it
        first.communicate(timeout=60)
    rerun = run_evals(cfg)  # takes the dead run's lock over and resumes
    assert rerun.ret == 0, rerun.stdout.str()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] != first.pid
    ids = [p["id"] for p in read_jsonl(out / "predictions.jsonl")]
    assert len(ids) == len(set(ids)) == 21


def test_a_stale_lock_of_a_dead_process_is_taken_over(run_evals, tiny_lm, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "r"
    out.mkdir()
    stale = {"pid": int(dead.stdout), "host": socket.gethostname(), "what": "pytest evals/", "started": "earlier"}
    (out / LOCK_FILE).write_text(json.dumps(stale) + "\n")
    result = run_evals(mmlu_tiny_config(tiny_lm, out))
    assert result.ret == 0, result.stdout.str()
    holder = json.loads((out / LOCK_FILE).read_text())
    assert holder["pid"] != stale["pid"] and holder["host"] == socket.gethostname()
    assert not (out / "previous").exists()  # the lock file is not a run to move aside


def test_merge_into_a_report_dir_in_use_is_refused(tmp_path):
    """`nanoeval merge --out` locks the report dirs it replaces, as a run does."""
    out = tmp_path / "merged"
    out.mkdir()
    (out / "run.json").write_text("{}")
    hold = ("import fcntl, json, os, socket, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
            "f.write(json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'what': 'pytest evals/', "
            "'started': 'now'})); f.flush(); print('held', flush=True); time.sleep(120)")  # as a run takes it
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out / LOCK_FILE)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0"), "--out",
                              str(out)], capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert f"is in use by another run (pytest evals/: pid {holder.pid} on " in res.stderr, res.stderr
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, "run.json"]
    finally:
        holder.kill()
        holder.wait()


def test_a_journal_with_a_repeated_id_is_an_error_naming_the_id_and_line(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = mmlu_tiny_config(tiny_lm, out)
    assert run_evals(cfg).ret == 0
    summary = (out / "summary.json").read_bytes()
    journal = out / "journals" / "anatomy.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])["id"]
    journal.write_text(lines[0] + lines[0] + "".join(lines[1:]))  # one record twice (two writers, say)
    with pytest.raises(ValueError, match=rf"anatomy.jsonl:2: example id '{first}' is journaled twice "
                                         rf"\(first at line 1\)"):
        read_journal(journal)
    result = run_evals(cfg)
    text = result.stdout.str()
    assert result.ret != 0 and f"anatomy.jsonl:2: example id '{first}' is journaled twice" in text, text
    assert (out / "summary.json").read_bytes() == summary  # never rebuilt with the example counted twice

    # the same id in two case journals: the artifacts refuse it, naming both lines
    journal.write_text("".join(lines))
    other = out / "journals" / "astronomy.jsonl"
    theirs = other.read_text().splitlines(keepends=True)
    other.write_text(lines[0] + "".join(theirs))
    result = run_evals(cfg)
    text = result.stdout.str()
    assert result.ret != 0, text
    assert f"astronomy.jsonl:1: example id '{first}' also in {journal}:1" in text, text
    assert (out / "summary.json").read_bytes() == summary


def test_repeated_ids_in_a_case_are_never_skipped_on_resume(tmp_path):
    """The runner refuses a case whose examples repeat an id (resume would skip the second one unscored)."""
    examples = [SimpleNamespace(id="a"), SimpleNamespace(id="b"), SimpleNamespace(id="a")]
    with pytest.raises(DataLoadError, match="mmlu:x: example id 'a' occurs twice"):
        score_examples(tmp_path / "j.jsonl", "mmlu:x", examples, lambda batch: [], None, None, 8)
    assert not (tmp_path / "j.jsonl").exists()


def _repeat_id(src: Path, dst: Path, column: str, line: int) -> str:
    """A copy of `src` whose 1-based `line` takes the id of line 1; returns that id."""
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    rows[line - 1][column] = rows[0][column]
    dst.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[0][column]


@pytest.mark.parametrize("task", ["hellaswag", "arc"])
def test_a_repeated_id_in_the_data_is_one_line_naming_the_id_and_lines(run_evals, tiny_lm, tmp_path, task):
    if task == "hellaswag":
        src, column, split = DATA / "hellaswag" / "validation.jsonl", "ind", "validation"
        cfg = {"task": "hellaswag", "dataset": {"data_files": {}}, "scoring": {"num_shards": 4}}
    else:
        src, column, split = DATA / "arc" / "ARC-Easy" / "test.jsonl", "id", "test"
        cfg = {"task": "arc", "dataset": {"name": "ARC-Easy", "data_files": {}}, "scoring": {"num_shards": 4}}
    copy = tmp_path / "copy.jsonl"
    value = _repeat_id(src, copy, column, 7)  # row 7 lands in another shard than row 1
    cfg["dataset"]["data_files"][split] = str(copy)
    cfg.update(model={"path": str(tiny_lm)}, report_dir=str(tmp_path / "r"))
    result = run_evals(cfg)
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and "Traceback" not in text, text
    said = [line for line in text.splitlines() if "repeated" in line]
    assert len(said) == 1 and f"{copy}:7: id {str(value)!r} repeated (first at {copy}:1)" in said[0], text
    assert not (tmp_path / "r").exists()  # refused before any model loads, nothing written


def test_a_repeated_mmmu_pro_id_is_named_by_file_and_row(run_evals, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(DATA / "mmmu_pro" / "standard10.parquet")
    ids = table.column("id").to_pylist()
    ids[3] = ids[0]
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids)), bad)
    result = run_evals({"task": "mmmu_pro", "model": {"path": str(ROOT / "tests" / "assets" / "tiny_vlm")},
                        "report_dir": str(tmp_path / "r"), "dataset": {"data_files": {"test": str(bad)}},
                        "scoring": {"strategy": "gen_letter", "max_new_tokens": 6}})
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and "Traceback" not in text, text
    assert f"{bad} row 3: id {ids[0]!r} repeated (first at {bad} row 0)" in text, text
    assert not (tmp_path / "r").exists()


def test_parse_rows_refuses_a_repeated_id_at_load_time(tmp_path):
    """Where no check ran before the model loaded (hub data), loading a case refuses a repeated id, naming it."""
    copy = tmp_path / "copy.jsonl"
    value = _repeat_id(DATA / "hellaswag" / "validation.jsonl", copy, "ind", 4)
    ds = DatasetConfig(path="json", split="validation", data_files={"validation": [str(copy)]})
    with pytest.raises(DataLoadError, match=rf"copy.jsonl:4: id '{value}' repeated \(first at .*copy.jsonl:1\)"):
        parse_rows(ds, "validation", ROOT, lambda row, where, k, i: SimpleNamespace(id=str(row["ind"])))
    rows, skipped = parse_rows(ds, "validation", ROOT, lambda row, where, k, i: SimpleNamespace(id=str(row["ind"])),
                               keep=lambda i, row, where: i != 3)
    assert len({r.id for r in rows}) == len(rows) and not skipped
