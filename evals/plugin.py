"""pytest wiring, hooks only: options, parametrization, xdist worker setup, progress, terminal summary, HTML extras.

The work is done by the library (nanoeval/): `session.open_session` loads and checks the configs (a bad config is
one `ERROR:` line and exit 4), `runner.run_case` runs one case with resume, `runner.finish_task` builds a task's
artifacts and gates from its journals. Flow: configure (every process; xdist workers pick a GPU) -> session start
on the controller (prepare report dirs, move a stale run aside) -> one test per case (records appended to its
journal) -> after the run loop, on the controller (artifacts, gates, suite file, terminal table, HTML summary).
Workers only write journals; reports carry counts and the journal path as plain JSON types. The run's state lives
on one NanoEvalPlugin object, registered at configure time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import html
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nanoeval import curves, devices, progress, reporting
from nanoeval.benchmark import TaskError
from nanoeval.config import ConfigError, TaskConfig, suite_dir
from nanoeval.data import DataError, DataLoadError
from nanoeval.engine.served import ServerError
from nanoeval.gates import GateResult
from nanoeval.journal import journal_path, prepare_report_dir, read_journal
from nanoeval.lookahead import Lookahead, selected_counts
from nanoeval.pool import ModelPool
from nanoeval.runner import benchmark, case_records, finish_task, has_gates, run_case
from nanoeval.session import DEFAULT_SUITE, Session, baseline_path, open_session

EVALS_DIR = Path(__file__).resolve().parent
PLUGIN = "nanoeval-run"


def pytest_addoption(parser):
    g = parser.getgroup("nanoeval")
    g.addoption("--nanoeval-config", default=None, help="task config YAML (default: $NANOEVAL_CONFIG)")
    g.addoption("--nanoeval-suite", default=None,
                help=f"suite YAML (default: $NANOEVAL_SUITE, else {DEFAULT_SUITE})")
    g.addoption("--nanoeval-fresh", action="store_true",
                help="move the previous run's journals and artifacts aside and start fresh")
    g.addoption("--nanoeval-model", default=None, metavar="PATH",
                help="run this model (a folder or hub id) instead of the config's; its name is appended to the "
                     "report dirs (default: $NANOEVAL_MODEL)")
    g.addoption("--nanoeval-shard", default=None, metavar="i/N",
                help="run only shard i of N of the cases (0-based; default: $NANOEVAL_SHARD)")


@pytest.hookimpl(optionalhook=True)  # xdist's hook: `-p no:xdist` must not break the run
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per GPU; without GPUs, half the CPU cores."""
    return devices.auto_workers()


def _is_active(config) -> bool:
    """Only runs that collect evals/ load configs (so `pytest tests/` never touches artifacts)."""
    args = config.args or [str(config.rootpath)]
    for a in args:
        p = Path(a.split("::")[0])
        p = (p if p.is_absolute() else Path(config.invocation_params.dir) / p).resolve()
        if p == EVALS_DIR or EVALS_DIR in p.parents or p in EVALS_DIR.parents:
            return True
    return False


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    if not _is_active(config):
        return
    try:
        session = open_session(
            Path(config.rootpath), config.getoption("nanoeval_config") or os.environ.get("NANOEVAL_CONFIG"),
            config.getoption("nanoeval_suite") or os.environ.get("NANOEVAL_SUITE"),
            config.getoption("nanoeval_shard") or os.environ.get("NANOEVAL_SHARD"),
            config.getoption("nanoeval_fresh"), controller=not _is_worker(config),
            model=config.getoption("nanoeval_model") or os.environ.get("NANOEVAL_MODEL"),
            cwd=Path(config.invocation_params.dir))
    except ConfigError as e:  # one `ERROR:` line per mistake
        raise pytest.UsageError("\nERROR: ".join(str(e).splitlines())) from None
    config.pluginmanager.register(NanoEvalPlugin(config, session), PLUGIN)


