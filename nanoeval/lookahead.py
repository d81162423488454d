"""Cross-case batching: the log-likelihood requests of the cases queued on this process are scored together.

A task's cases are small (an MMLU subject of a quick check has 3-4 questions); scored one case at a time, each
drains the batcher before the next starts. So when a case starts, the runner looks ahead: the same task's cases
that this process will run next (pytest's selection after -k/--lf/shards; under xdist, only what the controller
has already sent to this worker), up to `engine.lookahead` examples not yet in their journals. Each example's
`score` runs once against a recorder that keeps its requests and answers with placeholders (those records are
thrown away), then the engine scores all the requests in one length-sorted pass (`Engine.prescore`). After each
batch, every example whose requests are all answered is scored for real (its benchmark's `score` on the engine,
answered from the kept results: the records the case itself would write) and appended at once to its own case's
journal, with its position in the case (`_seq`) and the usual fsync. So an interrupt or a kill at any moment keeps
everything scored so far, and the rerun scores only the rest. Each case then runs as without look-ahead: it finds
those examples journaled, scores what is left (nothing, usually) and writes its completion line; resume, -k, --lf,
shards and -n are unchanged. A request the look-ahead did not see is scored when asked. Generation requests are
not scored ahead (a task whose `score` generates is left alone); if scoring ahead fails, what it journaled stays
and the task's cases score the rest themselves, so an error shows in the case whose request caused it.

Also here, shared with the runner's case loop: a case's examples, its chunk size and the scoring of one chunk.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from nanoeval.benchmark import CaseData
from nanoeval.config import TaskConfig
from nanoeval.journal import JournalWriter, file_name, read_journal


class _Generates(Exception):
    """The benchmark generated: nothing of this task is scored ahead."""


class _Recorder:
    """Stands in for the engine while a benchmark's `score` runs ahead: keeps the log-likelihood requests and
    answers with placeholders."""

    def __init__(self):
        self.requests: list = []

    def loglikelihoods(self, requests: list, naive: bool = False) -> list[list[float]]:
        self.requests += requests
        return [[0.0] * len(r.pairs()) for r in requests]

    def token_counts(self, requests: list) -> list[list[int]]:
        return [[0] * len(r.pairs()) for r in requests]

    def generate(self, requests: list, max_new_tokens: int) -> list[str]:
        raise _Generates

    def generate_scored(self, requests: list, max_new_tokens: int, gold: list) -> tuple[list[str], list]:
        raise _Generates


def case_examples(cfg: TaskConfig, data: CaseData) -> list:
    """The examples a case scores: all of them, or the first `dataset.limit`."""
    return selection(cfg, data.examples)


def selection(cfg: TaskConfig, items: list) -> list:
    """What `dataset.limit` selects of a case's examples (or of their ids, in order): the first `limit`, or all."""
    return items[: cfg.dataset.limit] if cfg.dataset.limit else items


def adopt(bench, cfg: TaskConfig, root: Path, journal: Path, examples: list) -> int:
    """Copy into a case's `journal` the records of its `examples` that another journal of the task holds, each
    with its position in this case: a journal that is not one of the task's cases now is a case of another
    selection (another `num_shards` or `shard_size`) with the same fingerprint (another one moves the whole report
    dir aside), and records are per example, so a changed shard count scores nothing again. Returns how many."""
    own = {f"{file_name(c)}.jsonl" for c in bench.cases(cfg, root)}
    others = sorted(p for p in journal.parent.glob("*.jsonl") if p.name not in own)
    if not others:
        return 0
    j = read_journal(journal)
    done = {r["id"] for r in j.records}
    todo = {e.id: pos for pos, e in enumerate(examples) if e.id not in done}
    found: dict = {}
    for path in others if todo else ():
        try:
            lent = read_journal(path).records
        except ValueError:  # a broken journal of an old selection lends nothing; the case scores those examples
            continue
        for r in lent:
            if r["id"] in todo:
                found.setdefault(r["id"], r)
    if found:
        writer = JournalWriter(journal, keep_bytes=j.valid_bytes)
        try:
            writer.append([{**r, "_seq": todo[i]} for i, r in found.items()])
        finally:
            writer.close()
    return len(found)


def chunk_size(bench, engine) -> int:
    """Examples per journal append: what a crash can lose. Larger on a GPU, so batches fill the token budget; and
    for free-form generation on a CPU (128: about 3 minutes of GSM8K with a 135M model), where each call decodes
    until its longest row stops, so a small chunk pays that tail of nearly empty steps again and again."""
    if bench.chunk:
        return bench.chunk
    if engine.device != "cpu":
        return 1024
    return 128 if "generate" in bench.strategies else 32


