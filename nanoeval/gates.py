"""Regression gates: a task's `gates:` block, checked against its summary (and a baseline run) at session end.

    gates:
      min: 0.30                    # headline metric at least this
      min_per_subject: 0.10        # every subject at least this (fails that subject's case too)
      baseline: runs/v1/summary.json   # or a suite_summary.json (the task of the same name)
      max_drop: 0.02               # headline may drop at most this much below the baseline (absolute)
      max_drop_stderr: 2.0         # ... or at most k combined standard errors
      paired_alpha: 0.05           # ... or: fail if a one-sided exact McNemar test on per-example correctness
                                   #     against the baseline's predictions says it got worse at this level

A baseline is a report dir kept from an earlier run. Its predictions are the `predictions.jsonl` beside the
baseline's summary.json, never the path recorded inside it (that names the dir the baseline was written in, often
the one this run has just overwritten). A suite_summary.json stands for its task of the same name where a suite
writes it: `<suite file's dir>/<task>/summary.json`, predictions beside it.

Gates compare like with like. The baseline must be the same benchmark with the same headline and recipe (the code
hash and the shard count aside: a gate often checks a code change, and shards only split the rows) on the same data
(hub id, config, split, revision, each local file's sha256), and its predictions must exist, not be this run's own
file and hold each id once (a duplicate is named with file:line); otherwise every gate that needs the baseline fails
with one line saying why. The examples compared are the ids both predictions files hold: the same set compares the
two summaries' numbers; a partial overlap recomputes both headlines and standard errors on the common examples
(the benchmark's `summarize`); none fails. The detail says how many examples were compared. `max_drop_stderr`
combines the two runs' standard errors (of the common examples on a partial overlap) as independent:
sqrt(se_new^2 + se_base^2).

A gate on an incomplete run (missing cases) fails and says why; so does a baseline metric missing or null.
Thresholds are checked when the config loads. Low accuracy without a gate never fails anything.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.paired import discordant, mcnemar_p

# recipe keys a baseline may differ in: the code hash (a gate is often the check of a code change) and the shard
# count (it only splits the rows into cases)
RECIPE_NOT_COMPARED = ("code_hash", "shards")


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


@dataclass
class Baseline:
    """A baseline run's summary of one task, the file it was read from, and the predictions file beside it."""
    summary: dict
    source: Path
    predictions: Path


@dataclass
class Comparison:
    """The numbers a baseline gate compares, on the examples both runs scored."""
    value: float | None                 # this run's headline (on the common examples)
    stderr: float | None
    base_value: float
    base_stderr: float | None
    base_correct: dict[str, bool]       # id -> correctness (the headline's record key), common examples only
    new_correct: dict[str, bool]
    detail: str                         # how many examples were compared


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {path}: cannot read ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path}: expected a summary.json or suite_summary.json object")
    return data


def load_baseline(path: Path, task_name: str) -> Baseline:
    """The baseline's summary for this task (from a summary.json, or from a suite_summary.json: the task's
    summary.json in `<suite dir>/<task>/`) and its predictions file (beside that summary.json). Raises ValueError
    with a message naming the file."""
    data = _read_json(path, "baseline")
    if "tasks" not in data:
        return Baseline(data, path, path.parent / "predictions.jsonl")
    if task_name not in data["tasks"]:
        raise ValueError(f"baseline {path}: the suite has no task {task_name!r} (has: {', '.join(data['tasks'])})")
    fingerprint = data["tasks"][task_name].get("fingerprint")
    task_file = path.parent / task_name / "summary.json"
    if Path(task_name).name != task_name or not task_file.is_file():
        raise ValueError(f"baseline {path}: task {task_name!r}: {task_file} not found (a suite's tasks are read "
                         "where a suite writes them, <suite dir>/<task>/summary.json; copy the whole suite dir, or "
                         "point gates.baseline at the task's own summary.json)")
    task = _read_json(task_file, "baseline")
    if task.get("fingerprint") != fingerprint:
        raise ValueError(f"baseline {path}: task {task_name!r}: {task_file} is another run (fingerprint "
                         f"{task.get('fingerprint')}, the suite file says {fingerprint})")
    return Baseline(task, task_file, task_file.parent / "predictions.jsonl")


