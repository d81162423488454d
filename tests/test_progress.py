"""What a user sees while a look-ahead scores (nanoeval/progress.py, lookahead.py): the task's count goes up for
every example journaled, whichever case it belongs to; a log (not a terminal: pytester's subprocess) gets its plain
lines while the look-ahead goes on; examples/s come from scoring time, also per case under -n 2 (a case scored
ahead by another case's look-ahead does not report its examples over the ~0 s its own run took). And Ctrl-C while
xdist's workers shut down is one line."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from nanoeval.journal import journal_path, read_journal
from tests.conftest import ROOT, mmlu_tiny_config, read_jsonl

LINE = re.compile(r"nanoeval: mmlu (\d+)/21 examples \(\d+%\)(?:, ([\d.]+) ex/s)?.* \[(.*)\]$")
CASE_LINE = re.compile(r"nanoeval: (?:\[gw\d\] )?mmlu:(\w+): 7 examples, acc [\d.]+, ([\d.]+) ex/s$")
SLOW = 0.5  # seconds each journal append sleeps: at most batch_size examples per SLOW seconds
BATCH = 4   # rows per batch: one example of mmlu_tiny per row


def run(run_evals, tiny_lm, tmp_path, *args):
    log = tmp_path / "ahead.jsonl"
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r", engine={"batch_size": BATCH})
    result = run_evals(cfg, "-p", "tests.fault_injection", "-v", *args,
                       env={"NANOEVAL_FAULT_SLOW": str(SLOW), "NANOEVAL_FAULT_PLAIN_EVERY": "0.01",
                            "NANOEVAL_FAULT_AHEAD_LOG": str(log)})
    assert result.ret == 0, result.stdout.str()
    lookaheads = read_jsonl(log) if log.exists() else []
    return result.stdout.lines, lookaheads


def test_counts_rise_during_a_lookahead(run_evals, tiny_lm, tmp_path):
    lines, lookaheads = run(run_evals, tiny_lm, tmp_path)
    assert [len(e["cases"]) for e in lookaheads] == [3], lookaheads  # one look-ahead scores all three cases
    shown = [(int(m.group(1)), m.group(2), m.group(3)) for m in map(LINE.search, lines) if m]
    counts = [n for n, _, _ in shown]
    assert counts == sorted(counts) and counts[-1] == 21, shown
    # while the first case (the one whose look-ahead runs) is unfinished, the task's count already holds examples of
    # the other cases: more than the first case's own
    during = [(n, where) for n, _, where in shown if (m := re.fullmatch(r"\w+ (\d)/7", where)) and int(m[1]) < 7]
    assert any(n > int(where[-3]) for n, where in during), shown
    assert len({n for n, _, _ in shown if n < 21}) >= 4, shown  # it moves in steps, not one jump at the end
    # examples/s: never more than the look-ahead can journal (BATCH examples per SLOW seconds)
    rates = [float(r) for _, r, _ in shown if r]
    assert rates and all(0 < r <= BATCH / SLOW for r in rates), shown


@pytest.mark.parametrize("workers", [0, 2], ids=["single", "xdist2"])
def test_a_case_scored_ahead_reports_plausible_examples_per_second(run_evals, tiny_lm, tmp_path, workers):
    lines, lookaheads = run(run_evals, tiny_lm, tmp_path, "-n", str(workers))
    assert any(len(e["cases"]) >= 2 for e in lookaheads), lookaheads  # some case was scored by another's look-ahead
    rates = {m.group(1): float(m.group(2)) for m in map(CASE_LINE.search, lines) if m}
    # a case's 7 examples take at least one journal append (SLOW seconds), by itself or by a look-ahead
    assert len(rates) == 3 and all(0 < r <= 7 / SLOW for r in rates.values()), (rates, lines)
    # each case's seconds: its own scoring plus its share of the look-ahead's, never the ~0 s of finding its
    # examples journaled
    seconds = {c: read_journal(journal_path(tmp_path / "r", c)).complete["seconds"] for c in rates}
    assert all(s >= SLOW for s in seconds.values()), seconds


def test_ctrl_c_while_xdist_workers_shut_down_is_one_line(tiny_lm, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while xdist waits for its workers to
    exit: one line and pytest's summary, not execnet's traceback."""
    flag = tmp_path / "teardown"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / "r")))
    env = {**os.environ, "NANOEVAL_CONFIG": str(cfg), "PYTHONPATH": str(ROOT), "NANOEVAL_FAULT_TEARDOWN": str(flag)}
    p = subprocess.Popen([sys.executable, "-m", "pytest", str(ROOT / "evals"), "-p", "tests.fault_injection", "-p",
                          "no:cacheprovider", "-n", "2"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        while not flag.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert flag.exists(), p.communicate()[0]
        time.sleep(1)  # inside execnet's wait for the workers
        os.killpg(p.pid, signal.SIGINT)
        out = p.communicate(timeout=60)[0]
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "nanoeval: interrupted while the run was closing (xdist workers shutting down); every case's results " \
           "were already written" in out, out
    assert re.search(r"^mmlu +acc_macro .* 21 ", out, re.M) and "3 passed" in out, out  # the summary still shows
    assert p.returncode == 2, out


def test_examples_per_second_hold_while_nothing_scores():
    """Between cases or while workers close, the rate is the one scoring earned, not examples over a growing wall."""
    from nanoeval.progress import Status, progress_line

    s = Status(task="mmlu", case="anatomy", phase="idle", scored={"mmlu": 10}, first={"mmlu": 0.0},
               last={"mmlu": 5.0})
    line = progress_line({"main": s}, {"mmlu": {"anatomy": 10}}, {}, {"mmlu": ["anatomy"]}, now=100.0)
    assert line == "mmlu 10/10 examples (100%), 2.0 ex/s [between cases]"
