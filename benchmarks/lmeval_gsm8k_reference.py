"""lm-evaluation-harness's own per-row outputs for GSM8K (`gsm8k`, `gsm8k_cot`) on local fixture files.

    python benchmarks/lmeval_gsm8k_reference.py --model FOLDER --out tests/data/gsm8k/lmeval_0.4.13_smollm2.jsonl

lm_eval (0.4.13, `hf` backend) lives in a venv of its own (`--lmeval-python`, default $LMEVAL_PYTHON or
/work/lmeval-venv/bin/python) and is never a NanoEval dependency; this script only needs the standard library.
For each variant it writes a local task YAML that `include:`s lm-eval's OWN task YAML (gsm8k/gsm8k.yaml,
gsm8k/gsm8k-cot.yaml) and overrides only where the data comes from (dataset_path: json, dataset_name: null,
dataset_kwargs.data_files: the fixture's test and train files; the variant `standard_fewshot_from_test` also
fewshot_split: test, where lm-eval's sampler leaves the scored doc out of its shots), then runs, with lm-eval's
defaults otherwise (num_fewshot from the YAML, fewshot seed 1234, max_gen_toks 256, no chat template):

    python -m lm_eval --model hf --model_args pretrained=FOLDER,dtype=float32 --device cpu --batch_size 8 \\
        --tasks nanoeval_gsm8k_standard,... --include_path WORK/tasks --log_samples --output_path WORK/out

and writes one JSON line per (variant, doc) in the split's order: variant, formulation, doc_index (0-based position in
the test split), prompt (the context lm-eval generated from: arg_0), until (its stop sequences), target
(doc_to_target), response (the generation, cut at the stop sequences), extracted and exact_match per filter
(lm-eval's filtered_resps and its per-doc exact_match). A summary (lm-eval's aggregates, seconds, versions, the
command) is printed as JSON.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # name -> (formulation, lm-eval's YAML, lines added to the local task YAML)
    "standard": ("standard", "gsm8k/gsm8k.yaml", []),
    "cot": ("cot", "gsm8k/gsm8k-cot.yaml", []),
    "standard_fewshot_from_test": ("standard", "gsm8k/gsm8k.yaml", ["fewshot_split: test"]),
}


def write_tasks(py: str, data: Path, variants: list[str], task_dir: Path) -> dict[str, str]:
    """One local task YAML per variant in task_dir (lm-eval's own YAML included, data from data/test|train.jsonl);
    returns variant -> task name."""
    lm_tasks = Path(subprocess.run([py, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
                                   capture_output=True, text=True, check=True).stdout.strip()) / "tasks"
    task_dir.mkdir(parents=True, exist_ok=True)
    names = {}
    for variant in variants:
        _, rel, extra = VARIANTS[variant]
        names[variant] = f"nanoeval_gsm8k_{variant}"
        (task_dir / f"{names[variant]}.yaml").write_text("\n".join([
            f"include: {json.dumps(str(lm_tasks / rel))}", f"task: {names[variant]}", "dataset_path: json",
            "dataset_name: null", "dataset_kwargs:", "  data_files:",
            f"    test: {json.dumps(str(data / 'test.jsonl'))}", f"    train: {json.dumps(str(data / 'train.jsonl'))}",
            *extra, ""]))
    return names


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an HF model folder")
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "gsm8k"), help="holds test.jsonl, train.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lmeval-python", default=os.environ.get("LMEVAL_PYTHON", "/work/lmeval-venv/bin/python"))
    ap.add_argument("--batch-size", default="8")
    ap.add_argument("--limit", help="lm-eval's --limit (the first N docs)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    a = ap.parse_args()
    py, data = a.lmeval_python, Path(a.data).resolve()
    work = Path(tempfile.mkdtemp(prefix="lmeval_gsm8k_"))
    names = write_tasks(py, data, a.variants.split(","), work / "tasks")
    cmd = [py, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={a.model},dtype=float32",
           "--device", "cpu", "--batch_size", a.batch_size, "--tasks", ",".join(names.values()),
           "--include_path", str(work / "tasks"), "--log_samples", "--output_path", str(work / "out")]
    if a.limit:
        cmd += ["--limit", a.limit]
    start = time.time()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    seconds = time.time() - start
    rows = []
    for variant, name in names.items():
        [path] = glob.glob(str(work / "out" / "**" / f"samples_{name}_20*.jsonl"), recursive=True)
        docs: dict[int, dict] = {}
        for line in Path(path).read_text().splitlines():
            s = json.loads(line)
            args = s["arguments"]["gen_args_0"]
            row = docs.setdefault(s["doc_id"], {
                "variant": variant, "formulation": VARIANTS[variant][0], "doc_index": s["doc_id"],
                "prompt": args["arg_0"], "until": args["arg_1"]["until"],
                "target": s["target"], "response": s["resps"][0][0], "extracted": {}, "exact_match": {}})
            filtered = s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"]
            row["extracted"][s["filter"]], row["exact_match"][s["filter"]] = filtered, s["exact_match"]
        rows += [docs[i] for i in sorted(docs)]
    Path(a.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    [results] = glob.glob(str(work / "out" / "**" / "results_*.json"), recursive=True)
    summary = {"results": json.loads(Path(results).read_text())["results"], "seconds": round(seconds, 1),
               "command": " ".join(cmd), "versions": json.loads(subprocess.run(
                   [py, "-c", "import json, lm_eval, torch, transformers; print(json.dumps({'lm_eval': "
                    "lm_eval.__version__, 'torch': torch.__version__, 'transformers': transformers.__version__}))"],
                   capture_output=True, text=True, check=True).stdout)}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
