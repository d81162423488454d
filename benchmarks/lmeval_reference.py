"""lm-evaluation-harness's own per-example outputs for a multiple-choice task on local fixture files.

    python benchmarks/lmeval_reference.py piqa                      # tests/data/piqa -> tests/data/piqa/lmeval_0.4.13_smollm2.jsonl
    python benchmarks/lmeval_reference.py winogrande --data DIR --out FILE.jsonl
    python benchmarks/lmeval_reference.py arc_easy --data tests/data/arc/ARC-Easy --out /tmp/arc_easy.jsonl
    python benchmarks/lmeval_reference.py mmlu_continuation --data tests/data/mmlu_tiny --out /tmp/mmlu_cont.jsonl
    python benchmarks/lmeval_reference.py piqa --variant letters \\
        --doc-to-text 'Question: {{goal}}\\nA. {{sol1}}\\nB. {{sol2}}\\nAnswer:' --doc-to-choice '["A", "B"]' \\
        --doc-to-target label --metrics acc --out /tmp/piqa_letters.jsonl

lm_eval (0.4.13, `hf` backend) lives in a venv of its own (`--lmeval-python`, default $LMEVAL_PYTHON or
/work/lmeval-venv/bin/python) and is never a NanoEval dependency; this script only needs the standard library.

For a named task it writes a local task YAML that `include:`s lm-eval's OWN task YAML from that venv and overrides
only where the data comes from (dataset_path: json, dataset_name: null, dataset_kwargs.data_files, the split keys);
`!function` references in the included YAML resolve next to the included file (lm-eval's loader builds each file's
loader from that file's own folder), so WinoGrande's preprocess module is used unchanged, in place.
`mmlu_continuation` includes lm-eval's `mmlu/continuation/_continuation_template_yaml` and adds the per-subject
description those generated subject YAMLs carry, as a per-doc template over the `subject` column.
`--variant NAME` (a 'cloze' or 'letters' form lm-eval has no task for) writes a stand-alone YAML from the templates
given on the command line instead, on the same data files and splits (a literal \\n / \\t in them is a newline / tab).

It runs `python -m lm_eval ... --num_fewshot 0 --log_samples` (float32, CPU, batch 8 by default) under
/usr/bin/time -v when present, and writes one JSON line per doc in dataset order:
    task, doc_index (0-based position in the split), id (the doc's own id column, if it has one), gold,
    pred (argmax of lls), pred_norm (argmax of ll / len(choice text in chars): lm-eval's acc_norm; only where
    lm-eval reports acc_norm), lls (rounded to 1e-5), and the per-doc acc / acc_norm lm-eval itself logged.
gold/pred/pred_norm are checked against lm-eval's own per-doc acc/acc_norm for every doc (a mismatch is an error).
A summary (aggregates, seconds, peak RSS, command, versions) is printed as JSON and, with --summary, appended there.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (lm-eval task YAML relative to lm_eval/tasks, eval split, default data dir, id column or None)
TASKS = {
    "piqa": ("piqa/piqa.yaml", "validation", "tests/data/piqa", None),
    "winogrande": ("winogrande/default.yaml", "validation", "tests/data/winogrande", None),
    "commonsense_qa": ("commonsense_qa/default.yaml", "validation", "tests/data/commonsense_qa", "id"),
    "openbookqa": ("openbookqa/openbookqa.yaml", "test", "tests/data/openbookqa", "id"),
    "social_iqa": ("siqa/siqa.yaml", "validation", "tests/data/social_iqa", None),
    "boolq": ("super_glue/boolq/default.yaml", "validation", "tests/data/boolq", "idx"),
    "arc_easy": ("arc/arc_easy.yaml", "test", "tests/data/arc/ARC-Easy", "id"),
    "arc_challenge": ("arc/arc_challenge.yaml", "test", "tests/data/arc/ARC-Challenge", "id"),
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation", "tests/data/hellaswag", "ind"),
    "mmlu_continuation": ("mmlu/continuation/_continuation_template_yaml", "test", "tests/data/mmlu_tiny", None),
}
# lm-eval's generated mmlu/continuation/mmlu_<subject>.yaml each carry this description, subject with spaces
MMLU_CONTINUATION_DESCRIPTION = "The following are questions (with answers) about {{subject|replace('_', ' ')}}.\n\n"
MODEL_GLOB = "~/.cache/nanoeval/gguf/SmolLM2-135M-Instruct.Q4_1-*"


def q(s) -> str:
    """A YAML scalar: JSON is valid YAML for strings/null/lists, so no YAML library is needed here."""
    return json.dumps(s)


def lmeval_dir(py: str) -> Path:
    out = subprocess.run([py, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out)


def versions(py: str) -> dict:
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "['lm_eval', 'torch', 'transformers', 'tokenizers', 'datasets', 'accelerate', 'numpy']}))")
    return json.loads(subprocess.run([py, "-c", code], capture_output=True, text=True, check=True).stdout)


def default_model() -> Path:
    hits = [Path(p) for p in sorted(glob.glob(os.path.expanduser(MODEL_GLOB))) if (Path(p) / "config.json").exists()]
    if not hits:
        sys.exit(f"no HF folder matches {MODEL_GLOB}; pass --model")
    return hits[0]


def split_files(data: Path, eval_split: str) -> dict[str, Path]:
    files = {eval_split: data / f"{eval_split}.jsonl"}
    if not files[eval_split].exists():
        sys.exit(f"missing {files[eval_split]}")
    for extra in ("train", "dev"):
        if (data / f"{extra}.jsonl").exists() and extra != eval_split:
            files[extra] = data / f"{extra}.jsonl"
    return files


def data_lines(files: dict[str, Path], train_split: str | None) -> list[str]:
    lines = ["dataset_path: json", "dataset_name: null", "dataset_kwargs:", "  data_files:"]
    lines += [f"    {s}: {q(str(p))}" for s, p in files.items()]
    lines.append(f"training_split: {q(train_split)}")
    return lines


def split_lines(eval_split: str) -> list[str]:
    return [f"validation_split: {q('validation' if eval_split == 'validation' else None)}",
            f"test_split: {q('test' if eval_split == 'test' else None)}"]


def included_task_yaml(task: str, lm_tasks: Path, files: dict[str, Path], eval_split: str) -> str:
    rel = TASKS[task][0]
    lines = [f"include: {q(str(lm_tasks / rel))}", f"task: nanoeval_{task}"]
    lines += data_lines(files, "train" if "train" in files else None)
    lines += split_lines(eval_split)
    if task == "mmlu_continuation":
        # the template's fewshot_split is dev; without a dev file fall back to no fewshot split (0-shot anyway)
        lines.append(f"fewshot_split: {q('dev' if 'dev' in files else None)}")
        lines.append(f"description: {q(MMLU_CONTINUATION_DESCRIPTION)}")
    return "\n".join(lines) + "\n"


def unescape(s: str | None) -> str | None:
    """Command-line templates may spell a newline / tab as \\n / \\t (as in a YAML double-quoted string)."""
    return None if s is None else s.replace("\\n", "\n").replace("\\t", "\t")


def template_value(s: str):
    """--doc-to-choice '["A", "B"]' is a list; '{{[sol1, sol2]}}' or a column name stays a string."""
    s = s.strip()
    if s.startswith("["):
        return json.loads(s)
    return s


def variant_task_yaml(task: str, variant: str, files: dict[str, Path], eval_split: str, a) -> str:
    lines = [f"task: nanoeval_{task}_{variant}", "output_type: multiple_choice"]
    lines += data_lines(files, "train" if "train" in files else None)
    lines += split_lines(eval_split)
    lines += [f"doc_to_text: {q(unescape(a.doc_to_text))}",
              f"doc_to_choice: {q(template_value(unescape(a.doc_to_choice)))}",
              f"doc_to_target: {q(unescape(a.doc_to_target))}"]
    if a.target_delimiter is not None:
        lines.append(f"target_delimiter: {q(unescape(a.target_delimiter))}")
    if a.description:
        lines.append(f"description: {q(unescape(a.description))}")
    lines.append("metric_list:")
    for m in a.metrics.split(","):
        lines += [f"  - metric: {m}", "    aggregation: mean", "    higher_is_better: true"]
    lines += ["metadata:", "  version: 1.0"]
    return "\n".join(lines) + "\n"


def argmax(xs) -> int:
    return max(range(len(xs)), key=xs.__getitem__)  # first maximum, as numpy.argmax


def request_pairs(sample: dict) -> list[tuple[str, str]]:
    """(context, continuation) of each loglikelihood request of a doc, as lm-eval logged them."""
    args = sample["arguments"]
    if isinstance(args, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}
        return [(a["arg_0"], a["arg_1"]) for a in (args[k] for k in sorted(args, key=lambda k: int(k.split("_")[-1])))]
    return [(a[0], a[1]) for a in args]


def rows_from_samples(samples: list[dict], task: str, id_col: str | None, delimiter: str, multiple_input: bool,
                      gold_fn) -> list[dict]:
    rows = []
    for i, s in enumerate(sorted(samples, key=lambda s: s["doc_id"])):
        if s["doc_id"] != i:
            raise SystemExit(f"{task}: doc_id {s['doc_id']} at position {i}: samples are not the whole split")
        lls = [float(r[0]) for r in s["filtered_resps"]]
        pairs = request_pairs(s)
        if len(pairs) != len(lls):
            raise SystemExit(f"{task} doc {i}: {len(pairs)} requests but {len(lls)} log-likelihoods")
        gold = gold_fn(s)
        row = {"task": task, "doc_index": i}
        if id_col:
            row["id"] = s["doc"][id_col]
        row["gold"] = gold
        row["pred"] = argmax(lls)
        if "acc_norm" in s:
            if multiple_input:  # lm-eval divides by len(doc_to_choice) = the filled-in contexts
                lens = [len(ctx) for ctx, _ in pairs]
            else:  # the choice text: the continuation less lm-eval's target delimiter
                lens = [len(cont) - (len(delimiter) if cont.startswith(delimiter) else 0) for _, cont in pairs]
            row["pred_norm"] = argmax([ll / n for ll, n in zip(lls, lens)])
        row["lls"] = [round(x, 5) for x in lls]
        for m in ("acc", "acc_norm"):
            if m in s:
                row[m] = s[m]
        # every doc: what we derive must be what lm-eval scored
        if "acc" in s and float(row["pred"] == gold) != float(s["acc"]):
            raise SystemExit(f"{task} doc {i}: pred {row['pred']} gold {gold} but lm-eval logged acc {s['acc']}")
        if "acc_norm" in s and float(row["pred_norm"] == gold) != float(s["acc_norm"]):
            raise SystemExit(f"{task} doc {i}: pred_norm {row['pred_norm']} gold {gold} but lm-eval logged "
                             f"acc_norm {s['acc_norm']}")
        rows.append(row)
    return rows


def gold_function(task: str, variant: str | None, multiple_input: bool):
    def gold(s):
        if multiple_input:  # WinoGrande: doc_to_text is the gold index ({"1": 0, "2": 1}[answer]); target is text
            return {"1": 0, "2": 1}[s["doc"]["answer"]]
        t = s["target"]
        if isinstance(t, str):
            if t.strip().lstrip("-").isdigit():
                return int(t)
            # a target that is a choice's text (commonsense_qa: answerKey letter among ['A'..'E'])
            conts = [c for _, c in request_pairs(s)]
            hits = [i for i, c in enumerate(conts) if c.strip() == t.strip()]
            if len(hits) != 1:
                raise SystemExit(f"{task} doc {s['doc_id']}: target {t!r} is not exactly one of {conts}")
            return hits[0]
        return int(t)
    return gold


def parse_time_v(text: str) -> dict:
    out = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["peak_rss_mb"] = round(int(m.group(1)) / 1024, 1)
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if m:
        secs = 0.0
        for part in m.group(1).split(":"):
            secs = secs * 60 + float(part)
        out["time_v_wall_s"] = round(secs, 2)
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(TASKS))
    ap.add_argument("--data", type=Path, help="folder with <split>.jsonl (+ train.jsonl / dev.jsonl); default per task")
    ap.add_argument("--split", help="the evaluated split (default: lm-eval's own for the task)")
    ap.add_argument("--out", type=Path, help="per-doc JSONL (default <data>/lmeval_0.4.13_smollm2.jsonl, "
                                               "<data>/lmeval_0.4.13_smollm2_<variant>.jsonl with --variant)")
    ap.add_argument("--lmeval-python", default=os.environ.get("LMEVAL_PYTHON", "/work/lmeval-venv/bin/python"))
    ap.add_argument("--model", type=Path, help=f"HF folder (default {MODEL_GLOB})")
    ap.add_argument("--batch", default="8", help="lm-eval --batch_size")
    ap.add_argument("--workdir", type=Path, help="keep the task YAML, lm-eval's outputs and log here")
    ap.add_argument("--summary", type=Path, help="append the run's summary JSON line here")
    ap.add_argument("--limit", type=int, help="lm-eval --limit (smoke tests only: not a reference)")
    v = ap.add_argument_group("variant (a task lm-eval does not have: a stand-alone YAML on the same data)")
    v.add_argument("--variant", help="e.g. cloze, letters")
    v.add_argument("--doc-to-text")
    v.add_argument("--doc-to-choice", help="a Jinja string ('{{[sol1, sol2]}}'), a column, or a JSON list")
    v.add_argument("--doc-to-target")
    v.add_argument("--target-delimiter", help="default lm-eval's ' '")
    v.add_argument("--description", help="a per-doc Jinja template prepended to the prompt")
    v.add_argument("--metrics", default="acc,acc_norm")
    return ap


def reference(a: argparse.Namespace, write: bool = True) -> tuple[list[dict], dict]:
    """Run lm-eval for the parsed arguments `a`; the per-doc rows (written to the --out file when `write`) and the
    summary. benchmarks/compare_lmeval.py calls this with `build_parser().parse_args([...])`."""
    rel, eval_split, default_data, id_col = TASKS[a.task]
    eval_split = a.split or eval_split
    data = (a.data or ROOT / default_data).resolve()
    name = f"{a.task}_{a.variant}" if a.variant else a.task
    out = a.out or data / (f"lmeval_0.4.13_smollm2_{a.variant}.jsonl" if a.variant else "lmeval_0.4.13_smollm2.jsonl")
    model = (a.model or default_model()).resolve()
    lm_tasks = lmeval_dir(a.lmeval_python) / "tasks"
    files = split_files(data, eval_split)

    if a.variant:
        if not (a.doc_to_text and a.doc_to_choice and a.doc_to_target):
            sys.exit("--variant needs --doc-to-text, --doc-to-choice and --doc-to-target")
        yaml_text = variant_task_yaml(a.task, a.variant, files, eval_split, a)
        multiple_input, delimiter = False, " " if a.target_delimiter is None else unescape(a.target_delimiter)
    else:
        yaml_text = included_task_yaml(a.task, lm_tasks, files, eval_split)
        multiple_input = a.task == "winogrande"
        delimiter = " "  # none of these lm-eval YAMLs changes target_delimiter (siqa sets " " explicitly)
    lm_task = f"nanoeval_{name}"

    tmp = None
    if a.workdir:
        work = a.workdir.resolve()
        if work.exists():
            shutil.rmtree(work / "out", ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    (work / "tasks").mkdir(exist_ok=True)
    (work / "tasks" / f"{lm_task}.yaml").write_text(yaml_text)

    cmd = [a.lmeval_python, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
           "--device", "cpu", "--batch_size", a.batch, "--tasks", lm_task, "--include_path", str(work / "tasks"),
           "--num_fewshot", "0", "--log_samples", "--output_path", str(work / "out")]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    timed = ["/usr/bin/time", "-v"] + cmd if Path("/usr/bin/time").exists() else cmd
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.time()
    with open(work / "lm_eval.log", "w") as log:
        proc = subprocess.run(timed, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = round(time.time() - t0, 2)
    log_text = (work / "lm_eval.log").read_text(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(log_text[-4000:])
        sys.exit(f"lm_eval failed (rc {proc.returncode}); log in {work / 'lm_eval.log'}")

    samples_files = sorted((work / "out").rglob(f"samples_{lm_task}_*.jsonl"))
    results_files = sorted((work / "out").rglob("results_*.json"))
    if not samples_files or not results_files:
        sys.exit(f"no samples/results under {work / 'out'}")
    samples = [json.loads(line) for line in open(samples_files[-1])]
    results = json.loads(results_files[-1].read_text())["results"][lm_task]
    rows = rows_from_samples(samples, name, id_col, delimiter, multiple_input,
                             gold_function(a.task, a.variant, multiple_input))
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))

    agg = {k.split(",")[0]: round(v, 4) for k, v in results.items()
           if k.split(",")[0] in ("acc", "acc_norm") and not k.split(",")[0].endswith("_stderr")}
    for m, value in agg.items():  # the file's per-doc column averages to lm-eval's aggregate
        mean = sum(r[m] for r in rows) / len(rows)
        if abs(mean - value) > 6e-5:
            sys.exit(f"{name}: per-doc {m} mean {mean} != lm-eval aggregate {value}")
    summary = {"task": name, "lm_eval_task": lm_task, "docs": len(rows), **agg, "seconds": seconds,
               **parse_time_v(log_text), "out": str(out), "data_files": {s: str(p) for s, p in files.items()},
               "model": str(model), "versions": versions(a.lmeval_python),
               "command": " ".join(cmd[:1] + cmd[1:]).replace(str(work), "<work>")}
    if a.summary:
        with open(a.summary, "a") as f:
            f.write(json.dumps(summary) + "\n")
    if tmp:
        tmp.cleanup()
    return rows, summary


def main():
    _, summary = reference(build_parser().parse_args())
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
