"""Test-only fault injection, a pytest plugin the tests load with `-p tests.fault_injection` (never product code).

    NANOEVAL_FAULT_FAIL=task:case   that case raises before scoring
    NANOEVAL_FAULT_EXIT=task:case   the process dies (os._exit) right after that case's first journal write
    NANOEVAL_FAULT_PAUSE=task:case  after that case's first journal write, create $NANOEVAL_FAULT_PAUSE_FILE and
                                    sleep (a test then interrupts the run at a known point)
    NANOEVAL_FAULT_SLOW=seconds     every journal write (one per scored chunk) first sleeps this long
    NANOEVAL_FAULT_PLAIN_EVERY=s    plain progress lines every s seconds instead of every 15
    NANOEVAL_FAULT_AHEAD_LOG=file   each look-ahead appends a JSON line {"worker", "cases"} (the cases it scored)
    NANOEVAL_FAULT_PRESCORE=1       scoring ahead (Engine.prescore) raises
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest


def pytest_configure(config):
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
    if os.environ.get("NANOEVAL_FAULT_PRESCORE"):
        from nanoeval.engine import Engine

        def failing_prescore(self, requests):
            raise RuntimeError("injected failure while scoring ahead (NANOEVAL_FAULT_PRESCORE)")

        Engine.prescore = failing_prescore


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    key = getattr(item.funcargs.get("case"), "key", None)
    if key and os.environ.get("NANOEVAL_FAULT_FAIL") == key:
        raise RuntimeError(f"injected failure in {key} (NANOEVAL_FAULT_FAIL)")
    if key and os.environ.get("NANOEVAL_FAULT_EXIT") == key:
        from nanoeval.journal import JournalWriter

        append = JournalWriter.append

        def append_then_die(self, objs):
            append(self, objs)
            os._exit(3)

        JournalWriter.append = append_then_die
    if key and os.environ.get("NANOEVAL_FAULT_PAUSE") == key:
        from nanoeval.journal import JournalWriter

        append = JournalWriter.append

        def append_then_pause(self, objs):
            append(self, objs)
            Path(os.environ["NANOEVAL_FAULT_PAUSE_FILE"]).touch()
            time.sleep(300)

        JournalWriter.append = append_then_pause
    return (yield)
