"""Generative benchmarks stated as data: a prompt, stop sequences, answer extractors and exact match (GSM8K).

A benchmark file states, per formulation (`Prompt`, one lm-eval task YAML each), how a data row becomes its prompt
`text` (lm-eval's doc_to_text) and its `target` (doc_to_target: a shot's answer, the gold that exact match compares
with, the continuation whose bits per byte are reported), its shots, delimiters, stop sequences, max_new_tokens,
answer extractors and exact-match rules; `generative(...)` makes the Benchmark (see nanoeval/benchmarks/gsm8k.py).

Per example, in the batch's order (cases are row shards; a row without an id column has its number in the split):
    prompt   = shot_1 + ... + shot_k + text(row)      shot = text + target_delimiter + target + fewshot_delimiter
    GenRequest(prompt, until)                      -> response, greedy, cut before the first stop sequence
    LLRequest(prompt, [target_delimiter + target]) -> the gold's log-likelihood, its tokens, its bits per byte
    per extractor:  extracted = extractor(response)     exact_match = match(extracted, target(row))
    pred / correct  = the headline extractor's (pred None where it found nothing: its fallback, "[invalid]")
Shots: fixed exemplars, the first k in order (lm-eval's first_n sampler), or drawn from dataset.fewshot_split as
lm-eval 0.4.13's default sampler draws them (`lmeval_shots`).
Metrics: `exact_match,<extractor>` per extractor (lm-eval's names; mean, stderr = sample sd / sqrt(n)) and `bpb`;
counts: `fallback_rows` (the headline extractor found nothing: FALLBACK flag over 5 %), `invalid,<extractor>`;
chance 0.
`nanoeval rescore FILE` extracts the saved responses again under the same declaration (each record names its
formulation and headline extractor), or under another declared extractor or a regex of one's own.
"""
from __future__ import annotations

import dataclasses
import json
import random
import re
import string
import threading
from dataclasses import dataclass
from typing import Callable

from nanoeval.benchmark import Benchmark, CaseData, Metrics, OptionError, Rescorer
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, Row, load_rows, read_field
from nanoeval.engine.requests import GenRequest, LLRequest
from nanoeval.scoring import bits_per_byte, fallback_summary, mean_stderr, with_prompts
from nanoeval.shards import (ShardOptions, check_shard_cases, num_shards, shard_cases, shard_of, shard_rows,
                             shard_sizes)


# ------------------------------------------------------------------------------------ extraction and exact match
@dataclass(frozen=True)
class Extractor:
    """lm-eval 0.4.13's `regex` filter, then `take_first` (filters/extraction.py RegexFilter): every match of
    `pattern` (re.findall), the one at `group_select` (Python indexing: -1 is the last); a pattern with several
    groups gives a tuple per match, of which the first non-empty group counts (none: the fallback); stripped. No
    match, or a response that is not a string: the fallback."""
    pattern: str
    group_select: int = 0
    fallback: str = "[invalid]"

    def __call__(self, response) -> str:
        matches = re.findall(self.pattern, response if isinstance(response, str) else "")
        if not matches:
            return self.fallback
        if not -len(matches) <= self.group_select < len(matches):  # lm-eval fails with an IndexError here
            raise ValueError(f"group_select {self.group_select}: {self.pattern!r} matched {len(matches)} time(s)")
        match = matches[self.group_select]
        if isinstance(match, tuple):
            match = next((m for m in match if m), self.fallback)
        return match.strip()


_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)


