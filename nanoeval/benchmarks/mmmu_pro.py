"""MMMU-Pro (Yue et al., 2024): multimodal multiple choice, 30 subjects. One pytest case per subject.

Recipe: the official MMMU-Pro code (mmmu-pro/infer, evaluate.py, prompts.yaml), written out below:
    standard: "{question}\\n{A. opt\\nB. opt ...}\\n{instruction}", each <image N> tag -> "[image]", the images
              (column image_N) attached after the text in order of first appearance;
    vision:   "{instruction}" and the one screenshot that holds question and options.
One user turn in the model's chat template with the generation prompt, greedy decoding (scoring.max_new_tokens;
50 for direct answers, as published), then the official parser (`parse` below): last "Answer:", (X), "X ",
"X.", option text; no candidate -> a letter drawn from random.Random(f"{seed}:{id}") (`fallback: seeded`,
marked parse_failed) or scored wrong (`fallback: count_wrong`). Letters come from the number of options.
Only `gen_letter` exists: `rank_ll` is refused when the config loads.

Headline `acc` (micro over rows, as published). Reference (official GPT-4o outputs, this parser, fallback counted
wrong): standard-10 direct 40.12, cot 55.03; vision direct 41.91 (42.43 published with random fallback), cot 50.06.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import random
import re
from dataclasses import dataclass, field

from nanoeval.benchmark import Benchmark, CaseData, Metrics, Options, Record, Rescorer
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, dataset_label, get, parse_rows, subject_cases, subject_sizes, unknown_subjects
from nanoeval.engine import GenRequest
from nanoeval.scoring import accuracy, by_subject, fallback_summary, option_letters, with_prompts

SUBJECTS = sorted("""Accounting Agriculture Architecture_and_Engineering Art Art_Theory Basic_Medical_Science Biology
    Chemistry Clinical_Medicine Computer_Science Design Diagnostics_and_Laboratory_Medicine Economics Electronics
    Energy_and_Power Finance Geography History Literature Manage Marketing Materials Math Mechanical_Engineering
    Music Pharmacy Physics Psychology Public_Health Sociology""".split())  # 30
SETTINGS = ("standard (10 options)", "standard (4 options)", "vision")

# ------------------------------------------------------------------------------ the prompt (official prompts.yaml)
INSTRUCTIONS = {
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


def standard_prompt(question: str, options: list, style: str) -> tuple[str, list[int]]:
    """`{question}\\n{A. opt\\nB. opt ...}\\n{instruction}` with every <image N> tag as `[image]`; returns the text
    and the image numbers in order of first appearance (<image N> always means column image_N)."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    text = f"{question}\n" + "\n".join(f"{x}. {o}" for x, o in zip(letters, options)) + \
        f"\n{INSTRUCTIONS[(style, 'standard')]}"
    order = list(dict.fromkeys(int(n) for n in IMAGE_TAG.findall(text)))
    return IMAGE_TAG.sub("[image]", text), order


# ------------------------------------------------------------------------------ the parser (official evaluate.py)
def parse(response, options: list, fallback_seed: str | None) -> tuple[str | None, bool]:
    """The official MMMU-Pro parser (mmmu-pro/evaluate.py), in its order; returns (letter, parse_failed).

    No candidate: the official code picks an unseeded random letter. Here the letter is drawn from
    random.Random(fallback_seed) (seed and row id: independent of order, batching and workers), or None when
    fallback_seed is None (the row then counts as wrong)."""
    letters = option_letters(len(options))
    if not isinstance(response, str):
        response = ""
    pos = response.rfind("Answer:")
    if pos != -1:  # 1. after the last "Answer:", exactly one letter as a plain substring
        tail = response[pos + len("Answer:"):].strip()
        matches = [x for x in letters if x in tail]
        if len(matches) == 1:
            return matches[0], False
    for ch in [",", ".", "!", "?", ";", ":", "'"]:  # 2. strip punctuation at both ends, pad with spaces
        response = response.strip(ch)
    response = f" {response} "
    by_text = False  # 3. candidates: (X), else "X ", else "X.", else option text in a long response
    candidates = [x for x in letters if f"({x})" in response]
    bracketed = bool(candidates)
    if not candidates:
        candidates = [x for x in letters if f"{x} " in response]
    if not candidates:
        candidates = [x for x in letters if f"{x}." in response]
    if not candidates and len(response.split()) > 5:
        texts = {x: str(o).lower() for x, o in zip(letters, options)}
        candidates = [x for x in letters if texts[x] in response.lower()]
        by_text = bool(candidates)
    if len(candidates) == 1:  # 4. one candidate; several: the last occurrence wins, ties to the earlier letter
        return candidates[0], False
    if candidates:
        if by_text:
            starts = [response.lower().rfind(str(options[letters.index(x)]).lower()) for x in candidates]
        elif bracketed:
            starts = [response.rfind(f"({x})") for x in candidates]
        else:
            starts = [response.rfind(f" {x} ") for x in candidates]
        return candidates[starts.index(max(starts))], False
    if fallback_seed is None:
        return None, True
    return random.Random(fallback_seed).choice(letters), True


