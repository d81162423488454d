"""ARC (Clark et al., 2018): grade-school science questions with 3 to 5 choices. One pytest case per row shard.

`dataset.name` picks the set, as on the hub: `ARC-Easy` (configs/arc_easy_smollm2.yaml) or `ARC-Challenge`
(configs/arc_challenge_smollm2.yaml).

Recipe: lm-evaluation-harness 0.4.13's `arc_easy` / `arc_challenge` tasks (arc_easy.yaml), character for character:
    context      = "Question: {question}\\nAnswer:"
    continuation = " " + choices.text[k]      (target delimiter " "; one per choice, scored after the context)
    gold         = choices.label.index(answerKey)      (labels are letters A-E, or the digits "1".."4")
    acc      = argmax of the summed log-likelihood
    acc_norm = argmax of log-likelihood / len(choice text) in characters    <- headline (what papers quote)
    chance   = 1 / number of choices (3 to 5), averaged over the questions
`scoring.formulation: letters` lists the choices instead ("Question: ...\\nA. ...\\nAnswer:", " A".." E"; OLMES's
MC form; headline acc). Test split, 0-shot (the standard); k-shot, acc_per_token and bpb: nanoeval/multiple_choice.py.
Per-subject rows are the exam a question comes from (its id's prefix: Mercury, MCAS, NYSEDREGENTS, ...).

Reference: no published numbers are bundled. Per example, NanoEval agrees with lm-eval 0.4.13's own task on
tests/data/arc (208 rows: 128 Easy, 80 Challenge; SmolLM2-135M-Instruct): see README, "Numbers and agreement".
"""
from __future__ import annotations

from nanoeval.data import DataError
from nanoeval.multiple_choice import MultipleChoice, Row, multiple_choice


def texts(row: Row) -> list[str]:
    """The choices' texts, one per label (the labels are what answerKey names)."""
    choices = row["choices"]
    if len(choices["text"]) != len(choices["label"]):
        raise DataError(f"{row.where}: choices: {len(choices['text'])} texts but {len(choices['label'])} labels")
    return choices["text"]


BENCHMARK = multiple_choice(MultipleChoice(
    name="arc", doc="ARC-Easy / ARC-Challenge: science questions, 3-5 choices (lm-eval's recipe; acc, acc_norm)",
    dataset={"path": "allenai/ai2_arc", "name": "ARC-Easy", "split": "test", "fewshot_split": "train"},
    columns=("id", "question", "choices", "answerKey"),
    text=lambda row: f"Question: {row['question']}\nAnswer:",
    question=lambda row: row["question"],
    choices=texts,
    gold=lambda row: row.answer("answerKey", row["choices"]["label"]),
    formulations=("cloze", "letters"),
    subject=lambda row: str(row["id"]).split("_")[0],
    id_column="id",  # unique, checked before the model loads
    full_size={"ARC-Easy": 2376, "ARC-Challenge": 1172},
    template="lm-eval 0.4.13 arc_easy.yaml: 'Question: {question}\\nAnswer:', ' ' + choice text"))
