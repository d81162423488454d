"""pytest wiring: options, the run's configs, parametrized cases, the model pool, journals -> artifacts at the end.

Flow: configure (load + validate YAML; a bad config is one `ERROR:` line and exit 4; xdist workers pick a GPU)
-> session start on the controller (prepare report dirs, move a stale run aside) -> one test per case (records
appended to its journal) -> session finish on the controller (artifacts from all journals, gates, terminal table,
HTML summary). Workers only write journals; reports carry counts and the journal path as plain JSON types.
"""
from __future__ import annotations

import dataclasses
import fcntl
import importlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evals import reporting
from evals.config import (ConfigError, SuiteConfig, TaskConfig, load_suite, load_task, report_dir, suite_dir,
                          task_to_dict)
from evals.data import DataError, resolve_files
from evals.journal import JournalWriter, journal_path, prepare_report_dir, read_journal

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
    summaries: dict[str, dict] = field(default_factory=dict)
    gate_results: list = field(default_factory=list)
    reported: dict[str, dict] = field(default_factory=dict)   # "task:case" -> the case's report info
    selected: set[str] = field(default_factory=set)           # "task:case" seen by the controller
    failures: list[str] = field(default_factory=list)         # controller-level errors (exit status 1)


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
        for t in tasks:  # a missing baseline is an error, never a pass
            if t.gates.baseline and not _abs(t.gates.baseline, root).is_file():
                raise ConfigError(f"{t.source}: gates.baseline: {_abs(t.gates.baseline, root)}: file not found")
            try:  # missing or unreadable local data: one line now rather than one failure per case
                resolve_files(t.dataset, root)
            except DataError as e:
                raise ConfigError(f"{t.source}: {e}") from None
        shard = _parse_shard(config.getoption("nanoeval_shard") or os.environ.get("NANOEVAL_SHARD"))
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[RUN_KEY] = Run(root, tasks, suite, dirs, fresh=config.getoption("nanoeval_fresh"), shard=shard)
    _CONFIG["config"] = config
    if _is_worker(config):
        _setup_worker(config)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


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
    for t in run.tasks:
        info = {"config": task_to_dict(t), "cases": benchmark_module(t.task).cases(t, run.root)}
        try:
            msg = prepare_report_dir(run.dirs[t.name], fingerprint(t, run.root), t.name, run.fresh, info)
        except (NotADirectoryError, FileExistsError, PermissionError) as e:
            raise pytest.UsageError(f"{t.source}: report_dir: {e}") from None
        if msg:
            print(msg, flush=True)


