"""The benchmark contract: everything one benchmark file states, and the record every benchmark writes.

A benchmark is one file under nanoeval/benchmarks/ that ends with `BENCHMARK = Benchmark(...)` and one line in the
registry (nanoeval/benchmarks/__init__.py). The machinery (config loading, the runner, journals, artifacts, gates,
the pytest plugin, the CLI) knows benchmarks only through these fields; none of it names one.

Flow of one case:  cases(cfg, root) -> case ids  ->  load(cfg, case_id, root) -> CaseData(examples, skipped,
context)  ->  score(engine, cfg, batch, context) -> records, journaled per chunk  ->  (at the end, all cases of the
task)  summarize(records, cfg) -> Metrics  ->  summary.json (+ recipe(cfg, root)).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Required, TypedDict

if TYPE_CHECKING:  # type hints only: importing a benchmark never imports torch
    from nanoeval.config import TaskConfig
    from nanoeval.engine import Engine

class TaskError(RuntimeError):
    """An error every case of a task would hit (its model cannot load, its data cannot be read, its server answers
    in another format): reported once, the task's other cases are skipped. Raised by the engine, a benchmark or
    the runner."""


# log-likelihood ranking of choices | greedy generation, then an option-letter parser | greedy generation until a stop
# sequence, then answer extractors and exact match (generative.py)
STRATEGIES = ("rank_ll", "gen_letter", "generate")


class Record(TypedDict, total=False):
    """One scored example: a plain dict of JSON types, one line of a journal and of predictions.jsonl.

    The keys below are the ones the machinery reads; a benchmark adds its own (e.g. HellaSwag's `pred_norm` and
    `correct_norm`, the key its headline's correctness lives in, named by `Metrics.correct_key`)."""
    id: Required[str]         # unique within the task: resume skips ids already journaled; gates pair runs by it
    subject: str              # per-subject metrics, the plot, gates.min_per_subject (none: no per-subject rows)
    gold: Required[Any]
    pred: Required[Any]       # None: no answer (a generation the parser could not read)
    correct: Required[bool]   # the per-case accuracy in the terminal, the HTML report and min_per_subject
    lls: list[float]          # log-likelihood ranking: checked finite before it is journaled
    tokens: list[int]         # ranked choices: each continuation's tokens (acc_per_token)
    bpb: float                # ranked choices: the gold continuation's bits per byte (scoring.choice_record)
    response: str             # generation: counted in summary.json's counts.generations
    truncated_prompt: bool    # set by the runner (true only): the engine cut this example's prompt to max_length
    hit_max_new_tokens: bool  # set by the runner (true only): cut at max_new_tokens (no stop string, no EOS)


@dataclass
class Metrics:
    """What `summarize` returns: summary.json's metric fields."""
    headline: str                                        # the metric tables, plots and gates use
    metrics: dict[str, float]
    stderr: dict[str, float]
    per_subject: dict[str, dict] = field(default_factory=dict)   # subject -> {n, acc, stderr, ...}
    chance: float | None = None                          # drawn as a line in accuracy.png
    plot_by: str = "subject"                             # accuracy.png: bars per subject, or per metric
    counts: dict[str, int] = field(default_factory=dict)  # benchmark-specific counts for summary.json
    correct_key: str = "correct"                         # the record key holding the headline's correctness
    subject_metric: str = "acc"                          # its per-subject value (min_per_subject, the plot's bars)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (flag for tables, sentence) a reader must see
    n: dict[str, int] = field(default_factory=dict)      # examples behind a metric (an MMLU category's own);
    #                                                    a metric not named here stands on all the task's records


@dataclass
class CaseData:
    """What `load` returns for one case."""
    examples: list                                       # objects with an `id`, in order; scored in chunks
    skipped: list[dict] = field(default_factory=list)    # bad rows left out (dataset.on_bad_row: skip)
    context: Any = None                                  # handed to every `score` call (few-shot rows, ...)


class OptionError(ValueError):
    """A bad option value: `key` is the option's name under `scoring:`; the message says what was expected."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Options:
    """The `scoring:` settings every benchmark has. A benchmark subclasses it (a frozen dataclass) to add its own
    settings and defaults, and overrides `resolve` to fill defaults that depend on other settings and to refuse
    impossible values (raise OptionError)."""
    strategy: str | None = None         # None: the benchmark's first strategy
    num_fewshot: int = 0
    max_new_tokens: int | None = None   # generation only; None: 5
    fewshot_hint = ""                   # (not a setting) where else shots can come from, for the missing-split error
    generation_only = ("max_new_tokens",)  # (not a setting) options only a generation strategy reads

    @classmethod
    def shown_defaults(cls) -> dict[str, str]:
        """Defaults `resolve` leaves to be decided elsewhere or by another option, as `nanoeval benchmarks` shows
        them (the real value, not None); a subclass adds its own."""
        return {}

    def resolve(self) -> "Options":
        if self.max_new_tokens is None:
            return dataclasses.replace(self, max_new_tokens=5).resolve()
        if self.num_fewshot < 0:
            raise OptionError("num_fewshot", "an integer >= 0")
        if self.max_new_tokens < 1:
            raise OptionError("max_new_tokens", "an integer >= 1")
        return self

    def needs_fewshot_split(self) -> bool:
        """Whether the shots come from dataset.fewshot_split (checked against the data when the config loads)."""
        return self.num_fewshot > 0

    def choose(self, key: str, allowed: tuple, expected: str | None = None) -> None:
        """Refuse a value of `key` outside `allowed`."""
        if getattr(self, key) not in allowed:
            raise OptionError(key, expected or " or ".join(allowed))

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


@dataclass(frozen=True)
class Rescorer:
    """How saved generations are scored again without a model (`nanoeval rescore FILE`). `needs` also tells the
    benchmarks apart when --task is not given: the one whose keys the file's first row has."""
    needs: tuple[str, ...]                               # keys every saved row must have
    score: Callable[[dict, str, Any, int], dict]         # (row, where (file:line), settings, seed) -> record
    options: dict[str, dict] = field(default_factory=dict)  # option -> argparse keywords (--name on the CLI)
    describe: Callable[[Any, int], dict] = lambda settings, seed: {}  # the recipe summary.json records
    report: Callable[[Metrics, Any, int], str] = lambda metrics, settings, seed: ""  # after "accuracy ..."
    # the CLI options given (name -> value, those not given left out) -> the `settings` the functions above get;
    # None: the benchmark's own Options with those values (an option of the same name); raises ValueError
    settings: Callable[[dict], Any] | None = None


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per benchmark
class Benchmark:
    """One benchmark, stated in full. Functions take the task's config (`cfg.scoring` is this benchmark's
    `options` type) and the project root (relative data paths)."""
    name: str                                            # `task:` in YAML
    doc: str                                             # one line for `nanoeval benchmarks`
    options: type[Options]                               # `scoring:` settings, defaults and validation
    dataset: dict                                        # default `dataset:` (hub id, config, splits)
    strategies: tuple[str, ...]                          # of STRATEGIES, the first is the default
    cases: Callable[["TaskConfig", Path], list[str]]     # case ids (subjects or shards), the same on every worker
    load: Callable[["TaskConfig", str, Path], CaseData]  # one case's examples (bad rows: DataError naming them)
    # a batch of examples -> records, in the batch's order; one engine request per example, in that order, gives
    # each record its own engine counters (truncated_prompt, hit_max_new_tokens), else its chunk's are counted
    score: Callable[["Engine", "TaskConfig", list, Any], list[dict]]
    summarize: Callable[[list[dict], "TaskConfig | None"], Metrics]  # all records of a task -> metrics (cfg is
    #                                                    None when `nanoeval rescore` scores saved generations)
    recipe: Callable[["TaskConfig", Path], dict]         # the exact scoring recipe, for summary.json
    case_sizes: Callable[["TaskConfig", Path], dict[str, int]]  # expected examples per case (progress, order)
    check_cases: Callable[["TaskConfig", Path], str | None] = lambda cfg, root: None  # why cases cannot run
    known_sizes: dict[str, int] = field(default_factory=dict)  # full-split examples per known case: cases run
    #                                                    largest first, in an order that needs no data
    rescore: Rescorer | None = None
    chunk: int | None = None                             # examples per journal append (None: the runner's)
    id_column: str | None = None                         # the data column of example ids, checked unique across
    #                                                    the split before the model loads (None: `load` builds ids)
    dataset_from_options: Callable[[Options], dict] = lambda options: {}  # hub config chosen by an option
    columns: tuple[str, ...] = ()                        # the data columns `load` reads (our names; a dataset with
    #                                                    other names maps them with dataset.columns), for
    #                                                    `nanoeval benchmarks`; tests/test_cli_views.py checks them