@dataclass(frozen=True)
class ExactMatch:
    """lm-eval 0.4.13's exact_match (api/metrics.py exact_match_hf_evaluate) on one (prediction, reference) pair:
    each pattern of `regexes_to_ignore` deleted from both (re.sub, in the order given), then lower case, then
    string.punctuation deleted, then digits deleted, as asked; a match when the two are then equal. lm-eval holds
    the strings in numpy arrays, which drop trailing NUL characters after every step; so does this."""
    ignore_case: bool = False
    ignore_punctuation: bool = False
    ignore_numbers: bool = False
    regexes_to_ignore: tuple[str, ...] = ()

    def __call__(self, prediction: str, reference: str) -> bool:
        pair = [prediction, reference] if self.regexes_to_ignore else [_np(prediction), _np(reference)]
        for pattern in self.regexes_to_ignore:
            pair = [_np(re.sub(pattern, "", t)) for t in pair]
        for on, change in ((self.ignore_case, str.lower),
                           (self.ignore_punctuation, lambda t: t.translate(_PUNCTUATION)),
                           (self.ignore_numbers, lambda t: t.translate(_DIGITS))):
            if on:
                pair = [_np(change(t)) for t in pair]
        return pair[0] == pair[1]


def _np(text: str) -> str:
    """A string as a numpy unicode array holds it: without trailing NULs."""
    return text.rstrip("\0")


# ------------------------------------------------------------------------------------------------ the declaration
@dataclass(frozen=True)
class Prompt:
    """One formulation of a generative benchmark: what one lm-eval task YAML states."""
    text: Callable[[Row], str]                  # doc_to_text (a Row, or a fixed exemplar's dict)
    target: Callable[[Row], str]                # doc_to_target: shot answer, exact match's gold, bpb's continuation
    until: tuple[str, ...]                      # generation_kwargs.until (scoring.until overrides)
    extractors: dict[str, Extractor]            # filter_list: name -> regex + take_first, in order
    headline: str                               # the extractor behind pred, correct and the headline metric
    match: ExactMatch = ExactMatch()            # metric_list: exact_match and its options
    num_fewshot: int = 0                        # (scoring.num_fewshot overrides)
    shots: tuple[dict, ...] | None = None       # fixed exemplars, the first k in order (first_n); None: drawn from
    #                                             dataset.fewshot_split by lm-eval's default sampler
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    max_new_tokens: int = 256                   # lm-eval's default max_gen_toks (scoring.max_new_tokens overrides)
    template: str = ""                          # the recipe's statement of it, for summary.json


@dataclass(frozen=True, eq=False)
class Generative:
    """What a generative benchmark states; `generative` makes its Benchmark."""
    name: str
    doc: str
    dataset: dict                               # the default `dataset:` (hub id, config, splits)
    columns: tuple[str, ...]                    # the data columns its functions read
    formulations: dict[str, Prompt]             # scoring.formulation: name -> Prompt, the first the default
    id_column: str | None = None                # None: the row's number in the split
    full_size: int = 1000                       # the hub split's rows: progress estimates


@dataclass(frozen=True)
class GenerativeOptions(ShardOptions):
    """`scoring:` of a generative benchmark; None takes the formulation's own value."""
    num_fewshot: int | None = None
    max_new_tokens: int | None = None
    until: list[str] | None = None              # stop sequences
    formulation: str | None = None
    prompts = {}                                # (not a setting) the benchmark's formulations
    generation_only = ("max_new_tokens", "until")

    @classmethod
    def shown_defaults(cls) -> dict[str, str]:
        def each(key):
            values = {name: getattr(cls(formulation=name).resolve(), key) for name in cls.prompts}
            if len({repr(v) for v in values.values()}) == 1:
                return repr(next(iter(values.values())))
            return ", ".join(f"{v!r} ({name})" for name, v in values.items())
        return {**super().shown_defaults(), "formulation": repr(next(iter(cls.prompts))),
                **{key: each(key) for key in ("num_fewshot", "max_new_tokens", "until")}}

    def resolve(self) -> "GenerativeOptions":
        if self.formulation is None:
            return dataclasses.replace(self, formulation=next(iter(self.prompts))).resolve()
        self.choose("formulation", tuple(self.prompts))
        p = self.prompts[self.formulation]
        for key, default in (("num_fewshot", p.num_fewshot), ("max_new_tokens", p.max_new_tokens),
                             ("until", list(p.until))):
            if getattr(self, key) is None:
                return dataclasses.replace(self, **{key: default}).resolve()
        if not self.until or not all(isinstance(s, str) and s for s in self.until):
            raise OptionError("until", "a non-empty list of non-empty strings (the stop sequences)")
        if p.shots is not None and self.num_fewshot > len(p.shots):
            raise OptionError("num_fewshot", f"at most {len(p.shots)} (the {self.formulation} formulation's fixed "
                                             "exemplars)")
        return super().resolve()

    def needs_fewshot_split(self) -> bool:
        return self.num_fewshot > 0 and self.prompts[self.formulation].shots is None


