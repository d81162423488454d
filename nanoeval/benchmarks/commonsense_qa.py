"""CommonsenseQA (Talmor et al., 2019): 5-way commonsense questions. One pytest case per row shard.

Recipe: lm-evaluation-harness 0.4.13's `commonsense_qa` task (default.yaml), character for character:
    context      = "Question: {question.strip()}\\nA. {text 0}\\nB. ...\\nE. {text 4}\\nAnswer:"
    continuation = " A" .. " E"          gold = choices.label.index(answerKey);  acc <- headline;  chance 0.2
`scoring.formulation: cloze` scores the answer texts instead ("Question: {question}\\nAnswer:", " " + text; acc,
acc_norm <- headline). Validation split (the test split has no labels). k-shot, acc_per_token, bpb:
nanoeval/multiple_choice.py.
"""
from nanoeval.multiple_choice import MultipleChoice, multiple_choice

BENCHMARK = multiple_choice(MultipleChoice(
    name="commonsense_qa", doc="CommonsenseQA: 5-way commonsense questions (lm-eval's recipe: letters; acc)",
    dataset={"path": "tau/commonsense_qa", "split": "validation", "fewshot_split": "train"},
    columns=("id", "question", "choices", "answerKey"),
    text=lambda row: f"Question: {row['question'].strip()}\nAnswer:",
    question=lambda row: row["question"].strip(),
    choices=lambda row: row["choices"]["text"],
    gold=lambda row: row.answer("answerKey", row["choices"]["label"]),
    formulations=("letters", "cloze"), n_choices=5, chance=0.2, id_column="id", full_size=1221,
    template="cloze: 'Question: {question}\\nAnswer:', ' ' + choice text"))
