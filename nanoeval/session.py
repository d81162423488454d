"""A run's tasks, checked before any model loads: configs, report dirs, baselines, local data, models, cases, and
each task's run.json (its fingerprint). Used by the pytest plugin on every process; nothing here imports pytest."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from nanoeval.config import (ConfigError, SuiteConfig, TaskConfig, check_report_dirs, expand_checkpoints,
                             override_model, report_dir)
from nanoeval.config_files import load_suite, load_task
from nanoeval.data import (DataError, go_offline, hub_dataset_missing, hub_offline, hub_reachable, repeated_id,
                           scan_local)
from nanoeval.journal import ReportDirBusy, lock_report_dir
from nanoeval.pool import ModelPool
from nanoeval.runner import benchmark, check_model, task_info

DEFAULT_SUITE = "suites/suite_smoke.yaml"


@dataclass
class Session:
    root: Path
    tasks: list[TaskConfig]
    suite: SuiteConfig | None
    dirs: dict[str, Path]                                     # task -> its report dir
    fresh: bool = False                                       # move the previous run aside and start over
    shard: tuple[int, int] | None = None                      # (i, N): this process runs every N-th case
    infos: dict[str, dict] = field(default_factory=dict)      # task -> its run.json (controller only)
    commits: dict[str, str | None] = field(default_factory=dict)  # model key -> resolved hub commit
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> expected examples per case
    started: float = field(default_factory=time.time)
    locks: list = field(default_factory=list)                 # the report dirs' lock files, held (controller only)
    notes: list[str] = field(default_factory=list)            # e.g. which file a relative config path meant

    def release(self) -> None:
        """Let go of the report dirs (the OS does it anyway when the process ends)."""
        for f in self.locks:
            f.close()
        self.locks = []


def _abs(path: str, root: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def config_file(value: str, what: str, cwd: Path, root: Path) -> tuple[Path, str | None]:
    """A config path as the user typed it: relative to the working directory, as every CLI takes it; the project
    root only when the working directory has no such file and the root has (a note says so)."""
    p = Path(value)
    if p.is_absolute() or (cwd / p).exists():
        return cwd / p, None
    if (root / p).is_file():
        return root / p, f"{what}={value}: not in the working directory {cwd}; using {root / p} (project root)"
    raise ConfigError(f"{cwd / p}: file not found ({what}={value}, taken from the working directory; "
                      f"not in the project root {root} either)")


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
        assert n >= 1 and 0 <= i < n
    except (ValueError, AssertionError):
        raise ConfigError(f"--nanoeval-shard / NANOEVAL_SHARD: expected i/N with 0 <= i < N, got {value!r}") from None
    return i, n


def open_session(root: Path, config: str | None, suite: str | None, shard: str | None = None, fresh: bool = False,
                 controller: bool = True, model: str | None = None, cwd: Path | None = None) -> Session:
    """Load NANOEVAL_CONFIG or NANOEVAL_SUITE (relative to `cwd`, see config_file; default: the smoke suite) and
    check everything a config or data file can get wrong, quickest first; on the controller also each task's model,
    cases and run.json. Any problem is one ConfigError line naming the file and key (or file:line). `model`
    (NANOEVAL_MODEL): every task runs that model instead of its YAML's, in report dirs named for it
    (config.override_model; `cwd` resolves its path)."""
    if config and suite:
        raise ConfigError("set either NANOEVAL_CONFIG or NANOEVAL_SUITE, not both")
    suite_cfg, note = None, None
    if config:
        path, note = config_file(config, "NANOEVAL_CONFIG", cwd or root, root)
        tasks = [load_task(path)]
    else:
        path, note = config_file(suite, "NANOEVAL_SUITE", cwd or root, root) if suite else \
            (root / DEFAULT_SUITE, None)
        suite_cfg = load_suite(path)
        tasks = suite_cfg.tasks
    if model:
        tasks, suite_cfg = override_model(tasks, suite_cfg, model, root, cwd or Path.cwd())
    tasks, suite_cfg = expand_checkpoints(tasks, suite_cfg, root)  # a sweep: one task per checkpoint
    return start_session(root, tasks, suite_cfg, [note] if note else [], shard, fresh, controller)


def start_session(root: Path, tasks: list[TaskConfig], suite_cfg: SuiteConfig | None, notes: list[str],
                  shard: str | None = None, fresh: bool = False, controller: bool = True,
                  identity: dict | None = None) -> Session:
    """open_session's checks of loaded tasks (and, on the controller, run.json and the report dirs' locks).
    `identity`: the model identity of every task when the caller knows it (a model in memory: training.py), instead
    of each task's model files."""
    if controller and any(not t.dataset.data_files for t in tasks) and not hub_offline() and not hub_reachable():
        go_offline()  # before the workers start: they inherit it
        notes.append("the Hugging Face hub is unreachable: offline (HF_HUB_OFFLINE=1), only local copies are used")
    dirs = {t.name: report_dir(t, root, suite_cfg) for t in tasks}
    check_report_dirs(tasks, dirs, suite_cfg, root)
    for t in tasks:  # a missing baseline is an error, never a pass
        if t.gates.baseline and not _abs(t.gates.baseline, root).is_file():
            raise ConfigError(f"{t.source}: gates.baseline: {_abs(t.gates.baseline, root)}: file not found")
        try:  # missing, empty or broken local data: one line now rather than one failure per case
            scan_local(t.dataset, root)
        except DataError as e:
            raise ConfigError(f"{t.source}: {e}") from None
        if why := hub_dataset_missing(t.dataset):
            raise ConfigError(f"{t.source}: {why}")
    s = Session(root, tasks, suite_cfg, dirs, fresh=fresh, shard=parse_shard(shard), notes=notes)
    if controller:  # before any model loads: what identifies each task's results, cases that cannot run
        for t in tasks:
            try:
                model = identity or check_model(t, root)  # first: the likeliest typo, quick to check
                if why := benchmark(t).check_cases(t, root):
                    pre = f"tasks[{tasks.index(t)}]." if suite_cfg is not None else ""
                    raise ConfigError(f"{t.source}: {pre}{why}")
                bench = benchmark(t)  # ids are unique or refused: resume and paired gates match examples by id
                if bench.id_column and t.dataset.data_files and \
                        (why := repeated_id(t.dataset, t.dataset.split, root, bench.id_column)):
                    raise ConfigError(f"{t.source}: {why}")
                s.infos[t.name] = task_info(t, root, model)
                s.sizes[t.name] = benchmark(t).case_sizes(t, root)
            except (DataError, OSError) as e:
                raise ConfigError(f"{t.source}: {e}") from None
            s.commits[ModelPool.key(t)] = s.infos[t.name]["model_identity"].get("commit")
        for t in tasks:  # last, once all is checked: one run per report dir, nothing written before
            try:
                s.locks.append(lock_report_dir(dirs[t.name]))
            except (ReportDirBusy, OSError) as e:
                s.release()
                raise ConfigError(f"{t.source}: report_dir: {e}") from None
    return s


def baseline_path(t: TaskConfig, root: Path) -> Path | None:
    return _abs(t.gates.baseline, root) if t.gates.baseline else None
