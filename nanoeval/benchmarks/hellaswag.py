"""HellaSwag (Zellers et al., 2019): pick the most plausible of 4 endings. One pytest case per data shard.

Recipe: lm-evaluation-harness's `hellaswag` task, exactly (`preprocess` and `context` below):
    context = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
    ending  = preprocess(ending);  continuation = " " + ending
    preprocess: strip; " [title]" -> ". "; drop other [tags]; "  " -> " " (one pass); no final strip
Each ending is scored as a continuation of the shared context (tokenized jointly, continuation = the tail; the
engine runs the context once, the four endings as branches of the same row under a tree attention mask).
    acc      = argmax of the summed log-likelihood
    acc_norm = argmax of log-likelihood / len(ending in characters)    <- headline (what papers quote)
k-shot (default 0): for each example, k train rows drawn by random.Random(f"{seed}:{id}").sample, each written
as context + " " + gold ending, joined by a blank line before the context.
Shards: row i of the split goes to shard i % num_shards (default 8), so collection needs no pass over the data.

Reference (validation, 0-shot, this recipe): gpt2 acc 0.2892, acc_norm 0.3114; gpt2-xl 0.4004 / 0.5089.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nanoeval.benchmark import Benchmark, CaseData, Metrics, Record
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, answer_index, get, seeded_sample
from nanoeval.engine import LLRequest
from nanoeval.scoring import acc_norm_metrics, ranked_record, with_prompts
from nanoeval.shards import ShardOptions, check_shards, load_shard, num_shards, shard_cases, shard_sizes

FULL_SIZE = 10042   # rows of the validation split (the hub default): progress estimates only


# ---------------------------------------------------------------------------------- the prompt (lm-eval preprocess)
def preprocess(text: str) -> str:
    """lm-eval's order exactly: strip; ' [title]' -> '. '; drop other [tags] (non-greedy); '  ' -> ' ' once.
    No final strip: an ending that ended in ' [title]' keeps its trailing '. '."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def context(activity_label: str, ctx_a: str, ctx_b: str) -> str:
    # str.capitalize upper-cases the first character and lower-cases the rest, as in lm-eval
    return preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())


@dataclass
class Item:
    id: str
    activity: str
    context: str
    endings: list[str]
    label: int


def parse(cfg: TaskConfig, row: dict, where: str) -> Item:
    ds = cfg.dataset
    endings = get(row, ds, "endings", where)
    if not isinstance(endings, list) or len(endings) != 4 or not all(isinstance(e, str) for e in endings):
        raise DataError(f"{where}: endings: expected a list of 4 strings, got {endings!r:.80}")
    label, a, b = (str(get(row, ds, c, where)) for c in ("activity_label", "ctx_a", "ctx_b"))
    return Item(str(get(row, ds, "ind", where)), label, context(label, a, b), [preprocess(e) for e in endings],
                answer_index(get(row, ds, "label", where), 4, where))


def load(cfg: TaskConfig, case_id: str, root) -> CaseData:
    """The shard's rows (row i goes to shard i % n), and the few-shot split's rows when k > 0."""
    return load_shard(cfg, case_id, root, parse)


def recipe(cfg: TaskConfig, root) -> dict:
    return {"template": "lm-eval hellaswag: preprocess(activity_label: ctx_a ctx_b.capitalize()), ' ' + ending",
            "strategy": "rank_ll", "num_fewshot": cfg.scoring.num_fewshot,
            "fewshot_source": f"{cfg.dataset.fewshot_split}: random.Random(f'{{seed}}:{{id}}').sample(rows, k)"
            if cfg.scoring.num_fewshot else None, "chat_template": cfg.model.chat_template,
            "normalisation": "acc: none; acc_norm: log-likelihood / len(ending) in characters",
            "shards": f"row i -> shard i % {num_shards(cfg, root)}"}


def score(engine, cfg: TaskConfig, batch: list[Item], train: list[Item]) -> list[Record]:
    requests = []
    for it in batch:
        shots = seeded_sample(train, cfg.scoring.num_fewshot, f"{cfg.seed}:{it.id}")
        prefix = "".join(f"{s.context} {s.endings[s.label]}\n\n" for s in shots)
        requests.append(LLRequest(prefix + it.context, [" " + e for e in it.endings]))
    records = [ranked_record(it.id, it.activity, it.label, lls, it.endings)
               for it, lls in zip(batch, engine.loglikelihoods(requests))]
    return with_prompts(engine, cfg, records, requests)


def summarize(records: list[dict], cfg: TaskConfig) -> Metrics:
    return acc_norm_metrics(records)


BENCHMARK = Benchmark(
    name="hellaswag", doc="HellaSwag: the most plausible of 4 endings (lm-eval's recipe; acc and acc_norm)",
    options=ShardOptions, strategies=("rank_ll",),
    dataset={"path": "Rowan/hellaswag", "split": "validation", "fewshot_split": "train"},
    cases=shard_cases, load=load, score=score, summarize=summarize, recipe=recipe, check_cases=check_shards,
    id_column="ind",  # unique, checked before the model loads
    columns=("ind", "activity_label", "ctx_a", "ctx_b", "endings", "label"),
    case_sizes=lambda cfg, root: shard_sizes(cfg, root, FULL_SIZE))