def read_predictions(path: Path, key: str) -> dict[str, dict]:
    """id -> row of a predictions.jsonl. A row without 'id' or `key`, or an id seen twice, is an error naming
    file:line (a merge of two runs' rows must not be compared as one run)."""
    rows: dict[str, dict] = {}
    where: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON row ({e})") from None
        if not isinstance(row, dict) or "id" not in row or key not in row:
            raise ValueError(f"{path}:{n}: expected a prediction row with 'id' and {key!r}")
        i = str(row["id"])
        if i in where:
            raise ValueError(f"{path}:{n}: duplicate example id {i!r} (first at line {where[i]}): each example "
                             "must appear once")
        rows[i], where[i] = row, n
    return rows


def _data_identity(dataset: dict) -> dict:
    """What identifies a run's data (summary.json's `dataset`): hub id, config, split, revision and each local
    file's sha256 per split (not its path: a copied data folder is the same data)."""
    out = {k: dataset.get(k) for k in ("id", "config", "split", "revision")}
    for split, files in sorted((dataset.get("files") or {}).items()):
        out[f"files[{split}]"] = ", ".join(str(f.get("sha256"))[:12] for f in files)
    return out


def _differences(here: dict, there: dict) -> str:
    keys = list(here) + [k for k in there if k not in here]
    return "; ".join(f"{k}: {here.get(k)!r} here, {there.get(k)!r} in the baseline"
                     for k in keys if here.get(k) != there.get(k))


def unlike(here: dict, base: dict) -> str | None:
    """Why `base` (a summary.json) is not the same measurement as `here` (one, or the same keys of a summary):
    another benchmark, headline, recipe (code hash and shards aside) or data. None if it is."""
    if base.get("task") != here.get("task") or base.get("headline") != here.get("headline"):
        return f"another benchmark or headline ({here.get('task')} {here.get('headline')} here, {base.get('task')} " \
               f"{base.get('headline')} in the baseline)"
    if not all(isinstance(d.get(k), dict) for d in (here, base) for k in ("recipe", "dataset")):
        return "no recipe or dataset recorded (not a task run's summary.json)"
    here = json.loads(json.dumps({"recipe": here["recipe"], "dataset": here["dataset"]}))  # as the file has them
    recipe = _differences(*({k: v for k, v in r.items() if k not in RECIPE_NOT_COMPARED}
                            for r in (here["recipe"], base["recipe"])))
    if recipe:
        return f"another recipe ({recipe})"
    data = _differences(_data_identity(here["dataset"]), _data_identity(base["dataset"]))
    return f"scored on other data ({data})" if data else None


