"""Regression gates: a task's `gates:` block, checked against its summary (and a baseline run) at session end.

    gates:
      min: 0.30                    # headline metric at least this
      min_per_subject: 0.10        # every subject at least this (fails that subject's case too)
      baseline: artifacts/nanoeval/mmlu_v1/summary.json   # or a suite_summary.json (the task of the same name)
      max_drop: 0.02               # headline may drop at most this much below the baseline (absolute)
      max_drop_stderr: 2.0         # ... or at most k combined standard errors
      paired_alpha: 0.05           # ... or: fail if a one-sided exact McNemar test on per-example correctness
                                   #     against the baseline's predictions.jsonl says it got worse at this level

A gate on an incomplete run (missing cases) fails and says why; so does a comparison that cannot be made (an
unreadable baseline, its metric missing or null, no example ids in common). Thresholds are checked when the config
loads. Low accuracy without a gate never fails anything.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GateResult:
    task: str
    gate: str
    metric: str
    value: float | None
    threshold: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        word = "PASSED" if self.passed else "FAILED"
        value = "n/a" if self.value is None else f"{self.value:.4f}"
        return f"gate {word}: {self.task} {self.gate}: {self.metric} = {value} (needs {self.threshold}){self.detail}"


def load_baseline(path: Path, task_name: str) -> tuple[dict, Path]:
    """The baseline's summary for this task (from a summary.json or a suite_summary.json) and its predictions file.
    Raises ValueError with a message naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"baseline {path}: cannot read ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"baseline {path}: expected a summary.json or suite_summary.json object")
    if "tasks" in data:  # a suite summary
        if task_name not in data["tasks"]:
            raise ValueError(f"baseline {path}: the suite has no task {task_name!r} "
                             f"(has: {', '.join(data['tasks'])})")
        data = data["tasks"][task_name]
    preds = Path((data.get("artifacts") or {}).get("predictions.jsonl", path.parent / "predictions.jsonl"))
    return data, preds


def _correctness(path: Path, key: str) -> dict[str, bool]:
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or key not in row:
                raise ValueError(f"{path}: line {n}: expected a prediction row with 'id' and {key!r}")
            out[str(row["id"])] = bool(row[key])
    return out


def mcnemar_worse_p(base: dict[str, bool], new: dict[str, bool]) -> tuple[float, int, int]:
    """One-sided exact McNemar p-value that the new run is worse: P(X >= b), X ~ Bin(b + c, 1/2)."""
    common = base.keys() & new.keys()
    b = sum(base[i] and not new[i] for i in common)  # right before, wrong now
    c = sum(new[i] and not base[i] for i in common)
    n = b + c
    p = sum(math.comb(n, k) for k in range(b, n + 1)) / 2 ** n if n else 1.0
    return p, b, c


def check(summary, gates, baseline_path: Path | None) -> list[GateResult]:
    """The task's gates on its summary (a TaskSummary); `paired_alpha` compares, example by example, the record
    key that holds the headline's correctness (summary.correct_key, from the benchmark's summarize)."""
    task, head = summary.name, summary.headline
    value = summary.metrics.get(head)
    incomplete = not summary.cases["complete"]
    why = f" -- run incomplete: {len(summary.cases['missing'])} case(s) missing" if incomplete else ""
    out = []

    def add(gate, metric, val, threshold, ok, detail=""):
        out.append(GateResult(task, gate, metric, val, threshold, bool(ok) and not incomplete, detail + why))

    if gates.min is not None:
        add("min", head, value, f">= {gates.min}", value is not None and value >= gates.min)
    if gates.min_per_subject is not None:
        low = {s: v["acc"] for s, v in summary.per_subject.items() if v["acc"] < gates.min_per_subject}
        detail = f" -- below: {', '.join(f'{s} {a:.3f}' for s, a in sorted(low.items()))}" if low else ""
        worst = min((v["acc"] for v in summary.per_subject.values()), default=None)
        add("min_per_subject", "worst subject acc", worst, f">= {gates.min_per_subject}", not low, detail)
    if baseline_path is None:
        return out
    wanted = [g for g in ("max_drop", "max_drop_stderr", "paired_alpha") if getattr(gates, g) is not None]
    names = {"paired_alpha": "paired"}
    try:
        base, base_preds = load_baseline(baseline_path, task)
        b_value = (base.get("metrics") or {}).get(head)
        if not isinstance(b_value, (int, float)) or b_value != b_value:
            raise ValueError(f"baseline {baseline_path}: metric {head!r} is missing or null (has: "
                             f"{', '.join(k for k, v in (base.get('metrics') or {}).items() if v is not None)})")
    except ValueError as e:  # a baseline that cannot be compared fails each gate that needs it, with the reason
        for g in wanted:
            add(names.get(g, g), head, value, "a readable baseline", False, f" -- {e}")
        return out
    drop = b_value - value if value is not None else None
    if gates.max_drop is not None:
        add("max_drop", head, value, f">= baseline {b_value:.4f} - {gates.max_drop}",
            drop is not None and drop <= gates.max_drop + 1e-12, f" -- drop {drop:+.4f}" if drop is not None else "")
    if gates.max_drop_stderr is not None:
        se = math.hypot(summary.stderr.get(head) or 0.0, (base.get("stderr") or {}).get(head) or 0.0)
        add("max_drop_stderr", head, value, f">= baseline {b_value:.4f} - {gates.max_drop_stderr} x {se:.4f}",
            drop is not None and drop <= gates.max_drop_stderr * se + 1e-12,
            f" -- drop {drop:+.4f}" if drop is not None else "")
    if gates.paired_alpha is not None:
        threshold = f"McNemar p >= {gates.paired_alpha} vs baseline {b_value:.4f}"
        key = summary.correct_key
        try:
            if not base_preds.exists():
                raise ValueError(f"baseline predictions {base_preds} not found")
            base_c = _correctness(base_preds, key)
            new_c = _correctness(Path(summary.artifacts["predictions.jsonl"]), key)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
            add("paired", head, value, threshold, False, f" -- {e}")
            return out
        common = base_c.keys() & new_c.keys()
        if not common:
            add("paired", head, value, threshold, False, f" -- no example ids in common with the baseline "
                f"({len(new_c)} here, {len(base_c)} in {base_preds}): nothing to compare")
            return out
        p, b, c = mcnemar_worse_p(base_c, new_c)
        partial = f", compared on {len(common)} common examples of {len(new_c)} here / {len(base_c)} in the " \
            "baseline" if len(common) < max(len(new_c), len(base_c)) else f", {len(common)} examples compared"
        add("paired", head, value, threshold, p >= gates.paired_alpha,
            f" -- p = {p:.4g} ({b} now wrong, {c} now right{partial})")
    return out