@dataclass
class Item:
    id: str
    index: int                # the row's number in the split: which of the sampler's draws are its shots
    text: str
    target: str
    raw: dict                 # the row as read (the sampler leaves out shots equal to the scored row)


# ------------------------------------------------------------------------------------------------ few-shot draws
class _Draws:
    """The draws of one random.Random(seed), made in order and kept: draw i is row i's shots."""

    def __init__(self, seed: int, draw: Callable[[random.Random, int], list[int]]):
        self.rnd, self.draw, self.made, self.lock = random.Random(seed), draw, [], threading.Lock()

    def __getitem__(self, i: int) -> list[int]:
        with self.lock:  # a served engine scores on several threads
            while len(self.made) <= i:
                self.made.append(self.draw(self.rnd, len(self.made)))
            return self.made[i]


_DRAWS: dict[tuple, tuple[list | None, _Draws]] = {}
_DRAWS_LOCK = threading.Lock()


def lmeval_shots(seed: int, pool: list[Item], k: int, item: Item, same_split: bool) -> list[Item]:
    """The k shots lm-eval 0.4.13's default sampler gives row `item.index` of the scored split.

    lm-eval (evaluator.py: task.set_fewshot_seed(fewshot_random_seed), 1234 by default; api/task.py
    build_all_requests -> fewshot_context; api/samplers.py ContextSampler.sample) keeps one random.Random(seed) per
    task and draws `rnd.sample(pool, k)` doc after doc in the split's order, so row i's shots are the i-th draw.
    The draws are replayed from the start, once per process, so a row gets the same shots under shards, -k,
    dataset.limit / sample and resume (lm-eval's --limit keeps them too; its --samples and several ranks draw only
    for the docs they keep). Shots from the scored split itself: k + 1 drawn, the rows equal to the scored one
    left out, the first k kept, and where that leaves fewer, k drawn again from the rows not equal to it."""
    if same_split:
        equal: dict[str, set[int]] = {}  # the pool rows equal to each row (lm-eval compares the docs)
        for j, p in enumerate(pool):
            equal.setdefault(json.dumps(p.raw, sort_keys=True, default=str), set()).add(j)
        docs = {p.index: equal[json.dumps(p.raw, sort_keys=True, default=str)] for p in pool}

        def draw(rnd: random.Random, i: int) -> list[int]:
            same = docs.get(i, set())
            keep = [j for j in rnd.sample(range(len(pool)), k + 1) if j not in same][:k]
            return keep if len(keep) == k else rnd.sample([j for j in range(len(pool)) if j not in same], k)
        key = ("same split", seed, k, id(pool))  # the pool is kept with its draws: its id is not reused
    else:
        def draw(rnd: random.Random, i: int) -> list[int]:
            return rnd.sample(range(len(pool)), k)
        key = (seed, k, len(pool))
    with _DRAWS_LOCK:
        if key not in _DRAWS:
            _DRAWS[key] = (pool if same_split else None, _Draws(seed, draw))
        draws = _DRAWS[key][1]
    return [pool[j] for j in draws[item.index]]


