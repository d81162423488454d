"""MMMU-Pro (Yue et al., 2024): multimodal multiple choice, 30 subjects. One pytest case per subject.

Recipe: the official MMMU-Pro code (mmmu-pro/infer, evaluate.py, prompts.yaml), evals/prompts.py:
    standard: "{question}\\n{A. opt\\nB. opt ...}\\n{instruction}", each <image N> tag -> "[image]", the images
              (column image_N) attached after the text in order of first appearance;
    vision:   "{instruction}" and the one screenshot that holds question and options.
One user turn in the model's chat template with the generation prompt, greedy decoding (scoring.max_new_tokens;
50 for direct answers, as published), then the official parser (evals/scoring.py): last "Answer:", (X), "X ",
"X.", option text; no candidate -> a letter drawn from random.Random(f"{seed}:{id}") (`fallback: seeded`,
marked parse_failed) or scored wrong (`fallback: count_wrong`). Letters come from the number of options.
Only `gen_letter` exists: `rank_ll` is refused when the config loads.

Headline `acc` (micro over rows, as published). Reference (official GPT-4o outputs, this parser, fallback counted
wrong): standard-10 direct 40.12, cot 55.03; vision direct 41.91 (42.43 published with random fallback), cot 50.06.
"""
from __future__ import annotations

import ast
import hashlib
import io
from dataclasses import dataclass, field

from evals.config import TaskConfig
from evals.data import DataError, dataset_label, get, parse_rows, subject_cases, subject_sizes, unknown_subjects
from evals.engine import GenRequest
from evals.prompts import MMMU_INSTRUCTIONS, mmmu_standard_prompt
from evals.scoring import accuracy, by_subject, option_letters, parse_mmmu_pro

TASK = "mmmu_pro"
SUBJECTS = sorted("""Accounting Agriculture Architecture_and_Engineering Art Art_Theory Basic_Medical_Science Biology
    Chemistry Clinical_Medicine Computer_Science Design Diagnostics_and_Laboratory_Medicine Economics Electronics
    Energy_and_Power Finance Geography History Literature Manage Marketing Materials Math Mechanical_Engineering
    Music Pharmacy Physics Psychology Public_Health Sociology""".split())  # 30


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

    def parse(raw, where, k):
        where = f"{where} (id {raw.get('id')!r})"
        options = parse_options(get(raw, ds, "options", where), where)
        if vision:
            text = MMMU_INSTRUCTIONS[(s.prompt_style, "vision")]
            images = [_image(get(raw, ds, "image", where), where, "image")]
        else:
            text, order = mmmu_standard_prompt(str(get(raw, ds, "question", where)), options, s.prompt_style)
            images = [_image(raw.get(f"image_{n}"), where, f"image_{n}") for n in order]
        return Row(str(get(raw, ds, "id", where)), subject, options, str(get(raw, ds, "answer", where)), text,
                   images, any(isinstance(o, list) for o in options))

    return parse_rows(ds, ds.split, root, parse, subject=subject)


def recipe(cfg: TaskConfig, root) -> dict:
    s = cfg.scoring
    return {"template": "official MMMU-Pro: standard = question, lettered options, instruction, <image N> -> "
                        "[image], images after the text; vision = instruction + screenshot",
            "setting": s.setting, "prompt_style": s.prompt_style, "strategy": "gen_letter",
            "instruction": MMMU_INSTRUCTIONS[(s.prompt_style, "vision" if s.setting == "vision" else "standard")],
            "chat_template": True, "max_new_tokens": s.max_new_tokens, "decoding": "greedy",
            "parser": "official mmmu-pro/evaluate.py order", "fallback": s.fallback,
            "fallback_seed": f"random.Random(f'{cfg.seed}:{{id}}')" if s.fallback == "seeded" else None}


def score_response(row_id: str, subject: str, options: list, answer: str, response, fallback: str,
                   seed: int) -> dict:
    """One record from a saved or fresh response (shared with `nanoeval rescore`)."""
    pred, failed = parse_mmmu_pro(response, options, f"{seed}:{row_id}" if fallback == "seeded" else None)
    letters = option_letters(len(options))
    return {"id": row_id, "subject": subject, "options": options, "answer": answer, "gold": answer,
            "response": response if isinstance(response, str) else "", "pred": pred,
            "correct": pred is not None and pred == answer, "parse_failed": failed,
            "gold_out_of_range": answer not in letters,
            "nested_options": any(isinstance(o, list) for o in options)}


def score(engine, cfg: TaskConfig, batch: list[Row]) -> list[dict]:
    s = cfg.scoring
    responses = engine.generate([GenRequest(r.text, r.images, chat=True) for r in batch], s.max_new_tokens)
    records = []
    for r, response in zip(batch, responses):
        rec = score_response(r.id, r.subject, r.options, r.answer, response, s.fallback, cfg.seed)
        rec["images"] = [{"sha256": hashlib.sha256(im.tobytes()).hexdigest()[:16], "size": list(im.size)}
                         for im in r.images]  # hashes and sizes, never the bytes
        records.append(rec)
    return records


def summarize(records: list[dict], cfg: TaskConfig | None = None) -> dict:
    metrics, stderr = {}, {}
    metrics["acc"], stderr["acc"] = accuracy(records)
    metrics["fallback_rate"], stderr["fallback_rate"] = accuracy(records, "parse_failed")
    per = by_subject(records)
    for subject, fb in by_subject(records, "parse_failed").items():
        per[subject].update(fallback_rate=fb["acc"], fallback_rate_stderr=fb["stderr"])
    return {"headline": "acc", "metrics": metrics, "stderr": stderr, "per_subject": per,
            "counts": {"fallback_rows": sum(r["parse_failed"] for r in records),
                       "nested_options_rows": sum(r["nested_options"] for r in records),
                       "gold_out_of_range_rows": sum(r["gold_out_of_range"] for r in records)}}


def test_mmmu_pro(case, engine):
    batch, skipped = rows(case.cfg, case.id, case.root)
    if not batch and not skipped:
        raise DataError(f"dataset {dataset_label(case.cfg.dataset)}: no rows for subject {case.id!r}")
    if case.cfg.dataset.limit:
        batch = batch[: case.cfg.dataset.limit]
    case.run(batch, lambda b: score(engine, case.cfg, b), engine, skipped, chunk=8)
