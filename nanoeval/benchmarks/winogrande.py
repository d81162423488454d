"""WinoGrande (Sakaguchi et al., 2020): fill the blank of a sentence with one of 2 options. One case per shard.

Recipe: lm-evaluation-harness 0.4.13's `winogrande` task (partial evaluation, preprocess_winogrande.py):
    blank        = sentence.index("_")
    context k    = sentence[:blank] + option_k          (the choices vary the context)
    continuation = " " + sentence[blank + 1:].strip()   (shared: its log-likelihood after each context is scored)
    gold = {"1": 0, "2": 1}[answer]  (a string on the hub);  acc <- headline;  chance 0.5
winogrande_xl, validation split. The engine lays out the tokens the two contexts share once (a tree mask).
k-shot, acc_per_token, bpb: nanoeval/multiple_choice.py. Rows have no id: their number in the split.
"""
from nanoeval.data import DataError
from nanoeval.multiple_choice import MultipleChoice, Row, multiple_choice


def blank(row: Row) -> int:
    """Where the blank is: the first '_', as lm-eval takes it."""
    if "_" not in row["sentence"]:
        raise DataError(f"{row.where}: sentence: expected a blank '_', got {row['sentence']!r:.80}")
    return row["sentence"].index("_")


BENCHMARK = multiple_choice(MultipleChoice(
    name="winogrande", doc="WinoGrande: fill a blank with one of 2 options (lm-eval's partial evaluation; acc)",
    dataset={"path": "allenai/winogrande", "name": "winogrande_xl", "split": "validation", "fewshot_split": "train"},
    columns=("sentence", "option1", "option2", "answer"),
    text=lambda row: row["sentence"][blank(row) + 1:].strip(),
    choices=lambda row: [row["sentence"][:blank(row)] + row[option] for option in ("option1", "option2")],
    gold=lambda row: row.answer("answer", ["1", "2"]),
    choices_are_contexts=True, metrics=("acc",), headline="acc", chance=0.5, full_size=1267,
    template="lm-eval 0.4.13 winogrande: context sentence[:blank] + option, continuation ' ' + the rest"))
