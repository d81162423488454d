"""Cross-case batching: the log-likelihood requests of the cases queued on this process are scored together.

A task's cases are small (an MMLU subject of a quick check has 3-4 questions); scored one case at a time, each
drains the batcher before the next starts. So when a case starts, the runner looks ahead: the same task's cases
that this process will run next (pytest's selection after -k/--lf/shards; under xdist, only what the controller
has already sent to this worker), up to `engine.lookahead` examples not yet in their journals. Each one's `score`
runs once against a recorder that keeps its requests and answers with placeholders (those records are thrown
away), then the engine scores all the requests in one length-sorted pass (`Engine.prescore`) and keeps each result
until that case asks for it. Every case still loads, scores and journals its own examples chunk by chunk, so
resume, -k, --lf, shards and -n behave as without it: a process killed during a look-ahead loses only scores that no
journal holds yet, and the rerun scores them again. A request the look-ahead did not see is scored when asked.
Generation requests are not scored ahead (a task whose `score` generates is left alone); if scoring ahead fails,
the task's cases score their own requests, so an error shows in the case whose request caused it.
"""
from __future__ import annotations

from pathlib import Path

from nanoeval.benchmark import CaseData
from nanoeval.config import TaskConfig
from nanoeval.journal import read_journal


class _Generates(Exception):
    """The benchmark generated: nothing of this task is scored ahead."""


class _Recorder:
    """Stands in for the engine while a benchmark's `score` runs ahead: keeps the log-likelihood requests and
    answers with placeholders."""

    def __init__(self):
        self.requests: list = []

    def loglikelihoods(self, requests: list, naive: bool = False) -> list[list[float]]:
        self.requests += requests
        return [[0.0] * len(r.continuations) for r in requests]

    def generate(self, requests: list, max_new_tokens: int) -> list[str]:
        raise _Generates


def case_examples(cfg: TaskConfig, data: CaseData) -> list:
    """The examples a case scores: all of them, or the first `dataset.limit`."""
    return data.examples[: cfg.dataset.limit] if cfg.dataset.limit else data.examples


def chunks(todo: list, size: int) -> list[list]:
    return [todo[i: i + size] for i in range(0, len(todo), size)]


def chunk_size(bench, engine) -> int:
    """Examples per journal append: what a crash can lose (larger on a GPU, so batches fill the token budget)."""
    return bench.chunk or (32 if engine.device == "cpu" else 1024)


class Lookahead:
    """One per process: which cases were scored ahead, and their loaded data (handed to the case when it runs)."""

    def __init__(self):
        self.seen: set[tuple[str, str]] = set()      # (task, case) whose requests went to Engine.prescore
        self.data: dict[tuple[str, str], CaseData] = {}
        self.off: set[str] = set()                   # tasks not looked ahead: they generate, or a look-ahead failed

    def load(self, bench, cfg: TaskConfig, case_id: str, root: Path) -> CaseData:
        """The case's data: what the look-ahead loaded for it, or a fresh load."""
        return self.data.pop((cfg.name, case_id), None) or bench.load(cfg, case_id, root)

    def prepare(self, bench, cfg: TaskConfig, root: Path, engine, data: CaseData,
                cases: list[tuple[str, Path]]) -> None:
        """Before cases[0] (whose data is loaded) scores: unless it was seen in an earlier look-ahead, gather its
        requests and those of the queued cases after it (id, journal), up to the engine's look-ahead window, and
        score them together. Nothing is scored ahead for a case alone (it journals chunk by chunk, as without
        look-ahead). A queued case whose data or requests fail is left to fail in its own run."""
        window = engine.lookahead
        if not window or cfg.name in self.off or (cfg.name, cases[0][0]) in self.seen:
            return
        requests, n, gathered = [], 0, []
        for i, (cid, journal) in enumerate(cases):
            if n >= window or (cfg.name, cid) in self.seen:
                break
            try:
                d = data if i == 0 else self.data.get((cfg.name, cid)) or bench.load(cfg, cid, root)
                done = {r["id"] for r in read_journal(journal).records}
                todo = [e for e in case_examples(cfg, d) if e.id not in done]
                if i == 0 and not todo:
                    return  # a finished case: the rerun of a complete run looks ahead for nothing
                rec = _Recorder()
                for batch in chunks(todo, chunk_size(bench, engine)):
                    bench.score(rec, cfg, batch, d.context)
            except _Generates:
                self.off.add(cfg.name)
                return
            except Exception:  # noqa: BLE001 - that case reports it when it runs
                break
            gathered.append((cid, d))
            requests += rec.requests
            n += len(todo)
        if len(gathered) < 2:
            return
        try:
            engine.prescore(requests)
        except Exception:  # noqa: BLE001 - each case scores its own requests, and the error shows in its own case
            self.off.add(cfg.name)
            return
        for cid, d in gathered:
            self.seen.add((cfg.name, cid))
            if cid != cases[0][0]:
                self.data[cfg.name, cid] = d
