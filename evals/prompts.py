"""Every prompt recipe, character for character as published (see each benchmark module for its reference)."""
from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# ------------------------------------------------------------------------------------------- MMLU (lm-eval default)
def mmlu_header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def mmlu_question(question: str, choices: list[str]) -> str:
    options = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(choices))
    return f"{question.strip()}\n{options}Answer:"


def mmlu_prompt(subject: str, question: str, choices: list[str], shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots and the question, joined by a blank line."""
    parts = [f"{mmlu_question(q, c)} {LETTERS[a]}" for q, c, a in shots] + [mmlu_question(question, choices)]
    return mmlu_header(subject) + "\n\n".join(parts)


def first_letter(response: str, n_choices: int) -> str | None:
    """gen_letter for MMLU: the first standalone option letter in the response (None if there is none)."""
    m = re.search(rf"\b([{LETTERS[:n_choices]}])\b", response)
    return m.group(1) if m else None