@dataclass(frozen=True)
class MMMUProOptions(Options):
    max_new_tokens: int | None = None           # default: 50 (direct) / 1024 (cot), as published
    setting: str = "standard (10 options)"      # or "standard (4 options)", "vision"
    prompt_style: str = "direct"                # direct | cot
    fallback: str = "seeded"                    # seeded | count_wrong: what a response with no answer letter gets

    @classmethod
    def shown_defaults(cls) -> dict[str, str]:  # max_new_tokens depends on prompt_style: ask resolve for each
        return {**super().shown_defaults(), "max_new_tokens": ", ".join(
            f"{cls(prompt_style=p).resolve().max_new_tokens} ({p})" for p in ("direct", "cot"))}

    def resolve(self) -> "MMMUProOptions":
        self.choose("setting", SETTINGS, " or ".join(repr(x) for x in SETTINGS))
        self.choose("prompt_style", ("direct", "cot"))
        self.choose("fallback", ("seeded", "count_wrong"))
        if self.max_new_tokens is None:
            return dataclasses.replace(self, max_new_tokens=1024 if self.prompt_style == "cot" else 50).resolve()
        return super().resolve()


@dataclass
class Row:
    id: str
    subject: str
    options: list
    answer: str
    text: str
    images: list = field(default_factory=list)
    nested_options: bool = False        # the real data's nested-list row: scored as the official code does


def cases(cfg: TaskConfig, root) -> list[str]:
    return subject_cases(cfg.dataset, root, SUBJECTS, str)


def check_cases(cfg: TaskConfig, root) -> str | None:
    """A subject not in the data (or misspelled), known before the model loads; None: all fine."""
    return unknown_subjects(cfg.dataset, root, SUBJECTS, str)


def case_sizes(cfg: TaskConfig, root) -> dict[str, int]:
    return subject_sizes(cfg.dataset, root, cases(cfg, root), str, {})


def parse_options(value, where: str) -> list:
    """`options` is a string holding a Python list literal: ast.literal_eval, never eval."""
    if isinstance(value, list):
        return value
    try:
        options = ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        raise DataError(f"{where}: options: expected a string holding a list literal, got {str(value)[:60]!r}") \
            from None
    if not isinstance(options, list) or not options:
        raise DataError(f"{where}: options: expected a non-empty list, got {str(value)[:60]!r}")
    return options


def _image(value, where: str, column: str):
    """A PIL image from the dataset (decoded by `datasets`), checked so a corrupt one fails here, named."""
    from PIL import Image

    if value is None:
        raise DataError(f"{where}: {column}: the question refers to it but the column is empty")
    try:
        if isinstance(value, dict):  # undecoded {"bytes", "path"}
            value = Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])
        value.load()
        return value.convert("RGB")
    except Exception as e:
        raise DataError(f"{where}: {column}: corrupt or unreadable image ({e.__class__.__name__}: {e})") from None


def rows(cfg: TaskConfig, subject: str, root) -> tuple[list[Row], list[dict]]:
    ds, s = cfg.dataset, cfg.scoring
    vision = s.setting == "vision"

    def parse(raw, where, k, i):
        where = f"{where} (id {raw.get('id')!r})"
        options = parse_options(get(raw, ds, "options", where), where)
        if vision:
            text = INSTRUCTIONS[(s.prompt_style, "vision")]
            images = [_image(get(raw, ds, "image", where), where, "image")]
        else:
            text, order = standard_prompt(str(get(raw, ds, "question", where)), options, s.prompt_style)
            images = [_image(raw.get(f"image_{n}"), where, f"image_{n}") for n in order]
        return Row(str(get(raw, ds, "id", where)), subject, options, str(get(raw, ds, "answer", where)), text,
                   images, any(isinstance(o, list) for o in options))

    return parse_rows(ds, ds.split, root, parse, subject=subject)


def recipe(cfg: TaskConfig, root) -> dict:
    s = cfg.scoring
    return {"template": "official MMMU-Pro: standard = question, lettered options, instruction, <image N> -> "
                        "[image], images after the text; vision = instruction + screenshot",
            "setting": s.setting, "prompt_style": s.prompt_style, "strategy": "gen_letter",
            "instruction": INSTRUCTIONS[(s.prompt_style, "vision" if s.setting == "vision" else "standard")],
            "chat_template": True, "max_new_tokens": s.max_new_tokens, "decoding": "greedy",
            "parser": "official mmmu-pro/evaluate.py order", "fallback": s.fallback,
            "fallback_seed": f"random.Random(f'{cfg.seed}:{{id}}')" if s.fallback == "seeded" else None}


