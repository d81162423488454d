"""PIQA (Bisk et al., 2020): physical commonsense, the better of 2 solutions to a goal. One pytest case per shard.

Recipe: lm-evaluation-harness 0.4.13's `piqa` task (piqa.yaml), character for character:
    context      = "Question: {goal}\\nAnswer:"
    continuation = " " + sol1 | " " + sol2          gold = label (0 or 1)
    acc, acc_norm (ll / len(solution) in characters) <- headline;  chance 0.5
`scoring.formulation: letters` lists the solutions instead (" A", " B"; headline acc). Validation split (the test
split has no labels). k-shot, acc_per_token, bpb: nanoeval/multiple_choice.py. Rows have no id: their number.
"""
from nanoeval.multiple_choice import MultipleChoice, multiple_choice

BENCHMARK = multiple_choice(MultipleChoice(
    name="piqa", doc="PIQA: the better of 2 solutions to a physical goal (lm-eval's recipe; acc, acc_norm)",
    dataset={"path": "baber/piqa", "split": "validation", "fewshot_split": "train"},
    columns=("goal", "sol1", "sol2", "label"),
    text=lambda row: f"Question: {row['goal']}\nAnswer:",
    question=lambda row: row["goal"],
    choices=lambda row: [row["sol1"], row["sol2"]],
    gold=lambda row: row.answer("label", [0, 1]),
    formulations=("cloze", "letters"), chance=0.5, full_size=1838,
    template="lm-eval 0.4.13 piqa.yaml: 'Question: {goal}\\nAnswer:', ' ' + sol1 | sol2"))
