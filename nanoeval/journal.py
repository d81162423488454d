"""Case journals: the source of truth. One JSONL file per case, appended per batch, flushed and fsynced.

Lines are records (plain JSON dicts, one per example, each with its position in the case `_seq`, which reading sorts
by and drops: a look-ahead and a served model journal examples in the order they are scored; a record carries its
own engine counters, `truncated_prompt` / `hit_max_new_tokens`: true), after a chunk's records a
`{"_counts": {...}, "ids": [...]}` line only when the chunk's counters could not be given to its examples one by one
(lookahead.score_chunk), and, last, one `{"_complete": {...}}` line with the case's timing and model metadata. A torn last line (a crash mid-write) is dropped on reading. The report dir's
`run.json` holds the fingerprint the journals belong to; a different fingerprint moves the old run aside. A run holds
the report dir's lock file (`lock_report_dir`) for its life, so two runs never write one dir; an example id journaled
twice is an error naming both lines, never a record counted twice.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

RUN_FILE = "run.json"
JOURNALS = "journals"
PREVIOUS = "previous"
LOCK_FILE = ".nanoeval.lock"   # held (flock) by the run that writes the report dir; never moved aside


@dataclass
class Journal:
    records: list[dict] = field(default_factory=list)
    complete: dict | None = None          # the completion line's payload, if the case finished
    torn: bool = False                    # a torn last line was dropped
    valid_bytes: int = 0                  # length of the journal without the torn line
    count_lines: list = field(default_factory=list)  # the `_counts` lines ({"_counts": {...}, "ids": [...]})
    lines: dict = field(default_factory=dict)   # record id -> its 1-based line in the journal (for messages)


def journal_path(report_dir: Path, case_id: str) -> Path:
    """A case's journal: its id (a subject from the user's data, say) made one safe file name of `journals/`."""
    return inside(report_dir, JOURNALS, f"{file_name(case_id)}.jsonl")


def file_name(name: str) -> str:
    """`name` as one file name, reversibly (urllib.parse.unquote reads it back): letters and digits of any script,
    `_`, `.` and `-` stay, every other character (`/`, `%`, `<`, a space) becomes its UTF-8 %XX. Case ids of
    benchmarks (`anatomy`, `shard0of4`) keep their names."""
    return "".join(c if c.isalnum() or c in "_.-" else urllib.parse.quote(c, safe="") for c in name)


def inside(report_dir: Path, *parts: str) -> Path:
    """`report_dir / parts`, or a ValueError if that is not inside `report_dir` (a `..`, an absolute part): every
    path the harness builds under a report dir from a name it did not write itself goes through here."""
    path = report_dir.joinpath(*parts)
    base, full = os.path.abspath(report_dir), os.path.abspath(path)
    if full == base or os.path.commonpath([base, full]) != base:
        raise ValueError(f"{path}: not inside {report_dir} (a name from data or run.json may not climb out)")
    return path


def read_journal(path: Path) -> Journal:
    j = Journal()
    if not path.exists():
        return j
    data = path.read_bytes()
    pos = number = 0
    while pos < len(data):
        number += 1
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
            j.count_lines.append(obj)
        else:  # an id twice (two runs in one dir, a merge gone wrong) would count one example twice
            if obj.get("id") in j.lines:
                raise ValueError(f"{path}:{number}: example id {obj['id']!r} is journaled twice (first at line "
                                 f"{j.lines[obj['id']]}); each example is journaled once (two runs in one report "
                                 "dir?): remove one of the two lines, or the journal, and rerun")
            j.lines[obj.get("id")] = number
            j.records.append(obj)
        pos = end + 1
        j.valid_bytes = pos
    if any("_seq" in r for r in j.records):  # journaled as scored (look-ahead, served model): the examples' order
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
              "chat template)", "code": "recipe code", "environment": "environment (library versions, dtype, "
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
        leftovers = [p for p in report_dir.iterdir() if p.name not in (PREVIOUS, LOCK_FILE)]
        if leftovers and (fresh or old.get("fingerprint") != fingerprint):
            dest = previous_dir(report_dir)
            for p in leftovers:
                shutil.move(str(p), dest / p.name)
            parts, old_parts = info.get("fingerprint_parts", {}), old.get("fingerprint_parts") or {}
            changed = [PART_NAMES.get(k, k) + (_settings_changed(old.get("settings"), info.get("settings"))
                                               if k == "config" else "")
                       for k in parts if old_parts.get(k) != parts[k]] if old_parts else []
            what = f"{', '.join(changed)}: " if changed else ""
            why = "--nanoeval-fresh" if fresh else \
                f"fingerprint changed ({what}{old.get('fingerprint')} -> {fingerprint})"
            message = f"nanoeval: {task}: {why}; previous run moved to {dest}"
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_file, json.dumps({"task": task, **info}, indent=1) + "\n")
    return message


def _settings_changed(old: dict | None, new: dict | None, shown: int = 3) -> str:
    """` (scoring.num_fewshot 0 -> 5)`: the settings that changed between two run.json files (nothing when the old
    one predates `settings`)."""
    def flat(d, pre=""):
        out = {}
        for k, v in (d or {}).items():
            out.update(flat(v, f"{pre}{k}.") if isinstance(v, dict) and v else {f"{pre}{k}": v})
        return out

    if not old or not new:
        return ""
    a, b = flat(old), flat(new)
    keys = [k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    more = f", {len(keys) - shown} more" if len(keys) > shown else ""
    return f" ({', '.join(f'{k} {a.get(k)!r:.40} -> {b.get(k)!r:.40}' for k in keys[:shown])}{more})" if keys else ""


def previous_dir(report_dir: Path) -> Path:
    """A new, empty `previous/<date>` folder of `report_dir` for a run moved aside (`-1`, `-2` ... within one
    second): nothing moved there earlier is ever replaced."""
    stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
    while True:
        dest = report_dir / PREVIOUS / (f"{stamp}-{n}" if n else stamp)
        try:
            dest.mkdir(parents=True)
            return dest
        except FileExistsError:
            n += 1


class ReportDirBusy(RuntimeError):
    """Another live process holds the report dir's lock."""


def lock_report_dir(report_dir: Path, what: str = "pytest evals/"):
    """Hold `report_dir` for this process's life: an exclusive `flock` on its lock file, which names the holder
    (pid, host, start time, `what`). The OS drops the lock when its process dies, so the lock file of a dead run is
    simply taken over. Returns the open file (keep it: closing it releases the lock); another live holder is a
    ReportDirBusy naming it, with nothing in the dir written or moved."""
    if report_dir.exists() and not report_dir.is_dir():
        raise NotADirectoryError(f"report dir {report_dir} exists and is a file (expected a folder)")
    report_dir.mkdir(parents=True, exist_ok=True)
    f = open(report_dir / LOCK_FILE, "a+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        try:
            h = json.loads(f.read())
            holder = f"{h['what']}: pid {h['pid']} on {h['host']}, started {h['started']}"
        except (ValueError, TypeError, KeyError):
            holder = "its pid not yet written"
        f.close()
        raise ReportDirBusy(f"report dir {report_dir} is in use by another run ({holder}); wait for it to end, "
                            "or give this run another report_dir") from None
    f.seek(0)
    f.truncate()
    f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}) + "\n")
    f.flush()
    return f


def write_atomic(path: Path, text: str | bytes) -> None:
    """Temporary file + rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