def score_response(row_id: str, subject: str, options: list, answer: str, response, fallback: str,
                   seed: int) -> dict:
    """One record from a saved or fresh response (shared with `nanoeval rescore`)."""
    pred, failed = parse(response, options, f"{seed}:{row_id}" if fallback == "seeded" else None)
    letters = option_letters(len(options))
    return {"id": row_id, "subject": subject, "options": options, "answer": answer, "gold": answer,
            "response": response if isinstance(response, str) else "", "pred": pred,
            "correct": pred is not None and pred == answer, "parse_failed": failed,
            "gold_out_of_range": answer not in letters,
            "nested_options": any(isinstance(o, list) for o in options)}


def score(engine, cfg: TaskConfig, batch: list[Row], context=None) -> list[Record]:
    s = cfg.scoring
    requests = [GenRequest(r.text, r.images, chat=True) for r in batch]
    responses = engine.generate(requests, s.max_new_tokens)
    records = []
    for r, response in zip(batch, responses):
        rec = score_response(r.id, r.subject, r.options, r.answer, response, s.fallback, cfg.seed)
        rec["images"] = [{"sha256": hashlib.sha256(im.tobytes()).hexdigest()[:16], "size": list(im.size)}
                         for im in r.images]  # hashes and sizes, never the bytes
        records.append(rec)
    return with_prompts(engine, cfg, records, requests)


def summarize(records: list[dict], cfg: TaskConfig | None = None) -> Metrics:
    metrics, stderr = {}, {}
    metrics["acc"], stderr["acc"] = accuracy(records)
    metrics["fallback_rate"], stderr["fallback_rate"] = accuracy(records, "parse_failed")
    per = by_subject(records)
    for subject, fb in by_subject(records, "parse_failed").items():
        per[subject].update(fallback_rate=fb["acc"], fallback_rate_stderr=fb["stderr"])
    # cfg is None under `nanoeval rescore`, whose fallback is its own option: the count only
    fallback = None if cfg is None else ("scored a seeded random letter", "chance") \
        if cfg.scoring.fallback == "seeded" else ("counted those rows wrong", "zeros")
    counts, notes = fallback_summary(records, fallback)
    # a uniform guess among each question's options (MMMU-Pro has up to 10), averaged: the plot's chance line
    # (a record without its options, e.g. a reduced predictions row, has no say in it)
    sizes = [len(r["options"]) for r in records if r.get("options")]
    chance = sum(1 / k for k in sizes) / len(sizes) if sizes else None
    return Metrics("acc", metrics, stderr, per, chance=chance, notes=notes, counts={
        **counts,  # fallback_rows
        "nested_options_rows": sum(r["nested_options"] for r in records),
        "gold_out_of_range_rows": sum(r["gold_out_of_range"] for r in records)})


def load(cfg: TaskConfig, subject: str, root) -> CaseData:
    batch, skipped = rows(cfg, subject, root)
    if not batch and not skipped:
        raise DataError(f"dataset {dataset_label(cfg.dataset)}: no rows for subject {subject!r}")
    return CaseData(batch, skipped)


def rescore_row(row: dict, where: str, options: MMMUProOptions, seed: int) -> dict:
    """A saved row (NanoEval's predictions.jsonl, or the official MMMU-Pro output files) scored again."""
    return score_response(str(row["id"]), str(row.get("subject", "all")), parse_options(row["options"], where),
                          str(row["answer"]), row["response"], options.fallback, seed)


BENCHMARK = Benchmark(
    name="mmmu_pro", doc="MMMU-Pro: multimodal multiple choice, standard and vision settings (official recipe)",
    options=MMMUProOptions, strategies=("gen_letter",),
    dataset={"path": "MMMU/MMMU_Pro", "name": "standard (10 options)", "split": "test"},
    dataset_from_options=lambda options: {"name": options.setting},  # the hub config is the setting
    cases=cases, load=load, score=score, summarize=summarize, recipe=recipe, case_sizes=case_sizes,
    check_cases=check_cases, chunk=8, id_column="id",
    columns=("id", "subject", "question", "options", "answer", "image"),  # image: the vision setting's screenshot;
    #                                                    the standard setting's image_1..image_7 are read as named
    rescore=Rescorer(
        needs=("id", "response", "options", "answer"), score=rescore_row,
        options={"fallback": {"choices": ["seeded", "count_wrong"], "default": "seeded"}},
        describe=lambda options, seed: {"parser": "official mmmu-pro/evaluate.py order",
                                        "fallback": options.fallback, "seed": seed},
        report=lambda m, options, seed: f"; fallback rows: {m.counts['fallback_rows']} ({options.fallback}"
                                        f"{f', seed {seed}' if options.fallback == 'seeded' else ''})"))