# ------------------------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    """One pytest case: a subject or a shard of one task."""
    cfg: TaskConfig
    id: str
    report_dir: Path
    root: Path
    node: object = None

    @property
    def journal(self) -> Path:
        return journal_path(self.report_dir, self.id)

    @property
    def key(self) -> str:
        return f"{self.cfg.name}:{self.id}"

    def run(self, engine) -> None:
        """Score the case's examples not yet in its journal (nanoeval/runner.py), then report it and its gate."""
        plugin = self.node.config.pluginmanager.get_plugin(PLUGIN)

        def advanced(done: int, total: int, scored: int, seconds: float, ahead: dict | None = None) -> None:
            plugin.status.scoring(self.cfg.name, self.id, done, total, scored, ahead)
            plugin.show_progress()

        run_case(self.cfg, self.id, self.root, self.journal, engine, advanced, plugin.lookahead,
                 [(c.id, c.journal) for c in queued_after(self.node) if c.cfg.name == self.cfg.name])
        j = read_journal(self.journal)
        j.records = case_records(j, self.cfg)  # what this run's selection selects (the journal may hold more)
        self.check_subject_gate(j, self.report(j, plugin.s.started))

    def report(self, j, since: float):
        """Counts for the test report (plain JSON types: they cross xdist's transport). `resumed`: the case was
        complete before this session (`since`): its completion line, seconds and examples/s are an earlier run's.
        Returns the case's metrics (None without records)."""
        seconds = (j.complete or {}).get("seconds")
        scored = (j.complete or {}).get("scored_now", 0)
        m = benchmark(self.cfg).summarize(j.records, self.cfg) if j.records else None
        headline = m.metrics.get(m.headline) if m else None
        label = m.headline if m else None
        if m and len(m.per_subject) == 1 and label.endswith("_macro"):  # a macro mean over one subject is its mean
            label = label.removesuffix("_macro")
        correct = sum(bool(r.get(m.correct_key)) for r in j.records) if m else 0  # the headline's correctness
        info = {"task": self.cfg.name, "case": self.id, "n": len(j.records),
                "counts": selected_counts(j.records, j.count_lines), "headline": label,
                "headline_value": None if headline is None or headline != headline else headline,
                "acc": correct / len(j.records) if j.records else None, "acc_label": m.subject_metric if m else "acc",
                "seconds": seconds,
                "examples_per_second": round(scored / seconds, 2) if seconds and scored else None,
                "resumed": (j.complete or {}).get("started", since) < since, "journal": str(self.journal),
                "predictions": str(self.report_dir / "predictions.jsonl")}
        self.node.user_properties.append(("nanoeval", json.loads(json.dumps(info))))
        return m

    def check_subject_gate(self, j, m) -> None:
        """`gates.min_per_subject` fails the case of a subject (cases that are subjects), on the headline's own
        correctness (`m`: the case's metrics)."""
        threshold = self.cfg.gates.min_per_subject
        subjects = {r.get("subject") for r in j.records}
        if threshold is None or subjects != {self.id} or not j.records:
            return
        acc = sum(bool(r[m.correct_key]) for r in j.records) / len(j.records)
        if acc < threshold:
            pytest.fail(f"gate min_per_subject: {self.key}: {m.subject_metric} {acc:.4f} < {threshold}", pytrace=False)


def case_test_id(task: str, case_id: str) -> str:
    """A case's pytest id, `task:case` always (so --lf and -k never pick another config's cases that share a
    subject), in printable ASCII: other characters and `%` `\\` become their UTF-8 %XX, so pytest writes the id
    into node ids as it is (it would escape them)."""
    text = f"{task}:{case_id}"
    return "".join(c if " " <= c <= "~" and c not in "%\\" else urllib.parse.quote(c, safe="") for c in text)


def _case_of(item) -> Case | None:
    cs = getattr(item, "callspec", None)
    c = cs.params.get("case") if cs else None
    return c if isinstance(c, Case) else None


def queued_after(item) -> list[Case]:
    """The cases this process will run after `item`, in order: the rest of the session's selection (after -k,
    --lf, shards); under xdist, only what the controller has already sent to this worker."""
    items = item.session.items
    worker = next((p for p in item.config.pluginmanager.get_plugins() if type(p).__name__ == "WorkerInteractor"),
                  None)
    if worker is None:
        after = items[items.index(item) + 1:]
    else:  # xdist's queue of item indices (the next one is already taken off it)
        with worker.torun.lock() as queue:
            after = [items[i] for i in [worker.nextitem_index, *queue] if isinstance(i, int)]
    return [c for c in map(_case_of, after) if c is not None]