# the engine's counters, and the key a record carries (true) when its own request moved one
FLAGS = {"truncated_prompts": "truncated_prompt", "hit_max_new_tokens": "hit_max_new_tokens"}


def score_chunk(engine, score, batch: list, key: str) -> tuple[list[dict], list[dict]]:
    """A chunk's records (`score(batch)`), counted on this thread (a served engine counts per thread). When the
    benchmark sent one request per example (every benchmark here does), each record carries its own counters
    (`truncated_prompt`, `hit_max_new_tokens`: true), so a smaller selection later counts only what it selects;
    otherwise a `_counts` line with the chunk's counters and example ids follows the records. A non-finite
    log-likelihood fails the case."""
    engine.counts, engine.noted = {k: 0 for k in engine.counts}, []
    try:
        records = score(batch)
        noted = engine.noted
    finally:
        engine.noted = None  # noted only here: an engine used directly keeps no list that grows
    for r in records:
        if any(not math.isfinite(x) for x in r.get("lls", [])):
            raise FloatingPointError(f"{key}: example {r['id']}: the model returned a non-finite log-likelihood "
                                     f"{r['lls']} (expected finite numbers; check dtype/weights)")
    if len(noted) == len(records):  # one request per example, in the batch's order (benchmark.py: `score`)
        for r, counted in zip(records, noted):
            r.update({FLAGS[k]: True for k, v in counted.items() if v})
        return records, []
    counts = {k: v for k, v in engine.counts.items() if v}
    return records, [{"_counts": counts, "ids": [r["id"] for r in records]}] if counts else []


def selected_counts(records: list[dict], count_lines: list[dict]) -> dict[str, int]:
    """The engine's counters over a case's selected `records`: their own flags (exact), plus each `_counts` line (a
    chunk whose examples could not be told apart: a benchmark that sends other than one request per example) with
    one of its examples among them, counted whole (a line without ids, from an older journal: always)."""
    ids = {r["id"] for r in records}
    out = {k: sum(bool(r.get(flag)) for r in records) for k, flag in FLAGS.items()}
    for line in count_lines:
        if line.get("ids") is None or ids.intersection(line["ids"]):
            for k, v in line["_counts"].items():
                out[k] = out.get(k, 0) + v
    return out


@dataclass
class _Queued:
    """A case in a look-ahead: its examples not yet journaled (position in the case, example), how many of each
    one's requests are not answered yet, and its journal (opened at its first record: a torn tail is cut then)."""
    id: str
    journal: Path
    data: CaseData
    valid_bytes: int
    done: int                                # its examples in its journal
    total: int                               # its examples
    todo: list[tuple[int, object]]
    left: list[int] = field(default_factory=list)
    writer: JournalWriter | None = None