# ------------------------------------------------------------------------------------------------ the benchmark
def generative(spec: Generative) -> Benchmark:
    fixed = [name for name, p in spec.formulations.items() if p.shots is not None]
    options = type(f"{spec.name}_options", (GenerativeOptions,), {"prompts": spec.formulations, "fewshot_hint": (
        f"scoring.formulation: {fixed[0]} (its fixed exemplars)" if fixed else "")})
    names = list(dict.fromkeys(n for p in spec.formulations.values() for n in p.extractors))
    fallbacks = {n: e.fallback for p in spec.formulations.values() for n, e in p.extractors.items()}  # + custom's

    def prompt(cfg: TaskConfig | None) -> tuple[str, Prompt]:
        name = cfg.scoring.formulation if cfg is not None else next(iter(spec.formulations))
        return name, spec.formulations[name]

    def parse(cfg: TaskConfig, raw: dict, where: str, index: int) -> Item:
        row, p = Row(raw, cfg, where), prompt(cfg)[1]
        text, target = read_field(p.text, row, "text"), read_field(p.target, row, "target")
        for what, value in (("text", text), ("target", target)):
            if not isinstance(value, str):
                raise DataError(f"{where}: {what}: expected text, got {value!r:.80}")
        return Item(str(row[spec.id_column]) if spec.id_column else str(index), index, text, target, raw)

    def load(cfg: TaskConfig, case_id: str, root) -> CaseData:
        batch, skipped = shard_rows(cfg, cfg.dataset.split, root, parse, shard_of(case_id))
        drawn = cfg.scoring.needs_fewshot_split()
        return CaseData(batch, skipped, shard_rows(cfg, cfg.dataset.fewshot_split, root, parse)[0] if drawn else [])

    def shots(cfg: TaskConfig, p: Prompt, item: Item, pool: list[Item]) -> str:
        k = cfg.scoring.num_fewshot
        if p.shots is not None:
            pairs = [(p.text(row), p.target(row)) for row in p.shots[:k]]
        else:
            same = cfg.dataset.fewshot_split == cfg.dataset.split
            pairs = [(s.text, s.target) for s in lmeval_shots(cfg.seed, pool, k, item, same)] if k else []
        return "".join(text + p.target_delimiter + target + p.fewshot_delimiter for text, target in pairs)

    def score(engine, cfg: TaskConfig, batch: list[Item], pool: list[Item]) -> list[dict]:
        s, (name, p) = cfg.scoring, prompt(cfg)
        prefixes = [shots(cfg, p, item, pool) for item in batch]
        gen = [GenRequest(prefix + item.text, until=tuple(s.until)) for prefix, item in zip(prefixes, batch)]
        gold = [LLRequest(prefix + item.text, [p.target_delimiter + item.target],
                          prefix=prefix if p.shots is not None else "")  # fixed shots: one cached prefix
                for prefix, item in zip(prefixes, batch)]
        mark = len(engine.noted) if getattr(engine, "noted", None) is not None else None
        # the gold scored in the generation's own prefill where the engine can; a look-ahead leaves a generating
        # task alone
        responses, lls = engine.generate_scored(gen, s.max_new_tokens, gold)
        tokens = engine.token_counts(gold)
        _one_count_per_example(engine, mark, len(batch))
        records = []
        for item, response, ll, n, request in zip(batch, responses, lls, tokens, gold):
            record = {"id": item.id, **judge(name, p.extractors, p.headline, p.match, response, item.target)}
            records.append({**record, "lls": ll, "tokens": n, "bpb": bits_per_byte(ll[0], request.continuations[0])})
        return with_prompts(engine, cfg, records, gen)

    def summarize(records: list[dict], cfg: TaskConfig | None) -> Metrics:
        # the records name their extractors and headline (a rescore may have chosen another)
        p = prompt(cfg)[1]
        names, head = (list(records[0]["exact_match"]), records[0]["extractor"]) if records else \
            (list(p.extractors), p.headline)
        metrics, stderr = {}, {}
        for n in names:
            metrics[f"exact_match,{n}"], stderr[f"exact_match,{n}"] = mean_stderr(
                [float(r["exact_match"][n]) for r in records])
        if any("bpb" in r for r in records):
            metrics["bpb"], stderr["bpb"] = mean_stderr([r["bpb"] for r in records if "bpb" in r])
        counts, notes = fallback_summary(records, ("counted those rows wrong", "zeros"), f"answer ({head})")
        for n in names:
            counts[f"invalid,{n}"] = sum(r["extracted"][n] == fallbacks.get(n, Extractor.fallback) for r in records)
        # chance 0: a guess never matches free text exactly (DCLM's CORE counts generative tasks so), so a suite's
        # aggregate averages this task too, its centered accuracy its exact match
        return Metrics(f"exact_match,{head}", metrics, stderr, chance=0.0, plot_by="metrics", counts=counts,
                       notes=notes)

    def recipe(cfg: TaskConfig, root) -> dict:
        s, (name, p) = cfg.scoring, prompt(cfg)
        k = s.num_fewshot
        return {"template": p.template, "formulation": name, "strategy": "generate", "num_fewshot": k,
                "target_delimiter": p.target_delimiter, "fewshot_delimiter": p.fewshot_delimiter,
                "fewshot_source": None if not k else "fixed exemplars, the first k in order (lm-eval's first_n)"
                if p.shots is not None else f"{cfg.dataset.fewshot_split}: lm-eval's default sampler, "
                f"random.Random({cfg.seed}).sample(pool, k) drawn row after row in the split's order, row i's the "
                "i-th draw",
                "chat_template": cfg.model.chat_template, "decoding": "greedy", "until": list(s.until),
                "max_new_tokens": s.max_new_tokens, "extractors": describe_extractors(p.extractors),
                "exact_match": dataclasses.asdict(p.match), "headline": f"exact_match,{p.headline}",
                "bpb": "-ll(target_delimiter + target | prompt) / (ln 2 x its UTF-8 bytes)",
                "ids": f"column {spec.id_column!r}" if spec.id_column else "the row's number in the split",
                "shards": f"row i -> shard i % {num_shards(cfg, root)}"}

    def check_cases(cfg: TaskConfig, root) -> str | None:
        """Before the model loads: empty shards, a missing column, fewer local shot rows than the sampler draws."""
        if (why := check_shard_cases(cfg, root, spec.columns)) or not cfg.dataset.data_files or \
                not cfg.scoring.needs_fewshot_split():
            return why
        ds, k = cfg.dataset, cfg.scoring.num_fewshot
        try:
            rows = len(load_rows(ds, ds.fewshot_split, root))
        except DataError:
            return None  # a split without files: the session names it
        draws = k + (ds.fewshot_split == ds.split)  # lm-eval draws one more where the scored row may be drawn
        return None if rows >= draws else f"scoring.num_fewshot: {k} shots drawn from split {ds.fewshot_split!r} " \
            f"need {draws} rows, it has {rows}"

    def rescore_row(row: dict, where: str, settings: RescoreSettings, seed: int) -> dict:
        p = spec.formulations.get(row["formulation"])
        if p is None:
            raise ValueError(f"{where}: formulation {row['formulation']!r}: expected one of "
                             f"{', '.join(spec.formulations)}")
        extractors = {**p.extractors, **settings.extractors}
        head = settings.headline or p.headline
        if head not in extractors:
            raise ValueError(f"--extractor {head}: not an extractor of the {row['formulation']} formulation "
                             f"({', '.join(extractors)})")
        try:
            record = {"id": str(row["id"]), **judge(row["formulation"], extractors, head, p.match, row["response"],
                                                    str(row["gold"]))}
        except ValueError as e:  # an extractor's group_select beyond this response's matches
            raise ValueError(f"{where}: {e}") from None
        return {**record, **{k: row[k] for k in ("lls", "tokens", "bpb") if k in row}}

    return Benchmark(
        name=spec.name, doc=spec.doc, options=options, dataset=spec.dataset, strategies=("generate",),
        cases=shard_cases, load=load, score=score, summarize=summarize, recipe=recipe,
        case_sizes=lambda cfg, root: shard_sizes(cfg, root, spec.full_size),
        check_cases=check_cases,
        id_column=spec.id_column, columns=spec.columns,
        rescore=Rescorer(
            needs=("id", "response", "gold", "formulation"), score=rescore_row, settings=rescore_settings,
            options={"extractor": {"choices": names, "default": "the formulation's headline",
                                   "help": "extract the headline answer with this declared extractor"},
                     "regex": {"default": "none", "help": "a regex filter of your own (then take_first), named "
                                                          "`custom`, as the headline"},
                     "group_select": {"type": int, "default": 0, "help": "with --regex: which match"}},
            describe=lambda settings, seed: {
                "extractors": {p_name: describe_extractors({**p.extractors, **settings.extractors})
                               for p_name, p in spec.formulations.items()},
                "headline": settings.headline or {n: p.headline for n, p in spec.formulations.items()},
                "exact_match": {n: dataclasses.asdict(p.match) for n, p in spec.formulations.items()}},
            report=lambda m, settings, seed: "; " + ", ".join(
                f"{k} {v:.4f}" for k, v in m.metrics.items()) + f"; fallback rows: {m.counts.get('fallback_rows', 0)}"))