def compare(summary, baseline_path: Path) -> Comparison:
    """This run and its baseline on the examples both scored, or ValueError saying in one line why they cannot be
    compared."""
    head = summary.headline
    base = load_baseline(baseline_path, summary.name)
    b_metrics = base.summary.get("metrics") or {}
    b_value = b_metrics.get(head)
    if not isinstance(b_value, (int, float)) or b_value != b_value:
        raise ValueError(f"baseline {base.source}: metric {head!r} is missing or null (has: "
                         f"{', '.join(k for k, v in b_metrics.items() if v is not None)})")
    why = unlike({"task": summary.task, "headline": summary.headline, "recipe": summary.recipe,
                  "dataset": summary.dataset}, base.summary)
    if why:
        raise ValueError(f"baseline {base.source}: {why}: nothing to compare")
    own = Path(summary.artifacts["predictions.jsonl"])
    if not base.predictions.is_file():
        raise ValueError(f"baseline predictions {base.predictions} not found (a baseline is a summary.json with "
                         "its run's predictions.jsonl beside it)")
    if own.exists() and os.path.samefile(base.predictions, own):
        raise ValueError(f"baseline predictions {base.predictions} are this run's own file: nothing to compare "
                         "(keep a copy of the baseline's report dir elsewhere)")
    key = summary.correct_key
    try:
        base_rows, new_rows = read_predictions(base.predictions, key), read_predictions(own, key)
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read predictions ({e.__class__.__name__}: {e})") from None
    common = [i for i in new_rows if i in base_rows]
    if not common:
        raise ValueError(f"no example ids in common with the baseline ({len(new_rows)} here, {len(base_rows)} in "
                         f"{base.predictions}): nothing to compare")
    base_correct = {i: bool(base_rows[i][key]) for i in common}
    new_correct = {i: bool(new_rows[i][key]) for i in common}
    if len(common) == len(new_rows) == len(base_rows):
        return Comparison(summary.metrics.get(head), summary.stderr.get(head), b_value,
                          (base.summary.get("stderr") or {}).get(head), base_correct, new_correct,
                          f"{len(common)} examples compared")
    # the same measurement on the examples both runs scored: the benchmark's own metrics of each subset
    summarize = BENCHMARKS[summary.task].summarize
    mine, theirs = (summarize([rows[i] for i in common], None) for rows in (new_rows, base_rows))
    return Comparison(mine.metrics.get(head), mine.stderr.get(head), theirs.metrics[head], theirs.stderr.get(head),
                      base_correct, new_correct, f"compared on {len(common)} common examples of {len(new_rows)} "
                      f"here / {len(base_rows)} in the baseline")


def mcnemar_worse_p(base: dict[str, bool], new: dict[str, bool]) -> tuple[float, int, int]:
    """One-sided exact McNemar p-value that the new run is worse (paired.py, as `nanoeval compare` computes it),
    with the counts right -> wrong and wrong -> right on the common ids."""
    common = [i for i in base if i in new]
    b, c = discordant([base[i] for i in common], [new[i] for i in common])
    return mcnemar_p(b, c, "worse"), b, c


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
        metric = summary.subject_metric  # the headline's own per-subject value (acc_norm for HellaSwag)
        low = {s: v[metric] for s, v in summary.per_subject.items() if v[metric] < gates.min_per_subject}
        detail = f" -- below: {', '.join(f'{s} {a:.3f}' for s, a in sorted(low.items()))}" if low else ""
        worst = min((v[metric] for v in summary.per_subject.values()), default=None)
        add("min_per_subject", f"worst subject {metric}", worst, f">= {gates.min_per_subject}", not low, detail)
    if baseline_path is None:
        return out
    wanted = [g for g in ("max_drop", "max_drop_stderr", "paired_alpha") if getattr(gates, g) is not None]
    names = {"paired_alpha": "paired"}
    try:
        cmp = compare(summary, baseline_path)
    except ValueError as e:  # a baseline that cannot be compared fails each gate that needs it, with the reason
        for g in wanted:
            add(names.get(g, g), head, value, "a comparable baseline", False, f" -- {e}")
        return out
    value, b_value, counted = cmp.value, cmp.base_value, f", {cmp.detail}"
    drop = b_value - value if value is not None else None
    shown = f" -- drop {drop:+.4f}{counted}" if drop is not None else f" --{counted[1:]}"
    if gates.max_drop is not None:
        add("max_drop", head, value, f">= baseline {b_value:.4f} - {gates.max_drop}",
            drop is not None and drop <= gates.max_drop + 1e-12, shown)
    if gates.max_drop_stderr is not None:
        se = math.hypot(cmp.stderr or 0.0, cmp.base_stderr or 0.0)
        add("max_drop_stderr", head, value, f">= baseline {b_value:.4f} - {gates.max_drop_stderr} x {se:.4f}",
            drop is not None and drop <= gates.max_drop_stderr * se + 1e-12, shown)
    if gates.paired_alpha is not None:
        p, b, c = mcnemar_worse_p(cmp.base_correct, cmp.new_correct)
        add("paired", head, value, f"McNemar p >= {gates.paired_alpha} vs baseline {b_value:.4f}",
            p >= gates.paired_alpha, f" -- p = {p:.4g} ({b} now wrong, {c} now right{counted})")
    return out
