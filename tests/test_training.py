"""`nanoeval.evaluate` on a model in memory (nanoeval/training.py): inside a plain training loop it leaves the model
and torch as they were, gives the records `pytest evals/` gives on the same weights saved to disk, samples the same
rows at every step, keeps its report dirs per step with resume, and does not grow the loop's memory."""
from __future__ import annotations

import csv
import gc
import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from nanoeval import evaluate
from nanoeval.journal import journal_path
from tests.conftest import DATA, ROOT, read_jsonl

ARC = DATA / "arc" / "ARC-Easy"


def tasks() -> list[dict]:
    """Four shapes of work: row shards with shots of other rows' answers (ARC), long continuations (HellaSwag),
    choices that vary the context (WinoGrande), per-subject cases with one-token letters (MMLU)."""
    return [
        {"name": "arc_easy", "task": "arc", "dataset": {"name": "ARC-Easy", "data_files": {
            "test": str(ARC / "test.jsonl"), "train": str(ARC / "train.jsonl")}}, "scoring": {"num_shards": 3}},
        {"name": "hellaswag", "task": "hellaswag", "dataset": {"split": "validation", "data_files": {
            "validation": str(DATA / "hellaswag" / "validation.jsonl")}}},
        {"name": "winogrande", "task": "winogrande", "dataset": {"data_files": {
            "validation": str(DATA / "winogrande" / "validation.jsonl")}}},
        {"name": "mmlu", "task": "mmlu", "scoring": {"strategy": "rank_ll", "num_fewshot": 1},
         "dataset": {"data_files": {"test": str(DATA / "mmlu_tiny" / "test.jsonl"),
                                    "dev": str(DATA / "mmlu_tiny" / "dev.jsonl")}}},
    ]


