"""Ranked-choice benchmarks stated as data: the form of most small-model benchmarks (ARC, HellaSwag, PIQA, ...).

A benchmark file states, as functions of one data row, its prompt `text`, its `choices` and its `gold` (see
nanoeval/benchmarks/piqa.py); `multiple_choice(...)` makes the Benchmark: cases are row shards (shards.py), each
row becomes an Item, each Item one log-likelihood request, and `summarize` gives the metrics below.

Formulations (`scoring.formulation` where a benchmark states both; OLMES calls cloze RC and letters MC):
    cloze    context = text(row)                       continuation k = delimiter + choices[k]
    letters  context = "Question: {question(row)}\\nA. {choices[0]}\\nB. ...\\nAnswer:"   continuation k = " A", " B", ...
With `choices_are_contexts` (WinoGrande's partial evaluation) choice k is the context choices[k] followed by one
shared continuation, delimiter + text(row).
Few-shot (num_fewshot k > 0; our own sampler, not lm-eval's): k rows of dataset.fewshot_split drawn by
random.Random(f"{seed}:{id}").sample, each its gold choice written out (context + continuation), then a blank line,
all before the context.
Per example: the summed log-likelihood of each choice's continuation (`lls`) and its length in tokens (`tokens`);
    acc            argmax of ll
    acc_norm       argmax of ll / len(choice text) in characters (lm-eval's acc_norm)
    acc_per_token  argmax of ll / tokens of the continuation
    bpb            -ll(gold) / (ln 2 x UTF-8 bytes of the gold continuation, delimiter included): bits per byte of
                   the gold answer, lower is better; a continuous metric that moves long before accuracy does
The task's value of each is the mean over examples (stderr: sample standard deviation / sqrt(n)).
A row without an id column gets its number in the split (0-based) as its id: the same whichever rows, shards or
cases a run selects.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from nanoeval.benchmark import Benchmark, CaseData, Metrics
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, Row, read_field, seeded_sample
from nanoeval.engine.requests import LLRequest
from nanoeval.scoring import LETTERS, accuracy, by_subject, choice_record, per_token_and_bpb, with_prompts
from nanoeval.shards import ShardOptions, check_shard_cases, load_shard, num_shards, shard_cases, shard_sizes

CORRECT_KEY = {"acc": "correct", "acc_norm": "correct_norm", "acc_per_token": "correct_token"}


@dataclass
class Item:
    id: str
    subject: str | None
    text: str                 # the cloze context (with choices_are_contexts: the shared continuation)
    question: str | None      # the letters form's question (None: no letters form)
    choices: list[str]
    gold: int


@dataclass(frozen=True)
class ChoiceOptions(ShardOptions):
    """A ranked-choice benchmark with more than one formulation."""
    formulation: str | None = None   # cloze | letters (None: the benchmark's first)
    formulations = ("cloze", "letters")  # (not a setting) this benchmark's, the first the default

    @classmethod
    def shown_defaults(cls) -> dict[str, str]:
        return {**super().shown_defaults(), "formulation": repr(cls.formulations[0])}

    def resolve(self) -> "ChoiceOptions":
        if self.formulation is None:
            return dataclasses.replace(self, formulation=self.formulations[0]).resolve()
        self.choose("formulation", self.formulations)
        return super().resolve()


@dataclass(frozen=True, eq=False)
class MultipleChoice:
    """What a ranked-choice benchmark states; `multiple_choice` makes its Benchmark."""
    name: str
    doc: str
    dataset: dict                                   # the default `dataset:` (hub id, config, splits)
    columns: tuple[str, ...]                        # the data columns its functions read
    text: Callable[[Row], str]                      # the cloze context (choices_are_contexts: the continuation)
    choices: Callable[[Row], list[str]]             # the choices' texts
    gold: Callable[[Row], int]                      # the gold choice's index
    metrics: tuple[str, ...] = ("acc", "acc_norm")  # accuracies reported in the cloze form (letters: acc; both:
    #                                                 acc_per_token and bpb too)
    headline: str = "acc_norm"                      # of the cloze form (letters: acc)
    chance: float | None = None                     # None: 1 / number of choices, averaged over the examples
    n_choices: int | None = None                    # every row has this many choices (None: 2 or more)
    question: Callable[[Row], str] | None = None    # the letters form's question (None: no letters form)
    formulations: tuple[str, ...] = ("cloze",)      # the first is the default
    delimiter: str = " "                            # between context and continuation (lm-eval target_delimiter)
    choices_are_contexts: bool = False
    subject: Callable[[Row], str] | None = None     # per-subject rows (None: none)
    id_column: str | None = None                    # None: the row's number in the split
    full_size: int | dict[str, int] = 1000          # the hub split's rows (by dataset.name): progress estimates
    template: str = ""                              # the recipe's template, as summary.json states it


def multiple_choice(spec: MultipleChoice) -> Benchmark:
    if len(spec.formulations) > 1 and "acc_norm" not in spec.metrics:  # summarize tells the forms apart by it
        raise ValueError(f"{spec.name}: a benchmark with both formulations reports acc_norm in its cloze form")
    options = ShardOptions if len(spec.formulations) == 1 else \
        type(f"{spec.name}_options", (ChoiceOptions,), {"formulations": spec.formulations})

    def parse(cfg: TaskConfig, raw: dict, where: str, index: int) -> Item:
        row = Row(raw, cfg, where)
        choices, text, gold = read_field(spec.choices, row, "choices"), read_field(spec.text, row, "text"), \
            read_field(spec.gold, row, "gold")
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices) or \
                len(choices) != (spec.n_choices or max(2, len(choices))):
            raise DataError(f"{where}: choices: expected a list of {spec.n_choices or 'at least 2'} strings, got "
                            f"{choices!r:.80}")
        if not isinstance(text, str):
            raise DataError(f"{where}: expected text, got {text!r:.80}")
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise DataError(f"{where}: gold answer {gold!r} out of range for {len(choices)} choices")
        return Item(str(row[spec.id_column]) if spec.id_column else str(index),
                    str(read_field(spec.subject, row, "subject")) if spec.subject else None, text,
                    read_field(spec.question, row, "question") if spec.question else None, choices, gold)

    def load(cfg: TaskConfig, case_id: str, root) -> CaseData:
        return load_shard(cfg, case_id, root, parse)

    def score(engine, cfg: TaskConfig, batch: list[Item], pool: list[Item]) -> list[dict]:
        form = _formulation(cfg, spec)
        requests = []
        same_split = cfg.dataset.fewshot_split == cfg.dataset.split  # then an item is never its own shot
        for item in batch:
            shots = seeded_sample([s for s in pool if s.id != item.id] if same_split else pool,
                                  cfg.scoring.num_fewshot, f"{cfg.seed}:{item.id}")
            prefix = "".join(_written(spec, form, s) + "\n\n" for s in shots)
            contexts, continuations = _pairs(spec, form, item)
            requests.append(LLRequest([prefix + c for c in contexts] if spec.choices_are_contexts
                                      else prefix + contexts[0], continuations))
        lls, tokens = engine.loglikelihoods(requests), engine.token_counts(requests)
        records = [_record(spec, form, item, ll, n, req) for item, ll, n, req in zip(batch, lls, tokens, requests)]
        return with_prompts(engine, cfg, records, requests)

    def summarize(records: list[dict], cfg: TaskConfig | None) -> Metrics:
        # without a config (a gate's baseline, read back): the records say which form scored them, as only the
        # cloze form of a benchmark with both reports acc_norm
        form = _formulation(cfg, spec) if cfg is not None else spec.formulations[0] if len(spec.formulations) == 1 \
            else "cloze" if any("correct_norm" in r for r in records) else "letters"
        return choice_metrics(records, *_accuracies(spec, form), spec.chance)

    def recipe(cfg: TaskConfig, root) -> dict:
        form, k = _formulation(cfg, spec), cfg.scoring.num_fewshot
        return {"template": spec.template if form == "cloze" else
                "letters: 'Question: {question}\\nA. {choice}\\n...\\nAnswer:', ' ' + letter",
                "formulation": form, "strategy": "rank_ll", "num_fewshot": k, "target_delimiter": spec.delimiter,
                "fewshot_source": f"{cfg.dataset.fewshot_split}: random.Random(f'{{seed}}:{{id}}').sample(rows, k), "
                                  "each the gold choice written out, then a blank line" if k else None,
                "chat_template": cfg.model.chat_template,
                "metrics": "acc: argmax ll; acc_norm: ll / len(choice text) in characters; acc_per_token: ll / "
                           "continuation tokens; bpb: -ll(gold) / (ln 2 x UTF-8 bytes of the gold continuation)",
                "headline": _accuracies(spec, form)[1],
                "chance": spec.chance if spec.chance is not None else "1 / number of choices, mean over examples",
                "ids": f"column {spec.id_column!r}" if spec.id_column else "the row's number in the split",
                "shards": f"row i -> shard i % {num_shards(cfg, root)}"}

    def case_sizes(cfg: TaskConfig, root) -> dict[str, int]:
        full = spec.full_size if isinstance(spec.full_size, int) else \
            spec.full_size.get(cfg.dataset.name, next(iter(spec.full_size.values())))
        return shard_sizes(cfg, root, full)

    return Benchmark(name=spec.name, doc=spec.doc, options=options, dataset=spec.dataset, strategies=("rank_ll",),
                     cases=shard_cases, load=load, score=score, summarize=summarize, recipe=recipe,
                     case_sizes=case_sizes, check_cases=lambda cfg, root: check_shard_cases(cfg, root, spec.columns),
                     id_column=spec.id_column, columns=spec.columns)


def _formulation(cfg: TaskConfig, spec: MultipleChoice) -> str:
    return getattr(cfg.scoring, "formulation", None) or spec.formulations[0]


def _accuracies(spec: MultipleChoice, form: str) -> tuple[tuple[str, ...], str]:
    """The accuracies a formulation reports and its headline: a letter's length normalises nothing."""
    return (("acc",), "acc") if form == "letters" else (spec.metrics, spec.headline)


