"""OpenBookQA (Mihaylov et al., 2018): 4-way elementary science questions. One pytest case per row shard.

Recipe: lm-evaluation-harness 0.4.13's `openbookqa` task (openbookqa.yaml), character for character:
    context      = question_stem             (no "Question:", no "Answer:")
    continuation = " " + choices.text[k]     gold = choices.label.index(answerKey.lstrip())
    acc, acc_norm (ll / len(choice text) in characters) <- headline;  chance 0.25
`scoring.formulation: letters` lists the choices ("Question: {question_stem}\\nA. ...\\nAnswer:", " A".." D";
headline acc). Test split (500 rows), config `main`. k-shot, acc_per_token, bpb: nanoeval/multiple_choice.py.
"""
from nanoeval.multiple_choice import MultipleChoice, multiple_choice

BENCHMARK = multiple_choice(MultipleChoice(
    name="openbookqa", doc="OpenBookQA: 4-way science questions (lm-eval's recipe; acc, acc_norm)",
    dataset={"path": "allenai/openbookqa", "name": "main", "split": "test", "fewshot_split": "train"},
    columns=("id", "question_stem", "choices", "answerKey"),
    text=lambda row: row["question_stem"],
    question=lambda row: row["question_stem"],
    choices=lambda row: row["choices"]["text"],
    gold=lambda row: row.answer("answerKey", row["choices"]["label"]),
    formulations=("cloze", "letters"), n_choices=4, chance=0.25, id_column="id", full_size=500,
    template="lm-eval 0.4.13 openbookqa.yaml: '{question_stem}', ' ' + choice text"))