def load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def train_step(model, opt, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    batch = torch.randint(0, model.config.vocab_size, (4, 24), generator=g)
    model(input_ids=batch, labels=batch).loss.backward()
    opt.step()
    opt.zero_grad()


def state(model) -> dict:
    """What evaluate must leave as it found it."""
    return {"training": [m.training for m in model.modules()],
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "grad": torch.is_grad_enabled(), "autocast": torch.is_autocast_enabled("cpu"),
            "threads": torch.get_num_threads(),
            "rng": (random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist()),
            "weights": {k: v.clone() for k, v in model.state_dict().items()}}


def same_state(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "weights"} == {k: v for k, v in b.items() if k != "weights"} and \
        a["weights"].keys() == b["weights"].keys() and all(torch.equal(a["weights"][k], b["weights"][k])
                                                           for k in a["weights"])


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_a_training_loop_evaluates_every_step_and_equals_pytest_evals_on_the_saved_weights(tiny_lm, tmp_path,
                                                                                          run_evals):
    """A plain loop trains a tiny Llama and calls evaluate at every step, in train mode, under autocast (bf16), with
    one module in eval mode and one layer frozen: each call leaves all of it as it was, samples the same rows, and
    the last step's records equal `pytest evals/` on the weights saved to disk (lls to 1e-5, predictions exactly)."""
    model, tok = load(tiny_lm)
    model.train()
    model.model.layers[1].eval()                 # a mixed state, restored module by module
    model.model.layers[0].mlp.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    runs, seen = tmp_path / "runs", []
    for step in (1, 2, 3):
        train_step(model, opt, step)
        before = state(model)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            before["autocast"] = True
            res = evaluate(model, tok, tasks(), step=step, limit=24, report_dir=runs)
            after = state(model)
        assert same_state(before, after)
        assert res.step == step and res.report_dir == runs / f"step-{step}"
        seen.append({t: [r["id"] for r in recs] for t, recs in res.records.items()})
        assert res.metrics["hellaswag/acc_norm"] == res.summaries["hellaswag"].metrics["acc_norm"]
        assert {"arc_easy/bpb", "winogrande/acc", "mmlu/acc_macro", "suite/macro_average"} <= res.metrics.keys()
        assert (runs / f"step-{step}" / "suite_summary.json").is_file()
        for t in ("arc_easy", "hellaswag", "winogrande"):  # limit: 24 rows of each split, the same every step
            assert len(res.records[t]) == 24
    assert seen[0] == seen[1] == seen[2]
    with open(runs / "curves.csv") as f:  # the loop's learning curves so far, redrawn after every step
        table = list(csv.DictReader(f))
    assert sorted({int(r["step"]) for r in table}) == [1, 2, 3] and (runs / "curves.png").is_file()
    assert {r["task"] for r in table} == {"arc_easy", "hellaswag", "winogrande", "mmlu", "suite"}
    assert res.records["arc_easy"][0]["lls"] != read_jsonl(runs / "step-1" / "arc_easy" / "predictions.jsonl")[0][
        "lls"]  # the model moved between steps, and the journals of each step are its own

    disk = tmp_path / "ckpt"
    model.save_pretrained(disk)
    tok.save_pretrained(disk)
    suite = {"suite": "loop", "sample": 24, "report_dir": str(tmp_path / "disk"), "model": {"path": str(disk)},
             "tasks": tasks()}
    result = run_evals(suite, suite=True)
    assert result.ret == 0, result.stdout.str()
    for t, records in res.records.items():
        ours = {r["id"]: r for r in records}
        theirs = {r["id"]: r for r in read_jsonl(tmp_path / "disk" / t / "predictions.jsonl")}
        assert ours.keys() == theirs.keys(), t
        for i, r in theirs.items():
            assert ours[i]["pred"] == r["pred"] and ours[i].get("pred_norm") == r.get("pred_norm"), (t, i)
            assert max(abs(a - b) for a, b in zip(ours[i]["lls"], r["lls"], strict=True)) < 1e-5, (t, i)


def test_repeated_calls_do_not_grow_the_loops_memory(tiny_lm):
    """Measured: RSS rises ~3.5 MB a call over the first four calls (data loaded, allocator pools filling), then
    stays within 0.2 MB; Python's object count does not move from the first call on."""
    model, tok = load(tiny_lm)
    sizes, objects = [], []
    for _ in range(8):
        evaluate(model, tok, tasks()[:2], limit=16)
        gc.collect()
        sizes.append(rss_mb())
        objects.append(len(gc.get_objects()))
    assert max(sizes[4:]) - sizes[4] < 5, sizes
    assert max(objects[1:]) - objects[1] < 500, objects


def test_a_step_with_the_same_weights_resumes_and_other_weights_move_the_old_run_aside(tiny_lm, tmp_path):
    model, tok = load(tiny_lm)
    first = evaluate(model, tok, tasks()[:1], step=5, report_dir=tmp_path)
    again = evaluate(model, tok, tasks()[:1], step=5, report_dir=tmp_path)
    assert first.summaries["arc_easy"].timing["examples_scored"] == 128
    assert again.summaries["arc_easy"].timing["examples_scored"] == 0  # the journals of the same weights
    assert again.records == first.records
    with torch.no_grad():
        model.lm_head.weight.mul_(1.5)  # tied: the embeddings too
    moved = evaluate(model, tok, tasks()[:1], step=5, report_dir=tmp_path)
    assert moved.summaries["arc_easy"].timing["examples_scored"] == 128
    assert (tmp_path / "step-5" / "arc_easy" / "previous").is_dir()
    assert moved.records["arc_easy"][0]["lls"] != first.records["arc_easy"][0]["lls"]


class PlainLM(torch.nn.Module):
    """Not a transformers model: forward(ids) returns (logits of every position, None), as build-nanogpt's GPT does."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = type("Config", (), {"block_size": 512})()

    def forward(self, idx, targets=None):
        return self.inner(input_ids=idx).logits, None


def test_a_plain_torch_module_scores_as_the_transformers_model_it_wraps(tiny_lm):
    """The naive path of a plain module (no masks, no caches, no packing) gives the fast paths' numbers."""
    model, tok = load(tiny_lm)
    plain = PlainLM(model)
    a = evaluate(model, tok, tasks(), limit=12)
    b = evaluate(plain, tok, tasks(), limit=12)
    for t in a.records:
        for x, y in zip(a.records[t], b.records[t], strict=True):
            assert x["id"] == y["id"] and x["pred"] == y["pred"]
            assert max(abs(p - q) for p, q in zip(x["lls"], y["lls"])) < 1e-5
    with pytest.raises(ValueError, match="not a transformers model: ranked-choice"):
        evaluate(plain, tok, [{"task": "mmlu", "scoring": {"strategy": "gen_letter"},
                               "dataset": {"data_files": {"test": str(DATA / "mmlu_tiny" / "test.jsonl")}}}])


class CachingLM(PlainLM):
    """A module that fills a cache on its first forward (as rotary tables are) and uses it in training."""

    def __init__(self, inner):
        super().__init__(inner)
        self.table = None

    def forward(self, idx, targets=None):
        if self.table is None:
            self.table = torch.ones(1)
        return self.inner(input_ids=idx).logits * self.table, None


def test_a_cache_filled_while_scoring_serves_the_next_training_step_and_the_tokenizer_keeps_its_sides(tiny_lm):
    """Scored under no_grad, not inference_mode: a tensor a module caches during evaluate() can be saved for
    backward afterwards. Generation pads on the left; the caller's tokenizer comes back with its own sides."""
    model, tok = load(tiny_lm)
    wrapped = CachingLM(model)
    evaluate(wrapped, tok, tasks()[:1], limit=4)
    ids = torch.randint(0, model.config.vocab_size, (2, 8))
    logits, _ = wrapped(ids)
    logits.float().logsumexp(-1).mean().backward()  # an inference tensor in the graph would raise here
    assert model.lm_head.weight.grad is not None
    tok.padding_side, tok.truncation_side = "right", "left"
    evaluate(model, tok, [{"task": "mmlu", "scoring": {"strategy": "gen_letter", "max_new_tokens": 2},
                           "dataset": {"data_files": {"test": str(DATA / "mmlu_tiny" / "test.jsonl"),
                                                      "dev": str(DATA / "mmlu_tiny" / "dev.jsonl")}}}], limit=3)
    assert (tok.padding_side, tok.truncation_side) == ("right", "left")


def test_an_error_leaves_the_model_and_torch_as_they_were(tiny_lm, tmp_path):
    model, tok = load(tiny_lm)
    model.train()
    before = state(model)
    with pytest.raises(ValueError, match="file not found"):  # a config mistake: before anything runs
        evaluate(model, tok, [{"task": "arc", "dataset": {"data_files": {"test": str(tmp_path / "none.jsonl")}}}])
    assert same_state(before, state(model))

    calls = []

    def broken(*args, **kw):  # the model fails mid-run
        calls.append(1)
        raise RuntimeError("out of memory (simulated)")

    model.model.forward = broken
    with pytest.raises(RuntimeError, match="simulated"):
        evaluate(model, tok, tasks()[:1], step=1, report_dir=tmp_path / "r")
    del model.model.forward
    assert calls and same_state(before, state(model))
    again = evaluate(model, tok, tasks()[:1], step=1, report_dir=tmp_path / "r")  # the report dir was let go
    assert again.summaries["arc_easy"].counts["examples"] == 128


def test_the_docs_training_loop_example_runs(tiny_lm, tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "train_loop_example.py"), "--tokenizer", str(tiny_lm),
                          "--steps", "4", "--eval-every", "2", "--limit", "8", "--out", str(tmp_path / "runs")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [x["step"] for x in lines] == [2, 4]
    assert all("arc_easy/acc_norm" in x for x in lines)
    assert (tmp_path / "runs" / "step-4" / "arc_easy" / "summary.json").is_file()


def test_a_library_loop_saving_each_step_into_one_folder_scores_each_steps_weights(tiny_lm, tmp_path):
    """The model pool keys a model by its weights, not its path: step 200 saved over step 100's folder is loaded
    again, so its journal holds step 200's numbers (it held step 100's)."""
    from nanoeval.journal import prepare_report_dir
    from nanoeval.pool import ModelPool
    from nanoeval.runner import benchmark, finish_task, run_case
    from nanoeval.session import open_session

    model, tok = load(tiny_lm)
    folder, pool, lls = tmp_path / "ckpt", ModelPool(), []
    cfg = tmp_path / "c.yaml"
    for step in (100, 200):
        with torch.no_grad():
            model.lm_head.weight.mul_(1.5)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        cfg.write_text(yaml.safe_dump({**tasks()[0], "model": {"path": str(folder)},
                                       "report_dir": str(tmp_path / f"r{step}")}))
        s = open_session(ROOT, str(cfg), None)
        t = s.tasks[0]
        prepare_report_dir(s.dirs[t.name], s.infos[t.name], t.name, fresh=False)
        engine = pool.get(t, s.root)
        for case in benchmark(t).cases(t, s.root):
            run_case(t, case, s.root, journal_path(s.dirs[t.name], case), engine)
        finish_task(t, s.dirs[t.name], s.infos[t.name], None)
        s.release()
        lls.append({r["id"]: r["lls"] for r in read_jsonl(s.dirs[t.name] / "predictions.jsonl")})
        fresh = evaluate(model, tok, tasks()[:1])  # the weights in memory, scored directly
        assert all(max(abs(a - b) for a, b in zip(lls[-1][r["id"]], r["lls"])) < 1e-5
                   for r in fresh.records["arc_easy"]), step
    assert lls[0] != lls[1]


DDP_RANK = """
import json, sys, torch, torch.distributed as dist
from transformers import AutoModelForCausalLM, AutoTokenizer
import nanoeval

rank, port, model_dir, out, tasks = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
model = torch.nn.parallel.DistributedDataParallel(AutoModelForCausalLM.from_pretrained(model_dir))
tok = AutoTokenizer.from_pretrained(model_dir)
got = {}
for name, chosen in (("two", tasks), ("one_case", tasks[:1])):  # 6 + 5 cases; 1 case: rank 1 has none
    res = nanoeval.evaluate(model, tok, chosen, step=1, limit=20, report_dir=f"{out}/{name}")
    got[name] = {"metrics": res.metrics, "records": res.records}
bad = [{"task": "arc", "scoring": {"num_shardz": 2}}]
try:  # a mistake on one rank only, found before any scoring: both ranks raise, neither waits
    nanoeval.evaluate(model, tok, bad if rank == 1 else tasks, limit=20)
except Exception as e:
    got["early"] = f"{type(e).__name__}: {e}"
if rank == 1:  # this rank's model fails: both ranks raise, neither waits
    model.module.model.forward = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("rank 1 broke"))
try:
    nanoeval.evaluate(model, tok, tasks, limit=20)
except Exception as e:
    got["error"] = f"{type(e).__name__}: {e}"
print("RESULT " + json.dumps(got))
dist.destroy_process_group()
"""


def test_two_gloo_ranks_share_the_cases_and_return_the_same_results(tiny_lm, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chosen = [dict(tasks()[0], scoring={"num_shards": 1}), {**tasks()[1], "scoring": {"num_shards": 10}}]
    script = tmp_path / "rank.py"
    script.write_text(DDP_RANK)
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(port), str(tiny_lm), str(tmp_path / "out"),
                               json.dumps(chosen)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}) for r in (0, 1)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    got = [json.loads(next(line for line in o[0].splitlines() if line.startswith("RESULT "))[7:]) for o in outs]
    assert got[0]["two"] == got[1]["two"] and got[0]["one_case"] == got[1]["one_case"]  # every rank: the same
    assert got[1]["error"] == "RuntimeError: rank 1 broke"
    assert got[1]["early"].startswith("ConfigError: evaluate(): tasks[0].scoring.num_shardz: unknown key")
    assert got[0]["early"].startswith("RuntimeError: nanoeval.evaluate failed on rank 1: ConfigError: ")
    assert got[0]["error"] == "RuntimeError: nanoeval.evaluate failed on rank 1: RuntimeError: rank 1 broke"
    model, tok = load(tiny_lm)
    alone = evaluate(model, tok, chosen, limit=20)
    for t, records in alone.records.items():
        theirs = {r["id"]: r for r in got[0]["two"]["records"][t]}
        assert theirs.keys() == {r["id"] for r in records}
        for r in records:
            assert r["pred"] == theirs[r["id"]]["pred"]
            assert max(abs(a - b) for a, b in zip(r["lls"], theirs[r["id"]]["lls"])) < 1e-5
    summary = json.loads((tmp_path / "out" / "two" / "step-1" / "hellaswag" / "summary.json").read_text())
    assert len(summary["cases"]["done"]) == 10 and summary["cases"]["complete"]  # both ranks' journals, gathered
