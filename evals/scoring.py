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


# ---------------------------------------------------------------------------------------- MMMU-Pro answer parsing
def option_letters(n: int) -> list[str]:
    """One letter per option, from A (a 12-option row exists: never hard-code A-J)."""
    return [chr(ord("A") + i) for i in range(n)]


def parse_mmmu_pro(response, options: list, fallback_seed: str | None) -> tuple[str | None, bool]:
    """The official MMMU-Pro parser (mmmu-pro/evaluate.py), in its order; returns (letter, parse_failed).

    No candidate: the official code picks an unseeded random letter. Here the letter is drawn from
    random.Random(fallback_seed) (seed and row id: independent of order, batching and workers), or None when
    fallback_seed is None (the row then counts as wrong)."""
    import random

    letters = option_letters(len(options))
    if not isinstance(response, str):
        response = ""
    pos = response.rfind("Answer:")
    if pos != -1:  # 1. after the last "Answer:", exactly one letter as a plain substring
        tail = response[pos + len("Answer:"):].strip()
        matches = [x for x in letters if x in tail]
        if len(matches) == 1:
            return matches[0], False
    for ch in [",", ".", "!", "?", ";", ":", "'"]:  # 2. strip punctuation at both ends, pad with spaces
        response = response.strip(ch)
    response = f" {response} "
    by_text = False  # 3. candidates: (X), else "X ", else "X.", else option text in a long response
    candidates = [x for x in letters if f"({x})" in response]
    bracketed = bool(candidates)
    if not candidates:
        candidates = [x for x in letters if f"{x} " in response]
    if not candidates:
        candidates = [x for x in letters if f"{x}." in response]
    if not candidates and len(response.split()) > 5:
        texts = {x: str(o).lower() for x, o in zip(letters, options)}
        candidates = [x for x in letters if texts[x] in response.lower()]
        by_text = bool(candidates)
    if len(candidates) == 1:  # 4. one candidate; several: the last occurrence wins, ties to the earlier letter
        return candidates[0], False
    if candidates:
        if by_text:
            starts = [response.lower().rfind(str(options[letters.index(x)]).lower()) for x in candidates]
        elif bracketed:
            starts = [response.rfind(f"({x})") for x in candidates]
        else:
            starts = [response.rfind(f" {x} ") for x in candidates]
        return candidates[starts.index(max(starts))], False
    if fallback_seed is None:
        return None, True
    return random.Random(fallback_seed).choice(letters), True
