"""pytest wiring: options, the run's configs, parametrized cases, the model pool, journals -> artifacts at the end.

Flow: configure (load + validate YAML; a bad config is one `ERROR:` line and exit 4) -> session start on the
controller (prepare report dirs, move a stale run aside) -> one test per case (records appended to its journal) ->
session finish on the controller (artifacts from all journals, terminal table). Workers under xdist only write
journals; the report carries counts and the journal path as plain JSON types.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evals import reporting
from evals.config import ConfigError, SuiteConfig, TaskConfig, load_suite, load_task, report_dir, suite_dir
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
    started: float = field(default_factory=time.time)
    summaries: dict[str, dict] = field(default_factory=dict)


RUN_KEY = pytest.StashKey[Run]()


def pytest_addoption(parser):
    g = parser.getgroup("nanoeval")
    g.addoption("--nanoeval-config", default=None, help="task config YAML (default: $NANOEVAL_CONFIG)")
    g.addoption("--nanoeval-suite", default=None,
                help=f"suite YAML (default: $NANOEVAL_SUITE, else {DEFAULT_SUITE})")
    g.addoption("--nanoeval-fresh", action="store_true",
                help="move the previous run's journals and artifacts aside and start fresh")


def _is_active(config) -> bool:
    """Only runs that collect evals/ load configs (so `pytest tests/` never touches artifacts)."""
    args = config.args or [str(config.rootpath)]
    for a in args:
        p = Path(a.split("::")[0])
        p = (p if p.is_absolute() else Path(config.invocation_params.dir) / p).resolve()
        if p == EVALS_DIR or EVALS_DIR in p.parents or p in EVALS_DIR.parents:
            return True
    return False


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
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[RUN_KEY] = Run(root, tasks, suite, dirs, fresh=config.getoption("nanoeval_fresh"))


def fingerprint(cfg: TaskConfig, root: Path) -> str:
    from evals.data import data_hashes

    return cfg.fingerprint(data_hashes(cfg.dataset, root))


def _abs(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(session.config):
        return
    for t in run.tasks:
        try:
            msg = prepare_report_dir(run.dirs[t.name], fingerprint(t, run.root), t.name, run.fresh)
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

    def run(self, examples: list, score, engine, skipped: list[dict] | None = None, chunk: int = 32) -> None:
        """Score `examples` not yet in the journal, appending records per chunk; mark the case complete."""
        if os.environ.get("NANOEVAL_TEST_FAIL") == f"{self.cfg.name}:{self.id}":  # test-only fault injection
            raise RuntimeError(f"injected failure in {self.cfg.name}:{self.id} (NANOEVAL_TEST_FAIL)")
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
                    _progress(self, n, len(examples), time.time() - t0, len(todo[: start + chunk]))
                seconds = time.time() - t0
                complete = {"n": n, "seconds": round(seconds, 3), "skipped": skipped or [],
                            "truncated": engine.truncated, "model": engine.meta, "scored_now": len(todo)}
                writer.append([{"_complete": complete}])
            finally:
                writer.close()
            j = read_journal(self.journal)
        self.report(j)

    def report(self, j) -> None:
        """Counts for the test report (plain JSON types: they cross xdist's transport)."""
        correct = sum(bool(r.get("correct")) for r in j.records)
        info = {"task": self.cfg.name, "case": self.id, "n": len(j.records),
                "acc": correct / len(j.records) if j.records else None,
                "seconds": (j.complete or {}).get("seconds"), "journal": str(self.journal)}
        self.node.user_properties.append(("nanoeval", json.loads(json.dumps(info))))


def _check_finite(records: list[dict], case: Case) -> None:
    for r in records:
        if any(not math.isfinite(x) for x in r.get("lls", [])):
            raise FloatingPointError(f"{case.cfg.name}: example {r['id']}: the model returned a non-finite "
                                     f"log-likelihood {r['lls']} (expected finite numbers; check dtype/weights)")


def _progress(case: Case, done: int, total: int, seconds: float, scored: int) -> None:
    if sys.stdout.isatty():
        rate = scored / seconds if seconds else 0.0
        print(f"\r  {case.cfg.name}:{case.id} {done}/{total} ({rate:.1f} ex/s)", end="", flush=True)


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
    """Run tasks in config order (a suite's models load once each)."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    order = {t.name: i for i, t in enumerate(run.tasks)}
    items.sort(key=lambda it: order.get(_case_of(it).cfg.name, -1) if _case_of(it) else -1)
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


# --------------------------------------------------------------------------------------------- session finish
def pytest_sessionfinish(session, exitstatus):
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or _is_worker(session.config):
        return
    failed = False
    for t in run.tasks:
        try:
            summary = build_task_artifacts(t, run.dirs[t.name], run.root)
        except Exception as e:  # report, keep the other tasks' artifacts
            print(f"\nnanoeval: {t.name}: could not write artifacts: {e.__class__.__name__}: {e}", flush=True)
            failed = True
            continue
        if summary is not None:
            run.summaries[t.name] = summary
    if run.suite is not None and run.summaries:
        reporting.write_suite(suite_dir(run.suite, run.root) / "suite_summary.json", run.suite.name, run.summaries)
    if failed and session.exitstatus == 0:
        session.exitstatus = 1


def build_task_artifacts(cfg: TaskConfig, rdir: Path, root: Path) -> dict | None:
    """Read every case journal of the task and write its artifacts; None if no case has finished."""
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
    from evals.data import dataset_meta

    full = reporting.assemble(
        summary, records, task=cfg.task, name=cfg.name, suite=cfg.suite, skipped_rows=skipped,
        cases={"done": done, "missing": missing, "complete": not missing},
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
    if run is None or _is_worker(config) or not run.summaries:
        return
    tr = terminalreporter
    tr.section("nanoeval")
    tr.write_line(f"{'task':<22} {'metric':<12} {'value':>16} {'examples':>9} {'ex/s':>7}  cases")
    for name, s in run.summaries.items():
        v, se = s["metrics"][s["headline"]], s["stderr"].get(s["headline"])
        value = f"{v:.4f} ± {se:.4f}" if se == se and se is not None else f"{v:.4f}"
        eps = s["timing"]["examples_per_second"]
        cases = "complete" if s["cases"]["complete"] else f"{len(s['cases']['missing'])} missing"
        tr.write_line(f"{name:<22} {s['headline']:<12} {value:>16} {s['counts']['examples']:>9} "
                      f"{eps if eps is not None else '-':>7}  {cases}")
    for name, s in run.summaries.items():
        tr.write_line(f"{name}: {s['report_dir']}")
    if run.suite is not None:
        tr.write_line(f"suite: {suite_dir(run.suite, run.root) / 'suite_summary.json'}")
