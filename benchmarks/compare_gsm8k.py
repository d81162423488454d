"""Per-example agreement with lm-eval 0.4.13's own gsm8k / gsm8k_cot on the same rows, same model (issue 31).

    python benchmarks/compare_gsm8k.py --model FOLDER --data DIR [--formulation standard|cot] [--limit N]
        [--batch-size 8] [--token-budget 16384] [--lmeval-rows F --lmeval-seconds S] [--nanoeval-dir D --nanoeval-seconds S]

DIR holds test.jsonl (e.g. the first 50 rows of the real test split, copied OUTSIDE the repo) and train.jsonl (the
shots' pool: tests/data/gsm8k/train.jsonl). lm-eval: benchmarks/lmeval_gsm8k_reference.py (its own YAML included,
the local files, `hf` backend, float32, CPU, --batch_size 8 by default). NanoEval: `pytest evals/` on
configs/gsm8k_smollm2.yaml with the model pointed at FOLDER, the data files = DIR's, one shard, the formulation set
(cot: the config's num_fewshot and until dropped, so that cot's own 8 exemplars and stop strings apply),
`report.prompts: true`, `engine.token_budget` (default 16384: several rows a batch, as lm-eval batches them).
Either side can be given as finished output instead (--lmeval-rows: the reference script's jsonl; --nanoeval-dir:
a report dir holding predictions.jsonl). Rows pair by doc index = row number = NanoEval's record id. Prints rows,
% identical prompts, responses, extracted answers per extractor and exact match, the rows that differ (both
responses from their first divergence) and each tool's wall seconds.
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
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_lmeval(a, tmp: Path) -> tuple[list[dict], float]:
    out, t0 = tmp / "lmeval.jsonl", time.time()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "lmeval_gsm8k_reference.py"), "--model", a.model, "--data",
           a.data, "--variants", a.formulation, "--batch-size", str(a.batch_size), "--out", str(out)]
    subprocess.run(cmd + (["--limit", str(a.limit)] if a.limit else []), check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    return [json.loads(line) for line in open(out)], time.time() - t0


def run_nanoeval(a, tmp: Path) -> tuple[list[dict], float]:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "gsm8k_smollm2.yaml").read_text())
    data = Path(a.data).resolve()
    cfg["model"] = {"path": a.model}
    cfg["dataset"] = {**{k: v for k, v in cfg["dataset"].items() if k != "package"},
                      "data_files": {"test": str(data / "test.jsonl"), "train": str(data / "train.jsonl")},
                      **({"limit": a.limit} if a.limit else {})}
    cfg["scoring"].update(formulation=a.formulation, num_shards=1)
    if a.formulation != "standard":  # the shipped config's shots (5) and stop strings are standard's: cot has its own
        cfg["scoring"] = {k: v for k, v in cfg["scoring"].items() if k not in ("num_fewshot", "until")}
    cfg.update(report_dir=str(tmp / "nanoeval"), report={"prompts": True},
               engine={"token_budget": a.token_budget, "threads": a.threads})
    (tmp / "nanoeval.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=True,
                   env={**ENV, "NANOEVAL_CONFIG": str(tmp / "nanoeval.yaml")}, stdout=subprocess.DEVNULL)
    return read_predictions(tmp / "nanoeval"), time.time() - t0


def read_predictions(d: Path) -> list[dict]:
    return [json.loads(line) for line in open(Path(d) / "predictions.jsonl")]


def divergence(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(theirs: list[dict], ours: list[dict]) -> dict:
    t = {str(r["doc_index"]): r for r in theirs}
    o = {r["id"]: r for r in ours}
    ids = sorted(set(t) & set(o), key=int)
    filters = sorted({f for r in theirs for f in r["extracted"]})
    pct = lambda n: round(100 * n / len(ids), 1)  # noqa: E731
    same = {"prompt": pct(sum(t[i]["prompt"] == o[i].get("prompt") for i in ids)),
            "response": pct(sum(t[i]["response"] == o[i]["response"] for i in ids))}
    for f in filters:
        same[f"extracted {f}"] = pct(sum(t[i]["extracted"][f] == o[i]["extracted"][f] for i in ids))
        same[f"exact_match {f}"] = pct(sum(bool(t[i]["exact_match"][f]) == bool(o[i]["exact_match"][f]) for i in ids))
    differ = []
    for i in ids:
        if t[i]["response"] != o[i]["response"] or t[i]["extracted"] != o[i]["extracted"]:
            k = divergence(t[i]["response"], o[i]["response"])
            differ.append({"id": i, "at_char": k, "lm_eval": t[i]["response"][max(0, k - 20):k + 60],
                           "nanoeval": o[i]["response"][max(0, k - 20):k + 60],
                           "extracted": {"lm_eval": t[i]["extracted"], "nanoeval": o[i]["extracted"]}})
    return {"rows": len(ids), "only_lm_eval": sorted(set(t) - set(o)), "only_nanoeval": sorted(set(o) - set(t)),
            "identical_pct": same, "differ": differ,
            "exact_match_mean": {"lm_eval": {f: sum(bool(t[i]["exact_match"][f]) for i in ids) / len(ids)
                                             for f in filters},
                                 "nanoeval": {f: sum(bool(o[i]["exact_match"][f]) for i in ids) / len(ids)
                                              for f in filters}}}


def batch_of_one(model: str, prompts: dict[str, str], until: list[str], max_new_tokens: int = 256) -> dict:
    """Each prompt alone (batch of one, no padding), greedy: NanoEval's engine (generation.generate) and plain
    `model.generate` cut at the first stop string (what lm-eval's hf backend does, one row a batch)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from nanoeval.config import EngineConfig, ModelConfig
    from nanoeval.engine import Engine
    from nanoeval.engine.generation import generate
    from nanoeval.engine.requests import GenRequest

    engine = Engine(ModelConfig(path=model), EngineConfig(token_budget=1, threads=1), ROOT)
    tok, hf = AutoTokenizer.from_pretrained(model), AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    out = {}
    for i, p in prompts.items():
        ours = generate(engine, [GenRequest(text=p, chat=False, until=tuple(until))], max_new_tokens)[0][0]
        ids = tok(p, return_tensors="pt").input_ids
        with torch.inference_mode():
            new = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=max_new_tokens)[0, ids.shape[1]:]
        text = tok.decode(new, skip_special_tokens=True)
        theirs = text[:min([text.find(u) for u in until if u in text], default=len(text))]
        out[i] = {"nanoeval_b1": ours, "hf_generate_b1": theirs}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="an HF model folder (both tools)")
    ap.add_argument("--data", help="a folder holding test.jsonl and train.jsonl")
    ap.add_argument("--formulation", default="standard", choices=["standard", "cot"])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--batch-size", default="8", help="lm-eval's --batch_size")
    ap.add_argument("--token-budget", type=int, default=16384, help="NanoEval's engine.token_budget")
    ap.add_argument("--threads", type=int, default=None, help="NanoEval's engine.threads")
    ap.add_argument("--lmeval-rows", help="lmeval_gsm8k_reference.py's output, instead of running lm-eval")
    ap.add_argument("--lmeval-seconds", type=float)
    ap.add_argument("--nanoeval-dir", help="a NanoEval report dir (predictions.jsonl), instead of running NanoEval")
    ap.add_argument("--nanoeval-seconds", type=float)
    ap.add_argument("--rerun-differing", action="store_true", help="generate the differing rows' prompts again, "
                    "one a batch, with NanoEval's engine and with model.generate (needs --model)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="compare_gsm8k_"))
    if a.lmeval_rows:
        theirs, t_sec = [json.loads(line) for line in open(a.lmeval_rows)], a.lmeval_seconds
        theirs = [r for r in theirs if r["variant"] == a.formulation]
    else:
        theirs, t_sec = run_lmeval(a, tmp)
    ours, o_sec = (read_predictions(Path(a.nanoeval_dir)), a.nanoeval_seconds) if a.nanoeval_dir else \
        run_nanoeval(a, tmp)
    out = {"formulation": a.formulation, **compare(theirs, ours),
           "wall_s": {"lm_eval": t_sec and round(t_sec, 1), "nanoeval": o_sec and round(o_sec, 1)}}
    if a.rerun_differing and out["differ"]:
        o = {r["id"]: r for r in ours}
        until = next(r["until"] for r in theirs)
        again = batch_of_one(a.model, {d["id"]: o[d["id"]]["prompt"] for d in out["differ"]}, until)
        t = {str(r["doc_index"]): r for r in theirs}
        out["batch_of_one"] = {i: {"nanoeval_b1 == lm_eval": v["nanoeval_b1"] == t[i]["response"],
                                   "nanoeval_b1 == nanoeval": v["nanoeval_b1"] == o[i]["response"],
                                   "hf_b1 == lm_eval": v["hf_generate_b1"] == t[i]["response"],
                                   "hf_b1 == nanoeval": v["hf_generate_b1"] == o[i]["response"]}
                               for i, v in again.items()}
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
