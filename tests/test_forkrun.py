"""The tests' warm start (tests/forkrun.py) runs `pytest evals/` as a fresh `python -m pytest` would: the same
records, summary and terminal as a real subprocess, and a run whose environment a preloaded library read at
import goes to a real subprocess."""
from __future__ import annotations

import json
import os
import re

from tests.conftest import ROOT, mmlu_tiny_config, read_jsonl, run_pytest


def test_a_warm_run_equals_a_real_subprocess(pytester, warm, tiny_lm, tmp_path):
    import yaml

    outputs, forked = {}, warm.runs
    for how in ("warm", "subprocess"):
        cfg = pytester.path / f"{how}.yaml"
        cfg.write_text(yaml.safe_dump(mmlu_tiny_config(tiny_lm, tmp_path / how)))
        pytester._monkeypatch.setenv("NANOEVAL_CONFIG", str(cfg))
        pytester._monkeypatch.setenv("PYTHONPATH", str(ROOT))
        result = run_pytest(pytester, warm if how == "warm" else None, str(ROOT / "evals"), "-p", "no:cacheprovider")
        assert result.ret == 0, result.stdout.str()
        outputs[how] = result
    assert warm.runs == forked + 1  # the first went through the warm parent, the second did not
    warm_rows, real_rows = (read_jsonl(tmp_path / h / "predictions.jsonl") for h in ("warm", "subprocess"))
    assert warm_rows == real_rows and len(warm_rows) > 0
    metrics = [json.loads((tmp_path / h / "summary.json").read_text())["metrics"] for h in ("warm", "subprocess")]
    assert metrics[0] == metrics[1]

    def shape(result) -> list[str]:  # the terminal without times, rates (ex/s: one decimal) and the report dir
        text = "\n".join(result.outlines + result.errlines)
        text = re.sub(r"\d+(\.\d+)?\s*(s|ms)\b|\d+:\d\d(:\d\d)?| \d+\.\d ", "T", text)
        text = re.sub(r"={2,}", "==", text)  # pytest pads its summary line to the width: "in 4.30s" vs "in 10.95s"
        return [line for line in text.replace("subprocess", "warm").splitlines() if "rootdir" not in line]
    assert shape(outputs["warm"]) == shape(outputs["subprocess"])


def test_a_run_that_changes_what_a_preloaded_library_read_goes_to_a_real_subprocess(warm):
    env = dict(os.environ)
    assert warm.can_run(env)
    assert not warm.can_run({**env, "OMP_NUM_THREADS": "7"})
    assert not warm.can_run({**env, "PYTHONPATH": f"/somewhere/else{os.pathsep}{ROOT}"})
    assert warm.can_run({**env, "NANOEVAL_FAULT_FAIL": "x", "HOME": "/elsewhere"})  # read at run time, in the child
