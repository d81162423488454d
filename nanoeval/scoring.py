"""Metrics from records (always from records: rescore, merge, resume and xdist share this code), option letters."""
from __future__ import annotations

import math
import re
from collections import defaultdict

from nanoeval.benchmark import Record


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n), as lm-eval reports)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = math.fsum(values) / n  # fsum: exact, so the same records in another order give the same digits
    if n == 1:
        return mean, float("nan")
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
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
    """Mean of per-subject accuracies (0/1 outcomes) and its standard error, subjects as independent samples:
    sqrt(sum of each subject's variance of its mean) / subjects.

    A subject's variance is its own (sample variance / n, as lm-eval's stderr) when its examples disagree. A subject
    of one example has none, and one whose examples all agree estimates 0, an error its few examples did not earn
    (40 one-example subjects at 50 % would read `0.5000 ± 0.0000`); such a subject contributes the binomial variance
    p(1 - p) / n of its mean at the task's pooled accuracy p (all examples of all subjects), the best estimate of its
    outcome's spread there is. Only a task at 0 % or 100 % then has a zero, and its Wilson interval (`wilson`)
    says how little that means."""
    subjects = list(per_subject.values())
    if not subjects:
        return float("nan"), float("nan")
    pooled = sum(v["acc"] * v["n"] for v in subjects) / sum(v["n"] for v in subjects)
    var = [v["stderr"] ** 2 if v["n"] > 1 and v["stderr"] > 0 else pooled * (1 - pooled) / v["n"]
           for v in subjects]
    return sum(v["acc"] for v in subjects) / len(subjects), math.sqrt(sum(var)) / len(subjects)


def wilson(p: float | None, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score 95 % interval of a proportion `p` over `n` examples (None without either). Unlike p ± z se
    it never collapses to a point: `dataset.limit: 1` at 100 % is [0.207, 1], not 1 ± 0."""
    if p is None or p != p or not n:
        return None
    d = 1 + z * z / n
    center = (p + z * z / (2 * n)) / d
    half = z / d * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


NOT_PROPORTIONS = ("bpb",)  # metrics that are means of positive reals (bits per byte, lower is better), not accuracies


def interval(metric: str, value: float | None, se: float | None, n: int) -> tuple[float, float] | None:
    """A metric's 95 % interval: Wilson's for an accuracy, mean +- 1.96 stderr for bits per byte."""
    if metric in NOT_PROPORTIONS:
        return None if value is None or se is None or se != se else (value - 1.96 * se, value + 1.96 * se)
    return wilson(value, n)


# ------------------------------------------------------------------------ generations the parser could not read
WARN_FALLBACK_SHARE = 0.05  # flag a generative task when more than this share of its responses had no readable answer


def fallback_summary(records: list[dict], fallback: tuple[str, str] | None, what: str = "answer letter") -> tuple[
        dict[str, int], list[tuple[str, str]]]:
    """Responses the parser could not read (records with `parse_failed`: generative strategies only), counted and
    flagged the same way for every benchmark: `counts.fallback_rows` for summary.json and, when more than
    WARN_FALLBACK_SHARE of the responses, a note (`FALLBACK n%` for the tables, a sentence for the warnings).
    `fallback`: (what was scored instead, what the accuracy then mostly is), e.g. ("counted those rows wrong",
    "zeros"); None when it is not known (no sentence, the count only). `what` the parser looks for."""
    parsed = [r for r in records if "parse_failed" in r]
    if not parsed:
        return {}, []
    failed = sum(bool(r["parse_failed"]) for r in parsed)
    share = 100 * failed / len(parsed)
    if fallback is None or failed <= WARN_FALLBACK_SHARE * len(parsed):
        return {"fallback_rows": failed}, []
    instead, mostly = fallback
    return {"fallback_rows": failed}, [(
        f"FALLBACK {share:.0f}%",
        f"fallback on {share:.0f} % of rows ({failed} of {len(parsed)} responses): the parser found no {what} "
        f"and {instead}" + (f", so this accuracy is mostly {mostly}" if 2 * failed > len(parsed) else ""))]


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
def with_prompts(engine, cfg, records: list[Record], requests: list) -> list[Record]:
    """With `report.prompts: true`, each record gets `prompt`: what its request asked the model (the engine's
    shown_prompt), as lm-eval's --log_samples shows it; `requests` are in the records' order."""
    if cfg.report.prompts:
        for record, request in zip(records, requests, strict=True):
            record["prompt"] = engine.shown_prompt(request)
    return records


def choice_record(example_id: str, subject: str | None, gold: int, lls: list[float], tokens: list[int],
                  texts: list[str] | None, gold_continuation: str) -> Record:
    """A record for choices ranked by log-likelihood (lm-eval's multiple_choice): `pred` is the argmax of the
    summed log-likelihoods (acc); with `texts`, `pred_norm` of the log-likelihood per character of the choice's text
    (acc_norm, the text without the leading space); `pred_token` of the log-likelihood per token of the continuation
    (acc_per_token); `bpb` the gold continuation's bits per byte, -ll / (ln 2 x its UTF-8 bytes). Ties go to the
    first. No subject: no `subject` key."""
    def argmax(values: list[float]) -> int:
        return max(range(len(values)), key=values.__getitem__)

    pred = argmax(lls)
    record: Record = {"id": example_id, "subject": subject, "gold": gold, "pred": pred, "correct": pred == gold}
    if subject is None:
        del record["subject"]
    if texts is not None:
        pred_norm = argmax([ll / max(1, len(t)) for ll, t in zip(lls, texts)])
        record.update(pred_norm=pred_norm, correct_norm=pred_norm == gold)
    pred_token = argmax([ll / max(1, n) for ll, n in zip(lls, tokens)])
    record.update(pred_token=pred_token, correct_token=pred_token == gold, lls=lls, tokens=tokens,
                  bpb=bits_per_byte(lls[gold], gold_continuation))
    return record


def bits_per_byte(ll: float, continuation: str) -> float:
    """A continuation's bits per byte: -ll / (ln 2 x its UTF-8 bytes), the delimiter included; lower is better."""
    return -ll / (math.log(2) * max(1, len(continuation.encode("utf-8"))))


def per_token_and_bpb(records: list[dict]) -> dict[str, tuple[float, float]]:
    """acc_per_token and the mean bits per byte of the gold (lower is better), each with its stderr."""
    return {"acc_per_token": accuracy(records, "correct_token"), "bpb": mean_stderr([r["bpb"] for r in records])}
