"""Learning curves of a checkpoint sweep (config.expand_checkpoints): every checkpoint's metrics in one long table,
`curves.csv`, and `curves.png`, each task's headline against the training step with its 95 % interval as a band.

curves.csv has one row per (step, task, metric): step, tokens (empty: not known from a folder), task (the sweep's
task name), metric, headline (1 for the task's headline metric, which curves.png draws), value, stderr, n, ci95_low,
ci95_high, checkpoint (the model folder or revision). With several
tasks, `suite` rows carry the macro average and centered accuracy of the tasks at each step (summary.aggregate).
`nanoeval curves DIR... [--label NAME ...] [--out FILE]` redraws curves.png from saved runs, several runs on one
plot, each labelled.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from nanoeval.journal import inside, write_atomic
from nanoeval.summary import aggregate

COLUMNS = ["step", "tokens", "task", "metric", "headline", "value", "stderr", "n", "ci95_low", "ci95_high",
           "checkpoint"]


def rows(summaries: dict[str, dict], steps: dict[str, tuple[str, int]]) -> list[dict]:
    """The long table of a sweep. `summaries`: name -> its summary.json (as a dict); `steps`: a checkpoint task's
    name -> (its sweep task, its step)."""
    out, by_step = [], {}
    for name, (task, step) in sorted(steps.items(), key=lambda kv: (kv[1][1], kv[1][0])):
        s = summaries.get(name)
        if s is None:
            continue
        by_step.setdefault(step, {})[task] = s
        model = s.get("model") or {}
        for metric, value in s["metrics"].items():
            ci = (s.get("ci95") or {}).get(metric) or [None, None]
            out.append({"step": step, "tokens": None, "task": task, "metric": metric,
                        "headline": int(metric == s.get("headline")), "value": value,
                        "stderr": (s.get("stderr") or {}).get(metric),
                        "n": (s.get("n") or {}).get(metric, (s.get("counts") or {}).get("examples")),
                        "ci95_low": ci[0], "ci95_high": ci[1], "checkpoint": model.get("revision") or model.get("id")})
    if len({t for t, _ in steps.values()}) > 1:
        for step, tasks in sorted(by_step.items()):
            agg = aggregate(tasks)
            for metric, value in (("macro_average", agg.macro_average), ("centered_mean", agg.centered_mean)):
                if value is not None:
                    out.append({"step": step, "tokens": None, "task": "suite", "metric": metric,
                                "headline": int(metric == "macro_average"), "value": value,
                                "stderr": None, "n": len(agg.tasks), "ci95_low": None, "ci95_high": None,
                                "checkpoint": None})
    return out


def write(folder: Path, summaries: dict[str, dict], steps: dict[str, tuple[str, int]]) -> list[Path]:
    """curves.csv and curves.png of a sweep into `folder` (the suite's dir, the swept task's own, or an
    evaluate() report dir)."""
    table = rows(summaries, steps)
    heads = {task: summaries[name]["headline"] for name, (task, _) in steps.items() if name in summaries}
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in table)
    write_atomic(folder / "curves.csv", buf.getvalue())
    write_atomic(folder / "curves.png", plot({"": table}, heads))
    return [folder / "curves.csv", folder / "curves.png"]


def from_steps(folder: Path) -> tuple[dict[str, dict], dict[str, tuple[str, int]]]:
    """The summaries of an evaluate() report dir's `step-<N>/` folders (each a suite: suite_summary.json and a
    folder per task), as write() takes them."""
    summaries, steps = {}, {}
    for d in folder.iterdir():
        step = d.name.removeprefix("step-")
        if not (d.name.startswith("step-") and step.isdigit() and (d / "suite_summary.json").is_file()):
            continue
        for task in json.loads((d / "suite_summary.json").read_text(encoding="utf-8"))["tasks"]:
            f = inside(d, task, "summary.json")
            if f.is_file():
                summaries[f"{task}@{d.name}"] = json.loads(f.read_text(encoding="utf-8"))
                steps[f"{task}@{d.name}"] = (task, int(step))
    return summaries, steps


def read(path: Path) -> list[dict]:
    """A curves.csv (or a folder holding one, or an evaluate() report dir of step-<N>/ folders) as rows."""
    if path.is_dir() and not (path / "curves.csv").is_file():
        table = rows(*from_steps(path))
        if not table:
            raise ValueError(f"{path}: neither a curves.csv nor step-<N>/suite_summary.json folders")
        return table
    path = path / "curves.csv" if path.is_dir() else path
    with open(path, newline="", encoding="utf-8") as f:
        out = []
        for r in csv.DictReader(f):
            for k in ("value", "stderr", "ci95_low", "ci95_high"):
                r[k] = float(r[k]) if r[k] not in ("", None) else None
            r["step"], r["headline"] = int(r["step"]), int(r.get("headline") or 0)
            out.append(r)
    return out


def plot(runs: dict[str, list[dict]], headlines: dict[str, str] | None = None) -> bytes:
    """One panel per task: its headline against the step, one line per run (labelled), the 95 % interval as a band.
    `headlines`: task -> its headline metric (default: the first metric of the task's rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tasks = list(dict.fromkeys(r["task"] for table in runs.values() for r in table if r["task"] != "suite"))
    heads = {t: (headlines or {}).get(t) or next((r["metric"] for table in runs.values() for r in table
                                                   if r["task"] == t and r.get("headline")), None)
             or next(r["metric"] for table in runs.values() for r in table if r["task"] == t) for t in tasks}
    cols = min(3, len(tasks)) or 1
    rows_ = (len(tasks) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 3.0 * rows_), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for label, table in runs.items():
            pts = sorted((r for r in table if r["task"] == task and r["metric"] == heads[task]),
                         key=lambda r: r["step"])
            if not pts:
                continue
            x = [r["step"] for r in pts]
            line, = ax.plot(x, [r["value"] for r in pts], marker="o", ms=3, label=label or None)
            if all(r["ci95_low"] is not None for r in pts):
                ax.fill_between(x, [r["ci95_low"] for r in pts], [r["ci95_high"] for r in pts],
                                color=line.get_color(), alpha=0.2, lw=0)
        ax.set_title(f"{task}: {heads[task]}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if any(runs) and len(runs) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