class Lookahead:
    """One per process: which cases were scored ahead, their loaded data (handed to the case when it runs), and
    what was journaled ahead of each (its completion line counts it)."""

    def __init__(self):
        self.seen: set[tuple[str, str]] = set()      # (task, case) whose requests went to Engine.prescore
        self.data: dict[tuple[str, str], CaseData] = {}
        self.off: set[str] = set()                   # tasks not looked ahead: they generate, or a look-ahead failed
        # (task, case) -> [examples, requests, seconds] scored ahead: the seconds are the look-ahead's, shared out
        # by examples, so each case's examples/s counts the time its own examples took
        self.journaled: dict[tuple[str, str], list] = {}

    def load(self, bench, cfg: TaskConfig, case_id: str, root: Path) -> CaseData:
        """The case's data: what the look-ahead loaded for it, or a fresh load."""
        return self.data.pop((cfg.name, case_id), None) or bench.load(cfg, case_id, root)

    def taken(self, cfg: TaskConfig, case_id: str) -> tuple[int, int, float]:
        """(examples, requests, seconds) of the case journaled ahead in this process, once (its completion line
        says it)."""
        return tuple(self.journaled.pop((cfg.name, case_id), (0, 0, 0.0)))

    def prepare(self, bench, cfg: TaskConfig, root: Path, engine, data: CaseData,
                cases: list[tuple[str, Path]], progress=None) -> int:
        """Before cases[0] (whose data is loaded) scores: unless it was seen in an earlier look-ahead, gather its
        requests and those of the queued cases after it (id, journal), up to the engine's look-ahead window, score
        them together and journal each example as soon as its requests are answered. After each batch,
        `progress(done, total, scored, seconds, ahead=...)`: cases[0]'s journaled examples and total, all examples
        journaled ahead so far and the seconds since this began, and `ahead`: {case: (journaled, total)} of the
        other queued cases (the task's count goes up whichever case an example belongs to). Nothing is scored
        ahead for a case alone (it journals chunk by chunk, as without look-ahead). A queued case whose data or
        requests fail is left to fail in its own run; a finished one is passed over. Returns how many examples it
        journaled."""
        window, started = engine.lookahead, time.time()  # gathering the requests is part of the scoring time
        if not window or cfg.name in self.off or (cfg.name, cases[0][0]) in self.seen:
            return 0
        queued: list[_Queued] = []
        requests, owner = [], []  # per request: (its case in `queued`, its example in that case's todo)
        for i, (cid, journal) in enumerate(cases):
            if sum(len(q.todo) for q in queued) >= window or (cfg.name, cid) in self.seen:
                break
            try:
                d = data if i == 0 else self.data.get((cfg.name, cid)) or bench.load(cfg, cid, root)
                examples = case_examples(cfg, d)
                if i:  # cases[0]'s run adopted its own already
                    adopt(bench, cfg, root, journal, examples)
                j = read_journal(journal)
                if len({e.id for e in examples}) < len(examples):
                    raise ValueError("repeated example ids")  # its own run names the id
                done = {r["id"] for r in j.records}
                todo = [(pos, e) for pos, e in enumerate(examples) if e.id not in done]  # complete ones too:
                # a rerun with a larger dataset.limit scores only the examples it adds
                if i == 0 and not todo:
                    return 0  # a finished case: the rerun of a complete run looks ahead for nothing
                q = _Queued(cid, journal, d, j.valid_bytes, len(examples) - len(todo), len(examples), todo)
                rec = _Recorder()
                for k, (_, e) in enumerate(todo):  # one example at a time: which requests are whose
                    before = len(rec.requests)
                    bench.score(rec, cfg, [e], d.context)
                    q.left.append(len(rec.requests) - before)
                    owner += [(len(queued), k)] * q.left[-1]
            except _Generates:
                self.off.add(cfg.name)
                return 0
            except Exception:  # noqa: BLE001 - that case reports it when it runs
                del owner[len(requests):]
                break
            if todo:
                queued.append(q)
                requests += rec.requests
        if len(queued) < 2:
            return 0
        scored = 0

        def answered(indices: list[int]) -> None:
            """After a batch: journal the examples whose requests are all answered now, per case, in one append."""
            nonlocal scored
            ready: dict[int, list[int]] = {}
            for r in indices:
                c, k = owner[r]
                queued[c].left[k] -= 1
                if not queued[c].left[k]:
                    ready.setdefault(c, []).append(k)
            for c, ks in ready.items():
                scored += self._journal(queued[c], sorted(ks), bench, cfg, engine)
                shown()  # after every append, and after a batch that completed no example: a log gets its line
            if not ready:
                shown()

        def shown() -> None:
            if progress is not None:
                progress(queued[0].done, queued[0].total, scored, time.time() - started,
                         ahead={q.id: (q.done, q.total) for q in queued[1:]})

        try:
            engine.prescore(requests, answered)
        except Exception:  # noqa: BLE001 - each case scores the rest itself, and the error shows in its own case
            self.off.add(cfg.name)
            return scored
        finally:
            for q in queued:
                if q.writer is not None:
                    q.writer.close()
            self._share_seconds(cfg, queued, time.time() - started)
        for q in queued:
            self.seen.add((cfg.name, q.id))
            if q.id != cases[0][0]:
                self.data[cfg.name, q.id] = q.data
        return scored

    def _journal(self, q: _Queued, ks: list[int], bench, cfg: TaskConfig, engine) -> int:
        """Score examples `ks` of q's todo on the engine (answered from the kept results: the same records as in
        the case's own run) and append them to its journal, each with its position in the case."""
        part = [q.todo[k] for k in ks]
        before = engine.ahead_used
        records, counts = score_chunk(engine, lambda batch: bench.score(engine, cfg, batch, q.data.context),
                                      [e for _, e in part], f"{cfg.name}:{q.id}")
        if q.writer is None:
            q.writer = JournalWriter(q.journal, keep_bytes=q.valid_bytes)
        q.writer.append([{**r, "_seq": pos} for r, (pos, _) in zip(records, part)] + counts)
        q.done += len(records)
        stats = self.journaled.setdefault((cfg.name, q.id), [0, 0, 0.0])
        stats[0] += len(records)
        stats[1] += engine.ahead_used - before
        return len(records)

    def _share_seconds(self, cfg: TaskConfig, queued: list[_Queued], seconds: float) -> None:
        """The look-ahead's seconds, shared out among its cases by the examples each had journaled: a case scored
        ahead reports the time its examples took, not the moment its own run found them journaled."""
        stats = [self.journaled[cfg.name, q.id] for q in queued if (cfg.name, q.id) in self.journaled]
        examples = sum(s[0] for s in stats)
        for s in stats:
            s[2] = seconds * s[0] / examples if examples else 0.0
