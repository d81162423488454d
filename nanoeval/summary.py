"""summary.json and suite_summary.json as typed records: what each field holds, in the order it is written.

The runner builds a TaskSummary from a task's journals and run.json; `nanoeval rescore` builds a RescoreSummary
from saved generations; the suite file holds one SuiteEntry per task. Readers of files written by other runs
(gates' baselines, `nanoeval table`, merge) read the JSON as plain dicts: a file is data, not our type.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

SCHEMA_VERSION = 4  # 2: flags, warnings, gates in suites, timing split into session / task / case seconds;
#                    3: n and ci95 per metric, counts.fallback_rows for every generative benchmark;
#                    4: subject_metric


@dataclass
class Scores:
    """The metric part, from the benchmark's `summarize` (nanoeval/benchmark.py: Metrics) and the records."""
    task: str                       # the benchmark (`task:` in YAML)
    name: str                       # the task's name (in a suite, its entry's name)
    headline: str
    metrics: dict[str, float | None]
    stderr: dict[str, float | None]
    n: dict[str, int]               # examples behind each metric (an MMLU category: its own)
    ci95: dict[str, list[float] | None]  # Wilson 95 % interval of each metric over its n (never a point, even at
    #                                 0 % or 100 %, where the stderr is 0)
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
        return cls(**{f.name: getattr(s, f.name) for f in dataclasses.fields(cls)})


@dataclass
class SuiteSummary:
    """suite_summary.json: every task's metrics, model, fingerprint and artifact paths in one place."""
    suite: str
    tasks: dict[str, SuiteEntry]

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "suite": self.suite,
                "tasks": {name: _fields(e) for name, e in self.tasks.items()}}


def _fields(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
