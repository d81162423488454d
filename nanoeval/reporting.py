"""Artifacts, written once by the controller from the records, each atomically (temporary file + rename).

predictions.jsonl (one row per example, no timing: two runs of one config give the same bytes), summary.json,
metrics.csv, accuracy.png; for suites, suite_summary.json.
"""
from __future__ import annotations

import csv
import io
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from nanoeval import __version__
from nanoeval.benchmark import Metrics
from nanoeval.journal import inside, write_atomic
from nanoeval.scoring import NOT_PROPORTIONS, clean, interval
from nanoeval.summary import Aggregate, RescoreSummary, Scores, SuiteEntry, SuiteSummary, TaskSummary, aggregate


def versions(root: Path) -> dict:
    out = {"nanoeval": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "datasets"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        res = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        out["git_commit"] = res.stdout.strip() if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def dumps(obj) -> str:
    return json.dumps(clean(obj), indent=2, sort_keys=False) + "\n"


def assemble(m: Metrics, records: list[dict], *, task: str, name: str, skipped_rows: list[dict] = (),
             extra_counts: dict | None = None, flags: list[str] = (), warnings: list[str] = ()) -> Scores:
    """The metric part of summary.json: the benchmark's metrics (from `summarize`), each with its n and Wilson
    interval (Wilson's for accuracies), and counts of the records."""
    n = {k: m.n.get(k, len(records)) for k in m.metrics}
    return Scores(task=task, name=name, headline=m.headline, metrics=m.metrics, stderr=m.stderr, n=n,
                  ci95={k: interval(k, v, m.stderr.get(k), n[k]) for k, v in m.metrics.items()},
                  per_subject=m.per_subject, subject_metric=m.subject_metric, chance=m.chance, plot_by=m.plot_by,
                  counts={"examples": len(records), "skipped_rows": len(skipped_rows), **m.counts,
                          **(extra_counts or {})},
                  flags=list(flags), warnings=list(warnings), skipped_rows=list(skipped_rows))


def write_task(report_dir: Path, records: list[dict], summary: TaskSummary | RescoreSummary,
               recorded_dir: Path | None = None) -> dict:
    """Write the four artifacts of one task; return their paths (under `recorded_dir` if they will be moved)."""
    paths = {name: str((recorded_dir or report_dir) / name) for name in
             ("predictions.jsonl", "summary.json", "metrics.csv", "accuracy.png")}
    summary.artifacts = paths
    preds = "".join(json.dumps(clean(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records)
    write_atomic(inside(report_dir, "predictions.jsonl"), preds)
    write_atomic(inside(report_dir, "metrics.csv"), metrics_csv(summary))
    write_atomic(inside(report_dir, "accuracy.png"), plot_png(summary))
    write_summary(report_dir, summary)  # last: its presence means the set is complete
    return paths


def write_summary(report_dir: Path, summary: TaskSummary | RescoreSummary) -> None:
    write_atomic(inside(report_dir, "summary.json"), dumps(summary.to_dict()))


def _value(s: Scores) -> str:
    """The headline ± its stderr; where that is 0 or undefined (0 % or 100 %, one example), its 95 % interval."""
    v, se, ci = s.metrics.get(s.headline), s.stderr.get(s.headline), s.ci95.get(s.headline)
    if v is None or v != v:
        return "-"
    if se is not None and se == se and se > 0:
        return f"{v:.4f} ± {se:.4f}"
    return f"{v:.4f} (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else f"{v:.4f}"


def notes(s: TaskSummary) -> list[str]:
    """A task's notes for tables: its flags, then how many of its examples came from earlier journals."""
    resumed = s.timing.get("examples_resumed")
    return [*s.flags, *([f"resumed {resumed} of {s.counts['examples']} examples from journals"] if resumed else [])]


def suite_table(summaries: dict[str, TaskSummary], gate_results: list, agg: Aggregate | None = None) -> list[str]:
    """The compact end-of-run table: task, headline ± stderr, examples, examples/s, cases, gates; a suite's
    aggregate (`agg`) as its closing line."""
    rows = [("task", "metric", "value", "examples", "ex/s", "cases", "gates", "notes")]
    for name, s in summaries.items():
        gate = _gates(name, gate_results)
        eps = s.timing["examples_per_second"]
        cases = "complete" if s.cases["complete"] else f"{len(s.cases['missing'])} missing"
        rows.append((name, s.headline, _value(s), str(s.counts["examples"]),
                     "-" if eps is None else f"{eps:.1f}", cases, gate, ", ".join(notes(s)) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i in (0, 1, 5, 6, 7) else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows] + \
        ([agg.line()] if agg is not None else [])


def _gates(task: str, gate_results: list) -> str:
    gates = [r for r in gate_results if r.task == task]
    return "-" if not gates else "pass" if all(r.passed for r in gates) else \
        f"FAIL ({sum(not r.passed for r in gates)})"


def html_summary(summaries: dict[str, TaskSummary], gate_results: list, failures: list[str],
                 page: Path | None = None, agg: Aggregate | None = None, curves: Path | None = None) -> list[str]:
    """HTML for pytest-html's summary: the suite table (a suite's aggregate, `agg`, as its last row), gate results,
    a sweep's learning curves (`curves`, first) and each task's plot (embedded PNG), links to predictions (relative
    to the report's folder `page`, so a report uploaded with its artifacts keeps working)."""
    import base64
    import html
    import os

    # pytest-html's page sets body text to #999: the NanoEval part sets its own dark text
    out = ["<h2>NanoEval</h2>", "<style>table.nanoeval td, table.nanoeval th {padding: 3px 12px; color: #222; "
           "border-bottom: 1px solid #ddd; text-align: left} h3.nanoeval {color: #222}</style>", "<table class='nanoeval'><tr><th>task</th><th>metric</th><th>value</th>"
           "<th>examples</th><th>ex/s</th><th>cases</th><th>gates</th><th>notes</th><th>predictions</th></tr>"]
    for name, s in summaries.items():
        eps = s.timing["examples_per_second"]
        cases = "complete" if s.cases["complete"] else f"{len(s.cases['missing'])} missing"
        preds = Path(s.artifacts["predictions.jsonl"])
        link = os.path.relpath(preds, page.parent) if page is not None else preds.as_uri()
        noted = ", ".join(f"<span style='color:#b00'>{html.escape(n)}</span>" if n in s.flags else html.escape(n)
                          for n in notes(s))  # flags in red; "resumed ..." plain
        out.append(f"<tr><td>{html.escape(name)}</td><td>{s.headline}</td><td>{_value(s)}</td>"
                   f"<td>{s.counts['examples']}</td><td>{eps if eps is not None else '-'}</td><td>{cases}</td>"
                   f"<td>{_gates(name, gate_results)}</td>"
                   f"<td>{noted}</td>"
                   f"<td><a href='{html.escape(link)}'>predictions.jsonl</a></td></tr>")
    if agg is not None:  # the terminal's closing line, as the table's last row
        out.append(f"<tr class='nanoeval-aggregate'><td colspan='9'><b>{html.escape(agg.line())}</b></td></tr>")
    out.append("</table>")
    for name, s in summaries.items():
        for w in s.warnings:
            out.append(f"<p style='color:#b00'>warning: {html.escape(name)}: {html.escape(w)}</p>")
    if gate_results:
        out.append("<h3>Gates</h3><ul>")
        for r in gate_results:
            color = "green" if r.passed else "red"
            out.append(f"<li style='color:{color}'>{html.escape(r.line())}</li>")
        out.append("</ul>")
    for f in failures:
        out.append(f"<p style='color:red'>{html.escape(f)}</p>")
    if curves is not None and curves.exists():
        data = base64.b64encode(curves.read_bytes()).decode()
        out.append(f"<h3 class='nanoeval'>learning curves</h3><img style='max-width:1200px' "
                   f"src='data:image/png;base64,{data}'/>")
    for name, s in summaries.items():
        png = Path(s.artifacts["accuracy.png"])
        if png.exists():
            data = base64.b64encode(png.read_bytes()).decode()
            out.append(f"<h3 class='nanoeval'>{html.escape(name)}</h3><img style='max-width:900px' src='data:image/png;base64,{data}'/>")
    return out


def metrics_csv(summary: Scores) -> str:
    """One row per subject (or shard), then the aggregate rows; each row with its own n, its stderr and the
    Wilson 95 % interval of its value over that n."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "metric", "n", "value", "stderr", "ci95_lo", "ci95_hi"])

    def row(name: str, metric: str, n: int, value, se) -> None:
        lo, hi = interval(metric, value, se, n) or (None, None)
        w.writerow([name, metric, n, _fmt(value), _fmt(se), _fmt(lo), _fmt(hi)])

    for subject, v in summary.per_subject.items():
        for metric in [k for k in v if k not in ("n",) and not k.endswith("stderr")]:
            se = v.get("stderr") if metric == "acc" else v.get(f"{metric}_stderr")  # each metric its own
            row(subject, metric, v["n"], v[metric], se)
    for metric, value in summary.metrics.items():
        if value is None or value != value:  # e.g. an MMLU category with no subject in this run: left out
            continue
        row("all", metric, summary.n.get(metric, summary.counts["examples"]), value, summary.stderr.get(metric))
    return buf.getvalue()


def _fmt(x) -> str:
    return "" if x is None or x != x else f"{x:.6f}"


def plot_png(summary: Scores) -> bytes:
    """Bars per subject (or per metric when there are no subjects), the headline as a line, stderr as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = summary.per_subject
    headline, name = summary.metrics.get(summary.headline), summary.headline
    if per and summary.plot_by != "metrics":  # one subject too: its bar is named by the subject, not a metric
        metric = summary.subject_metric  # the headline's own per-subject value
        items = sorted(per.items(), key=lambda kv: kv[1][metric])
        labels = [f"{k} (n={v['n']})" for k, v in items]
        values = [v[metric] for _, v in items]
        errors = [v.get("stderr" if metric == "acc" else f"{metric}_stderr") or 0 for _, v in items]
    else:  # accuracies only: bits per byte is not one (lower is better, not bounded by 1)
        labels = [k for k in summary.metrics if k not in NOT_PROPORTIONS]
        values = [summary.metrics[k] or 0 for k in labels]
        errors = [summary.stderr.get(k) or 0 for k in labels]
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.22 * len(labels)))
    ax.barh(range(len(labels)), values, xerr=[e if e == e else 0 for e in errors], color="#4C72B0",
            error_kw={"ecolor": "#999999", "lw": 0.8})
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    if headline is not None:
        ax.axvline(headline, color="#C44E52", ls="--", lw=1.5, label=f"{name} = {headline:.3f}")
    if summary.chance:
        ax.axvline(summary.chance, color="#777777", ls=":", lw=1, label=f"chance = {summary.chance:.2f}")
    ax.legend(loc="lower right", fontsize=8)
    model = getattr(summary, "model", {}).get("id", "")
    ax.set_title(f"{summary.name}: {model} ({summary.counts['examples']} examples)", fontsize=10)
    ax.set_xlabel("accuracy")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_suite(path: Path, suite_name: str, tasks: dict[str, TaskSummary],
                names: list[str] | None = None) -> Aggregate:
    """Every task's metrics, model metadata, fingerprint and artifact paths in one place, and the suite's
    aggregate over `names` (the suite's tasks, in order: one without a summary is left out and named); return
    the aggregate."""
    agg = aggregate({name: tasks.get(name) for name in (names if names is not None else tasks)})
    suite = SuiteSummary(suite_name, {name: SuiteEntry.of(s) for name, s in tasks.items()}, agg)
    write_atomic(path, dumps(suite.to_dict()))
    return agg
