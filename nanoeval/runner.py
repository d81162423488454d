"""Running a task without pytest: its identity (run.json), one case with resume, and its artifacts from journals.

Used by the pytest plugin and by `nanoeval merge`; nothing here imports pytest or names a benchmark (each task's
benchmark comes from the registry, nanoeval/benchmarks/__init__.py).
  * task_info: what run.json holds: the fingerprint and its parts (config, data files, model files, recipe code,
    environment), the case list, the recipe, dataset metadata, versions. Artifacts are built from run.json and the
    journals alone, so `nanoeval merge` never re-reads data or models and works from any directory.
  * run_case: load a case's examples (the benchmark's `load`) and score those not yet in its journal, chunk by
    chunk (`score`), with the engine's counters.
  * build_task_artifacts: every complete journal -> metrics (the benchmark's `summarize`) -> the four artifacts.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import threading
import time
from pathlib import Path

from nanoeval import reporting
from nanoeval.benchmark import Benchmark, Metrics
from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import ConfigError, TaskConfig, hashed_settings, task_to_dict
from nanoeval.data import DataLoadError, data_hashes, dataset_meta
from nanoeval.engine import Engine, model_location
from nanoeval.engine.generation import generate
from nanoeval.engine.served import ServedEngine, ServerError, served_identity
from nanoeval.gates import GateResult, check
from nanoeval.identity import code_hash, environment, model_identity
from nanoeval.journal import Journal, JournalWriter, journal_path, read_journal
from nanoeval.lookahead import (Lookahead, adopt, case_examples, chunk_size, score_chunk, selected_counts,
                                selection)
from nanoeval.summary import TaskSummary

WARN_TRUNCATED_SHARE = 0.05      # warn when more than this share of a task's generations hit max_new_tokens


class EmptyCaseError(ValueError):
    """A case that would score nothing: a pass with nothing scored is never reported green."""


def benchmark(cfg: TaskConfig) -> Benchmark:
    """The benchmark a task runs (its `task:`), from the registry."""
    return BENCHMARKS[cfg.task]


def _short(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def check_model(cfg: TaskConfig, root: Path) -> dict:
    """The model's identity (its files' sha256, or the hub commit); a model that cannot be found is a ConfigError
    naming the key, found in well under a second (nothing heavy is imported)."""
    if cfg.model.backend == "openai":  # the name the server lists (and its tokenizer's files, for rank_ll)
        try:
            ident = served_identity(cfg.model)
        except ServerError as e:
            raise ConfigError(f"{cfg.source}: {e}") from None
        if cfg.model.path is not None:
            try:
                ident["tokenizer"] = model_identity(model_location(cfg.model, root), cfg.model.gguf_file,
                                                    cfg.model.revision)
            except (OSError, LookupError) as e:
                raise ConfigError(f"{cfg.source}: model.path: {e}") from None
        ident["digest"] = _short(ident)
        return ident
    try:
        return model_identity(model_location(cfg.model, root), cfg.model.gguf_file, cfg.model.revision)
    except (OSError, LookupError) as e:
        key = "model.gguf_file" if cfg.model.gguf_file and "GGUF" in str(e) else "model.path"
        rel = f" (a relative path is taken from {root})" if isinstance(e, LookupError) and not cfg.model.package \
            and not Path(cfg.model.path).is_absolute() else ""
        raise ConfigError(f"{cfg.source}: {key}: {e}{rel}") from None


def task_info(cfg: TaskConfig, root: Path, model: dict | None = None) -> dict:
    """run.json's content for a task: fingerprint (and the parts that make it), cases, recipe, dataset, model files
    (`model`: check_model's result, if already known), environment, versions."""
    bench = benchmark(cfg)
    model = model or check_model(cfg, root)
    served = cfg.model.backend == "openai"
    env = environment(None if served else cfg.model.dtype, "server" if served else cfg.model.device)
    code = benchmark_code_hash(bench, cfg.model.backend)
    parts = {"config": cfg.config_hash(), "data": _short(data_hashes(cfg.dataset, root)), "model": model["digest"],
             "code": code, "environment": _short(env)}
    return {"fingerprint": _short(parts), "fingerprint_parts": parts, "config": task_to_dict(cfg),
            "settings": hashed_settings(task_to_dict(cfg)),  # the config part's settings: a change is named
            "cases": bench.cases(cfg, root), "recipe": {**bench.recipe(cfg, root), "code_hash": code},
            "dataset": dataset_meta(cfg.dataset, root), "model_identity": model, "environment": env,
            "versions": reporting.versions(root)}


@functools.cache
def benchmark_code_hash(bench: Benchmark, backend: str = "local") -> str:
    """The code hash of one benchmark (identity.code_hash): how it loads a case's examples and scores them (which
    reaches its data parsing, prompts and answer parsing), the case loop below that picks the examples
    (dataset.limit, resume by id), and the engine's request construction (chat template, tokenization), generation
    inputs and response decoding; for a served model (`backend`), how its requests are made and its answers read
    (served.py). Its `summarize` is left out: metrics are rebuilt from journals."""
    roots = [bench.load, bench.score, run_case, Engine.prompt_text, Engine.encode_many,
             Engine.encode_requests, generate, Engine.generate_scored, Engine.decode,
             Engine.shown_prompt]  # shown: report.prompts
    if backend == "openai":
        roots += [ServedEngine._generate_one, ServedEngine._loglikelihoods, ServedEngine._loglikelihood_one,
                  ServedEngine._check_prompt_logprobs, ServedEngine.shown_prompt]
    return code_hash(roots)[0]


# ------------------------------------------------------------------------------------------------------ one case
def run_case(cfg: TaskConfig, case_id: str, root: Path, journal: Path, engine, progress=None,
             lookahead: Lookahead | None = None, queued: list[tuple[str, Path]] = ()) -> None:
    """One case of a task, resumed from its journal: the benchmark loads the case's examples (at most
    `dataset.limit`) and scores them in chunks. With a `lookahead`, the requests of this case and of the same
    task's cases queued after it on this process (id, journal) are first scored together, each example journaled
    as soon as it is scored (lookahead.py); the case then scores what is left. The case's seconds are its own
    scoring plus its share of look-ahead time (lookahead.py: examples/s of a case scored ahead stays true)."""
    bench = benchmark(cfg)
    data = lookahead.load(bench, cfg, case_id, root) if lookahead else bench.load(cfg, case_id, root)
    adopt(bench, cfg, root, journal, case_examples(cfg, data))  # scored under another shard count: kept
    started = own = time.time()
    ahead = (0, 0, 0.0)
    if lookahead:
        if progress is not None:  # shown while the look-ahead scores
            progress(len(read_journal(journal).records), len(case_examples(cfg, data)), 0, 0.0)
        scored = lookahead.prepare(bench, cfg, root, engine, data, [(case_id, journal), *queued], progress)
        if scored:  # the look-ahead's seconds went to its cases' shares (this one's is in `ahead`)
            own = time.time()
            if progress is not None:  # what this process scored in this session goes on counting them
                shown = progress
                progress = lambda done, total, now, seconds: shown(done, total, scored + now, seconds)  # noqa: E731
        ahead = lookahead.taken(cfg, case_id)
    score_examples(journal, f"{cfg.name}:{case_id}", case_examples(cfg, data), lambda batch: bench.score(
                   engine, cfg, batch, data.context), engine, data.skipped, chunk_size(bench, engine), progress,
                   started, ahead, own, [e.id for e in data.examples], cfg.dataset.sample)


def score_examples(journal: Path, key: str, examples: list, score, engine, skipped: list[dict] | None,
                   chunk: int, progress=None, started: float | None = None,
                   journaled_ahead: tuple[int, int, float] = (0, 0, 0.0), own: float | None = None,
                   example_ids: list | None = None, sample: int | None = None) -> None:
    """Score `examples` not yet in the journal, appending records per chunk (what a crash can lose), each with
    its position (`_seq`: journaled ahead or now, the journal reads back in the examples' order), with the
    engine's counters of that chunk; then mark the case complete: `scored_now` counts its examples scored in this
    session, `journaled_ahead[0]` of them by a look-ahead, and `scored_ahead` the requests answered from one
    (`journaled_ahead[1]` and any used now). Its `seconds`: from `own` (when its own scoring began; default
    `started`) to the end, plus `journaled_ahead[2]`, the look-ahead seconds its examples took. `example_ids`:
    every example id of the case in order (default: those of `examples`), from which `case_records` reads what a
    later run's `dataset.limit` selects. A complete case whose selection grew scores the new examples (or finds them
    journaled ahead) and appends a new completion line (the last one counts); one with nothing new is left as it
    is. `sample`: the dataset.sample that chose the examples, in the completion line (a case may hold none of
    its rows: complete and empty). Any other case with nothing to score fails."""
    j = read_journal(journal)
    if not examples and not j.records and not sample:
        why = f"; all {len(skipped)} of its rows were skipped as bad rows" if skipped else ""
        raise EmptyCaseError(f"{key}: no examples to score (the data has no rows for this case{why})")
    done, ids = {r["id"] for r in j.records}, [e.id for e in examples]
    if len(set(ids)) < len(ids):  # resume skips journaled ids: a repeated one would be skipped unscored
        raise DataLoadError(f"{key}: example id {next(i for i in ids if ids.count(i) > 1)!r} occurs twice in the "
                            "case's data; example ids must be unique")
    todo = [(i, e) for i, e in enumerate(examples) if e.id not in done]
    listed = [e.id for e in examples] if example_ids is None else example_ids
    if j.complete is not None and not todo and not journaled_ahead[0] and \
            j.complete.get("example_ids", listed) == listed and j.complete.get("sample") == sample:
        return  # complete for this selection, nothing new (not even journaled ahead): its completion line stands
    #         (another dataset.sample lists other examples: a new completion line says which)
    writer = JournalWriter(journal, keep_bytes=j.valid_bytes)
    started, n, ahead = started or time.time(), len(examples) - len(todo), engine.ahead_used
    if progress is not None:
        progress(n, len(examples), 0, 0.0)

    def scored(batch: list) -> tuple[list[dict], list[dict]]:
        return score_chunk(engine, score, batch, key)

    try:
        if hasattr(engine, "concurrency"):  # a served model: `concurrency` requests in flight
            _score_concurrently(writer, todo, scored, engine.concurrency, len(examples), n, progress, started)
            n += len(todo)
        else:
            for start in range(0, len(todo), chunk):
                part = todo[start: start + chunk]
                records, counts = scored([e for _, e in part])
                writer.append([{**r, "_seq": i} for r, (i, _) in zip(records, part)] + counts)
                n += len(records)
                if progress is not None:
                    progress(n, len(examples), start + len(records), time.time() - started)
        finished = time.time()
        complete = {"n": n, "seconds": round(finished - (own or started) + journaled_ahead[2], 3),
                    "started": round(started, 3), "finished": round(finished, 3), "skipped": skipped or [],
                    "model": engine.meta,
                    "scored_now": len(todo) + journaled_ahead[0],
                    "scored_ahead": journaled_ahead[1] + engine.ahead_used - ahead,
                    "example_ids": listed, **({"sample": sample} if sample else {})}
        writer.append([{"_complete": complete}])
    finally:
        writer.close()


def _score_concurrently(writer: JournalWriter, todo: list[tuple[int, object]], scored, workers: int, total: int,
                        n: int, progress, started: float) -> None:
    """One example per call on `workers` threads; each answer is journaled as it arrives, with its position in
    the case (`_seq`, which read_journal sorts by: predictions keep the examples' order). On a failure no new
    request starts; those in flight finish and are journaled (a rerun sends only what is missing), then it raises."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    error, now, failed = None, 0, threading.Event()

    def one(example):
        if failed.is_set():  # after a failure no new request starts
            return None
        try:
            return scored([example])
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(workers)
    try:
        pending = {pool.submit(one, e): i for i, e in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                i = pending.pop(f)
                if f.cancelled() or (f.exception() is None and f.result() is None):
                    continue
                if f.exception() is not None:
                    error = error or f.exception()
                    for other in pending:
                        other.cancel()
                    continue
                records, counts = f.result()
                writer.append([{**r, "_seq": i} for r in records] + counts)
                now += 1
                if progress is not None:
                    progress(n + now, total, now, time.time() - started)
    finally:  # an interrupt: requests not yet started never are
        pool.shutdown(wait=True, cancel_futures=True)
    if error is not None:
        raise error


def case_records(j: Journal, cfg: TaskConfig) -> list[dict] | None:
    """A case's records that `cfg` selects, in the examples' order: the first `dataset.limit` of the example ids its
    last completion line lists (a journal may hold more, scored under a larger limit); None while the case is not
    complete for that selection (never completed, or a larger limit's examples not all scored yet). Records are
    per example, so reruns with another selection share journals; no data is read."""
    if j.complete is None or j.complete.get("sample") != cfg.dataset.sample:  # another sample: not this one's
        return None
    ids = j.complete.get("example_ids")
    if ids is None:  # a journal written before completion lines listed their ids
        return j.records
    by_id = {r["id"]: r for r in j.records}
    chosen = selection(cfg, ids)
    return [by_id[i] for i in chosen] if all(i in by_id for i in chosen) else None


# ------------------------------------------------------------------------------------------------------ artifacts
def build_task_artifacts(cfg: TaskConfig, rdir: Path, info: dict, selected: set[str] = frozenset(),
                         session_wall: float | None = None, session_start: float | None = None,
                         extra_timing: dict | None = None, recorded_dir: Path | None = None) -> TaskSummary | None:
    """Read every case journal of the task and write its artifacts; None if no case has finished. `info` is the
    task's run.json (nothing else is read: no data files, no model). `recorded_dir`: the report dir that
    summary.json names, when the files are written elsewhere first (merge)."""
    records, done, missing, completes, per_case = [], [], [], [], {}
    counts = {"truncated_prompts": 0, "hit_max_new_tokens": 0}
    where: dict = {}  # example id -> its journal line: artifacts count each distinct id once, or refuse
    for case_id in info["cases"]:
        path = journal_path(rdir, case_id)
        j = read_journal(path)
        chosen = case_records(j, cfg)
        if chosen is None:
            missing.append(case_id)
            continue
        for r in j.records:  # every journaled id, selected or not: a stray one is named, never ignored
            if r["id"] in where:
                raise ValueError(f"{path}:{j.lines[r['id']]}: example id {r['id']!r} also in {where[r['id']]}; "
                                 "ids must be unique within a task (does the data repeat it?)")
            where[r["id"]] = f"{path}:{j.lines[r['id']]}"
        done.append(case_id)
        completes.append(j.complete)
        records.extend(chosen)
        own = selected_counts(chosen, j.count_lines)  # of the selected examples only
        per_case[case_id] = {"n": len(chosen), "seconds": j.complete.get("seconds"), **own}
        for k in counts:
            counts[k] += own[k]
    if not done:
        return None
    metrics = benchmark(cfg).summarize(records, cfg)
    # this session's cases: a case finished in an earlier run keeps its old completion line
    now = [c for c in completes if session_start is None or c.get("started", 0) >= session_start]
    case_seconds = sum(c["seconds"] for c in now)
    scored = sum(c.get("scored_now", 0) for c in now)
    span = max(c["finished"] for c in now) - min(c["started"] for c in now) \
        if now and session_start is not None else None
    skipped = info["dataset"].get("skipped_lines", []) + [s for c in completes for s in c.get("skipped", [])]
    not_completed = [c for c in missing if f"{cfg.name}:{c}" in selected]
    generations = sum(1 for r in records if "response" in r)
    flags, warnings = _warnings(metrics, counts, generations, cfg, skipped, len(records))
    timing = {"session_wall_seconds": None if session_wall is None else round(session_wall, 2),
              "task_wall_seconds": None if span is None else round(span, 2),
              "case_seconds_sum": round(case_seconds, 2),
              "model_load_seconds": completes[0]["model"].get("load_seconds"),
              "examples_scored": scored,
              # read back from journals written before this session (None: no session, e.g. a merge)
              "examples_resumed": None if session_start is None else len(records) - scored,
              "examples_per_second": round(scored / case_seconds, 2) if case_seconds and scored else None,
              "examples_per_second_basis": "examples scored / case_seconds_sum over the cases scored in this "
                                           "session (all cases after a merge): scoring throughput per process, "
                                           "model load excluded",
              **(extra_timing or {})}
    scores = reporting.assemble(metrics, records, task=cfg.task, name=cfg.name, skipped_rows=skipped,
                                extra_counts={**counts, "generations": generations}, flags=flags, warnings=warnings)
    full = TaskSummary(
        **vars(scores), suite=cfg.suite,
        cases={"done": done, "missing": missing, "not_completed": not_completed, "complete": not missing,
               "per_case": per_case},
        recipe=info["recipe"], model={**completes[0]["model"], "identity": info["model_identity"]},
        dataset=info["dataset"], seed=cfg.seed, versions=info["versions"], environment=info["environment"],
        fingerprint=info["fingerprint"], fingerprint_parts=info["fingerprint_parts"], timing=timing,
        report_dir=str(recorded_dir or rdir), correct_key=metrics.correct_key)
    reporting.write_task(rdir, records, full, recorded_dir)
    return full


def has_gates(cfg: TaskConfig) -> bool:
    """Any gate set (a baseline alone is not a gate)."""
    return any(getattr(cfg.gates, f.name) is not None for f in dataclasses.fields(cfg.gates) if f.name != "baseline")


def finish_task(cfg: TaskConfig, rdir: Path, info: dict, baseline: Path | None, selected: set[str] = frozenset(),
                session_wall: float | None = None, session_start: float | None = None):
    """A task's artifacts, then its gates (written into summary.json): (summary or None if no case finished,
    gate results). A baseline of an unexpected shape fails the gates that need it, with the reason."""
    summary = build_task_artifacts(cfg, rdir, info, selected, session_wall, session_start)
    if summary is None or not has_gates(cfg):
        return summary, []
    try:
        results = check(summary, cfg.gates, baseline)
    except Exception as e:
        results = [GateResult(cfg.name, "baseline", summary.headline, None, "a readable baseline", False,
                              f" -- {baseline}: {e.__class__.__name__}: {e}")]
    summary.gates = [dataclasses.asdict(r) for r in results]
    reporting.write_summary(rdir, summary)
    return summary, results


def _warnings(metrics: Metrics, counts: dict, generations: int, cfg: TaskConfig,
              skipped: list[dict] = (), examples: int = 0) -> tuple[list[str], list[str]]:
    """What a reader of the number must know (short flags for tables, full sentences): bad rows left out, prompts
    left-truncated to max_length (any: the model did not see their start), generations cut at max_new_tokens, and
    the benchmark's own notes (e.g. responses the parser could not read, fallback_summary)."""
    flags, out = [], []
    if skipped:
        first = "; ".join(str(s.get("error", s.get("row"))) for s in skipped[:3])
        flags.append(f"{len(skipped)} rows skipped")
        out.append(f"{len(skipped)} bad data rows skipped (dataset.on_bad_row: skip), not counted in the metrics: "
                   f"{first}{' ...' if len(skipped) > 3 else ''}")
    if (trunc := counts["truncated_prompts"]) and examples:
        flags.append(f"truncated {100 * trunc / examples:.0f}%")
        limit = cfg.model.max_length or "the model's"
        out.append(f"{trunc} of {examples} prompts ({100 * trunc / examples:.0f} %) were longer than model.max_length "
                   f"({limit}) and lost their beginning (left-truncated): raise model.max_length, or use fewer shots")
    cut = counts["hit_max_new_tokens"]
    if generations and cut > WARN_TRUNCATED_SHARE * generations:
        flags.append(f"max_new_tokens {100 * cut / generations:.0f}%")
        out.append(f"{cut} of {generations} generations ({100 * cut / generations:.0f} %) hit max_new_tokens="
                   f"{cfg.scoring.max_new_tokens}: answers may be cut off (raise scoring.max_new_tokens)")
    for flag, sentence in metrics.notes:
        flags.append(flag)
        out.append(sentence)
    return flags, out
