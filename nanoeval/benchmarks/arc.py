"""ARC (Clark et al., 2018): grade-school science questions with 3 to 5 choices. One pytest case per row shard.

`dataset.name` picks the set, as on the hub: `ARC-Easy` (configs/arc_easy_smollm2.yaml) or `ARC-Challenge`
(configs/arc_challenge_smollm2.yaml).

Recipe: lm-evaluation-harness 0.4.13's `arc_easy` / `arc_challenge` tasks (arc_easy.yaml), character for character:
    context      = "Question: {question}\\nAnswer:"
    continuation = " " + choices.text[k]      (target delimiter " "; one per choice, scored after the context)
    gold         = choices.label.index(answerKey)      (labels are letters A-E, or the digits "1".."4")
    acc      = argmax of the summed log-likelihood
    acc_norm = argmax of log-likelihood / len(choice text) in characters    <- headline (what papers quote)
Test split, 0-shot (the standard). k > 0 is our own sampler, not lm-eval's: k train rows drawn by
random.Random(f"{seed}:{id}").sample, each "Question: {q}\\nAnswer: {gold text}", then a blank line, before the
context. Per-subject rows are the exam a question comes from (its id's prefix: Mercury, MCAS, NYSEDREGENTS, ...).

Reference: no published numbers are bundled. Per example, NanoEval agrees with lm-eval 0.4.13's own task on
tests/data/arc (208 rows: 128 Easy, 80 Challenge; SmolLM2-135M-Instruct): see README, "Numbers and agreement".
"""
from __future__ import annotations

from dataclasses import dataclass

from nanoeval.benchmark import Benchmark, CaseData, Metrics, Record
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, get, seeded_sample
from nanoeval.engine import LLRequest
from nanoeval.scoring import acc_norm_metrics, ranked_record, with_prompts
from nanoeval.shards import ShardOptions, check_shards, load_shard, num_shards, shard_cases, shard_sizes

FULL_SIZE = {"ARC-Easy": 2376, "ARC-Challenge": 1172}   # test rows on the hub: progress estimates only


def prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


@dataclass
class Question:
    id: str
    source: str           # the exam it comes from (the id's prefix)
    question: str
    choices: list[str]
    answer: int


def parse(cfg: TaskConfig, row: dict, where: str) -> Question:
    ds = cfg.dataset
    choices, key = get(row, ds, "choices", where), str(get(row, ds, "answerKey", where))
    texts, labels = (choices.get(c) if isinstance(choices, dict) else None for c in ("text", "label"))
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels) or \
            len(texts) < 2 or not all(isinstance(t, str) for t in texts):
        raise DataError(f"{where}: choices: expected {{text: [...], label: [...]}} with as many labels as texts "
                        f"(at least 2), got {choices!r:.80}")
    if key not in labels:
        raise DataError(f"{where}: answerKey: {key!r} is not one of the labels {labels}")
    row_id = str(get(row, ds, "id", where))
    return Question(row_id, row_id.split("_")[0], str(get(row, ds, "question", where)), texts, labels.index(key))


def load(cfg: TaskConfig, case_id: str, root) -> CaseData:
    """The shard's questions (row i goes to shard i % n), and the few-shot split's when k > 0."""
    return load_shard(cfg, case_id, root, parse)


def score(engine, cfg: TaskConfig, batch: list[Question], train: list[Question]) -> list[Record]:
    requests = []
    for q in batch:
        shots = seeded_sample(train, cfg.scoring.num_fewshot, f"{cfg.seed}:{q.id}")
        prefix = "".join(f"{prompt(s.question)} {s.choices[s.answer]}\n\n" for s in shots)
        requests.append(LLRequest(prefix + prompt(q.question), [" " + c for c in q.choices]))
    records = [ranked_record(q.id, q.source, q.answer, lls, q.choices)
               for q, lls in zip(batch, engine.loglikelihoods(requests))]
    return with_prompts(engine, cfg, records, requests)


def summarize(records: list[dict], cfg: TaskConfig) -> Metrics:
    return acc_norm_metrics(records)


def recipe(cfg: TaskConfig, root) -> dict:
    return {"template": "lm-eval 0.4.13 arc_easy.yaml: 'Question: {question}\\nAnswer:', ' ' + choice text",
            "set": cfg.dataset.name, "strategy": "rank_ll", "num_fewshot": cfg.scoring.num_fewshot,
            "fewshot_source": f"{cfg.dataset.fewshot_split}: random.Random(f'{{seed}}:{{id}}').sample(rows, k)"
            if cfg.scoring.num_fewshot else None, "chat_template": cfg.model.chat_template,
            "gold": "choices.label.index(answerKey)",
            "normalisation": "acc: none; acc_norm: log-likelihood / len(choice text) in characters",
            "shards": f"row i -> shard i % {num_shards(cfg, root)}"}


BENCHMARK = Benchmark(
    name="arc", doc="ARC-Easy / ARC-Challenge: science questions, 3-5 choices (lm-eval's recipe; acc, acc_norm)",
    options=ShardOptions, strategies=("rank_ll",),
    dataset={"path": "allenai/ai2_arc", "name": "ARC-Easy", "split": "test", "fewshot_split": "train"},
    cases=shard_cases, load=load, score=score, summarize=summarize, recipe=recipe, check_cases=check_shards,
    id_column="id",  # unique, checked before the model loads
    columns=("id", "question", "choices", "answerKey"),
    case_sizes=lambda cfg, root: shard_sizes(cfg, root, FULL_SIZE.get(cfg.dataset.name, FULL_SIZE["ARC-Easy"])))
