"""BoolQ (Clark et al., 2019): a yes/no question about a passage. One pytest case per row shard.

Recipe: lm-evaluation-harness 0.4.13's `boolq` task (super_glue/boolq/default.yaml), character for character:
    context      = "{passage}\\nQuestion: {question}?\\nAnswer:"
    continuation = " no" | " yes"        gold = label (0 = false, 1 = true; a boolean is read as 0/1)
    acc <- headline;  chance 0.5 (uniform; the validation split is 62 % "yes")
Validation split of aps/super_glue, config boolq. k-shot, acc_per_token, bpb: nanoeval/multiple_choice.py.
"""
from nanoeval.multiple_choice import MultipleChoice, multiple_choice

BENCHMARK = multiple_choice(MultipleChoice(
    name="boolq", doc="BoolQ: yes/no questions about a passage (lm-eval's recipe; acc)",
    dataset={"path": "aps/super_glue", "name": "boolq", "split": "validation", "fewshot_split": "train"},
    columns=("question", "passage", "idx", "label"),
    text=lambda row: f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:",
    choices=lambda row: ["no", "yes"],
    gold=lambda row: row.answer("label", [0, 1]),
    metrics=("acc",), headline="acc", chance=0.5, id_column="idx", full_size=3270,
    template="lm-eval 0.4.13 boolq: '{passage}\\nQuestion: {question}?\\nAnswer:', ' no' | ' yes'"))
