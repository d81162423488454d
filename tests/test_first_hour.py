"""The first hour of a new user (issue 12, first part): a model path that does not exist, shots with no split to
take them from, metrics.csv that says what each number is, and a comparison table that tells runs apart."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import ConfigError
from nanoeval.config_files import load_task
from nanoeval.journal import read_journal
from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl

PLACEHOLDERS = len(BENCHMARKS) - 1  # one skipped case for each benchmark a single-task config does not name


@pytest.mark.parametrize("kind", ["typo", "no_config"])
def test_a_missing_model_is_one_line_before_anything_loads(run_evals, tmp_path, kind):
    if kind == "typo":
        path, message = "models/my-ckpt", ("ERROR: *config.yaml: model.path: 'models/my-ckpt': no such local folder, "
                                           "and no hub model of that name at revision 'main' in the local Hugging "
                                           f"Face cache (offline: HF_HUB_OFFLINE is set) (a relative path is taken "
                                           f"from {ROOT})")
    else:
        (tmp_path / "empty_ckpt").mkdir()
        (tmp_path / "empty_ckpt" / "model.safetensors").write_bytes(b"x")
        path = str(tmp_path / "empty_ckpt")
        message = f"ERROR: *config.yaml: model.path: {path}: the folder holds no config.json*"
    result = run_evals(mmlu_tiny_config(path, tmp_path / "r"))
    assert result.ret == 4
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and len(output.splitlines()) < 5, output
    result.stderr.fnmatch_lines([message])
    assert not (tmp_path / "r").exists()


def test_shots_need_a_split_to_come_from(tmp_path):
    cfg = mmlu_tiny_config("m", tmp_path / "r", scoring={"num_fewshot": 5})
    cfg["dataset"]["data_files"] = {"test": "t.jsonl"}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"dataset.fewshot_split: scoring.num_fewshot=5 takes shots from split 'dev', "
                                          r"but dataset.data_files has no such split \(has: test\)"):
        load_task(p)
    cfg["dataset"]["fewshot_split"] = None
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="dataset.fewshot_split: scoring.num_fewshot=5 needs a split"):
        load_task(p)
    cfg["scoring"]["fewshot_from"] = "test_head"
    p.write_text(yaml.safe_dump(cfg))
    assert load_task(p).scoring.num_fewshot == 5


def test_metrics_csv_gives_each_metric_its_own_stderr_and_leaves_empty_categories_out():
    from nanoeval.reporting import assemble, metrics_csv
    from nanoeval.scoring import mean_stderr
    from nanoeval.benchmarks.mmlu import summarize as mmlu_summary
    from nanoeval.benchmarks.mmmu_pro import summarize as mmmu_summary

    records = [{"id": f"Art/{i}", "subject": "Art", "correct": i % 2 == 0, "parse_failed": i < 4,
                "nested_options": False, "gold_out_of_range": False} for i in range(10)]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(assemble(mmmu_summary(records), records, task="mmmu_pro",
                                                                name="m")))))
    art = {r["metric"]: r for r in rows if r["row"] == "Art"}
    assert float(art["acc"]["value"]) == 0.5 and float(art["fallback_rate"]["value"]) == 0.4
    assert art["acc"]["stderr"] != art["fallback_rate"]["stderr"]
    assert float(art["fallback_rate"]["stderr"]) == pytest.approx(mean_stderr([1.0] * 4 + [0.0] * 6)[1], abs=1e-6)
    mmlu = [{"id": f"anatomy/{i}", "subject": "anatomy", "correct": i == 0} for i in range(3)]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(assemble(mmlu_summary(mmlu, None), mmlu, task="mmlu",
                                                                name="m")))))
    aggregates = {r["metric"] for r in rows if r["row"] == "all"}
    assert "acc_other" in aggregates and "acc_stem" not in aggregates  # anatomy is "other"; no STEM subject ran
    assert all(r["value"] for r in rows)


# ------------------------------------------------------------------------------ your own data, off the happy path
def own_data_config(tmp_path, test_file, **dataset) -> dict:
    """The README's "your own data" config: a local test file, no dataset.subjects."""
    cfg = mmlu_tiny_config("unused", tmp_path / "r")
    cfg["dataset"] = {"data_files": {"test": str(test_file)}, **dataset}
    return cfg


