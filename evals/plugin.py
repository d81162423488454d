"""pytest wiring: options, the run's configs, parametrized cases, the model pool, journals -> artifacts at the end.

Flow: configure (load + validate YAML; a bad config is one `ERROR:` line and exit 4; xdist workers pick a GPU)
-> session start on the controller (prepare report dirs, move a stale run aside) -> one test per case (records
appended to its journal) -> session finish on the controller (artifacts from all journals, gates, terminal table,
HTML summary). Workers only write journals; reports carry counts and the journal path as plain JSON types.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evals import progress, reporting
from evals.config import (ConfigError, SuiteConfig, TaskConfig, check_report_dirs, load_suite, load_task,
                          report_dir, suite_dir)
from evals.data import DataError, DataLoadError, scan_local
from evals.journal import journal_path, prepare_report_dir, read_journal
from evals.runner import TaskError, benchmark_module, build_task_artifacts, check_model, run_case, task_info

DEFAULT_SUITE = "suites/suite_smoke.yaml"
EVALS_DIR = Path(__file__).resolve().parent


@dataclass
class Run:
    root: Path
    tasks: list[TaskConfig]
    suite: SuiteConfig | None
    dirs: dict[str, Path]
    fresh: bool = False
    shard: tuple[int, int] | None = None              # (i, N) of --nanoeval-shard
    infos: dict[str, dict] = field(default_factory=dict)     # task -> its run.json (controller only)
    commits: dict[str, str | None] = field(default_factory=dict)  # model key -> resolved hub commit
    started: float = field(default_factory=time.time)
    finished: bool = False                                   # artifacts and gates done
    session: object = None
    gate_reports: int | None = None                          # gate reports added to the progress count (once)
    summaries: dict[str, dict] = field(default_factory=dict)
    gate_results: list = field(default_factory=list)
    reported: dict[str, dict] = field(default_factory=dict)   # "task:case" -> the case's report info
    selected: set[str] = field(default_factory=set)           # "task:case" seen by the controller
    failures: list[str] = field(default_factory=list)         # controller-level errors (exit status 1)
    task_errors: dict[str, tuple[str, str]] = field(default_factory=dict)  # task -> (case key, message): once
    notices: list[str] = field(default_factory=list)          # e.g. interrupted; rerun to resume
    collected: dict[str, list[str]] = field(default_factory=dict)  # task -> its cases selected in this session
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> expected examples per case
    status: progress.Status = field(default_factory=progress.Status)  # this process's case, for progress lines
    display: progress.Display | None = None                   # controller or the only process
    publisher: progress.Publisher | None = None               # xdist worker: its status, for the controller
    progress_dir: Path | None = None                          # xdist: where workers' status files are
    tick: object = None                                       # xdist: read the workers' status files and draw
    not_run: set[str] = field(default_factory=set)            # node ids skipped for their task's error (--lf)


RUN_KEY = pytest.StashKey[Run]()
_CONFIG: dict = {}  # the session's config, for hooks that do not receive it (pytest_runtest_logreport)


def pytest_addoption(parser):
    g = parser.getgroup("nanoeval")
    g.addoption("--nanoeval-config", default=None, help="task config YAML (default: $NANOEVAL_CONFIG)")
    g.addoption("--nanoeval-suite", default=None,
                help=f"suite YAML (default: $NANOEVAL_SUITE, else {DEFAULT_SUITE})")
    g.addoption("--nanoeval-fresh", action="store_true",
                help="move the previous run's journals and artifacts aside and start fresh")
    g.addoption("--nanoeval-shard", default=None, metavar="i/N",
                help="run only shard i of N of the cases (0-based; default: $NANOEVAL_SHARD)")


def _is_active(config) -> bool:
    """Only runs that collect evals/ load configs (so `pytest tests/` never touches artifacts)."""
    args = config.args or [str(config.rootpath)]
    for a in args:
        p = Path(a.split("::")[0])
        p = (p if p.is_absolute() else Path(config.invocation_params.dir) / p).resolve()
        if p == EVALS_DIR or EVALS_DIR in p.parents or p in EVALS_DIR.parents:
            return True
    return False


def _abs(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
        assert n >= 1 and 0 <= i < n
    except (ValueError, AssertionError):
        raise ConfigError(f"--nanoeval-shard / NANOEVAL_SHARD: expected i/N with 0 <= i < N, got {value!r}") from None
    return i, n


def pytest_configure(config):
    if not _is_active(config):
        return
    root = Path(config.rootpath)
    cfg_path = config.getoption("nanoeval_config") or os.environ.get("NANOEVAL_CONFIG")
    suite_path = config.getoption("nanoeval_suite") or os.environ.get("NANOEVAL_SUITE")
    try:
        if cfg_path and suite_path:
            raise ConfigError("set either NANOEVAL_CONFIG or NANOEVAL_SUITE, not both")
        suite = None
        if cfg_path:
            tasks = [load_task(_abs(cfg_path, root))]
        else:
            suite = load_suite(_abs(suite_path or DEFAULT_SUITE, root))
            tasks = suite.tasks
        dirs = {t.name: report_dir(t, root, suite) for t in tasks}
        check_report_dirs(tasks, dirs, suite, root)
        for t in tasks:  # a missing baseline is an error, never a pass
            if t.gates.baseline and not _abs(t.gates.baseline, root).is_file():
                raise ConfigError(f"{t.source}: gates.baseline: {_abs(t.gates.baseline, root)}: file not found")
            try:  # missing, empty or broken local data: one line now rather than one failure per case
                scan_local(t.dataset, root)
            except DataError as e:
                raise ConfigError(f"{t.source}: {e}") from None
        shard = _parse_shard(config.getoption("nanoeval_shard") or os.environ.get("NANOEVAL_SHARD"))
        run = Run(root, tasks, suite, dirs, fresh=config.getoption("nanoeval_fresh"), shard=shard)
        if not _is_worker(config):  # before any model loads: what identifies each task's results, empty cases
            for t in tasks:
                try:
                    model = check_model(t, root)  # first: the likeliest typo, and quick to check
                    if why := benchmark_module(t.task).check_cases(t, root):
                        pre = f"tasks[{tasks.index(t)}]." if suite is not None else ""
                        raise ConfigError(f"{t.source}: {pre}{why}")
                    run.infos[t.name] = task_info(t, root, model)
                    run.sizes[t.name] = benchmark_module(t.task).case_sizes(t, root)
                except (DataError, OSError) as e:
                    raise ConfigError(f"{t.source}: {e}") from None
                run.commits[ModelPool.key(t)] = run.infos[t.name]["model_identity"].get("commit")
        else:  # the hub commits the controller resolved: every worker loads exactly what the fingerprint names
            run.commits = dict(config.workerinput.get("nanoeval_commits", {}))
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[RUN_KEY] = run
    _CONFIG["config"] = config
    if _is_worker(config):
        _setup_worker(config)
        folder = config.workerinput.get("nanoeval_progress")
        if folder:
            run.publisher = progress.Publisher(Path(folder) / f"{config.workerinput['workerid']}.json")
            run.status = run.publisher.status
            progress.set_sink(run.publisher)
    elif getattr(config.option, "numprocesses", None):  # xdist: workers report progress through files
        run.progress_dir = Path(tempfile.mkdtemp(prefix="nanoeval-progress-"))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist, on the controller: hand each worker the hub commits resolved at configure time."""
    run = node.config.stash.get(RUN_KEY, None)
    if run is not None:
        node.workerinput["nanoeval_commits"] = run.commits
        node.workerinput["nanoeval_progress"] = str(run.progress_dir) if run.progress_dir else None


