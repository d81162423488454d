"""What a user sees while a run works: a live line on a terminal, a plain line at least every PLAIN_EVERY seconds in
logs (CI), and one-time notices (a GGUF file de-quantized once) that pytest's output capture would otherwise hide.

Each process keeps one `Status` (what it scores now). Without -n, the plugin draws it directly. Under -n, workers'
output never reaches the terminal: each worker writes its status to a small JSON file and the controller, woken
once a second, reads them all and draws one line. Nothing here imports pytest.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

PLAIN_EVERY = 15.0  # seconds between plain progress lines when not on a terminal
_sink = None        # the plugin's Reporter or Publisher; without one (library use) notices are printed


def notice(message: str) -> None:
    """Something the user should see now, once (e.g. a one-time conversion that takes a while)."""
    if _sink is None:
        print(f"nanoeval: {message}", flush=True)
    else:
        _sink.notice(message)


def set_sink(sink) -> None:
    global _sink
    _sink = sink


@dataclass
class Status:
    """One process's state: the case it works on, how far it is, what it scored in this session."""
    task: str | None = None
    case: str | None = None
    phase: str = "idle"                 # idle | loading (the model) | scoring
    since: float = 0.0                  # when the phase began
    done: int = 0                       # the case's examples in its journal (resumed ones included)
    total: int = 0                      # the case's examples
    scored: dict[str, int] = field(default_factory=dict)      # task -> examples scored in this session
    first: dict[str, float] = field(default_factory=dict)     # task -> when this process began scoring it
    last: dict[str, float] = field(default_factory=dict)      # task -> its last scoring update here
    base: int = 0                       # the task's examples scored before the current case
    # task -> case -> [journaled, total] of cases a look-ahead of this process journaled ahead (not yet run)
    ahead: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def loading(self, task: str, case: str) -> None:
        self.task, self.case, self.phase, self.since = task, case, "loading", time.time()

    def scoring(self, task: str, case: str, done: int, total: int, scored_now: int,
                ahead: dict[str, tuple[int, int]] | None = None) -> None:
        """`ahead`: {case: (journaled, total)} of the other cases a look-ahead is scoring now."""
        if self.phase != "scoring" or (self.task, self.case) != (task, case):
            self.since, self.base = time.time(), self.scored.get(task, 0)
        self.task, self.case, self.phase, self.done, self.total = task, case, "scoring", done, total
        self.first.setdefault(task, time.time())
        self.last[task] = time.time()
        self.scored[task] = self.base + scored_now
        if ahead:
            self.ahead.setdefault(task, {}).update({c: list(v) for c, v in ahead.items()})

    def idle(self) -> None:
        self.phase, self.since = "idle", time.time()


class Publisher:
    """On an xdist worker: the status as a file the controller reads (written whole, then renamed)."""

    def __init__(self, path: Path):
        self.path, self.status = path, Status()

    def publish(self) -> None:
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(self.status)))
            os.replace(tmp, self.path)
        except OSError:  # the controller has finished (its folder is gone): progress must never fail a case
            pass

    def notice(self, message: str) -> None:
        self.status.notices.append(message)
        self.publish()


