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


# ------------------------------------------------------------------------------------ HellaSwag (lm-eval preprocess)
def hellaswag_preprocess(text: str) -> str:
    """lm-eval's order exactly: strip; ' [title]' -> '. '; drop other [tags] (non-greedy); '  ' -> ' ' once.
    No final strip: an ending that ended in ' [title]' keeps its trailing '. '."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_context(activity_label: str, ctx_a: str, ctx_b: str) -> str:
    # str.capitalize upper-cases the first character and lower-cases the rest, as in lm-eval
    return hellaswag_preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())
