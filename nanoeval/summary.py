"""summary.json and suite_summary.json as typed records: what each field holds, in the order it is written.

The runner builds a TaskSummary from a task's journals and run.json; `nanoeval rescore` builds a RescoreSummary
from saved generations; the suite file holds one SuiteEntry per task. Readers of files written by other runs
(gates' baselines, `nanoeval table`, merge) read the JSON as plain dicts: a file is data, not our type.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

SCHEMA_VERSION = 5  # 2: flags, warnings, gates in suites, timing split into session / task / case seconds;
#                    3: n and ci95 per metric, counts.fallback_rows for every generative benchmark;
#                    4: subject_metric;
#                    5: suite_summary.json's `aggregate` (macro average, centered accuracy, the tasks it covers and
#                       those left out) and each suite entry's `chance` and `centered`


@dataclass
class Scores:
    """The metric part, from the benchmark's `summarize` (nanoeval/benchmark.py: Metrics) and the records."""
    task: str                       # the benchmark (`task:` in YAML)
    name: str                       # the task's name (in a suite, its entry's name)
    headline: str
    metrics: dict[str, float | None]
    stderr: dict[str, float | None]
    n: dict[str, int]               # examples behind each metric (an MMLU category: its own)
    ci95: dict[str, list[float] | None]  # 95 % interval of each metric over its n: Wilson's for an accuracy (never
    #                                 a point, even at 0 % or 100 %, where the stderr is 0), mean +- 1.96 se for bpb
    per_subject: dict[str, dict]
    subject_metric: str             # the per-subject value that matches the headline (min_per_subject, the plot)
    chance: float | None
    plot_by: str                    # accuracy.png: "subject" or "metrics"
    counts: dict[str, int]          # examples, skipped_rows, the benchmark's own counts, the engine's counters
    flags: list[str]                # short warnings for tables ("max_new_tokens 40%", "truncated 5%", "FALLBACK 90%")
    warnings: list[str]             # the same, as sentences
    skipped_rows: list[dict]        # bad rows left out: {"row": "file:line" or id, "error": ...}


@dataclass
class TaskSummary(Scores):
    """summary.json of a task run (or of a merge of shard runs)."""
    suite: str | None
    cases: dict                     # done, missing, not_completed, complete, per_case
    recipe: dict                    # the benchmark's recipe and the code hash
    model: dict                     # the engine's metadata and the model's identity (file digests or hub commit)
    dataset: dict
    seed: int
    versions: dict
    environment: dict
    fingerprint: str
    fingerprint_parts: dict
    timing: dict
    report_dir: str
    artifacts: dict[str, str] = field(default_factory=dict)   # file name -> path
    gates: list[dict] | None = None                           # written only when the task has gates
    correct_key: str = "correct"    # not written: the record key of the headline's correctness (paired gates)

    def to_dict(self) -> dict:
        d = {"schema_version": SCHEMA_VERSION, **_fields(self)}
        del d["correct_key"]
        if d["gates"] is None:
            del d["gates"]
        return d


@dataclass
class RescoreSummary(Scores):
    """summary.json of `nanoeval rescore --out`: saved generations scored again, no model."""
    source: str                     # the file re-scored
    recipe: dict
    model: dict
    cases: dict
    artifacts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, **_fields(self)}


@dataclass
class SuiteEntry:
    task: str
    headline: str
    metrics: dict
    stderr: dict
    ci95: dict
    chance: float | None            # the task's chance level (summary.json's `chance`)
    centered: float | None          # (headline - chance) / (1 - chance): `centered`
    counts: dict
    flags: list[str]
    warnings: list[str]
    gates: list[dict] | None
    cases: dict
    model: dict
    fingerprint: str
    timing: dict
    artifacts: dict[str, str]

    @classmethod
    def of(cls, s: TaskSummary) -> "SuiteEntry":
        return cls(**{f.name: getattr(s, f.name) for f in dataclasses.fields(cls) if f.name != "centered"},
                   centered=centered(s.metrics.get(s.headline), s.chance))


