"""Two runs compared example by example (the paired gate and `nanoeval compare`).

On the examples both runs scored (matched by id, never by position), per metric:
  * the paired difference of the per-example values d_i = b_i - a_i (correctness as 0/1, or a continuous value
    such as the gold answer's bits per byte): mean, standard error sd(d) / sqrt(n) (sample sd, n - 1) and a 95 %
    interval mean +- 1.96 se. Pairing removes the variance the two runs share (the same hard questions), so it is
    far tighter than combining two independent standard errors;
  * for correctness, McNemar's counts (right -> wrong, wrong -> right) and the exact binomial p-value on the
    discordant pairs: two-sided for a comparison, one-sided ("worse") for a gate;
  * across the tasks of one comparison, Holm's step-down adjustment of the p-values (family-wise error).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class PairedDifference:
    metric: str
    n: int
    a: float                  # mean over the matched examples, run A
    b: float                  # the same, run B
    diff: float               # b - a
    se: float | None          # of the mean per-example difference (None with one example)
    ci95: list[float] | None


def paired_difference(metric: str, a: list[float], b: list[float]) -> PairedDifference:
    """Mean difference b - a of matched per-example values, its standard error and 95 % interval."""
    n = len(a)
    if n == 0 or n != len(b):
        raise ValueError(f"{metric}: {n} and {len(b)} values: a paired difference needs the same examples, >= 1")
    d = [y - x for x, y in zip(a, b)]
    mean = math.fsum(d) / n
    se = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else None
    return PairedDifference(metric, n, math.fsum(a) / n, math.fsum(b) / n, mean, se,
                            None if se is None else [mean - 1.96 * se, mean + 1.96 * se])


def discordant(a: list[bool], b: list[bool]) -> tuple[int, int]:
    """McNemar's discordant counts of matched correctness: (right in A and wrong in B, wrong in A and right in B)."""
    return sum(x and not y for x, y in zip(a, b)), sum(y and not x for x, y in zip(a, b))


def mcnemar_p(worse: int, better: int, alternative: str = "two-sided") -> float:
    """Exact McNemar p-value from the discordant counts (X ~ Bin(worse + better, 1/2)). `two-sided`: B differs from
    A; `worse`: B is worse (P(X >= worse))."""
    n = worse + better
    if n == 0:
        return 1.0
    tail = lambda k: sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n  # noqa: E731  P(X >= k)
    if alternative == "worse":
        return tail(worse)
    if alternative != "two-sided":
        raise ValueError(f"alternative: two-sided or worse, got {alternative!r}")
    return min(1.0, 2 * tail(max(worse, better)))


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values: the k-th smallest times (m - k + 1), made monotone, capped at 1."""
    order = sorted(pvalues, key=lambda k: pvalues[k])
    out, running, m = {}, 0.0, len(order)
    for k, name in enumerate(order):
        running = max(running, min(1.0, (m - k) * pvalues[name]))
        out[name] = running
    return out