def test_cases_are_the_subjects_present_in_local_data(run_evals, tiny_lm, tmp_path):
    cfg = own_data_config(tmp_path, DATA / "mmlu_tiny" / "test.jsonl")
    cfg["model"]["path"] = str(tiny_lm)
    result = run_evals(cfg)
    result.assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    result.stdout.fnmatch_lines(["*test_mmlu.py*", "*3 passed*"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert sorted(summary["per_subject"]) == ["anatomy", "astronomy", "high_school_geography"]
    assert summary["cases"]["done"] == sorted(summary["per_subject"]) and summary["counts"]["examples"] == 21


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _bad_data(tmp_path, kind: str) -> tuple[Path, dict, str]:
    """A data file as a careless user leaves it, the dataset keys to use, and the one line expected."""
    src = _lines(DATA / "mmlu_tiny" / "test.jsonl")
    f = tmp_path / "mine.jsonl"
    if kind == "empty":
        f.write_text("")
        return f, {}, f"*dataset.data_files.test: {f}: the file is empty (expected one JSON object per line)"
    if kind == "truncated_line_9":
        f.write_text("\n".join(src[:8] + [src[8][:40]] + src[9:]) + "\n")
        return f, {}, f"*dataset.data_files.test: {f}:9: not valid JSON (Unterminated string starting at: " \
                      "column *; a truncated or broken line?); fix the line, or set dataset.on_bad_row: skip"
    if kind == "utf16":  # PowerShell's `>`
        f.write_text("\n".join(src) + "\n", encoding="utf-16")
        return f, {}, f"*dataset.data_files.test: {f}: the file is UTF-16 (as PowerShell's `>` writes); " \
                      "save it as UTF-8"
    if kind == "misspelled_subject":
        f.write_text("\n".join(src) + "\n")
        return f, {"subjects": ["anatomy", "astronmy"]}, \
            "*dataset.subjects: 'astronmy' not in the data (split 'test') ('astronmy': did you mean 'astronomy'?); " \
            "valid: anatomy, astronomy, high_school_geography"
    if kind == "second_of_two_files_broken":
        good, bad = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        good.write_text("\n".join(src[:10]) + "\n")
        bad.write_text("\n".join(src[10:12]) + "\n{\"question\": \n")
        return bad, {"data_files": {"test": [str(good), str(bad)]}}, f"*dataset.data_files.test: {bad}:3: not valid*"
    assert kind == "parquet_that_is_not"
    f = tmp_path / "mine.parquet"
    f.write_text("\n".join(src))
    return f, {}, f"*dataset.data_files.test: {f}: not a readable parquet file*"


@pytest.mark.parametrize("kind", ["empty", "truncated_line_9", "utf16", "misspelled_subject",
                                  "second_of_two_files_broken", "parquet_that_is_not"])
def test_a_bad_data_file_is_one_line_naming_file_and_line(run_evals, tiny_lm, tmp_path, kind):
    f, dataset, message = _bad_data(tmp_path, kind)
    cfg = own_data_config(tmp_path, f, **dataset)
    cfg["model"]["path"] = str(tiny_lm)  # found, never loaded: the data is checked before any model loads
    result = run_evals(cfg)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and "Traceback" not in output and len(output.strip().splitlines()) == 1, output
    result.stderr.fnmatch_lines([f"ERROR: *config.yaml: {message[1:]}"])


def test_skip_leaves_out_a_broken_line_and_counts_it(run_evals, tiny_lm, tmp_path):
    src = _lines(DATA / "mmlu_tiny" / "test.jsonl")
    f = tmp_path / "mine.jsonl"
    f.write_text("\n".join(src[:8] + [src[8][:40]] + src[9:]) + "\n")
    cfg = own_data_config(tmp_path, f, on_bad_row="skip")
    cfg["model"]["path"] = str(tiny_lm)
    run_evals(cfg).assert_outcomes(passed=3, skipped=PLACEHOLDERS)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["counts"]["examples"] == 20 and summary["counts"]["skipped_rows"] == 1
    assert summary["skipped_rows"][0]["row"] == f"{f}:9" and "not valid JSON" in summary["skipped_rows"][0]["error"]
    ids = [r["id"] for r in read_jsonl(tmp_path / "r" / "predictions.jsonl")]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert f.read_text().splitlines()[8] == src[8][:40]  # the user's file is never rewritten


def test_a_bad_row_is_reported_at_its_line(run_evals, tiny_lm, tmp_path):
    rows = [json.loads(line) for line in _lines(DATA / "mmlu_tiny" / "test.jsonl")]
    rows[8]["answer"] = 7
    f = tmp_path / "mine.jsonl"
    f.write_text("\n\n".join(json.dumps(r) for r in rows[:5]) + "\n" + "\n".join(json.dumps(r) for r in rows[5:]))
    cfg = own_data_config(tmp_path, f, subjects=[rows[8]["subject"]])
    cfg["model"]["path"] = str(tiny_lm)
    result = run_evals(cfg)
    result.assert_outcomes(failed=1, skipped=PLACEHOLDERS)  # blank lines count: row 8 is on line 13 of the file
    result.stdout.fnmatch_lines([f"*{f}:13: answer 7 out of range*"])


# ------------------------------------------------------------------------------- an error every case would hit
def _broken_weights(tiny_lm: Path, tmp_path: Path) -> Path:
    """A model folder that passes the config check (config.json present) but whose weights are not weights."""
    broken = tmp_path / "broken_ckpt"
    shutil.copytree(tiny_lm, broken)
    (broken / "model.safetensors").write_bytes(b"this is not a safetensors file")
    return broken


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "xdist2"])
def test_an_error_every_case_would_hit_is_reported_once(run_evals, tiny_lm, tmp_path, workers):
    cfg = mmlu_tiny_config(_broken_weights(tiny_lm, tmp_path), tmp_path / "r")
    result = run_evals(cfg, *(["-n", str(workers)] if workers else []))
    output = result.stdout.str()
    assert result.ret == 1
    result.assert_outcomes(errors=1, skipped=PLACEHOLDERS + 2)  # the other benchmarks' placeholders, 2 MMLU cases
    # The error, and its line in the nanoeval section; pytest's own short summary repeats it (cut to the terminal's
    # width here, whole where $CI is set), so it is not counted.
    before_summary = output.split("short test summary info")[0]
    assert before_summary.count("cannot be loaded (") == 2, output
    assert "Traceback" not in output and "site-packages" not in output, output
    result.stdout.fnmatch_lines([
        "*mmlu: model '*broken_ckpt' cannot be loaded (*",
        "(every case of mmlu would hit this: its other cases are skipped; --tb=short shows the traceback)",
        "nanoeval ERROR: mmlu: model '*broken_ckpt' cannot be loaded (*); 3 of 3 cases not run (fix it and rerun*"])
    assert len(output.splitlines()) < 40, output
    if not workers:  # --tb still gives the trace to whoever asks; --lf after the fix reruns every case it kept
        traced = run_evals(cfg, "--tb=short").stdout.str()
        assert "Traceback" in traced or "site-packages" in traced
        cfg["model"]["path"] = str(tiny_lm)
        run_evals(cfg, "--lf").assert_outcomes(passed=3)