@dataclass
class SuiteSummary:
    """suite_summary.json: every task's metrics, model, fingerprint and artifact paths in one place, and the
    suite's aggregate."""
    suite: str
    tasks: dict[str, SuiteEntry]
    aggregate: Aggregate

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "suite": self.suite,
                "tasks": {name: _fields(e) for name, e in self.tasks.items()},
                "aggregate": dataclasses.asdict(self.aggregate)}


def centered(value: float | None, chance: float | None) -> float | None:
    """DCLM CORE's centered accuracy, (value - chance) / (1 - chance): 0 at chance, 1 at a perfect score, below 0
    under chance. None without a value or without a chance level below 1."""
    if value is None or value != value or chance is None or chance != chance or not 0 <= chance < 1:
        return None
    return (value - chance) / (1 - chance)


@dataclass
class Aggregate:
    """A suite's aggregate, as DCLM's CORE and OLMES report a suite: over the tasks that have a headline value and
    a chance level, the mean of their headline values and the mean of their centered accuracies. It says which
    tasks it covers and why each other one is left out, so two aggregates over different task sets never look
    alike; a task with cases missing is averaged on what it has and makes the aggregate `partial`."""
    tasks: list[str]                 # the tasks it averages, in order
    of: int                          # the tasks it was asked about: these and those left out
    macro_average: float | None      # the mean of the tasks' headline values (None: no task to average)
    centered_mean: float | None      # the mean of their centered accuracies
    values: dict[str, float]         # task -> its headline value
    centered: dict[str, float]       # task -> (value - chance) / (1 - chance)
    left_out: dict[str, str]         # task -> why it is not averaged
    partial: bool                    # a task averaged here has cases missing (its value stands on fewer examples)
    incomplete: dict[str, str]       # task -> "1 of 3 cases missing"

    def line(self, label: str = "suite") -> str:
        """One line for the terminal and the HTML report: `suite (2 of 3 tasks): macro avg 0.4123, centered
        0.1876; left out: arc (no chance level)`."""
        head = f"{label} ({len(self.tasks)} of {self.of} task{'s' if self.of != 1 else ''}" + \
            (f", PARTIAL: {', '.join(f'{t} {why}' for t, why in self.incomplete.items())})" if self.partial else ")")
        body = "no task to average" if self.macro_average is None else \
            f"macro avg {self.macro_average:.4f}, centered {self.centered_mean:.4f}"
        out = ", ".join(f"{t} ({why})" for t, why in self.left_out.items())
        return f"{head}: {body}" + (f"; left out: {out}" if out else "")


def aggregate(entries: Mapping[str, object], left_out: Mapping[str, str] | None = None) -> Aggregate:
    """The suite's aggregate over `entries` (task name -> its summary: a TaskSummary, a SuiteEntry, or a
    summary.json / suite entry read as a dict; None where the task has no results). `left_out`: tasks the caller
    already leaves out, with why (e.g. not in every run `nanoeval table` compares). The one computation behind
    suite_summary.json, the terminal, the HTML report and `nanoeval table`."""
    def get(e, key):
        return e.get(key) if isinstance(e, Mapping) else getattr(e, key, None)

    out = dict(left_out or {})
    values, cent, incomplete = {}, {}, {}
    for name, e in entries.items():
        if e is None:
            out[name] = "no results: no case finished"
            continue
        headline, chance = get(e, "headline"), get(e, "chance")
        value = (get(e, "metrics") or {}).get(headline)
        if value is None or value != value:
            out[name] = f"no {headline or 'headline'} value"
        elif centered(value, chance) is None:
            out[name] = "no chance level" if chance is None else f"chance level {chance} (not below 1)"
        else:
            values[name], cent[name] = value, centered(value, chance)
            cases = get(e, "cases") or {}
            if cases.get("complete") is False:
                missing = len(cases.get("missing") or [])
                incomplete[name] = f"{missing} of {missing + len(cases.get('done') or [])} cases missing"
    return Aggregate(tasks=list(values), of=len(values) + len(out),
                     macro_average=sum(values.values()) / len(values) if values else None,
                     centered_mean=sum(cent.values()) / len(cent) if cent else None,
                     values=values, centered=cent, left_out=out, partial=bool(incomplete), incomplete=incomplete)


def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
