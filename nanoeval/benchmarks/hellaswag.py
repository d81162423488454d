"""HellaSwag (Zellers et al., 2019): pick the most plausible of 4 endings. One pytest case per data shard.

Recipe: lm-evaluation-harness's `hellaswag` task, exactly (`preprocess` and `context` below):
    context = preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
    ending  = preprocess(ending);  continuation = " " + ending
    preprocess: strip; " [title]" -> ". "; drop other [tags]; "  " -> " " (one pass); no final strip
Each ending is scored as a continuation of the shared context (tokenized jointly, continuation = the tail; the
engine runs the context once, the four endings as branches of the same row under a tree attention mask).
    acc      = argmax of the summed log-likelihood
    acc_norm = argmax of log-likelihood / len(ending in characters)    <- headline (what papers quote)
    chance   = 0.25
k-shot (default 0), acc_per_token and bpb: nanoeval/multiple_choice.py (a shot is context + " " + gold ending).
Shards: row i of the split goes to shard i % num_shards (default 8), so collection needs no pass over the data.

Reference (validation, 0-shot, this recipe): gpt2 acc 0.2892, acc_norm 0.3114; gpt2-xl 0.4004 / 0.5089.
"""
from __future__ import annotations

import re

from nanoeval.multiple_choice import MultipleChoice, multiple_choice


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


BENCHMARK = multiple_choice(MultipleChoice(
    name="hellaswag", doc="HellaSwag: the most plausible of 4 endings (lm-eval's recipe; acc and acc_norm)",
    dataset={"path": "Rowan/hellaswag", "split": "validation", "fewshot_split": "train"},
    columns=("ind", "activity_label", "ctx_a", "ctx_b", "endings", "label"),
    text=lambda row: context(row["activity_label"], row["ctx_a"], row["ctx_b"]),
    choices=lambda row: [preprocess(e) for e in row["endings"]],
    gold=lambda row: row.answer("label", ["0", "1", "2", "3"]),
    n_choices=4, chance=0.25,
    subject=lambda row: row["activity_label"],
    id_column="ind",  # unique, checked before the model loads
    full_size=10042,  # rows of the validation split (the hub default)
    template="lm-eval hellaswag: preprocess(activity_label: ctx_a ctx_b.capitalize()), ' ' + ending"))
