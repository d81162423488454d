"""Test-only fault injection, a pytest plugin the tests load with `-p tests.fault_injection` (never product code).

    NANOEVAL_FAULT_FAIL=task:case   that case raises before scoring
    NANOEVAL_FAULT_EXIT=task:case   the process dies (os._exit) right after that case's first journal write
"""
from __future__ import annotations

import os

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    key = getattr(item.funcargs.get("case"), "key", None)
    if key and os.environ.get("NANOEVAL_FAULT_FAIL") == key:
        raise RuntimeError(f"injected failure in {key} (NANOEVAL_FAULT_FAIL)")
    if key and os.environ.get("NANOEVAL_FAULT_EXIT") == key:
        from evals.journal import JournalWriter

        append = JournalWriter.append

        def append_then_die(self, objs):
            append(self, objs)
            os._exit(3)

        JournalWriter.append = append_then_die
    return (yield)
