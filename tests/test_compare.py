"""`nanoeval compare A B` on two steps of a training run (nanoeval.evaluate with a report dir): the paired standard
error, McNemar's counts and p-value and Holm's adjustment equal a hand computation on the same records; examples are
matched by id and counted; unlike runs are refused with the reason."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import pytest
import torch

from nanoeval import evaluate
from nanoeval.gates import mcnemar_worse_p
from nanoeval.paired import holm, mcnemar_p, paired_difference
from tests.conftest import ROOT, read_jsonl
from tests.test_training import load, tasks

KEY = {"arc_easy": "correct_norm", "hellaswag": "correct_norm", "winogrande": "correct"}  # the headlines'


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nanoeval.cli", "compare", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


def two_steps(tiny_lm, runs, limit_b: int = 40):
    model, tok = load(tiny_lm)
    evaluate(model, tok, tasks()[:3], step=1, limit=40, report_dir=runs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
    evaluate(model, tok, tasks()[:3], step=2, limit=limit_b, report_dir=runs)


def binom_two_sided(b: int, c: int) -> float:
    """Exact two-sided McNemar by hand: twice the tail of Bin(b + c, 1/2) beyond the larger count, capped at 1."""
    n = b + c
    tail = sum(Fraction(math.comb(n, k), 2 ** n) for k in range(max(b, c), n + 1)) if n else Fraction(1, 2)
    return float(min(Fraction(1), 2 * tail))


def test_compare_matches_a_hand_computation(tiny_lm, tmp_path):
    runs = tmp_path / "runs"
    two_steps(tiny_lm, runs)
    res = cli(runs / "step-1", runs / "step-2", "--json")
    assert res.returncode == 0, res.stderr
    got = {t["task"]: t for t in json.loads(res.stdout)["tasks"]}
    assert set(got) == set(KEY)
    raw_p = {}
    for task, key in KEY.items():
        a = {r["id"]: r for r in read_jsonl(runs / "step-1" / task / "predictions.jsonl")}
        b = {r["id"]: r for r in read_jsonl(runs / "step-2" / task / "predictions.jsonl")}
        ids = sorted(a.keys() & b.keys())
        d = [int(b[i][key]) - int(a[i][key]) for i in ids]
        n, mean = len(d), sum(d) / len(d)
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) / math.sqrt(n)
        t = got[task]
        assert t["matched"] == n == 40 and t["only_a"] == t["only_b"] == 0
        assert math.isclose(t["correct"]["diff"], mean, abs_tol=1e-12)
        assert math.isclose(t["correct"]["se"], se, rel_tol=1e-9)
        assert t["correct"]["ci95"] == [mean - 1.96 * t["correct"]["se"], mean + 1.96 * t["correct"]["se"]]
        rw = sum(a[i][key] and not b[i][key] for i in ids)
        wr = sum(b[i][key] and not a[i][key] for i in ids)
        assert (t["right_to_wrong"], t["wrong_to_right"]) == (rw, wr)
        assert math.isclose(t["p"], binom_two_sided(rw, wr), rel_tol=1e-12)
        raw_p[task] = t["p"]
        bd = [b[i]["bpb"] - a[i]["bpb"] for i in ids]
        bm = sum(bd) / n
        assert math.isclose(t["bpb"]["diff"], bm, rel_tol=1e-9)
        assert math.isclose(t["bpb"]["se"], math.sqrt(sum((x - bm) ** 2 for x in bd) / (n - 1) / n), rel_tol=1e-9)
        # the paired gate's one-sided p is the same code: B worse than A
        p_worse, _, _ = mcnemar_worse_p({i: a[i][key] for i in ids}, {i: b[i][key] for i in ids})
        assert math.isclose(p_worse, float(sum(Fraction(math.comb(rw + wr, k), 2 ** (rw + wr))
                                               for k in range(rw, rw + wr + 1))) if rw + wr else 1.0)
    order = sorted(raw_p, key=raw_p.get)  # Holm by hand: k-th smallest x (m - k), running max, capped at 1
    running = 0.0
    for k, task in enumerate(order):
        running = max(running, min(1.0, (3 - k) * raw_p[task]))
        assert math.isclose(got[task]["p_holm"], running)
    text = cli(runs / "step-1", runs / "step-2", "--html", tmp_path / "c.html")
    assert text.returncode == 0 and "| hellaswag | acc_norm | 40 |" in text.stdout
    assert "<td>hellaswag</td>" in (tmp_path / "c.html").read_text()


def test_compare_counts_what_matched_and_refuses_what_it_cannot_compare(tiny_lm, tmp_path):
    runs = tmp_path / "runs"
    two_steps(tiny_lm, runs, limit_b=25)  # B scored a nested sample: 25 of A's 40
    res = cli(runs / "step-1" / "hellaswag", runs / "step-2" / "hellaswag" / "summary.json", "--json")
    assert res.returncode == 0, res.stderr
    (t,) = json.loads(res.stdout)["tasks"]
    assert (t["matched"], t["only_a"], t["only_b"]) == (25, 15, 0)
    md = cli(runs / "step-1" / "hellaswag", runs / "step-2" / "hellaswag")
    assert "25 (+15 A only, +0 B only)" in md.stdout
    res = cli(runs / "step-1" / "arc_easy", runs / "step-2" / "hellaswag")
    assert res.returncode == 2 and "no task in common" in res.stderr
    other = json.loads((runs / "step-2" / "winogrande" / "summary.json").read_text())
    other["dataset"]["files"]["validation"][0]["sha256"] = "0" * 64
    (runs / "step-2" / "winogrande" / "summary.json").write_text(json.dumps(other))
    res = cli(runs / "step-1", runs / "step-2")
    assert res.returncode == 0
    assert "not compared: winogrande: scored on other data" in res.stdout
    res = cli(runs / "step-1", tmp_path / "nothing")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "nothing" in res.stderr


def test_paired_statistics_on_known_values():
    """Numbers worked out by hand: se = sd(d; n - 1) / sqrt(n); McNemar on Bin(b + c, 1/2); Holm's step-down."""
    d = paired_difference("acc", [0, 1, 1, 0], [1, 1, 0, 1])  # differences 1, 0, -1, 1
    assert (d.a, d.b, d.diff) == (0.5, 0.75, 0.25)
    assert math.isclose(d.se, math.sqrt(2.75 / 3) / 2)  # squared deviations .5625 + .0625 + 1.5625 + .5625
    assert mcnemar_p(0, 5) == 2 / 32 and mcnemar_p(5, 0) == 2 / 32   # all 5 discordant pairs one way
    assert mcnemar_p(3, 1) == 2 * 5 / 16 and mcnemar_p(3, 1, "worse") == 5 / 16 and mcnemar_p(1, 3, "worse") == 15 / 16
    assert mcnemar_p(2, 2) == 1.0 and mcnemar_p(0, 0) == 1.0
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"a": 0.5, "b": 0.2}) == pytest.approx({"b": 0.4, "a": 0.5})
