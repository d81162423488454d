"""Case journals: the source of truth. One JSONL file per case, appended per batch, flushed and fsynced.

Lines are records (plain JSON dicts, one per example; from a served model in the order answers arrived, each with
its position `_seq`, which reading sorts by and drops), after a chunk's records a `{"_counts": {...}}` line with the
engine's counters for that chunk when any is non-zero (prompts truncated, generations cut at max_new_tokens), and,
last, one `{"_complete": {...}}` line with the case's timing and model metadata. A torn last line (a crash mid-write) is dropped on reading. The report dir's
`run.json` holds the fingerprint the journals belong to; a different fingerprint moves the old run aside.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_FILE = "run.json"
JOURNALS = "journals"
PREVIOUS = "previous"


@dataclass
class Journal:
    records: list[dict] = field(default_factory=list)
    complete: dict | None = None          # the completion line's payload, if the case finished
    torn: bool = False                    # a torn last line was dropped
    valid_bytes: int = 0                  # length of the journal without the torn line
    counts: dict = field(default_factory=dict)  # the `_counts` lines, summed


def journal_path(report_dir: Path, case_id: str) -> Path:
    return report_dir / JOURNALS / f"{case_id}.jsonl"


def read_journal(path: Path) -> Journal:
    j = Journal()
    if not path.exists():
        return j
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        line = data[pos:] if end < 0 else data[pos:end]
        try:
            obj = json.loads(line)
            if end < 0:  # no final newline: the last write was cut short
                raise json.JSONDecodeError("unterminated", "", 0)
        except json.JSONDecodeError:
            if end < 0 or data.find(b"\n", end + 1) < 0 and not data[end + 1:].strip():
                j.torn = True  # only the last line may be torn
                break
            raise ValueError(f"{path}: byte {pos}: corrupt journal line (not JSON)") from None
        if "_complete" in obj:
            j.complete = obj["_complete"]
        elif "_counts" in obj:
            for k, v in obj["_counts"].items():
                j.counts[k] = j.counts.get(k, 0) + v
        else:
            j.records.append(obj)
        pos = end + 1
        j.valid_bytes = pos
    if any("_seq" in r for r in j.records):  # journaled as answers arrived (a served model): the examples' order
        j.records.sort(key=lambda r: r.get("_seq", -1))
        for r in j.records:
            r.pop("_seq", None)
    return j


class JournalWriter:
    """Append-only writer; a torn tail from an earlier crash is cut off before appending."""

    def __init__(self, path: Path, keep_bytes: int | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_bytes is not None and path.exists():
            with open(path, "r+b") as f:
                f.truncate(keep_bytes)
        self.f = open(path, "ab")

    def append(self, objs: list[dict]) -> None:
        if objs:
            self.f.write(b"".join(json.dumps(o, sort_keys=True).encode() + b"\n" for o in objs))
            self.f.flush()
            os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


PART_NAMES = {"config": "config settings", "data": "data files", "model": "model files (weights, tokenizer, "
              "chat template)", "code": "recipe code", "environment": "environment (torch, transformers, dtype, "
              "device)"}


def prepare_report_dir(report_dir: Path, info: dict, task: str, fresh: bool) -> str | None:
    """Make `report_dir` ready for a run described by `info` (run.json: its `fingerprint` and the parts it is made
    of); return a one-line message if an old run with another fingerprint (or --nanoeval-fresh) moved aside."""
    if report_dir.exists() and not report_dir.is_dir():
        raise NotADirectoryError(f"report dir {report_dir} exists and is a file (expected a folder)")
    run_file = report_dir / RUN_FILE
    fingerprint = info["fingerprint"]
    message = None
    if report_dir.exists():
        old = {}
        if run_file.exists():
            try:
                old = json.loads(run_file.read_text())
                assert isinstance(old, dict)
            except (OSError, json.JSONDecodeError, AssertionError):
                old = {"fingerprint": "unreadable"}
        leftovers = [p for p in report_dir.iterdir() if p.name != PREVIOUS]
        if leftovers and (fresh or old.get("fingerprint") != fingerprint):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            dest = report_dir / PREVIOUS / stamp
            n = 1
            while dest.exists():
                dest, n = report_dir / PREVIOUS / f"{stamp}-{n}", n + 1
            dest.mkdir(parents=True)
            for p in leftovers:
                shutil.move(str(p), dest / p.name)
            parts, old_parts = info.get("fingerprint_parts", {}), old.get("fingerprint_parts") or {}
            changed = [PART_NAMES.get(k, k) for k in parts if old_parts.get(k) != parts[k]] if old_parts else []
            what = f"{', '.join(changed)}: " if changed else ""
            why = "--nanoeval-fresh" if fresh else \
                f"fingerprint changed ({what}{old.get('fingerprint')} -> {fingerprint})"
            message = f"nanoeval: {task}: {why}; previous run moved to {dest}"
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_file, json.dumps({"task": task, **info}, indent=1) + "\n")
    return message


def write_atomic(path: Path, text: str | bytes) -> None:
    """Temporary file + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
