"""`nanoeval compare A B`: two runs (two checkpoints, two steps of a sweep, two suites) compared task by task on
the examples both scored, with paired statistics (paired.py).

A and B are each a task's report dir or its summary.json, or a suite's dir or its suite_summary.json (its tasks
read from `<suite dir>/<task>/`, as a suite writes them). A task is compared only with the task of the same name
that is the same measurement: the same benchmark, headline, recipe (the code hash and shard count aside) and data
(gates.unlike); otherwise it is listed as not compared, with the reason. Examples are matched by id: the count
matched and those only one run has are stated, and a task with none in common is refused, never compared.

Per task: the headline on the matched examples in each run (the benchmark's own `summarize`), the paired
difference B - A of per-example correctness with its standard error and 95 % interval, McNemar's counts (right ->
wrong, wrong -> right) and exact two-sided p-value, Holm's adjustment of those p-values across the tasks compared,
and the same paired difference of the gold answer's bits per byte where the records have it (lower is better).
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.gates import read_predictions, unlike
from nanoeval.journal import inside
from nanoeval.paired import PairedDifference, discordant, holm, mcnemar_p, paired_difference


class CompareError(ValueError):
    """Two runs that cannot be compared at all (unreadable, or no task in common): one line."""


@dataclass
class TaskComparison:
    task: str
    headline: str
    matched: int                       # examples both runs scored (by id)
    only_a: int
    only_b: int
    a: float | None                    # the headline on the matched examples
    b: float | None
    correct: PairedDifference | None   # per-example correctness of the headline, B - A
    right_to_wrong: int = 0
    wrong_to_right: int = 0
    p: float | None = None             # exact two-sided McNemar
    p_holm: float | None = None        # Holm-adjusted across the tasks compared
    bpb: PairedDifference | None = None


@dataclass
class Comparison:
    a: str
    b: str
    tasks: list[TaskComparison]
    not_compared: dict[str, str] = field(default_factory=dict)   # task -> why

    def to_dict(self) -> dict:
        return asdict(self)


def read_run(path: Path) -> dict[str, tuple[dict, Path]]:
    """task name -> (its summary.json, its predictions.jsonl) of a task or suite run (a dir or its summary file)."""
    path = Path(path)
    if path.is_dir():
        path = path / ("suite_summary.json" if (path / "suite_summary.json").is_file() else "summary.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AssertionError) as e:
        raise CompareError(f"{path}: not a readable summary.json or suite_summary.json ({e.__class__.__name__})") \
            from None
    if "tasks" not in data:  # one task; a sweep's checkpoint (`arc_easy@step-2000`) compares as its task
        name = re.sub(r"@step-\d+$", "", data.get("name") or path.parent.name)
        return {name: (data, path.parent / "predictions.jsonl")}
    out = {}
    for name in data["tasks"]:
        try:  # a name read from a file never leads outside the suite's dir
            task_dir = inside(path.parent, name)
        except ValueError:
            raise CompareError(f"{path}: task name {name!r} is not a folder of the suite's dir") from None
        try:
            out[name] = (json.loads((task_dir / "summary.json").read_text(encoding="utf-8")),
                         task_dir / "predictions.jsonl")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CompareError(f"{task_dir / 'summary.json'}: cannot read ({e.__class__.__name__}: {e})") from None
    return out


def compare_runs(a: Path, b: Path) -> Comparison:
    runs = read_run(a), read_run(b)
    names = [n for n in runs[0] if n in runs[1]]
    if not names:
        raise CompareError(f"no task in common: {a} has {', '.join(runs[0])}; {b} has {', '.join(runs[1])}")
    out = Comparison(str(a), str(b), [], {n: f"only in {w}" for w, run, other in ((a, runs[0], runs[1]),
                                                                                 (b, runs[1], runs[0]))
                                          for n in run if n not in other})
    for name in names:
        (sa, pa), (sb, pb) = runs[0][name], runs[1][name]
        if why := unlike(sa, sb):
            out.not_compared[name] = why
            continue
        try:
            out.tasks.append(_task(name, sa, pa, pb))
        except ValueError as e:
            out.not_compared[name] = str(e)
    ps = {t.task: t.p for t in out.tasks if t.p is not None}
    for t in out.tasks:
        t.p_holm = holm(ps).get(t.task)
    return out


def _task(name: str, summary: dict, pa: Path, pb: Path) -> TaskComparison:
    bench = BENCHMARKS[summary["task"]]
    head = summary["headline"]
    rows = [read_predictions(p, "id") for p in (pa, pb)]
    common = [i for i in rows[0] if i in rows[1]]
    only_a, only_b = len(rows[0]) - len(common), len(rows[1]) - len(common)
    if not common:
        raise ValueError(f"no example ids in common ({len(rows[0])} in A, {len(rows[1])} in B): not compared")
    ma, mb = (bench.summarize([r[i] for i in common], None) for r in rows)
    key = ma.correct_key
    out = TaskComparison(name, head, len(common), only_a, only_b, ma.metrics.get(head), mb.metrics.get(head), None)
    if all(key in r[i] for r in rows for i in common):
        ca, cb = ([bool(r[i][key]) for i in common] for r in rows)
        out.correct = paired_difference(key, [float(x) for x in ca], [float(x) for x in cb])
        out.right_to_wrong, out.wrong_to_right = discordant(ca, cb)
        out.p = mcnemar_p(out.right_to_wrong, out.wrong_to_right)
    if all(isinstance(r[i].get("bpb"), (int, float)) for r in rows for i in common):
        out.bpb = paired_difference("bpb", [rows[0][i]["bpb"] for i in common], [rows[1][i]["bpb"] for i in common])
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _diff(d: PairedDifference | None, scale: float = 100, digits: int = 1) -> list[str]:
    if d is None:
        return ["-", "-"]
    ci = "-" if d.ci95 is None else f"[{scale * d.ci95[0]:+.{digits}f}, {scale * d.ci95[1]:+.{digits}f}]"
    se = "" if d.se is None else f" ± {scale * d.se:.{digits}f}"
    return [f"{scale * d.diff:+.{digits}f}{se}", ci]


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


HEADER = ["task", "metric", "matched", "A", "B", "per example: B - A ± paired se", "95 % CI", "right→wrong",
          "wrong→right",
          "p (McNemar)", "p (Holm)", "bpb A", "bpb B", "Δ bpb ± se", "Δ bpb 95 % CI"]


def rows(c: Comparison) -> list[list[str]]:
    out = []
    for t in c.tasks:
        matched = f"{t.matched}" + (f" (+{t.only_a} A only, +{t.only_b} B only)" if t.only_a or t.only_b else "")
        out.append([t.task, t.headline, matched, _pct(t.a), _pct(t.b), *_diff(t.correct),
                    str(t.right_to_wrong), str(t.wrong_to_right), _p(t.p), _p(t.p_holm),
                    "-" if t.bpb is None else f"{t.bpb.a:.4f}", "-" if t.bpb is None else f"{t.bpb.b:.4f}",
                    *_diff(t.bpb, 1, 4)])
    return out


def markdown(c: Comparison) -> str:
    lines = [f"A: {c.a}", f"B: {c.b}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(c)]
    lines += [f"not compared: {name}: {why}" for name, why in c.not_compared.items()]
    lines.append("accuracies in points (percent). A, B: the headline on the matched examples; B - A and its "
                 "interval: the mean per-example difference of the headline's correctness (for a headline averaged "
                 "over subjects, this is the micro difference); p: exact two-sided McNemar, "
                 "Holm-adjusted across the tasks compared")
    return "\n".join(lines)


def html_table(c: Comparison) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>" for r in rows(c))
    notes = "".join(f"<li>{esc(n)}: {esc(w)}</li>" for n, w in c.not_compared.items())
    return (f"<!doctype html><meta charset='utf-8'><title>nanoeval compare</title>"
            f"<p>A: {esc(c.a)}<br>B: {esc(c.b)}</p><table border='1'><tr>{head}</tr>{body}</table>"
            + (f"<p>not compared:</p><ul>{notes}</ul>" if notes else ""))