def read_statuses(folder: Path) -> dict[str, Status]:
    out = {}
    for f in sorted(folder.glob("*.json")):
        try:
            out[f.stem] = Status(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # being replaced right now: next second
    return out


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_line(statuses: dict[str, Status], finished: dict[str, dict[str, int]],
                  sizes: dict[str, dict[str, int]], collected: dict[str, list[str]], now: float) -> str | None:
    """One line for the tasks being worked on: examples done/total, examples/s, ETA, and each process's case.
    finished: task -> case -> examples of the cases finished; sizes: expected examples per case (may miss some);
    collected: the cases of each task this session runs."""
    parts = []
    busy = [s.task for s in statuses.values() if s.task and s.phase != "idle"]
    for task in dict.fromkeys(busy or [s.task for s in statuses.values() if s.task]):  # idle: the last task
        active = {w: s for w, s in statuses.items() if s.task == task and s.phase != "idle"}
        current = {s.case: s for s in active.values() if s.phase == "scoring"}
        # each case counted once: finished (its report), else being scored, else journaled ahead by a look-ahead
        known = {c: tuple(v) for s in statuses.values() for c, v in s.ahead.get(task, {}).items()}
        known.update({c: (s.done, s.total) for c, s in current.items()})
        known.update({c: (n, n) for c, n in finished.get(task, {}).items()})
        done = sum(d for d, _ in known.values())
        total = 0
        for case in collected.get(task, []):
            n = known[case][1] if case in known else sizes.get(task, {}).get(case)
            total = None if n is None or total is None else total + n
        scored = sum(s.scored.get(task, 0) for s in statuses.values())
        first = min((s.first[task] for s in statuses.values() if task in s.first), default=now)
        # scoring seconds: while nothing scores (between cases, workers closing) the rate stays, never decays
        end = now if current else max((s.last[task] for s in statuses.values() if task in s.last), default=now)
        rate = scored / (end - first) if scored and end > first else 0.0
        text = f"{task} {done:,}" + (f"/{total:,} examples ({100 * done / total:.0f}%)" if total else " examples")
        if rate:
            text += f", {rate:.1f} ex/s"
            if total and total > done:
                text += f", ETA {_duration((total - done) / rate)}"
        here = []
        for w, s in active.items():
            who = f"{w} " if len(statuses) > 1 else ""
            waited = f" ({_duration(now - s.since)})" if now - s.since >= 1 else ""
            here.append(f"{who}{s.case} {s.done}/{s.total}" if s.phase == "scoring"
                        else f"{who}loading the model{waited}")
        parts.append(f"{text} [{'; '.join(here) or 'between cases'}]")
    return "; ".join(parts) if parts else None


class Display:
    """Draws on the controller (or the only process) through pytest's terminal writer `tw`: on a terminal, a live
    segment after the current line's dots, erased before pytest writes again; otherwise a plain line at most every
    PLAIN_EVERY seconds. `unhide` is a context manager that lifts output capture (inside a test, without -n);
    `own_lines`: write the file name again after a line of ours (pytest without -n); `quiet` (-q): notices
    only."""

    def __init__(self, reporter, unhide, quiet: bool, own_lines: bool):
        self.tr, self.unhide, self.quiet, self.own_lines = reporter, unhide, quiet, own_lines
        self.tty = bool(reporter.isatty())
        self.live, self.last_plain = 0, time.time()

    def erase(self) -> None:
        if self.live:
            f = self.tr._tw._file
            f.write("\b" * self.live + "\x1b[K")
            f.flush()
            self.live = 0

    def draw(self, text: str | None, now: float) -> None:
        if self.quiet or not text:
            return
        tw = self.tr._tw
        room = tw.fullwidth - tw.width_of_current_line - 3
        with self.unhide():
            if self.tty and room >= 30:  # after the dots, written around the writer so its line width stays right
                self.erase()
                segment = "  " + (text if len(text) <= room else text[: room - 1] + "~")
                tw._file.write(segment)
                tw._file.flush()
                self.live = len(segment)
            elif now - self.last_plain >= PLAIN_EVERY:
                self.line(text)
                self.last_plain = now

    def line(self, text: str, **markup) -> None:
        """A line of its own between pytest's output. Without -n: after dots, the dots go on under their file name;
        otherwise (-v, or before any result) the line is left open for pytest's next write to end."""
        self.erase()
        tw, where = self.tr._tw, self.tr.currentfspath
        if tw.width_of_current_line:
            tw.line()
        if self.own_lines and isinstance(where, Path):  # (pytest also keeps a str location, None or -2 there)
            tw.line(f"nanoeval: {text}", **markup)
            tw.write(f"{os.path.relpath(where, self.tr.startpath)} ")
        elif self.own_lines:
            tw.write(f"nanoeval: {text}", **markup)
            self.tr.currentfspath = None  # pytest then starts its next line (and repeats a -v location)
        else:
            tw.line(f"nanoeval: {text}", **markup)
        tw.flush()

    def notice(self, message: str) -> None:
        with self.unhide():
            self.line(message, bold=True)

    def close(self) -> None:
        """Before pytest's summary: end a line of ours left open."""
        self.erase()
        if self.own_lines and self.tr.currentfspath is None and self.tr._tw.width_of_current_line:
            self.tr._tw.line()
