"""Metrics from records (always from records: rescore, merge, resume and xdist share this code) and answer parsing."""
from __future__ import annotations

import math
from collections import defaultdict


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n), as lm-eval reports)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def accuracy(records: list[dict], key: str = "correct") -> tuple[float, float]:
    return mean_stderr([float(r[key]) for r in records])


def by_subject(records: list[dict], key: str = "correct") -> dict[str, dict]:
    """subject -> {n, acc, stderr}, subjects sorted."""
    groups = defaultdict(list)
    for r in records:
        groups[r["subject"]].append(float(r[key]))
    out = {}
    for s in sorted(groups):
        acc, se = mean_stderr(groups[s])
        out[s] = {"n": len(groups[s]), "acc": acc, "stderr": se}
    return out


def macro(per_subject: dict[str, dict]) -> tuple[float, float]:
    """Mean of per-subject accuracies; its standard error treats subjects as independent samples."""
    accs = [v["acc"] for v in per_subject.values()]
    if not accs:
        return float("nan"), float("nan")
    ses = [v["stderr"] for v in per_subject.values() if not math.isnan(v["stderr"])]
    return sum(accs) / len(accs), math.sqrt(sum(se * se for se in ses)) / len(accs)


def clean(obj):
    """JSON-safe copy: NaN/inf become None, numpy/torch scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
