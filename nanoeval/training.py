"""Evaluate a model that is already in memory: inside a training loop, every N steps.

    results = nanoeval.evaluate(model, tokenizer, "suites/small_model_core.yaml", step=step, limit=500)
    wandb.log(results.metrics, step=step)          # {"hellaswag/acc_norm": 0.31, "piqa/bpb": 1.42, ...}

The same tasks, recipes, engine and records as `pytest evals/` on the same weights saved to disk: the suite or task
configs are read as the plugin reads them (their `model:` blocks are ignored), the cases run through
`runner.run_case` with the same look-ahead and the artifacts come from `runner.finish_task`. What is required of
the model (engine/loading.py: in_memory): a transformers decoder with `.model` and `.lm_head` (Llama, Qwen,
SmolLM, ...) takes every fast path; any other `torch.nn.Module` whose `forward(input_ids)` returns the logits of
every position (a tensor, a tuple starting with them, or an object with `.logits`) is scored on the naive path and
supports ranked-choice tasks only. The tokenizer is a transformers tokenizer.

Nothing is copied, moved or reloaded, and nothing is left changed: each module's train/eval flag, every parameter's
requires_grad, grad mode, autocast (off while scoring), torch's thread count and the random generators' states
(python, numpy, torch, CUDA) are restored, also after an exception.

`limit`: each task's `dataset.sample`, a fixed seeded sample of N rows (data.py), the same at every step, so a
change between steps is the model's, not the sample's. `report_dir`: the usual artifacts under
`<report_dir>/step-<N>/` (a suite_summary.json and one folder per task), with the journals: the fingerprint holds
the weights' digest (identity.memory_identity), so a rerun of a step with the same weights resumes and other
weights move the old run aside; after each step, `<report_dir>/curves.csv` and `curves.png` (curves.py) hold every
step so far. Without it, journals go to a temporary folder that is removed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nanoeval import curves
from nanoeval.config import ConfigError, ModelConfig
from nanoeval.config_files import read_yaml, suite_from_data
from nanoeval.engine import Engine, seed_everything
from nanoeval.engine.loading import in_memory
from nanoeval.gates import GateResult
from nanoeval.identity import memory_identity
from nanoeval.journal import journal_path, prepare_report_dir, write_atomic
from nanoeval.lookahead import Lookahead
from nanoeval.progress import notice
from nanoeval.reporting import write_suite
from nanoeval.runner import benchmark, finish_task, run_case
from nanoeval.session import baseline_path, start_session
from nanoeval.summary import Aggregate, TaskSummary


@dataclass
class Results:
    """What one `evaluate` call gives back."""
    step: int | None
    metrics: dict[str, float]               # "task/metric" -> value for every task (and "suite/macro_average",
    #                                         "suite/centered_mean" for several tasks): ready for W&B / TensorBoard
    summaries: dict[str, TaskSummary]        # task -> its summary.json, as a dataclass
    records: dict[str, list[dict]]           # task -> its per-example records (predictions.jsonl)
    aggregate: Aggregate | None              # several tasks: the suite's macro average and centered accuracy
    gates: list[GateResult]                  # the tasks' gates, when their configs set any
    report_dir: Path | None                  # where the artifacts are (None: not kept)
    seconds: float


def evaluate(model, tokenizer, tasks, *, step: int | None = None, limit: int | None = None,
             report_dir: str | Path | None = None, max_length: int | None = None, engine: dict | None = None,
             root: str | Path | None = None, fresh: bool = False) -> Results:
    """Score `model` (in memory, as it is) on `tasks`: a suite or task YAML file, a suite mapping (as a suite file
    holds), or a list of task entries (benchmark names or mappings as in a suite's `tasks:`). `limit`: at most N
    rows per task, the same seeded sample at every call; `report_dir`: keep the artifacts under
    `<report_dir>/step-<step>/`; `max_length`: the context length when the model's config does not say;
    `engine`: engine settings (config.EngineConfig: token_budget, batch_size, ...) over the configs'; `root`: what
    relative paths in the configs are taken from (default: the working directory).

    Under torch.distributed (every rank calls it, as with any collective): rank 0 checks the tasks and owns the
    report dir; the cases are dealt out over the ranks (case i to rank i % world size), each rank scores its own
    with its replica of the model, the journals are gathered on rank 0, which builds the artifacts, and every rank
    returns the same Results. A rank with fewer cases (or none) only waits at the next collective; an error on one
    rank is raised on every rank (no rank is left waiting)."""
    started = time.time()
    root = Path(root or Path.cwd()).resolve()
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise ValueError(f"step: expected an integer >= 0, got {step!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit: expected an integer >= 1, got {limit!r}")
    import torch

    if isinstance(model, torch.nn.parallel.DistributedDataParallel):  # its forward would sync buffers across
        model = model.module                                            # ranks: the module itself is scored
    rank, world = _rank_world()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nanoeval-")))
        out = work if report_dir is None else Path(report_dir).resolve() / (f"step-{step}" if step is not None else "")
        error = None  # every rank checks the model and the tasks; a mistake on any rank is raised on all of them
        try:
            loaded = in_memory(model, tokenizer, ModelConfig(path=f"in-memory:{type(model).__name__}",
                                                             max_length=max_length))
            suite = _suite(tasks, limit, out, loaded.meta, max_length, engine or {})
            if loaded.plain and (gen := [t.name for t in suite.tasks if t.scoring.strategy != "rank_ll"]):
                raise ConfigError(f"{', '.join(gen)}: {type(model).__name__} is not a transformers model: "
                                  "ranked-choice (strategy rank_ll) tasks only, no generation")
        except Exception as e:
            error = e
        # what each rank will run (not its device or report dir, which differ by rank)
        what = "" if error else repr([(t.name, t.task, t.dataset, t.scoring, t.seed) for t in suite.tasks])
        told = _gather(_Failed.of(error, rank) if error else hashlib.sha256(what.encode()).hexdigest(), world)
        _raise(error, told)
        if len(set(told)) > 1:  # every rank must run the same tasks: the cases are dealt out by position
            raise ConfigError(f"evaluate(): the ranks were given different tasks (rank(s) "
                              f"{[r for r, x in enumerate(told) if x != told[0]]} differ from rank 0; every rank must "
                              "pass the same tasks, limit and engine settings)")
        with _untouched(model, tokenizer):
            session, plan = None, None  # a failure is raised on every rank, after the collective it would skip
            if rank == 0:  # the checks, the report dirs (locked, stale runs moved aside) and what to score
                try:
                    identity = memory_identity(model, tokenizer) if report_dir is not None else \
                        {"kind": "memory", "class": type(model).__name__, "weights": None, "digest": "not-kept"}
                    session = start_session(root, suite.tasks, suite, [], identity=identity)
                    stack.callback(session.release)
                    for t in session.tasks:
                        if message := prepare_report_dir(session.dirs[t.name], session.infos[t.name], t.name, fresh):
                            notice(message)
                    plan = _plan(session)
                except Exception as e:
                    error, plan = e, _Failed.of(e, rank)
            plan = _broadcast(plan, world)
            _raise(error, [plan])
            mine = [p for i, p in enumerate(plan) if i % world == rank]
            dirs = session.dirs if rank == 0 else {t.name: work / t.name for t in suite.tasks}
            try:
                journals = _score(suite.tasks, mine, dirs, loaded, root, keep=rank != 0)
            except Exception as e:
                error, journals = e, _Failed.of(e, rank)
            gathered = _gather(journals, world)
            _raise(error, gathered)
            payload = None
            if rank == 0:
                try:
                    payload = _finish(session, gathered, out)
                    if report_dir is not None and step is not None:  # the run's learning curves so far
                        curves.write(out.parent, *curves.from_steps(out.parent))
                except Exception as e:
                    error, payload = e, _Failed.of(e, rank)
            payload = _broadcast(payload, world)
            _raise(error, [payload])
        summaries, gates, records, aggregate = payload
    return Results(step, _flat(summaries, aggregate if len(summaries) > 1 else None), summaries, records,
                   aggregate, gates, out if report_dir is not None else None, round(time.time() - started, 3))


@dataclass
class _Failed:
    """A rank's failure as every rank receives it (any exception pickles as this)."""
    rank: int
    what: str

    @staticmethod
    def of(e: BaseException, rank: int) -> _Failed:
        return _Failed(rank, f"{e.__class__.__name__}: {e}")


def _raise(own: BaseException | None, received: list) -> None:
    """After a collective: this rank's own error as it is, else the first other rank's as a RuntimeError."""
    if own is not None:
        raise own
    if failed := next((x for x in received if isinstance(x, _Failed)), None):
        raise RuntimeError(f"nanoeval.evaluate failed on rank {failed.rank}: {failed.what}")


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _broadcast(obj, world: int):
    """Rank 0's object on every rank (a no-op without torch.distributed)."""
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather(obj, world: int) -> list:
    """Every rank's object, in rank order, on every rank."""
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _plan(s) -> list[tuple[str, str, bytes | None]]:
    """Every case to run, in the plugin's order (tasks in order, within a task largest first), with what its journal
    already holds (a resumed step: the rank that gets the case resumes it)."""
    plan = []
    for t in s.tasks:
        bench = benchmark(t)
        for case in sorted(s.infos[t.name]["cases"], key=lambda c: (-bench.known_sizes.get(c, 0), c)):
            path = journal_path(s.dirs[t.name], case)
            plan.append((t.name, case, path.read_bytes() if path.exists() else None))
    return plan


def _score(tasks: list, mine: list, dirs: dict[str, Path], loaded, root: Path, keep: bool) -> dict:
    """This rank's cases through run_case, each task's later cases queued for its look-ahead; `keep`: return their
    journals (a rank other than 0 sends them to rank 0) as {(task, case): bytes}."""
    import torch

    by_name, engines, lookahead, out = {t.name: t for t in tasks}, {}, Lookahead(), {}
    with torch.no_grad():  # not inference_mode: what a module caches while scoring stays usable for training
        for i, (name, case, held) in enumerate(mine):
            t = by_name[name]
            if repr(t.engine) not in engines:  # no load: the engine holds the model as it is
                engines[repr(t.engine)] = Engine(t.model, t.engine, root, loaded=loaded)
            path = journal_path(dirs[name], case)
            if held is not None and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(held)
            if i == 0 or mine[i - 1][0] != name:
                seed_everything(t.seed)  # as the pool does before a task's cases (the caller's generators come back)
            run_case(t, case, root, path, engines[repr(t.engine)], None, lookahead,
                     [(c, journal_path(dirs[name], c)) for n, c, _ in mine[i + 1:] if n == name])
            if keep:
                out[name, case] = path.read_bytes()
    for e in engines.values():  # the engines' own caches go; the model stays the caller's
        e.ahead.clear()
        e.prefix_caches.clear()
    return out


def _finish(s, gathered: list[dict], out: Path):
    """Rank 0: the other ranks' journals into the report dirs, then every task's artifacts and gates
    (finish_task) and the suite's summary."""
    for journals in gathered[1:]:
        for (name, case), data in journals.items():
            write_atomic(journal_path(s.dirs[name], case), data)
    summaries, gates, records = {}, [], {}
    for t in s.tasks:
        summary, results = finish_task(t, s.dirs[t.name], s.infos[t.name], baseline_path(t, s.root),
                                       session_start=s.started)
        if summary is not None:
            summaries[t.name], gates = summary, gates + results
            with open(s.dirs[t.name] / "predictions.jsonl") as f:
                records[t.name] = [json.loads(line) for line in f]
    aggregate = write_suite(out / "suite_summary.json", s.suite.name, summaries, [t.name for t in s.tasks]) \
        if summaries else None
    return summaries, gates, records, aggregate


def _suite(tasks, limit: int | None, out: Path, meta: dict, max_length: int | None, engine: dict):
    """The suite to run, checked as a suite file is (config_files.suite_from_data): every task's model is the one in
    memory, its report dir under `out`, its dataset.sample `limit`."""
    src = "evaluate()"
    if isinstance(tasks, (str, Path)):
        src = str(tasks)
        data = read_yaml(tasks)
        if "task" in data and "tasks" not in data:  # a task file: a suite of one
            data = {"suite": Path(src).stem, "tasks": [data]}
    elif isinstance(tasks, dict):
        data = tasks
    elif isinstance(tasks, (list, tuple)) and tasks:
        data = {"suite": "evaluate", "tasks": [{"task": t} if isinstance(t, str) else t for t in tasks]}
    else:
        raise ConfigError(f"evaluate(): tasks: expected a suite or task YAML file, a suite mapping or a non-empty "
                          f"list of tasks, got {type(tasks).__name__}")
    data = {**data, "suite": data.get("suite") or "evaluate", "report_dir": str(out),
            "model": {"path": "-", "dtype": meta["dtype"], "device": meta["device"], "max_length": max_length},
            "engine": {**(data.get("engine") or {}), **engine}}
    entries = []
    for entry in data.get("tasks") or []:
        if isinstance(entry, dict):
            entry = {k: v for k, v in entry.items() if k not in ("model", "report_dir")}
            if limit is not None:
                entry["dataset"] = {**(entry.get("dataset") or {}), "sample": limit}
        entries.append(entry)
    suite = suite_from_data({**data, "tasks": entries}, src)
    model = dataclasses.replace(suite.tasks[0].model, path=f"in-memory:{meta['architecture']}")
    return dataclasses.replace(suite, tasks=[dataclasses.replace(t, model=model) for t in suite.tasks])


def _flat(summaries: dict[str, TaskSummary], aggregate: Aggregate | None) -> dict[str, float]:
    out = {f"{name}/{k}": v for name, s in summaries.items() for k, v in s.metrics.items() if v is not None}
    if aggregate is not None and aggregate.macro_average is not None:
        out["suite/macro_average"], out["suite/centered_mean"] = aggregate.macro_average, aggregate.centered_mean
    return out


@contextlib.contextmanager
def _untouched(model, tokenizer):
    """Eval mode and no autocast while scoring; afterwards (also after an exception) every module's train flag,
    every parameter's requires_grad, grad mode, torch's threads, the random generators, the tokenizer's padding and
    truncation sides and the hub-offline switches (data.go_offline) are as they were."""
    import numpy as np
    import torch

    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    grad_mode, threads = torch.is_grad_enabled(), torch.get_num_threads()
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
           torch.cuda.get_rng_state_all() if cuda else None)
    sides = {k: getattr(tokenizer, k) for k in ("padding_side", "truncation_side") if hasattr(tokenizer, k)}
    env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    flags = [(m, getattr(m, "HF_HUB_OFFLINE")) for m in (sys.modules.get("huggingface_hub.constants"),
                                                          sys.modules.get("datasets.config")) if m is not None]
    try:
        model.eval()
        with torch.autocast(next(model.parameters()).device.type, enabled=False):
            yield
    finally:
        for m, flag in modes:
            m.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)
        torch.set_grad_enabled(grad_mode)
        torch.set_num_threads(threads)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda:
            torch.cuda.set_rng_state_all(rng[3])
        for k, v in sides.items():
            setattr(tokenizer, k, v)
        for k, v in env.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        for m, flag in flags:
            m.HF_HUB_OFFLINE = flag