# --------------------------------------------------------------------------------------- xdist: GPUs and threads
def _visible_gpus() -> list[str]:
    """GPU ids this run may use: the outer CUDA_VISIBLE_DEVICES if set, else every GPU torch sees."""
    outer = os.environ.get("NANOEVAL_OUTER_CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
    if outer is not None:
        return [d for d in outer.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per GPU; without GPUs, half the CPU cores (at least 1)."""
    gpus = _visible_gpus()
    return len(gpus) if gpus else max(1, (os.cpu_count() or 2) // 2)


_GPU_LOCK = None  # held for the worker's life: the OS frees it when the worker dies, for its replacement


def _setup_worker(config) -> None:
    """Each worker takes the first free GPU from the list (a file lock per GPU), or a share of the CPU threads."""
    global _GPU_LOCK
    info = config.workerinput
    gpus = _visible_gpus()
    if gpus:
        lock_dir = Path(tempfile.gettempdir()) / f"nanoeval-gpus-{info['testrunuid']}"
        lock_dir.mkdir(exist_ok=True)
        for gpu in gpus:
            f = open(lock_dir / f"gpu{gpu}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _GPU_LOCK = f
            os.environ.setdefault("NANOEVAL_OUTER_CUDA_VISIBLE_DEVICES", ",".join(gpus))
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            break
        else:
            raise pytest.UsageError(f"nanoeval: worker {info['workerid']} found no free GPU among {gpus} "
                                    "(use -n with at most one worker per GPU)")
    else:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(info.get("workercount", 1))))


def pytest_sessionstart(session):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(session.config):
        return
    run.session = session
    _start_display(session.config, run)
    for t in run.tasks:
        try:
            msg = prepare_report_dir(run.dirs[t.name], run.infos[t.name], t.name, run.fresh)
        except (NotADirectoryError, FileExistsError, PermissionError) as e:
            raise pytest.UsageError(f"{t.source}: report_dir: {e}") from None
        if msg:
            print(msg, flush=True)


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

    def run(self, examples: list, score, engine, skipped: list[dict] | None = None, chunk: int | None = None) -> None:
        """Score the examples not yet in the journal (evals/runner.py), then report the case and its gate."""
        def advanced(done: int, total: int, scored: int, seconds: float) -> None:
            run.status.scoring(self.cfg.name, self.id, done, total, scored)
            _show_progress(run)

        run = self.node.config.stash[RUN_KEY]  # its status goes idle again at teardown
        run_case(self.journal, self.key, examples, score, engine, skipped, chunk, progress=advanced)
        j = read_journal(self.journal)
        self.report(j)
        self.check_subject_gate(j)

    def report(self, j) -> None:
        """Counts for the test report (plain JSON types: they cross xdist's transport)."""
        correct = sum(bool(r.get("correct")) for r in j.records)
        seconds = (j.complete or {}).get("seconds")
        scored = (j.complete or {}).get("scored_now", 0)
        summary = benchmark_module(self.cfg.task).summarize(j.records, self.cfg) if j.records else None
        headline = summary["metrics"].get(summary["headline"]) if summary else None
        info = {"task": self.cfg.name, "case": self.id, "n": len(j.records), "counts": j.counts,
                "headline": summary["headline"] if summary else None,
                "headline_value": None if headline is None or headline != headline else headline,
                "acc": correct / len(j.records) if j.records else None, "seconds": seconds,
                "examples_per_second": round(scored / seconds, 2) if seconds and scored else None,
                "resumed": scored == 0, "journal": str(self.journal),
                "predictions": str(self.report_dir / "predictions.jsonl")}
        self.node.user_properties.append(("nanoeval", json.loads(json.dumps(info))))

    def check_subject_gate(self, j) -> None:
        """`gates.min_per_subject` fails the case of a subject (MMLU and MMMU-Pro cases are subjects)."""
        threshold = self.cfg.gates.min_per_subject
        subjects = {r["subject"] for r in j.records}
        if threshold is None or subjects != {self.id} or not j.records:
            return
        acc = sum(bool(r["correct"]) for r in j.records) / len(j.records)
        if acc < threshold:
            pytest.fail(f"gate min_per_subject: {self.key}: acc {acc:.4f} < {threshold}", pytrace=False)


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    task = getattr(metafunc.module, "TASK", None)
    run = metafunc.config.stash.get(RUN_KEY, None)
    tasks = [t for t in (run.tasks if run else []) if t.task == task]
    if not tasks:
        where = "no config loaded" if run is None else f"the config names no {task} task"
        metafunc.parametrize("case", [pytest.param(None, marks=pytest.mark.skip(reason=where))], ids=["skipped"])
        return
    params, ids = [], []
    for t in tasks:
        for case_id in metafunc.module.cases(t, run.root):
            params.append(Case(t, case_id, run.dirs[t.name], run.root))
            ids.append(f"{t.name}:{case_id}" if len(run.tasks) > 1 else case_id)
    metafunc.parametrize("case", params, ids=ids, indirect=True)


def pytest_collection_modifyitems(session, config, items):
    """Tasks in config order (a suite's models load once each); within a task, largest cases first.
    --nanoeval-shard i/N keeps every N-th case of that stable order (disjoint, and the same on every machine)."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    order = {t.name: i for i, t in enumerate(run.tasks)}

    def key(it):
        c = _case_of(it)
        if c is None:
            return (-1, 0, "")
        size = getattr(benchmark_module(c.cfg.task), "CASE_SIZES", {}).get(c.id, 0)
        return (models[ModelPool.key(c.cfg)], order[c.cfg.name], -size, c.id)

    models: dict[str, int] = {}  # a model's cases stay together: each model loads once per process
    for t in run.tasks:
        models.setdefault(ModelPool.key(t), len(models))

    items.sort(key=key)
    if run.shard:
        i, n = run.shard
        cases = [it for it in items if _case_of(it)]
        drop = [it for k, it in enumerate(cases) if k % n != i]
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = [it for it in items if it not in set(drop)]
    _POOL.remaining = {}
    for it in items:
        c = _case_of(it)
        if c is not None:
            _POOL.remaining[_POOL.key(c.cfg)] = _POOL.remaining.get(_POOL.key(c.cfg), 0) + 1


def pytest_collection_finish(session):
    """The cases this session runs (after -k, --lf, shards): progress totals, and what an interrupt left undone."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is not None:
        run.collected = {}
        for c in filter(None, map(_case_of, session.items)):
            run.collected.setdefault(c.cfg.name, []).append(c.id)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_testnodedown(node, error):
    """xdist, on the controller: a worker that is gone (finished or crashed) leaves the progress line."""
    run = node.config.stash.get(RUN_KEY, None)
    if run is not None and run.progress_dir is not None:
        if run.tick is not None:
            run.tick()  # its last notices first
        (run.progress_dir / f"{node.gateway.id}.json").unlink(missing_ok=True)
        if run.display is not None:
            run.display.erase()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist, on the controller (which collects nothing itself): the cases this session runs."""
    run = node.config.stash.get(RUN_KEY, None)
    if run is not None and not run.collected:
        keys = [k for k in (_case_key(i, run) for i in ids) if k]
        run.collected = {}
        for k in keys:
            task, _, case = k.partition(":")
            if task in run.infos and case in run.infos[task]["cases"]:  # not the placeholders of other modules
                run.collected.setdefault(task, []).append(case)


def _case_of(item) -> Case | None:
    cs = getattr(item, "callspec", None)
    c = cs.params.get("case") if cs else None
    return c if isinstance(c, Case) else None


@pytest.fixture
def case(request) -> Case:
    c: Case = request.param
    c.node = request.node
    return c


# ------------------------------------------------------------------------------------------------- model pool
class ModelPool:
    """At most one model per process (each process has one device): loading another releases the previous one;
    on the controller, a model is also released after the last case that needs it."""

    def __init__(self):
        self.engines, self.remaining = {}, {}

    @staticmethod
    def key(cfg: TaskConfig) -> str:
        return json.dumps([repr(cfg.model), repr(cfg.engine)])

    def get(self, cfg: TaskConfig, root: Path, commit: str | None = None):
        from evals.engine import Engine, seed_everything

        k = self.key(cfg)
        if k not in self.engines:
            for other in list(self.engines):
                self.engines.pop(other).close()
            self.engines[k] = Engine(cfg.model, cfg.engine, root, commit)
        seed_everything(cfg.seed)
        return self.engines[k]

    def done_with(self, cfg: TaskConfig, is_worker: bool) -> None:
        k = self.key(cfg)
        self.remaining[k] = self.remaining.get(k, 1) - 1
        if self.remaining[k] <= 0 and not is_worker and k in self.engines:
            self.engines.pop(k).close()


_POOL = ModelPool()


@pytest.fixture
def engine(case, request):
    run = request.config.stash[RUN_KEY]
    if ModelPool.key(case.cfg) not in _POOL.engines:
        run.status.loading(case.cfg.name, case.id)
        _show_progress(run)
    try:
        return _POOL.get(case.cfg, case.root, run.commits.get(ModelPool.key(case.cfg)))
    except Exception as e:  # every case of the task would hit it: one clear line, the other cases skipped
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TaskError(f"{case.cfg.name}: model {case.cfg.model.path!r} cannot be loaded "
                        f"({e.__class__.__name__}: {first})") from e


# ------------------------------------------------------------------------- errors that every case would hit
def _task_error(excinfo) -> str | None:
    if excinfo is not None and isinstance(excinfo.value, (TaskError, DataLoadError)):
        return str(excinfo.value)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A task-wide error is reported once, in one line (unless --tb asks for the trace)."""
    report = yield
    c, message = _case_of(item), _task_error(call.excinfo)
    if c is None or message is None or not report.failed:
        return report
    item.config.stash[RUN_KEY].task_errors.setdefault(c.cfg.name, (c.key, message))
    report.user_properties.append(("nanoeval_task_error", [c.cfg.name, message]))
    if item.config.option.tbstyle == "auto":
        report.longrepr = f"{message}\n(every case of {c.cfg.name} would hit this: its other cases are skipped; " \
                          "--tb=short shows the traceback)"
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    c = _case_of(item)
    run = item.config.stash.get(RUN_KEY, None)
    if c is not None and run is not None and c.cfg.name in run.task_errors:
        pytest.skip(f"{c.cfg.name}: not run: the task's error is reported once (above)")


def pytest_runtest_teardown(item, nextitem):
    c = _case_of(item)
    if c is not None:
        _POOL.done_with(c.cfg, _is_worker(item.config))
        run = item.config.stash[RUN_KEY]
        if run.status.phase != "idle":  # done, or failed before or while scoring: never "loading" forever
            run.status.idle()
            if run.publisher is not None:
                run.publisher.publish()


# ------------------------------------------------------------------------------------ progress the user sees
def _start_display(config, run: Run) -> None:
    """On the controller (or the only process): draw progress; under xdist, wake once a second to read the
    workers' status files (through xdist's event queue, so drawing stays on the main thread)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    capman = config.pluginmanager.get_plugin("capturemanager")
    unhide = capman.global_and_fixture_disabled if capman and run.progress_dir is None else contextlib.nullcontext
    run.display = progress.Display(tr, unhide, quiet=config.get_verbosity() < 0, own_lines=run.progress_dir is None)
    progress.set_sink(run.display)
    dsession = config.pluginmanager.get_plugin("dsession")
    if run.progress_dir is None or dsession is None:
        return
    seen: dict[str, int] = {}  # worker -> notices shown

    def tick() -> None:
        statuses = progress.read_statuses(run.progress_dir)
        for worker, status in statuses.items():
            for message in status.notices[seen.get(worker, 0):]:
                run.display.notice(f"[{worker}] {message}")
            seen[worker] = len(status.notices)
        run.display.draw(progress.progress_line(statuses, *_totals(run), time.time()), time.time())

    def wake() -> None:
        while not run.finished:
            time.sleep(1.0)
            dsession.queue.put(("nanoeval_progress", {}))

    dsession.worker_nanoeval_progress = run.tick = tick
    threading.Thread(target=wake, daemon=True, name="nanoeval-progress").start()


def _totals(run: Run) -> tuple[dict, dict, dict]:
    finished: dict[str, dict[str, int]] = {}
    for key, info in run.reported.items():
        finished.setdefault(info["task"], {})[info["case"]] = info["n"]
    return finished, run.sizes, run.collected


def _show_progress(run: Run) -> None:
    """After this process's status changed: publish it (xdist worker) or draw it (without -n)."""
    if run.publisher is not None:
        run.publisher.publish()
    elif run.display is not None:
        run.display.draw(progress.progress_line({"main": run.status}, *_totals(run), time.time()), time.time())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid, location):
    _erase_live()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logfinish(nodeid, location):
    _erase_live()


def _erase_live() -> None:
    config = _CONFIG.get("config")
    run = config.stash.get(RUN_KEY, None) if config else None
    if run is not None and run.display is not None:
        run.display.erase()


# ---------------------------------------------------------------------------------- progress on the controller
def _case_key(nodeid: str, run: Run) -> str | None:
    """'task:case' from a node id like evals/test_mmlu.py::test_mmlu[anatomy] (or [mmlu:anatomy] in suites)."""
    if "[" not in nodeid or not nodeid.endswith("]"):
        return None
    param = nodeid[nodeid.index("[") + 1: -1]
    if len(run.tasks) == 1:
        return f"{run.tasks[0].name}:{param}"
    return param if ":" in param else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report):
    """On the controller (with or without -n): remember which cases ran, and print one line per finished case."""
    config = _CONFIG.get("config")
    run = config.stash.get(RUN_KEY, None) if config else None
    if run is None or _is_worker(config):
        return
    if run.display is not None:
        run.display.erase()
    if run.gate_reports is None and run.session is not None and run.session.testscollected:
        # the gate reports come after every case: count them in the terminal's progress from the start
        run.gate_reports = sum(_has_gates(t) for t in run.tasks)
        run.session.testscollected += run.gate_reports
    key = None if "::gates[" in report.nodeid else _case_key(report.nodeid, run)
    if key is None:
        return
    run.selected.add(key)
    if report.skipped and "not run: the task's error is reported once" in str(report.longrepr):
        run.not_run.add(report.nodeid)
    task_error = dict(report.user_properties).get("nanoeval_task_error")
    if task_error:  # under -n, each worker meets it: the first report counts, later ones become skips
        first = run.task_errors.setdefault(task_error[0], (key, task_error[1]))[0]
        if first != key:
            run.not_run.add(report.nodeid)
            report.outcome = "skipped"
            report.longrepr = (report.location[0], (report.location[1] or 0) + 1,
                               f"Skipped: {task_error[0]}: not run: the task's error is reported once, at {first}")
    info = dict(report.user_properties).get("nanoeval")
    if report.when == "call" and info:
        run.reported[key] = info
        under_xdist = hasattr(report, "node")
        if run.display is not None and (under_xdist or config.get_verbosity() > 0):  # else dots and the table
            acc = "-" if info["acc"] is None else f"{info['acc']:.3f}"
            how = "from journal" if info["resumed"] else f"{info['examples_per_second']} ex/s"
            worker = f"[{report.node.gateway.id}] " if under_xdist else ""
            run.display.line(f"{worker}{key}: {info['n']} examples, acc {acc}, {how}")


# --------------------------------------------------------------------------------------------- session finish
@pytest.hookimpl(wrapper=True, trylast=True)  # inside the terminal reporter's wrapper: its 100% comes after
def pytest_runtestloop(session):
    """After every case has finished (also under xdist, whose loop this wraps): artifacts, then gates, each task's
    gates reported as a test of its own (`<module>::gates[<task>]`) so pytest's summary line, junitxml and
    pytest-html count a failed gate as a failure."""
    try:
        result = yield
    finally:
        run = session.config.stash.get(RUN_KEY, None)
        if run is not None and run.tick is not None:
            run.tick()  # the workers' last notices
        if run is not None and run.display is not None:
            run.display.close()
    if run is not None and not _is_worker(session.config) and not session.config.option.collectonly:
        _finish(session, emit=True)
    return result


@pytest.hookimpl(tryfirst=True)  # before pytest-html writes its page
def pytest_sessionfinish(session, exitstatus):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(session.config):
        return
    if not run.finished and not session.config.option.collectonly:  # interrupted: artifacts of what finished
        stopped = session.shouldfail or session.shouldstop  # -x / --maxfail (xdist raises an interrupt for them)
        _finish(session, emit=False, interrupted=exitstatus == pytest.ExitCode.INTERRUPTED and not stopped)
    lf = session.config.pluginmanager.get_plugin("lfplugin")
    if lf is not None and run.not_run:  # `--lf` reruns the cases a task's error kept from running, not just it
        lf.lastfailed.update(dict.fromkeys(run.not_run, True))
    if run.failures and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    run.finished = True  # stops the progress thread
    if run.progress_dir is not None:
        shutil.rmtree(run.progress_dir, ignore_errors=True)


def _finish(session, emit: bool, interrupted: bool = False) -> None:
    from evals.gates import GateResult, check

    run: Run = session.config.stash[RUN_KEY]
    run.finished = True
    wall = time.time() - run.started
    for t in run.tasks:
        gated = _has_gates(t)
        try:
            summary = build_task_artifacts(t, run.dirs[t.name], run.infos[t.name], run.selected, wall, run.started)
        except Exception as e:  # report, keep the other tasks' artifacts
            why = f"could not write artifacts: {e.__class__.__name__}: {e}"
            run.failures.append(f"{t.name}: {why}")
            if gated and emit:  # its gates cannot pass: say so where gates are counted
                _report_gates(session, t, [GateResult(t.name, "artifacts", "-", None, "artifacts", False,
                                                      f" -- {why}")])
            continue
        _report_unfinished(run, t, summary["cases"]["done"] if summary else [], interrupted)
        if summary is None:
            continue
        run.summaries[t.name] = summary
        if not gated:
            continue
        base = _abs(t.gates.baseline, run.root) if t.gates.baseline else None
        try:
            results = check(summary, t.gates, base)
        except Exception as e:  # a baseline of an unexpected shape: the gates fail, the run goes on
            results = [GateResult(t.name, "baseline", summary["headline"], None, "a readable baseline", False,
                                  f" -- {base}: {e.__class__.__name__}: {e}")]
        run.gate_results += results
        summary["gates"] = [dataclasses.asdict(r) for r in results]
        reporting.write_summary(run.dirs[t.name], summary)
        if emit:
            _report_gates(session, t, results)
    if run.suite is not None and run.summaries:
        reporting.write_suite(suite_dir(run.suite, run.root) / "suite_summary.json", run.suite.name, run.summaries)


def _report_unfinished(run: Run, t: TaskConfig, done: list[str], interrupted: bool) -> None:
    """One line per task for the cases selected here that did not finish, saying why and what to do."""
    selected = [c for c in run.infos[t.name]["cases"] if f"{t.name}:{c}" in run.selected or
                (interrupted and c in run.collected.get(t.name, ()))]
    missing = [c for c in selected if c not in done]
    if t.name in run.task_errors:
        message = run.task_errors[t.name][1]
        message = message if message.startswith(f"{t.name}: ") else f"{t.name}: {message}"
        run.failures.append(f"{message}; {len(missing)} of {len(selected)} cases not run (fix it and rerun: "
                            "finished cases are kept)")
    elif interrupted:
        if missing:
            run.notices.append(f"{t.name}: interrupted; rerun to resume ({len(selected) - len(missing)} of "
                               f"{len(selected)} cases done; a rerun keeps finished cases and continues a partial "
                               "one after its last record)")
    elif missing:
        run.failures.append(f"{t.name}: {len(missing)} case(s) did not complete (failed, or a crashed worker): "
                            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; their journals are "
                            "kept and a rerun continues them")


def _has_gates(t: TaskConfig) -> bool:
    return any(getattr(t.gates, f.name) is not None for f in dataclasses.fields(t.gates) if f.name != "baseline")


def _report_gates(session, t: TaskConfig, results: list) -> None:
    """One synthetic test report for a task's gates, through the same hooks as a real test's."""
    from _pytest.reports import TestReport

    path = Path(benchmark_module(t.task).__file__)
    rel = path.relative_to(session.config.rootpath).as_posix() if path.is_relative_to(session.config.rootpath) \
        else path.name
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


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    run = config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(config):
        return
    tr = terminalreporter
    if run.summaries or run.failures or run.notices:
        tr.section("nanoeval")
    if run.summaries:
        for line in reporting.suite_table(run.summaries, run.gate_results):
            tr.write_line(line)
        for name, s in run.summaries.items():
            tr.write_line(f"{name}: {s['report_dir']}")
        if run.suite is not None:
            tr.write_line(f"suite: {suite_dir(run.suite, run.root) / 'suite_summary.json'}")
    for name, s in run.summaries.items():
        for w in s.get("warnings", []):
            tr.write_line(f"nanoeval WARNING: {name}: {w}", yellow=True)
    for r in run.gate_results:
        tr.write_line(r.line(), green=r.passed, red=not r.passed)
    for f in run.failures:
        tr.write_line(f"nanoeval ERROR: {f}", red=True)
    for n in run.notices:
        tr.write_line(f"nanoeval: {n}", yellow=True)


# ------------------------------------------------------------------------------------------------ HTML report
def pytest_html_results_summary(prefix, summary, postfix, session):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.summaries:
        return
    page = getattr(session.config.option, "htmlpath", None)
    prefix.extend(reporting.html_summary(run.summaries, run.gate_results, run.failures,
                                         Path(page).resolve() if page else None))


def pytest_html_results_table_header(cells):
    cells.insert(2, "<th>Headline</th>")
    cells.insert(3, "<th>Examples</th>")


def pytest_html_results_table_row(report, cells):
    """Each case's value of its task's headline metric (acc_norm for HellaSwag, acc_macro for an MMLU subject)."""
    info = dict(getattr(report, "user_properties", [])).get("nanoeval") or {}
    value = info.get("headline_value")
    cells.insert(2, "<td></td>" if value is None else f"<td>{info['headline']} {value:.4f}</td>")
    cells.insert(3, f"<td>{info.get('n', '')}</td>")
