"""HellaSwag (Zellers et al., 2019): pick the most plausible of 4 endings. One pytest case per data shard.

Recipe: lm-evaluation-harness's `hellaswag` task, exactly (evals/prompts.py):
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

import math
import random
from dataclasses import dataclass

from evals.config import TaskConfig
from evals.data import DataError, answer_index, get, load_rows, parse_rows
from evals.engine import LLRequest
from evals.prompts import hellaswag_context, hellaswag_preprocess
from evals.scoring import accuracy, by_subject

TASK = "hellaswag"
DEFAULT_SHARDS = 8
FULL_SIZE = 10042   # rows of the validation split (the hub default)


@dataclass
class Item:
    id: str
    activity: str
    context: str
    endings: list[str]
    label: int


def num_shards(cfg: TaskConfig, root) -> int:
    s = cfg.scoring
    if s.shard_size:  # needs the row count: one pass over the data at collection
        return max(1, math.ceil(len(load_rows(cfg.dataset, cfg.dataset.split, root)) / s.shard_size))
    return s.num_shards or DEFAULT_SHARDS


def cases(cfg: TaskConfig, root) -> list[str]:
    n = num_shards(cfg, root)
    return [f"shard{i:0{len(str(n - 1))}d}of{n}" for i in range(n)]


def check_cases(cfg: TaskConfig, root) -> str | None:
    """More shards than rows leaves shards empty: known from local data before the model loads."""
    if not cfg.dataset.data_files:
        return None
    rows, n = len(load_rows(cfg.dataset, cfg.dataset.split, root)), num_shards(cfg, root)
    if rows >= n:
        return None
    return f"scoring.num_shards: {n} shards but split {cfg.dataset.split!r} has {rows} row(s), so shards " \
           f"{rows}..{n - 1} would be empty (use at most {max(rows, 1)} shards)"


def case_sizes(cfg: TaskConfig, root) -> dict[str, int]:
    """Expected examples per shard (progress and its ETA only): row i goes to shard i % n."""
    rows = len(load_rows(cfg.dataset, cfg.dataset.split, root)) if cfg.dataset.data_files else FULL_SIZE
    n = num_shards(cfg, root)
    return {case: min(len(range(i, rows, n)), cfg.dataset.limit or rows) for i, case in enumerate(cases(cfg, root))}


def items(cfg: TaskConfig, split: str, root, shard: int | None, n: int = 1) -> tuple[list[Item], list[dict]]:
    ds = cfg.dataset

    def parse(row, where, k):
        endings = get(row, ds, "endings", where)
        if not isinstance(endings, list) or len(endings) != 4 or not all(isinstance(e, str) for e in endings):
            raise DataError(f"{where}: endings: expected a list of 4 strings, got {endings!r:.80}")
        label, a, b = (str(get(row, ds, c, where)) for c in ("activity_label", "ctx_a", "ctx_b"))
        return Item(str(get(row, ds, "ind", where)), label, hellaswag_context(label, a, b),
                    [hellaswag_preprocess(e) for e in endings], answer_index(get(row, ds, "label", where), 4, where))

    # row i of the split goes to shard i % n
    return parse_rows(ds, split, root, parse, keep=lambda i, row, where: shard is None or i % n == shard)


def recipe(cfg: TaskConfig, root) -> dict:
    return {"template": "lm-eval hellaswag: preprocess(activity_label: ctx_a ctx_b.capitalize()), ' ' + ending",
            "strategy": "rank_ll", "num_fewshot": cfg.scoring.num_fewshot,
            "fewshot_source": f"{cfg.dataset.fewshot_split}: random.Random(f'{{seed}}:{{id}}').sample(rows, k)"
            if cfg.scoring.num_fewshot else None, "chat_template": cfg.model.chat_template,
            "normalisation": "acc: none; acc_norm: log-likelihood / len(ending) in characters",
            "shards": f"row i -> shard i % {num_shards(cfg, root)}"}


def score(engine, cfg: TaskConfig, batch: list[Item], train: list[Item]) -> list[dict]:
    k = cfg.scoring.num_fewshot
    requests = []
    for it in batch:
        shots = random.Random(f"{cfg.seed}:{it.id}").sample(train, k) if k else []
        prefix = "".join(f"{s.context} {s.endings[s.label]}\n\n" for s in shots)
        requests.append(LLRequest(prefix + it.context, [" " + e for e in it.endings]))
    records = []
    for it, lls in zip(batch, engine.loglikelihoods(requests)):
        norm = [ll / max(1, len(e)) for ll, e in zip(lls, it.endings)]
        pred, pred_norm = (max(range(4), key=xs.__getitem__) for xs in (lls, norm))
        records.append({"id": it.id, "subject": it.activity, "gold": it.label, "pred": pred,
                        "correct": pred == it.label, "pred_norm": pred_norm, "correct_norm": pred_norm == it.label,
                        "lls": lls})
    return records


def summarize(records: list[dict], cfg: TaskConfig) -> dict:
    metrics, stderr = {}, {}
    metrics["acc"], stderr["acc"] = accuracy(records, "correct")
    metrics["acc_norm"], stderr["acc_norm"] = accuracy(records, "correct_norm")
    per = by_subject(records)
    for subject, norm in by_subject(records, "correct_norm").items():
        per[subject].update(acc_norm=norm["acc"], acc_norm_stderr=norm["stderr"])
    return {"headline": "acc_norm", "metrics": metrics, "stderr": stderr, "per_subject": per, "chance": 0.25,
            "plot_by": "metrics"}


def test_hellaswag(case, engine):
    cfg = case.cfg
    n = num_shards(cfg, case.root)
    batch, skipped = items(cfg, cfg.dataset.split, case.root, int(case.id[5:].split("of")[0]), n)
    train = items(cfg, cfg.dataset.fewshot_split, case.root, None)[0] if cfg.scoring.num_fewshot else []
    if cfg.dataset.limit:
        batch = batch[: cfg.dataset.limit]
    case.run(batch, lambda b: score(engine, cfg, b, train), engine, skipped)
