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


def mmlu_fewshot_prefix(subject: str, shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots, each followed by a blank line: the same for a whole subject."""
    return mmlu_header(subject) + "".join(f"{mmlu_question(q, c)} {LETTERS[a]}\n\n" for q, c, a in shots)


def mmlu_prompt(subject: str, question: str, choices: list[str], shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots and the question, joined by a blank line."""
    return mmlu_fewshot_prefix(subject, shots) + mmlu_question(question, choices)


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


# ------------------------------------------------------------------------------ MMMU-Pro (official prompts.yaml)
MMMU_INSTRUCTIONS = {
    ("direct", "standard"): "Answer with the option letter from the given choices directly.",
    ("direct", "vision"): "Answer with the option letter from the given choices directly. The last line of your "
                          "response should be of the following format: 'Answer: $LETTER' (without quotes) where "
                          "LETTER is one of options.",
    ("cot", "standard"): "Answer the preceding multiple choice question. The last line of your response should be of "
                         "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of options. "
                         "Think step by step before answering.",
    ("cot", "vision"): "Write out the multiple-choice question in the image and then solve it. The last line of your "
                       "response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER "
                       "is one of options. Think step by step before answering.",
}
IMAGE_TAG = re.compile(r"<image\s+(\d+)>")


def mmmu_standard_prompt(question: str, options: list, style: str) -> tuple[str, list[int]]:
    """`{question}\\n{A. opt\\nB. opt ...}\\n{instruction}` with every <image N> tag as `[image]`; returns the text
    and the image numbers in order of first appearance (<image N> always means column image_N)."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    text = f"{question}\n" + "\n".join(f"{x}. {o}" for x, o in zip(letters, options)) + \
        f"\n{MMMU_INSTRUCTIONS[(style, 'standard')]}"
    order = list(dict.fromkeys(int(n) for n in IMAGE_TAG.findall(text)))
    return IMAGE_TAG.sub("[image]", text), order