def test_ctrl_c_says_interrupted_and_rerun_resumes(run_evals, tiny_lm, tmp_path):
    assert run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "ref", engine={"batch_size": 1})).ret == 0
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r", engine={"batch_size": 1})))
    marker = tmp_path / "paused"
    env = {**os.environ, "NANOEVAL_CONFIG": str(cfg), "PYTHONPATH": str(ROOT), "NANOEVAL_FAULT_PAUSE":
           "mmlu:astronomy", "NANOEVAL_FAULT_PAUSE_FILE": str(marker)}
    p = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "tests.fault_injection", "-p",
                          "no:cacheprovider"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not marker.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    output = p.communicate(timeout=120)[0]
    assert p.returncode == 2, output
    assert "crashed worker" not in output and "nanoeval ERROR" not in output, output
    assert re.search(r"nanoeval: mmlu: interrupted; rerun to resume \(\d of 3 cases done", output), output
    done = read_journal(tmp_path / "r" / "journals" / "astronomy.jsonl")
    assert done.records and done.complete is None  # the partial case keeps what it scored
    env.pop("NANOEVAL_FAULT_PAUSE")
    rerun = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "no:cacheprovider"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "3 passed" in rerun.stdout, rerun.stdout
    resumed, ref = read_jsonl(tmp_path / "r" / "predictions.jsonl"), read_jsonl(tmp_path / "ref" / "predictions.jsonl")
    assert [(r["id"], r["pred"]) for r in resumed] == [(r["id"], r["pred"]) for r in ref] and len(ref) == 21


# ------------------------------------------------------------------------------------------- visible progress
PROGRESS = re.compile(r"nanoeval: mmlu \d+/21 examples \(\d+%\)(, [\d.]+ ex/s(, ETA \w+)?)? \[(.+)\]$")