@dataclass
class Progress:
    """What the terminal shows while cases run (progress.py draws it)."""
    status: progress.Status = field(default_factory=progress.Status)  # this process's case
    display: progress.Display | None = None       # controller or the only process
    publisher: progress.Publisher | None = None   # xdist worker: its status, for the controller
    folder: Path | None = None                    # xdist: where workers' status files are
    tick: object = None                           # xdist: read the workers' status files and draw
    gone: dict[str, progress.Status] = field(default_factory=dict)  # xdist: finished workers (their counts stay)


class NanoEvalPlugin:
    """The run's state and its hooks. On the controller it also collects what the cases reported."""

    def __init__(self, config, session: Session):
        self.config, self.s = config, session
        self.pool = ModelPool()
        self.lookahead = Lookahead()              # cases of this process scored ahead (nanoeval/lookahead.py)
        self.progress = Progress()
        self.gpu_lock = None                      # held for the worker's life: the OS frees it when it dies
        self.finished = False                     # artifacts and gates done
        self.pytest_session = None
        self.gate_reports: int | None = None      # gate reports added to the progress count (once)
        self.summaries: dict = {}                 # task -> its TaskSummary
        self.gate_results: list[GateResult] = []
        self.aggregate = None                     # a suite's Aggregate (summary.aggregate), once written
        self.curves: Path | None = None            # a sweep's curves.png, once written
        self.reported: dict[str, dict] = {}       # "task:case" -> the case's report info
        self.selected: set[str] = set()           # "task:case" seen by the controller
        self.failures: list[str] = []             # controller-level errors (exit status 1)
        self.task_errors: dict[str, tuple[str, str]] = {}  # task -> (case key, message): reported once
        self.notices: list[str] = []              # e.g. interrupted; rerun to resume
        self.collected: dict[str, list[str]] = {}  # task -> its cases selected in this session
        self.not_run: set[str] = set()            # node ids skipped for their task's error (--lf)
        # (module, pytest id) -> (task, case) of every case of the run (controller): how reports name their case
        self.case_ids = {(f"test_{t.task}.py", case_test_id(t.name, c)): (t.name, c)
                         for t in session.tasks for c in session.infos.get(t.name, {}).get("cases", [])}
        if _is_worker(config):
            self._setup_worker()
        elif getattr(config.option, "numprocesses", None):  # xdist: workers report progress through files
            self.progress.folder = Path(tempfile.mkdtemp(prefix="nanoeval-progress-"))

    @property
    def status(self) -> progress.Status:
        return self.progress.status

    def _setup_worker(self) -> None:
        """An xdist worker: the hub commits the controller resolved (every worker loads exactly what the
        fingerprint names), its own GPU (or share of CPU threads), its progress status file."""
        info = self.config.workerinput
        self.s.commits = dict(info.get("nanoeval_commits", {}))
        try:
            self.gpu_lock = devices.claim_device(info["testrunuid"], int(info.get("workercount", 1)))
        except RuntimeError as e:
            raise pytest.UsageError(f"nanoeval: worker {info['workerid']} {e}") from None
        if folder := info.get("nanoeval_progress"):
            self.progress.publisher = progress.Publisher(Path(folder) / f"{info['workerid']}.json")
            self.progress.status = self.progress.publisher.status
            progress.set_sink(self.progress.publisher)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config, log):
        """xdist, on the controller, for a sweep under -n N: every case of one checkpoint (`task@step-N:case`, all
        its tasks) goes to one worker, which loads that checkpoint once; other cases spread as with --dist load."""
        if config.getvalue("dist") != "load" or not any(t.step is not None for t in self.s.tasks):
            return None
        from xdist.scheduler import LoadScopeScheduling

        class CheckpointScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                found = re.search(r"@(step-\d+):", nodeid)
                return found.group(1) if found else nodeid

        return CheckpointScheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        """xdist, on the controller: hand each worker the hub commits and the progress folder."""
        node.workerinput["nanoeval_commits"] = self.s.commits
        node.workerinput["nanoeval_progress"] = str(self.progress.folder) if self.progress.folder else None

    def pytest_sessionstart(self, session):
        if _is_worker(session.config):
            return
        self.pytest_session = session
        self._start_display()
        for note in self.s.notes:
            print(f"nanoeval: {note}", flush=True)
        for t in self.s.tasks:
            try:
                msg = prepare_report_dir(self.s.dirs[t.name], self.s.infos[t.name], t.name, self.s.fresh)
            except (NotADirectoryError, FileExistsError, PermissionError) as e:
                raise pytest.UsageError(f"{t.source}: report_dir: {e}") from None
            if msg:
                print(msg, flush=True)

    def pytest_unconfigure(self, config):
        self.s.release()  # the report dirs' locks (taken in open_session): free for a next run in this process

    # ----------------------------------------------------------------------------------- parametrization
    def pytest_generate_tests(self, metafunc):
        if "case" not in metafunc.fixturenames:
            return
        bench = getattr(metafunc.module, "BENCHMARK", None)
        tasks = [t for t in self.s.tasks if bench is not None and t.task == bench.name]
        if not tasks:
            metafunc.parametrize("case", [pytest.param(None, marks=pytest.mark.skip(
                reason=f"the config names no {bench.name if bench else '?'} task"))], ids=["skipped"])
            return
        params, ids = [], []
        for t in tasks:
            for case_id in bench.cases(t, self.s.root):
                params.append(Case(t, case_id, self.s.dirs[t.name], self.s.root))
                ids.append(case_test_id(t.name, case_id))
        metafunc.parametrize("case", params, ids=ids, indirect=True)

    def pytest_collection_modifyitems(self, session, config, items):
        """Tasks in config order (a suite's models load once each); within a task, largest cases first.
        --nanoeval-shard i/N keeps every N-th case of that stable order (disjoint, the same on every machine)."""
        order = {t.name: i for i, t in enumerate(self.s.tasks)}
        models: dict[str, int] = {}  # a model's cases stay together: each model loads once per process
        for t in self.s.tasks:
            models.setdefault(ModelPool.key(t), len(models))

        def key(it):
            c = _case_of(it)
            if c is None:
                return (-1, 0, "")
            size = benchmark(c.cfg).known_sizes.get(c.id, 0)  # not from data: the same order on every machine
            return (models[ModelPool.key(c.cfg)], order[c.cfg.name], -size, c.id)

        items.sort(key=key)
        if self.s.shard:
            i, n = self.s.shard
            cases = [it for it in items if _case_of(it)]
            drop = [it for k, it in enumerate(cases) if k % n != i]
            if drop:
                config.hook.pytest_deselected(items=drop)
                items[:] = [it for it in items if it not in set(drop)]
        self.pool.remaining = {}
        for it in items:
            if (c := _case_of(it)) is not None:
                self.pool.remaining[ModelPool.key(c.cfg)] = self.pool.remaining.get(ModelPool.key(c.cfg), 0) + 1

    def pytest_collection_finish(self, session):
        """The cases this session runs (after -k, --lf, shards): progress totals, what an interrupt left undone."""
        self.collected = {}
        for c in filter(None, map(_case_of, session.items)):
            self.collected.setdefault(c.cfg.name, []).append(c.id)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids):
        """xdist, on the controller (which collects nothing itself): the cases this session runs."""
        if self.collected:
            return
        for task, case in filter(None, map(self._case_at, ids)):
            self.collected.setdefault(task, []).append(case)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_testnodedown(self, node, error):
        """xdist, on the controller: a worker that is gone (finished or crashed) leaves the progress line."""
        if self.progress.folder is not None:
            if self.progress.tick is not None:
                self.progress.tick()  # its last notices first
            last = progress.read_statuses(self.progress.folder).get(node.gateway.id)
            if last is not None:  # what it scored still counts in the task's examples/s; idle: off the line
                last.idle()
                self.progress.gone[node.gateway.id] = last
            (self.progress.folder / f"{node.gateway.id}.json").unlink(missing_ok=True)
            if self.progress.display is not None:
                self.progress.display.erase()

    # ------------------------------------------------------------------------------------------- fixtures
    @pytest.fixture
    def case(self, request) -> Case:
        c: Case = request.param
        c.node = request.node
        return c

    @pytest.fixture
    def engine(self, case):
        if ModelPool.key(case.cfg) not in self.pool.engines:
            self.status.loading(case.cfg.name, case.id)
            self.show_progress()
        try:
            return self.pool.get(case.cfg, case.root, self.s.commits.get(ModelPool.key(case.cfg)))
        except Exception as e:  # every case of the task would hit it: one clear line, the other cases skipped
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise TaskError(f"{case.cfg.name}: model {case.cfg.model.name or case.cfg.model.path!r} cannot be loaded "
                            f"({e.__class__.__name__}: {first})") from e

    # ---------------------------------------------------------------------- errors that every case would hit
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """A task-wide error is reported once, in one line; a case's bad data rows are one line too (unless --tb
        asks for the trace)."""
        report = yield
        c = _case_of(item)
        error = call.excinfo.value if call.excinfo is not None else None
        if c is not None and isinstance(error, ServerError) and item.config.option.tbstyle == "auto":
            report.longrepr = str(error)  # the server's own words, one line: the trace says nothing more
        if c is not None and type(error) is DataError and item.config.option.tbstyle == "auto":
            report.longrepr = str(error)  # bad rows of this case, named by file:line: like a config error
        if c is None or not isinstance(error, (TaskError, DataLoadError)) or not report.failed:
            return report
        message = str(error)
        self.task_errors.setdefault(c.cfg.name, (c.key, message))
        report.user_properties.append(("nanoeval_task_error", [c.cfg.name, message]))
        if item.config.option.tbstyle == "auto":
            report.longrepr = f"{message}\n(every case of {c.cfg.name} would hit this: its other cases are " \
                              "skipped; --tb=short shows the traceback)"
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        c = _case_of(item)
        if c is not None and c.cfg.name in self.task_errors:
            pytest.skip(f"{c.cfg.name}: not run: the task's error is reported once (above)")

    def pytest_runtest_teardown(self, item, nextitem):
        if (c := _case_of(item)) is not None:
            self.pool.done_with(c.cfg, keep=_is_worker(item.config))
            if self.status.phase != "idle":  # done, or failed before or while scoring: never "loading" forever
                self.status.idle()
                if self.progress.publisher is not None:
                    self.progress.publisher.publish()

    # ------------------------------------------------------------------------------- progress the user sees
    def _start_display(self) -> None:
        """On the controller (or the only process): draw progress; under xdist, wake once a second to read the
        workers' status files (through xdist's event queue, so drawing stays on the main thread)."""
        config, p = self.config, self.progress
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        capman = config.pluginmanager.get_plugin("capturemanager")
        unhide = capman.global_and_fixture_disabled if capman and p.folder is None else contextlib.nullcontext
        p.display = progress.Display(tr, unhide, quiet=config.get_verbosity() < 0, own_lines=p.folder is None)
        progress.set_sink(p.display)
        dsession = config.pluginmanager.get_plugin("dsession")
        if p.folder is None or dsession is None:
            return
        seen: dict[str, int] = {}  # worker -> notices shown

        def tick() -> None:
            statuses = {**p.gone, **progress.read_statuses(p.folder)}
            for worker, status in statuses.items():
                for message in status.notices[seen.get(worker, 0):]:
                    p.display.notice(f"[{worker}] {message}")
                seen[worker] = len(status.notices)
            p.display.draw(progress.progress_line(statuses, *self._totals(), time.time()), time.time())

        def wake() -> None:
            while not self.finished:
                time.sleep(1.0)
                dsession.queue.put(("nanoeval_progress", {}))

        dsession.worker_nanoeval_progress = p.tick = tick
        threading.Thread(target=wake, daemon=True, name="nanoeval-progress").start()

    def _totals(self) -> tuple[dict, dict, dict]:
        finished: dict[str, dict[str, int]] = {}
        for info in self.reported.values():
            finished.setdefault(info["task"], {})[info["case"]] = info["n"]
        return finished, self.s.sizes, self.collected

    def show_progress(self) -> None:
        """After this process's status changed: publish it (xdist worker) or draw it (without -n)."""
        if self.progress.publisher is not None:
            self.progress.publisher.publish()
        elif self.progress.display is not None:
            self.progress.display.draw(progress.progress_line({"main": self.status}, *self._totals(), time.time()),
                                       time.time())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid, location):
        self._erase_live()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logfinish(self, nodeid, location):
        self._erase_live()

    def _erase_live(self) -> None:
        if self.progress.display is not None:
            self.progress.display.erase()

    def _case_at(self, nodeid: str) -> tuple[str, str] | None:
        """(task, case) of a node id like evals/test_mmlu.py::test_mmlu[mmlu:anatomy]: its module and id looked up among
        the ids this run gives its cases (`case_test_id`), never parsed (a task name or subject may hold ':')."""
        path, _, name = nodeid.partition("::")
        if "[" not in name or not name.endswith("]"):
            return None
        return self.case_ids.get((Path(path).name, name[name.index("[") + 1: -1]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        """On the controller (with or without -n): remember which cases ran; print one line per finished case."""
        if _is_worker(self.config):
            return
        self._erase_live()
        session = self.pytest_session
        if self.gate_reports is None and session is not None and session.testscollected:
            # the gate reports come after every case: count them in the terminal's progress from the start
            self.gate_reports = sum(has_gates(t) for t in self.s.tasks)
            session.testscollected += self.gate_reports
        found = None if "::gates[" in report.nodeid else self._case_at(report.nodeid)
        if found is None:
            return
        key = f"{found[0]}:{found[1]}"  # its Case.key
        self.selected.add(key)
        if report.skipped and "not run: the task's error is reported once" in str(report.longrepr):
            self.not_run.add(report.nodeid)
        task_error = dict(report.user_properties).get("nanoeval_task_error")
        if task_error:  # under -n, each worker meets it: the first report counts, later ones become skips
            first = self.task_errors.setdefault(task_error[0], (key, task_error[1]))[0]
            if first != key:
                self.not_run.add(report.nodeid)
                report.outcome = "skipped"
                report.longrepr = (report.location[0], (report.location[1] or 0) + 1,
                                   f"Skipped: {task_error[0]}: not run: the task's error is reported once, at {first}")
        info = dict(report.user_properties).get("nanoeval")
        if report.when == "call" and info:
            self.reported[key] = info
            under_xdist = hasattr(report, "node")
            display = self.progress.display
            if display is not None and (under_xdist or self.config.get_verbosity() > 0):  # else dots and the table
                acc = "-" if info["acc"] is None else f"{info['acc']:.3f}"
                how = "from journal" if info["resumed"] else f"{info['examples_per_second']} ex/s"
                worker = f"[{report.node.gateway.id}] " if under_xdist else ""
                display.line(f"{worker}{key}: {info['n']} examples, {info['acc_label']} {acc}, {how}")

    # ------------------------------------------------------------------------------------------ session end
    @pytest.hookimpl(wrapper=True, trylast=True)  # inside the terminal reporter's wrapper: its 100% comes after
    def pytest_runtestloop(self, session):
        """After every case has finished (also under xdist, whose loop this wraps): artifacts, then gates, each
        task's gates reported as a test of its own (`<module>::gates[<task>]`) so pytest's summary line, junitxml
        and pytest-html count a failed gate as a failure."""
        try:
            result = yield
        finally:
            if self.progress.tick is not None:
                self.progress.tick()  # the workers' last notices
            if self.progress.display is not None:
                self.progress.display.close()
        if not _is_worker(session.config) and not session.config.option.collectonly:
            self._finish(session, emit=True)
        return result

    @pytest.hookimpl(tryfirst=True)  # before pytest-html writes its page
    def pytest_sessionfinish(self, session, exitstatus):
        if _is_worker(session.config):
            return
        if not self.finished and not session.config.option.collectonly:  # interrupted: what finished
            stopped = session.shouldfail or session.shouldstop  # -x / --maxfail (xdist raises an interrupt)
            self._finish(session, emit=False, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED and not stopped)
        lf = session.config.pluginmanager.get_plugin("lfplugin")
        if lf is not None and self.not_run:  # `--lf` reruns the cases a task's error kept from running
            lf.lastfailed.update(dict.fromkeys(self.not_run, True))
        if self.failures and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.finished = True  # stops the progress thread
        if self.progress.folder is not None:
            shutil.rmtree(self.progress.folder, ignore_errors=True)

    @pytest.hookimpl(wrapper=True, trylast=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_interrupted(self, session, exitstatus):
        """Ctrl-C while the session closes (under -n: xdist waits for its workers to exit, outside pytest's own
        interrupt handling) is one line, not a traceback of execnet's wait; pytest's summary still follows."""
        try:
            return (yield)
        except KeyboardInterrupt:
            if _is_worker(session.config):
                raise
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            done = "every case's results were already written" if self.finished else \
                "finished cases are kept in their journals; rerun to resume"
            self.notices.append(f"interrupted while the run was closing (xdist workers shutting down); {done}")
            return None

    def _finish(self, session, emit: bool, interrupted: bool = False) -> None:
        self.finished = True
        wall = time.time() - self.s.started
        for t in self.s.tasks:
            try:
                summary, results = finish_task(t, self.s.dirs[t.name], self.s.infos[t.name],
                                               baseline_path(t, self.s.root), self.selected, wall, self.s.started)
            except Exception as e:  # report, keep the other tasks' artifacts
                why = f"could not write artifacts: {e.__class__.__name__}: {e}"
                self.failures.append(f"{t.name}: {why}")
                if has_gates(t) and emit:  # its gates cannot pass: say so where gates are counted
                    self._report_gates(session, t, [GateResult(t.name, "artifacts", "-", None, "artifacts", False,
                                                               f" -- {why}")])
                continue
            self._report_unfinished(t, summary.cases["done"] if summary else [], interrupted)
            if summary is None:
                continue
            self.summaries[t.name] = summary
            self.gate_results += results
            if results and emit:
                self._report_gates(session, t, results)
        sweep = {t.name: (t.sweep, t.step) for t in self.s.tasks if t.step is not None and t.name in self.summaries}
        last = {task: max(step for tk, step in sweep.values() if tk == task) for task, _ in sweep.values()}
        names = [t.name for t in self.s.tasks if t.step is None or t.step == last.get(t.sweep)]  # a sweep: the
        if self.s.suite is not None and self.summaries:                # aggregate of its latest checkpoint
            self.aggregate = reporting.write_suite(suite_dir(self.s.suite, self.s.root) / "suite_summary.json",
                                                   self.s.suite.name, self.summaries, names)
        if sweep:  # learning curves: in the suite's dir, or the swept task's own
            first = next(t for t in self.s.tasks if t.name in sweep)
            folder = suite_dir(self.s.suite, self.s.root) if self.s.suite else self.s.dirs[first.name].parent
            self.curves = curves.write(folder, {n: self.summaries[n].to_dict() for n in sweep}, sweep)[1]

    def _report_unfinished(self, t: TaskConfig, done: list[str], interrupted: bool) -> None:
        """One line per task for the cases selected here that did not finish, saying why and what to do."""
        selected = [c for c in self.s.infos[t.name]["cases"] if f"{t.name}:{c}" in self.selected or
                    (interrupted and c in self.collected.get(t.name, ()))]
        missing = [c for c in selected if c not in done]
        if t.name in self.task_errors:
            message = self.task_errors[t.name][1]
            message = message if message.startswith(f"{t.name}: ") else f"{t.name}: {message}"
            self.failures.append(f"{message}; {len(missing)} of {len(selected)} cases not run (fix it and rerun: "
                                 "finished cases are kept)")
        elif interrupted:
            if missing:  # what the unfinished cases' journals hold is kept too (the look-ahead journals as it scores)
                kept = sum(len(read_journal(journal_path(self.s.dirs[t.name], c)).records) for c in missing)
                self.notices.append(f"{t.name}: interrupted; rerun to resume ({len(selected) - len(missing)} of "
                                    f"{len(selected)} cases done, {kept} examples of unfinished cases journaled; a "
                                    "rerun keeps them and scores only what is missing)")
        elif missing:
            self.failures.append(f"{t.name}: {len(missing)} case(s) did not complete (failed, or a crashed worker): "
                                 f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; their journals "
                                 "are kept: fix what failed (above) and rerun to continue them")

    def _report_gates(self, session, t: TaskConfig, results: list) -> None:
        """One synthetic test report for a task's gates, through the same hooks as a real test's."""
        from _pytest.reports import TestReport

        path = EVALS_DIR / f"test_{t.task}.py"  # the task's module (the controller of -n collects nothing)
        root = session.config.rootpath
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        name = f"gates[{t.name}]"
        nodeid, location = f"{rel}::{name}", (rel, None, name)
        failed = [r for r in results if not r.passed]
        props = [("nanoeval_gates", [dataclasses.asdict(r) for r in results])]
        hook = session.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for when in ("setup", "call", "teardown"):  # the three phases a real test reports (pytest-html needs them)
            outcome = "failed" if failed and when == "call" else "passed"
            longrepr = "\n".join(r.line() for r in failed) if outcome == "failed" else None
            hook.pytest_runtest_logreport(report=TestReport(nodeid, location, {name: 1}, outcome, longrepr, when,
                                                            duration=0.0, user_properties=props))
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if _is_worker(config):
            return
        tr = terminalreporter
        if self.summaries or self.failures or self.notices:
            tr.section("nanoeval")
        if self.summaries:
            for line in reporting.suite_table(self.summaries, self.gate_results, self.aggregate):
                tr.write_line(line)
            for name, s in self.summaries.items():
                tr.write_line(f"{name}: {s.report_dir}")
            if self.s.suite is not None:
                tr.write_line(f"suite: {suite_dir(self.s.suite, self.s.root) / 'suite_summary.json'}")
        for name, s in self.summaries.items():
            for w in s.warnings:
                tr.write_line(f"nanoeval WARNING: {name}: {w}", yellow=True)
        for r in self.gate_results:
            tr.write_line(r.line(), green=r.passed, red=not r.passed)
        for f in self.failures:
            tr.write_line(f"nanoeval ERROR: {f}", red=True)
        for n in self.notices:
            tr.write_line(f"nanoeval: {n}", yellow=True)

    # -------------------------------------------------------------------------------------------- HTML report
    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report):
        """The page's title: what ran (the suite, or the tasks, and their file), not the report's file name."""
        what = self.s.suite.name if self.s.suite else ", ".join(t.name for t in self.s.tasks)
        source = self.s.suite.source if self.s.suite else self.s.tasks[0].source if self.s.tasks else ""
        report.title = f"NanoEval: {what}" + (f" ({Path(source).name})" if source else "")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix, summary, postfix, session):
        if not self.summaries:
            return
        page = getattr(session.config.option, "htmlpath", None)
        prefix.extend(reporting.html_summary(self.summaries, self.gate_results, self.failures,
                                             Path(page).resolve() if page else None, self.aggregate, self.curves))


def pytest_html_results_table_header(cells):
    cells.insert(2, "<th>Headline</th>")
    cells.insert(3, "<th>Examples</th>")


def pytest_html_results_table_row(report, cells):
    """Each case's value of its task's headline metric (the task's own headline, computed on the case's records).
    The test id (a subject from data, a task name) as text: pytest-html 4 puts it into the cell unescaped and its
    page sets the cell through innerHTML."""
    test_id = report.nodeid if report.when == "call" else f"{report.nodeid}::{report.when}"  # as pytest-html has it
    raw = f'<td class="col-testId">{test_id}</td>'
    cells[:] = [f'<td class="col-testId">{html.escape(test_id)}</td>' if c == raw else c for c in cells]
    info = dict(getattr(report, "user_properties", [])).get("nanoeval") or {}
    value = info.get("headline_value")
    if info.get("resumed") and info.get("seconds") is not None:  # the case's scoring time, not the resume's ms
        took = f"{info['seconds']:.2f} s" if info["seconds"] >= 1 else f"{round(info['seconds'] * 1000)} ms"
        cells[:] = [f'<td class="col-duration">{took} (from journal)</td>'
                    if c.startswith('<td class="col-duration">') else c for c in cells]
    cells.insert(2, "<td></td>" if value is None else f"<td>{info['headline']} {value:.4f}</td>")
    cells.insert(3, f"<td>{info.get('n', '')}</td>")
