"""Social IQa (Sap et al., 2019): 3-way questions about people's motives and reactions. One case per row shard.

Recipe: lm-evaluation-harness 0.4.13's `social_iqa` task (siqa.yaml), character for character:
    context      = "Q: {context} {question}\\nA:"
    continuation = " " + answerA | answerB | answerC      gold = int(label) - 1  (label "1".."3", a string)
    acc <- headline (lm-eval's only metric); acc_norm also reported;  chance 1/3
`scoring.formulation: letters` lists the answers ("Question: {context} {question}\\nA. ...\\nAnswer:", " A".." C").
Validation split. k-shot, acc_per_token, bpb: nanoeval/multiple_choice.py. Rows have no id: their number.
"""
from nanoeval.multiple_choice import MultipleChoice, multiple_choice

BENCHMARK = multiple_choice(MultipleChoice(
    name="social_iqa", doc="Social IQa: 3-way questions about people (lm-eval's recipe; acc)",
    dataset={"path": "lighteval/siqa", "split": "validation", "fewshot_split": "train"},
    columns=("context", "question", "answerA", "answerB", "answerC", "label"),
    text=lambda row: f"Q: {row['context']} {row['question']}\nA:",
    question=lambda row: f"{row['context']} {row['question']}",
    choices=lambda row: [row["answerA"], row["answerB"], row["answerC"]],
    gold=lambda row: row.answer("label", ["1", "2", "3"]),
    formulations=("cloze", "letters"), headline="acc", chance=1 / 3, full_size=1954,
    template="lm-eval 0.4.13 siqa.yaml: 'Q: {context} {question}\\nA:', ' ' + answer"))