def fingerprint(cfg: TaskConfig, root: Path) -> str:
    from evals.data import data_hashes

    return cfg.fingerprint(data_hashes(cfg.dataset, root))


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
        """Score `examples` not yet in the journal, appending records per chunk (a chunk is what a crash can
        lose; on a GPU it is larger so that batches can fill the token budget); mark the case complete."""
        chunk = chunk or (32 if engine.device == "cpu" else 1024)
        if os.environ.get("NANOEVAL_TEST_FAIL") == self.key:  # test-only fault injection
            raise RuntimeError(f"injected failure in {self.key} (NANOEVAL_TEST_FAIL)")
        j = read_journal(self.journal)
        if j.complete is None:
            done = {r["id"] for r in j.records}
            todo = [e for e in examples if e.id not in done]
            writer = JournalWriter(self.journal, keep_bytes=j.valid_bytes)
            t0, n = time.time(), len(j.records)
            try:
                for start in range(0, len(todo), chunk):
                    records = score(todo[start: start + chunk])
                    _check_finite(records, self)
                    writer.append(records)
                    n += len(records)
                    if os.environ.get("NANOEVAL_TEST_EXIT") == self.key:  # test-only: a worker dies mid-case
                        os._exit(3)
                    _live_progress(self, n, len(examples), len(todo[: start + chunk]), time.time() - t0)
                seconds = time.time() - t0
                complete = {"n": n, "seconds": round(seconds, 3), "skipped": skipped or [],
                            "truncated": engine.truncated, "model": engine.meta, "scored_now": len(todo)}
                writer.append([{"_complete": complete}])
            finally:
                writer.close()
            j = read_journal(self.journal)
        self.report(j)
        self.check_subject_gate(j)

    def report(self, j) -> None:
        """Counts for the test report (plain JSON types: they cross xdist's transport)."""
        correct = sum(bool(r.get("correct")) for r in j.records)
        seconds = (j.complete or {}).get("seconds")
        scored = (j.complete or {}).get("scored_now", 0)
        info = {"task": self.cfg.name, "case": self.id, "n": len(j.records),
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


def _check_finite(records: list[dict], case: Case) -> None:
    for r in records:
        if any(not math.isfinite(x) for x in r.get("lls", [])):
            raise FloatingPointError(f"{case.cfg.name}: example {r['id']}: the model returned a non-finite "
                                     f"log-likelihood {r['lls']} (expected finite numbers; check dtype/weights)")


def _live_progress(case: Case, done: int, total: int, scored: int, seconds: float) -> None:
    """Without -n: a live line per case (examples done / total, examples/s), rewritten in place."""
    config = case.node.config
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or _is_worker(config) or config.get_verbosity() < 0 or not tr.isatty:
        return
    rate = scored / seconds if seconds else 0.0
    tr.write(f"\r  {case.key}: {done}/{total} examples, {rate:.1f} ex/s ", flush=True)


def benchmark_module(task: str):
    return importlib.import_module(f"evals.test_{task}")


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
        return (order[c.cfg.name], -size, c.id)

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
    """Each model loaded once per process, released when no later case of this process needs it."""

    def __init__(self):
        self.engines, self.remaining = {}, {}

    @staticmethod
    def key(cfg: TaskConfig) -> str:
        return json.dumps([repr(cfg.model), repr(cfg.engine)])

    def get(self, cfg: TaskConfig, root: Path):
        from evals.engine import Engine, seed_everything

        k = self.key(cfg)
        if k not in self.engines:
            self.engines[k] = Engine(cfg.model, cfg.engine, root)
        seed_everything(cfg.seed)
        return self.engines[k]

    def done_with(self, cfg: TaskConfig, is_worker: bool) -> None:
        k = self.key(cfg)
        self.remaining[k] = self.remaining.get(k, 1) - 1
        if self.remaining[k] <= 0 and not is_worker and k in self.engines:
            self.engines.pop(k).close()


_POOL = ModelPool()


@pytest.fixture
def engine(case):
    return _POOL.get(case.cfg, case.root)


def pytest_runtest_teardown(item, nextitem):
    c = _case_of(item)
    if c is not None:
        _POOL.done_with(c.cfg, _is_worker(item.config))


# ---------------------------------------------------------------------------------- progress on the controller
def _case_key(nodeid: str, run: Run) -> str | None:
    """'task:case' from a node id like evals/test_mmlu.py::test_mmlu[anatomy] (or [mmlu:anatomy] in suites)."""
    if "[" not in nodeid or not nodeid.endswith("]"):
        return None
    param = nodeid[nodeid.index("[") + 1: -1]
    if len(run.tasks) == 1:
        return f"{run.tasks[0].name}:{param}"
    return param if ":" in param else None


def pytest_runtest_logreport(report):
    """On the controller (with or without -n): remember which cases ran, and print one line per finished case."""
    config = _CONFIG.get("config")
    run = config.stash.get(RUN_KEY, None) if config else None
    if run is None or _is_worker(config):
        return
    key = _case_key(report.nodeid, run)
    if key is None:
        return
    run.selected.add(key)
    info = dict(report.user_properties).get("nanoeval")
    if report.when == "call" and info:
        run.reported[key] = info
        tr = config.pluginmanager.get_plugin("terminalreporter")
        under_xdist = hasattr(report, "node")
        if tr is not None and (under_xdist or config.get_verbosity() > 0):  # plain runs show dots and the table
            acc = "-" if info["acc"] is None else f"{info['acc']:.3f}"
            how = "from journal" if info["resumed"] else f"{info['examples_per_second']} ex/s"
            worker = f"[{report.node.gateway.id}] " if under_xdist else ""
            tr.write_line(f"\r  {worker}{key}: {info['n']} examples, acc {acc}, {how}")


# --------------------------------------------------------------------------------------------- session finish
@pytest.hookimpl(tryfirst=True)  # before pytest-html writes its page
def pytest_sessionfinish(session, exitstatus):
    from evals.gates import check

    run = session.config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(session.config):
        return
    for t in run.tasks:
        try:
            summary = build_task_artifacts(t, run.dirs[t.name], run.root, run.selected)
        except Exception as e:  # report, keep the other tasks' artifacts
            run.failures.append(f"{t.name}: could not write artifacts: {e.__class__.__name__}: {e}")
            continue
        if summary is None:
            continue
        run.summaries[t.name] = summary
        for key in summary["cases"]["not_completed"]:
            run.failures.append(f"{t.name}:{key}: selected but did not complete (crashed worker or error); its "
                                "journal is kept and a rerun continues it")
        if any(getattr(t.gates, f.name) is not None for f in dataclasses.fields(t.gates)):
            try:
                base = _abs(t.gates.baseline, run.root) if t.gates.baseline else None
                results = check(summary, t.gates, base)
            except (OSError, ValueError, KeyError) as e:
                run.failures.append(f"{t.name}: gates: {e}")
                continue
            run.gate_results += results
            summary["gates"] = [dataclasses.asdict(r) for r in results]
            reporting.write_summary(run.dirs[t.name], summary)
    if run.suite is not None and run.summaries:
        reporting.write_suite(suite_dir(run.suite, run.root) / "suite_summary.json", run.suite.name, run.summaries)
    if (run.failures or any(not r.passed for r in run.gate_results)) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def build_task_artifacts(cfg: TaskConfig, rdir: Path, root: Path, selected: set[str] = frozenset()) -> dict | None:
    """Read every case journal of the task and write its artifacts; None if no case has finished."""
    from evals.data import dataset_meta

    module = benchmark_module(cfg.task)
    records, done, missing, completes = [], [], [], []
    for case_id in module.cases(cfg, root):
        j = read_journal(journal_path(rdir, case_id))
        if j.complete is None:
            missing.append(case_id)
            continue
        done.append(case_id)
        completes.append(j.complete)
        records.extend(j.records)
    if not done:
        return None
    summary = module.summarize(records, cfg)
    seconds = sum(c["seconds"] for c in completes)
    scored = sum(c.get("scored_now", 0) for c in completes)
    skipped = [s for c in completes for s in c.get("skipped", [])]
    not_completed = [c for c in missing if f"{cfg.name}:{c}" in selected]
    full = reporting.assemble(
        summary, records, task=cfg.task, name=cfg.name, suite=cfg.suite, skipped_rows=skipped,
        cases={"done": done, "missing": missing, "not_completed": not_completed, "complete": not missing},
        recipe={**module.recipe(cfg, root), "truncated_prompts": sum(c.get("truncated", 0) for c in completes)},
        model=completes[0]["model"], dataset=dataset_meta(cfg.dataset, root), seed=cfg.seed,
        versions=reporting.versions(root), fingerprint=fingerprint(cfg, root),
        timing={"wall_seconds": round(seconds + completes[0]["model"].get("load_seconds", 0), 2),
                "scoring_seconds": round(seconds, 2),
                "examples_per_second": round(scored / seconds, 2) if seconds and scored else None},
        report_dir=str(rdir))
    reporting.write_task(rdir, records, full)
    return full


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    run = config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(config):
        return
    tr = terminalreporter
    if run.summaries or run.failures:
        tr.section("nanoeval")
    if run.summaries:
        for line in reporting.suite_table(run.summaries, run.gate_results):
            tr.write_line(line)
        for name, s in run.summaries.items():
            tr.write_line(f"{name}: {s['report_dir']}")
        if run.suite is not None:
            tr.write_line(f"suite: {suite_dir(run.suite, run.root) / 'suite_summary.json'}")
    for r in run.gate_results:
        tr.write_line(r.line(), green=r.passed, red=not r.passed)
    for f in run.failures:
        tr.write_line(f"nanoeval ERROR: {f}", red=True)


# ------------------------------------------------------------------------------------------------ HTML report
def pytest_html_results_summary(prefix, summary, postfix, session):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.summaries:
        return
    prefix.extend(reporting.html_summary(run.summaries, run.gate_results, run.failures))


def pytest_html_results_table_header(cells):
    cells.insert(2, "<th>Accuracy</th>")
    cells.insert(3, "<th>Examples</th>")


def pytest_html_results_table_row(report, cells):
    info = dict(getattr(report, "user_properties", [])).get("nanoeval") or {}
    acc = info.get("acc")
    cells.insert(2, f"<td>{'' if acc is None else f'{acc:.4f}'}</td>")
    cells.insert(3, f"<td>{info.get('n', '')}</td>")
