"""Metrics from records (always from records: rescore, merge, resume and xdist share this code), option letters."""
from __future__ import annotations

import math
import re
from collections import defaultdict

from nanoeval.benchmark import Metrics, Record


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


# ------------------------------------------------------------------------------------- multiple-choice letters
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def option_letters(n: int) -> list[str]:
    """One letter per option, from A (a 12-option row exists: never hard-code A-J)."""
    return [chr(ord("A") + i) for i in range(n)]


def first_letter(response: str, n_choices: int) -> str | None:
    """The first standalone option letter in a generated response (None if there is none)."""
    m = re.search(rf"\b([{LETTERS[:n_choices]}])\b", response)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------- choices ranked by log-likelihood
def ranked_record(example_id: str, subject: str, gold: int, lls: list[float], texts: list[str]) -> Record:
    """A record for choices ranked by log-likelihood (lm-eval's multiple_choice): `pred` is the argmax of the
    summed log-likelihoods (acc), `pred_norm` of the log-likelihood per character of the choice's text (acc_norm,
    the text without the leading space); ties go to the first."""
    norm = [ll / max(1, len(t)) for ll, t in zip(lls, texts)]
    pred, pred_norm = (max(range(len(xs)), key=xs.__getitem__) for xs in (lls, norm))
    return {"id": example_id, "subject": subject, "gold": gold, "pred": pred, "correct": pred == gold,
            "pred_norm": pred_norm, "correct_norm": pred_norm == gold, "lls": lls}


def acc_norm_metrics(records: list[dict]) -> Metrics:
    """acc and acc_norm (the headline, as papers quote it), per subject too; chance from the number of choices."""
    metrics, stderr = {}, {}
    metrics["acc"], stderr["acc"] = accuracy(records, "correct")
    metrics["acc_norm"], stderr["acc_norm"] = accuracy(records, "correct_norm")
    per = by_subject(records)
    for subject, norm in by_subject(records, "correct_norm").items():
        per[subject].update(acc_norm=norm["acc"], acc_norm_stderr=norm["stderr"])
    chance = sum(1 / len(r["lls"]) for r in records) / len(records) if records else None
    return Metrics("acc_norm", metrics, stderr, per, chance=chance, plot_by="metrics", correct_key="correct_norm")