def _pairs(spec: MultipleChoice, form: str, item: Item) -> tuple[list[str], list[str]]:
    """The contexts (one, or one per choice) and continuations (one per choice, or one) of an item."""
    if form == "letters":
        listed = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(item.choices))
        return [f"Question: {item.question}\n{listed}Answer:"], [f" {LETTERS[i]}" for i in range(len(item.choices))]
    if spec.choices_are_contexts:
        return item.choices, [spec.delimiter + item.text]
    return [item.text], [spec.delimiter + c for c in item.choices]


def _written(spec: MultipleChoice, form: str, item: Item) -> str:
    """A few-shot example: its gold choice's context and continuation."""
    contexts, continuations = _pairs(spec, form, item)
    return contexts[item.gold if len(contexts) > 1 else 0] + continuations[item.gold if len(continuations) > 1 else 0]


def _record(spec: MultipleChoice, form: str, item: Item, lls: list[float], tokens: list[int],
            request: LLRequest) -> dict:
    texts = item.choices if "acc_norm" in _accuracies(spec, form)[0] else None
    return choice_record(item.id, item.subject, item.gold, lls, tokens, texts, request.pairs()[item.gold][1])


def choice_metrics(records: list[dict], accuracies: tuple[str, ...] = ("acc", "acc_norm"),
                   headline: str = "acc_norm", chance: float | None = None) -> Metrics:
    """acc (and acc_norm), acc_per_token and the gold's bits per byte (`bpb`), per subject where records have
    one; chance as stated, else from the number of choices."""
    metrics, stderr = {}, {}
    for name in accuracies:
        metrics[name], stderr[name] = accuracy(records, CORRECT_KEY[name])
    for name, (value, se) in per_token_and_bpb(records).items():
        metrics[name], stderr[name] = value, se
    per: dict[str, dict] = {}
    if any("subject" in r for r in records):
        per = by_subject(records)
        for name in accuracies[1:]:
            for subject, v in by_subject(records, CORRECT_KEY[name]).items():
                per[subject].update({name: v["acc"], f"{name}_stderr": v["stderr"]})
    if chance is None and records:
        chance = sum(1 / len(r["lls"]) for r in records) / len(records)
    return Metrics(headline, metrics, stderr, per, chance=chance, plot_by="metrics",
                   correct_key=CORRECT_KEY[headline], subject_metric=headline)
