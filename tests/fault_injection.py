"""Test-only fault injection, a pytest plugin the tests load with `-p tests.fault_injection` (never product code).

    NANOEVAL_FAULT_FAIL=task:case   that case raises before scoring
    NANOEVAL_FAULT_EXIT=task:case   the process dies (os._exit) right after the first write into that case's
                                    journal (by the case itself or by a look-ahead that scored it ahead)
    NANOEVAL_FAULT_PAUSE=task:case  after the first write into that case's journal (as above), create
                                    $NANOEVAL_FAULT_PAUSE_FILE and sleep (a test then interrupts the run there)
    NANOEVAL_FAULT_AHEAD_SIGNAL=K:SIG  the process sends itself signal SIG (INT: what Ctrl-C sends; KILL) right
                                    after the K-th batch the engine scores inside a look-ahead (Engine.prescore)
    NANOEVAL_FAULT_KILL_AT=N[:torn]  the process sends itself SIGKILL during its N-th journal append (any case): after
                                    the append is on disk, or with `:torn` after only half of its bytes are (a crash
                                    mid-write); a kill at a chosen write, not at a time a busy machine may miss
    NANOEVAL_FAULT_SLOW=seconds     every journal write (one per scored chunk) first sleeps this long
    NANOEVAL_FAULT_PLAIN_EVERY=s    plain progress lines every s seconds instead of every 15
    NANOEVAL_FAULT_AHEAD_LOG=file   each look-ahead appends a JSON line {"worker", "cases"} (the cases it scored)
    NANOEVAL_FAULT_PRESCORE=1       scoring ahead (Engine.prescore) raises
    NANOEVAL_FAULT_NO_CHANCE=bench  that benchmark's `summarize` reports no chance level (as a benchmark without
                                    one would)
    NANOEVAL_FAULT_TEARDOWN=file    under -n: each worker sleeps at its exit (pytest_unconfigure), and the controller
                                    creates `file` when xdist starts waiting for them (a test then interrupts there)
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest


def pytest_configure(config):
    if os.environ.get("NANOEVAL_FAULT_NO_CHANCE"):
        import dataclasses

        from nanoeval.benchmarks import BENCHMARKS

        name = os.environ["NANOEVAL_FAULT_NO_CHANCE"]
        summarize = BENCHMARKS[name].summarize
        BENCHMARKS[name] = dataclasses.replace(BENCHMARKS[name], summarize=lambda records, cfg: dataclasses.replace(
            summarize(records, cfg), chance=None))
    if os.environ.get("NANOEVAL_FAULT_PLAIN_EVERY"):
        import nanoeval.progress

        nanoeval.progress.PLAIN_EVERY = float(os.environ["NANOEVAL_FAULT_PLAIN_EVERY"])
    if os.environ.get("NANOEVAL_FAULT_SLOW"):
        from nanoeval.journal import JournalWriter

        append, delay = JournalWriter.append, float(os.environ["NANOEVAL_FAULT_SLOW"])

        def slow_append(self, objs):
            if not any("_complete" in o for o in objs):
                time.sleep(delay)
            append(self, objs)

        JournalWriter.append = slow_append
    if os.environ.get("NANOEVAL_FAULT_AHEAD_LOG"):
        from nanoeval.lookahead import Lookahead

        prepare, log = Lookahead.prepare, Path(os.environ["NANOEVAL_FAULT_AHEAD_LOG"])

        def logged_prepare(self, *args, **kwargs):
            before = set(self.seen)
            prepare(self, *args, **kwargs)
            if self.seen - before:
                with open(log, "a") as f:
                    f.write(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                        "cases": sorted(c for _, c in self.seen - before)}) + "\n")

        Lookahead.prepare = logged_prepare
    for var, then in (("NANOEVAL_FAULT_EXIT", _exit), ("NANOEVAL_FAULT_PAUSE", _pause)):
        if os.environ.get(var):
            _after_first_write(os.environ[var].partition(":")[2], then)
    if os.environ.get("NANOEVAL_FAULT_KILL_AT"):
        n, _, how = os.environ["NANOEVAL_FAULT_KILL_AT"].partition(":")
        _kill_at_append(int(n), how == "torn")
    if os.environ.get("NANOEVAL_FAULT_AHEAD_SIGNAL"):
        k, _, name = os.environ["NANOEVAL_FAULT_AHEAD_SIGNAL"].partition(":")
        _signal_in_lookahead(int(k), getattr(signal, f"SIG{name}"))
    if os.environ.get("NANOEVAL_FAULT_PRESCORE"):
        from nanoeval.engine import Engine

        def failing_prescore(self, requests, answered=None):
            raise RuntimeError("injected failure while scoring ahead (NANOEVAL_FAULT_PRESCORE)")

        Engine.prescore = failing_prescore
    if os.environ.get("NANOEVAL_FAULT_TEARDOWN") and not hasattr(config, "workerinput"):
        from xdist.workermanage import NodeManager

        teardown, flag = NodeManager.teardown_nodes, Path(os.environ["NANOEVAL_FAULT_TEARDOWN"])

        def flagged_teardown(self):
            flag.touch()
            teardown(self)

        NodeManager.teardown_nodes = flagged_teardown


def pytest_unconfigure(config):
    if os.environ.get("NANOEVAL_FAULT_TEARDOWN") and hasattr(config, "workerinput"):
        time.sleep(60)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    key = getattr(item.funcargs.get("case"), "key", None)
    if key and os.environ.get("NANOEVAL_FAULT_FAIL") == key:
        raise RuntimeError(f"injected failure in {key} (NANOEVAL_FAULT_FAIL)")
    return (yield)


def _exit() -> None:
    os._exit(3)


def _pause() -> None:
    Path(os.environ["NANOEVAL_FAULT_PAUSE_FILE"]).touch()
    time.sleep(300)


def _after_first_write(case: str, then) -> None:
    """`then()` right after the first append into the journal of `case` (journals/<case>.jsonl)."""
    from nanoeval.journal import JournalWriter

    append = JournalWriter.append

    def append_then(self, objs):
        append(self, objs)
        if Path(self.f.name).stem == case:
            then()

    JournalWriter.append = append_then


def _kill_at_append(n: int, torn: bool) -> None:
    """SIGKILL this process during its n-th journal append: after the append, or halfway through its bytes."""
    from nanoeval.journal import JournalWriter

    append, state = JournalWriter.append, {"appends": 0}

    def append_then_die(self, objs):
        state["appends"] += 1
        if state["appends"] < n:
            return append(self, objs)
        if torn:
            data = b"".join(json.dumps(o, sort_keys=True).encode() + b"\n" for o in objs)
            self.f.write(data[: max(1, len(data) // 2)])
            self.f.flush()
            os.fsync(self.f.fileno())
        else:
            append(self, objs)
        os.kill(os.getpid(), signal.SIGKILL)

    JournalWriter.append = append_then_die


def _signal_in_lookahead(k: int, sig: int) -> None:
    """Count the batches run while Engine.prescore scores ahead; after the k-th, signal this process. SIGINT gets
    Python's own handler first, as in a terminal (a shell's background job would inherit SIGINT ignored)."""
    from nanoeval.engine import Engine
    from nanoeval.engine.batching import Batcher

    prescore, run, state = Engine.prescore, Batcher.run, {"inside": False, "batches": 0}

    def watched_prescore(self, *args, **kwargs):
        state["inside"] = True
        try:
            return prescore(self, *args, **kwargs)
        finally:
            state["inside"] = False

    def counted_run(self, lengths, fn, *args, **kwargs):
        def counted(rows):
            fn(rows)
            if state["inside"]:
                state["batches"] += 1
                if state["batches"] == k:
                    os.kill(os.getpid(), sig)
                    time.sleep(5)  # the signal lands here (SIGINT: KeyboardInterrupt)
        return run(self, lengths, counted, *args, **kwargs)

    if sig == signal.SIGINT:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    Engine.prescore, Batcher.run = watched_prescore, counted_run