def _timed_run(args: list[str], env: dict, cwd: Path) -> list[tuple[float, str]]:
    """Run `pytest evals/` with its output piped (as in CI), each line with the second it arrived."""
    p = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "tests.fault_injection",
                          "-p", "no:cacheprovider", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    t0, lines = time.time(), []
    for line in p.stdout:
        lines.append((time.time() - t0, line.rstrip("\n")))
    assert p.wait(timeout=300) == 0, "\n".join(text for _, text in lines)
    return lines


@pytest.mark.parametrize("mode", ["single", "xdist2", "quiet"])
def test_progress_lines_reach_a_log(tiny_lm, tmp_path, mode):
    """Piped output (CI logs): a plain progress line at least every PLAIN_EVERY seconds (15, scaled down to 1
    here), also under -n where it comes from the controller; none with -q."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r")))
    env = {**os.environ, "NANOEVAL_CONFIG": str(cfg), "PYTHONPATH": str(ROOT), "NANOEVAL_FAULT_SLOW": "2",
           "NANOEVAL_FAULT_PLAIN_EVERY": "1"}
    args = {"single": [], "xdist2": ["-n", "2"], "quiet": ["-q"]}[mode]
    lines = _timed_run(args, env, tmp_path)
    progress = [(t, PROGRESS.search(text)) for t, text in lines if PROGRESS.search(text)]
    if mode == "quiet":
        assert not progress and not any("nanoeval: mmlu " in text for _, text in lines)
        return
    assert len(progress) >= 3, lines
    where = " ".join(m.group(3) for _, m in progress)
    assert ("gw0" in where or "gw1" in where) if mode == "xdist2" else "gw" not in where, where
    assert re.search(r"(anatomy|astronomy|high_school_geography) \d/7", where), where
    times = [t for t, m in progress if re.search(r" \d/7", m.group(3))]  # from the first scoring line on
    assert max(b - a for a, b in zip(times, times[1:])) < 8, lines  # chunks take 2 s; lines every 1 s at most
    assert any("ETA" in m.group(0) for _, m in progress), lines


def _render(raw: str) -> list[str]:
    """What a terminal shows: carriage returns, backspaces and erase-to-end-of-line applied, colours dropped."""
    out = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        cells, col = [], 0
        for token in re.findall(r"\x1b\[[0-9;]*[A-Za-z]|.", line, re.S):
            if token == "\r":
                col = 0
            elif token == "\b":
                col = max(0, col - 1)
            elif token == "\x1b[K":
                del cells[col:]
            elif token.startswith("\x1b["):
                continue
            else:
                cells[col:col + 1] = [token]
                col += 1
        out.append("".join(cells).rstrip())
    return out


def test_a_live_progress_line_on_a_terminal(tiny_lm, tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r")))
    env = {**os.environ, "NANOEVAL_CONFIG": str(cfg), "PYTHONPATH": str(ROOT), "NANOEVAL_FAULT_SLOW": "1",
           "COLUMNS": "160", "TERM": "xterm"}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "tests.fault_injection", "-p",
                          "no:cacheprovider"], cwd=tmp_path, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(timeout=300) == 0
    raw = b"".join(chunks).decode("utf-8", "replace")
    assert re.search(r"evals/test_mmlu.py \.*  mmlu \d+/21 examples", raw), raw  # drawn after the dots
    assert "\x1b[K" in raw and "\b" in raw  # and erased again
    shown = _render(raw)
    dots = [line for line in shown if "evals/test_mmlu.py" in line]
    assert len(dots) == 1 and re.fullmatch(r".*evals/test_mmlu.py \.\.\. +\[100%\]", dots[0]), shown
    assert not any("examples (" in line for line in shown), shown  # nothing of the live line is left


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "xdist2"])
def test_notices_are_not_swallowed_by_output_capture(run_evals, tiny_lm, tmp_path, workers):
    """One-time messages from inside a case (the GGUF de-quantization, a trust_remote_code warning) reach the
    terminal: directly without -n, through the controller under -n."""
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    cfg["model"]["trust_remote_code"] = True
    result = run_evals(cfg, *(["-n", str(workers)] if workers else []))
    who = "[[]gw?[]] " if workers else ""
    result.stdout.fnmatch_lines([f"nanoeval: {who}WARNING: trust_remote_code is ON for {tiny_lm}: code from the "
                                 "model repository will run on this machine"])