# ------------------------------------------------------------------------------------------------ one response
def judge(formulation: str, extractors: dict[str, Extractor], headline: str, match: ExactMatch, response,
          gold: str) -> dict:
    """A response's extracted answers and exact matches, one per extractor; pred and correct the headline's (pred
    None where the headline extractor found nothing)."""
    response = response if isinstance(response, str) else ""
    extracted = {name: e(response) for name, e in extractors.items()}
    matched = {name: match(value, gold) for name, value in extracted.items()}
    failed = extracted[headline] == extractors[headline].fallback
    return {"gold": gold, "response": response, "formulation": formulation, "extractor": headline,
            "extracted": extracted, "exact_match": matched, "pred": None if failed else extracted[headline],
            "correct": matched[headline], "parse_failed": failed}


def describe_extractors(extractors: dict[str, Extractor]) -> dict[str, dict]:
    return {name: {"regex": e.pattern, "group_select": e.group_select, "fallback": e.fallback, "then": "take_first"}
            for name, e in extractors.items()}


@dataclass(frozen=True)
class RescoreSettings:
    """`nanoeval rescore`'s options for a generative benchmark: extractors added to each row's formulation's own
    (`custom`, from --regex), and the headline extractor (None: the formulation's)."""
    extractors: dict[str, Extractor]
    headline: str | None


def rescore_settings(given: dict) -> RescoreSettings:
    regex = given.get("regex")
    if regex is None:
        if "group_select" in given:
            raise ValueError("--group-select: only with --regex")
        return RescoreSettings({}, given.get("extractor"))
    if "extractor" in given:
        raise ValueError("--extractor: --regex makes its own extractor (`custom`) the headline; give one of them")
    try:
        re.compile(regex)
    except re.error as e:
        raise ValueError(f"--regex: not a regular expression ({e})") from None
    return RescoreSettings({"custom": Extractor(regex, given.get("group_select", 0))}, "custom")


def _one_count_per_example(engine, mark: int | None, n: int) -> None:
    """Two requests per example (its generation, then its gold's log-likelihood): the engine noted one counter dict
    per request since `mark`, merged here into one per example, in order, so each record still carries its own
    (lookahead.score_chunk)."""
    if mark is None or len(engine.noted) != mark + 2 * n:
        return
    gen, ll = engine.noted[mark:mark + n], engine.noted[mark + n:]
    engine.noted[mark:] = [{k: a.get(k, 0) + b.get(k, 0) for k in {**a, **b}} for a, b in zip(gen, ll)]
