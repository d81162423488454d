"""Task and suite config files: a YAML file checked key by key against the dataclasses of config.py and the
benchmark it names (the registry: its `scoring:` options, dataset defaults and strategies), before any file is
opened, model loaded or output written.

A *task config* (NANOEVAL_CONFIG) names one benchmark run; a *suite* (NANOEVAL_SUITE) holds one `model` block and
a list of task entries that inherit it. A problem raises ConfigError with one line: `<file>: <key.path>: expected
..., got ...`, and independent mistakes in one file (unknown keys, one per section) come together, one line each.
This module sits above the registry; config.py, below it, never imports a benchmark.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path
from urllib.parse import urlsplit

from nanoeval.benchmark import STRATEGIES, OptionError, Options
from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import (SERVING_KEYS, SWEEP_KEYS, ConfigError, DatasetConfig, EngineConfig, GateConfig, ModelConfig,
                             Problems, ReportConfig, SuiteConfig, TaskConfig, check_type, checked, checked_fields, got,
                             read_yaml, unknown_key)


def _data_files(raw, split: str, where: str, src: str):
    """`data_files` may be a string, a list (both mean {split: files}) or a mapping split -> string or list."""
    if raw is None:
        return None
    if isinstance(raw, (str, list)):
        raw = {split: raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: {where}: expected a file, a list of files or a mapping split -> files, "
                          f"got {got(raw)}")
    out = {}
    for k, v in raw.items():
        v = [v] if isinstance(v, str) else v
        out[str(k)] = check_type(v, list[str], f"{where}.{k}", src)
    return out


def _task(entry: dict, where: str, src: str, inherited: dict) -> TaskConfig:
    """Validate one task mapping (top level of a task config, or one suite entry)."""
    pre = f"{where}." if where else ""
    if not isinstance(entry, dict):
        raise ConfigError(f"{src}: {where}: expected a mapping, got {got(entry)}")
    known = sorted({f.name for f in dataclasses.fields(TaskConfig)} - {"source", "suite", "step", "sweep"})
    problems = Problems()  # each section is checked on its own: all its mistakes are reported at once
    problems.lines += [unknown_key(src, f"{pre}{key}", known) for key in entry if key not in known]
    task = entry.get("task")
    if task not in BENCHMARKS:
        close = difflib.get_close_matches(task, list(BENCHMARKS), 1) if isinstance(task, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.lines.append(f"{src}: {pre}task: expected one of {', '.join(BENCHMARKS)}, got {got(task)}{hint}")
        task = None

    def task_name() -> str:
        name = check_type(entry.get("name", task), str, f"{pre}name", src)
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"{src}: {pre}name: expected a plain name (no '/'), got {name!r}")
        return name

    def model_block() -> ModelConfig:
        model_raw = entry.get("model", inherited.get("model"))
        if model_raw is None:
            raise ConfigError(f"{src}: {pre}model: missing required key")
        return checked(ModelConfig, model_raw, f"{pre}model" if "model" in entry else "model", src)

    name = problems.attempt(task_name) if task or "name" in entry else None
    model = problems.attempt(model_block)
    engine = problems.attempt(lambda: checked(EngineConfig, {**inherited.get("engine", {}),
                                                           **(entry.get("engine") or {})}, f"{pre}engine", src))
    seed = problems.attempt(lambda: check_type(entry.get("seed", inherited.get("seed", 1234)), int, f"{pre}seed", src))
    report_dir = problems.attempt(lambda: check_type(entry.get("report_dir"), str | None, f"{pre}report_dir", src))
    gates = problems.attempt(lambda: checked(GateConfig, entry.get("gates") or {}, f"{pre}gates", src))
    raw = entry.get("report") or {}  # a suite's `report:` is inherited key by key
    report = problems.attempt(lambda: checked(ReportConfig, {**inherited.get("report", {}), **raw}
                                            if isinstance(raw, dict) else raw, f"{pre}report", src))
    if task is None:  # the dataset and scoring blocks depend on the benchmark
        problems.raise_any()
    parts = problems.attempt(lambda: _task_data(entry, BENCHMARKS[task], pre, src))
    problems.raise_any()
    dataset, scoring = parts
    if gates.baseline is None and any(getattr(gates, k) is not None for k in ("max_drop", "max_drop_stderr",
                                                                                "paired_alpha")):
        raise ConfigError(f"{src}: {pre}gates.baseline: missing (max_drop, max_drop_stderr and paired_alpha "
                          "compare with a baseline summary.json or suite_summary.json)")
    cfg = TaskConfig(name=name, task=task, model=model, dataset=dataset, scoring=scoring, engine=engine,
                     seed=seed, report_dir=report_dir, gates=gates, report=report, source=src, suite=inherited.get("suite"))
    _check_values(cfg, pre, src)
    return cfg


def _task_data(entry: dict, bench, pre: str, src: str) -> tuple[DatasetConfig, Options]:
    """A task's `dataset:` and `scoring:` blocks (checked together: the mistakes of both are reported)."""
    problems = Problems()
    ds_raw = dict(entry.get("dataset") or {})
    if "dataset" in entry and not isinstance(entry["dataset"], dict):
        raise ConfigError(f"{src}: {pre}dataset: expected a mapping, got {got(entry['dataset'])}")
    files_raw = ds_raw.pop("data_files", None)
    defaults = dict(bench.dataset)
    if files_raw is not None:  # local files: the hub defaults (id, config name) do not apply
        defaults.pop("name", None)
        defaults["path"] = "parquet" if ".parquet" in str(files_raw) else "json"
    ds_kwargs = problems.attempt(lambda: {**defaults, **checked_fields(DatasetConfig, ds_raw, f"{pre}dataset", src,
                                                                partial=True)})
    scoring = problems.attempt(lambda: _options(bench, entry.get("scoring") or {}, f"{pre}scoring", src))
    problems.raise_any()
    ds_kwargs["data_files"] = _data_files(files_raw, ds_kwargs.get("split", "test"), f"{pre}dataset.data_files", src)
    dataset = DatasetConfig(**ds_kwargs)
    if files_raw is None and "name" not in ds_raw:  # e.g. a hub config chosen by a scoring option
        dataset = dataclasses.replace(dataset, **bench.dataset_from_options(scoring))
    return dataset, scoring


def _options(bench, raw, where: str, src: str) -> Options:
    """The benchmark's own `scoring:` options: its keys only (a key of another benchmark says whose it is),
    checked types, then its own defaults and checks (`Options.resolve`)."""
    if isinstance(raw, dict):
        for key in raw:
            owners = [b.name for b in BENCHMARKS.values() if key in b.options.keys()]
            if key not in bench.options.keys() and owners:
                raise ConfigError(f"{src}: {where}.{key}: not a setting of {bench.name} "
                                  f"(it applies to {', '.join(owners)})")
    options = checked(bench.options, raw, where, src)
    if options.strategy is None:
        options = dataclasses.replace(options, strategy=bench.strategies[0])
    if options.strategy not in STRATEGIES:
        raise ConfigError(f"{src}: {where}.strategy: expected {' or '.join(STRATEGIES)}, got {got(options.strategy)}")
    if options.strategy not in bench.strategies:
        raise ConfigError(f"{src}: {where}.strategy: {bench.name} supports only {' or '.join(bench.strategies)}, "
                          f"got {options.strategy!r}")
    try:
        return options.resolve()
    except OptionError as e:
        raise ConfigError(f"{src}: {where}.{e.key}: expected {e}, got {got(getattr(options, e.key))}") from None


def _check_values(cfg: TaskConfig, pre: str, src: str):
    """Impossible values and benchmark-specific rules."""
    def bad(key, expected, value):
        raise ConfigError(f"{src}: {pre}{key}: expected {expected}, got {got(value)}")

    m, d, s, e = cfg.model, cfg.dataset, cfg.scoring, cfg.engine
    _check_backend(m, s, pre, src)
    if m.kind not in ("auto", "causal_lm", "vision_lm"):
        bad("model.kind", "auto, causal_lm or vision_lm", m.kind)
    if m.dtype not in ("float32", "bfloat16", "float16"):
        bad("model.dtype", "float32, bfloat16 or float16", m.dtype)
    if not (m.device in ("auto", "cpu", "cuda") or m.device.startswith("cuda:")):
        bad("model.device", "auto, cpu, cuda or cuda:N", m.device)
    if m.max_length is not None and m.max_length < 2:
        bad("model.max_length", "an integer >= 2", m.max_length)
    if d.on_bad_row not in ("error", "skip"):
        bad("dataset.on_bad_row", "error or skip", d.on_bad_row)
    if d.limit is not None and d.limit < 1:
        bad("dataset.limit", "an integer >= 1", d.limit)
    if d.sample is not None and d.sample < 1:
        bad("dataset.sample", "an integer >= 1", d.sample)
    if s.needs_fewshot_split():  # the shots' split must be named, and present in local data
        if not d.fewshot_split:
            raise ConfigError(f"{src}: {pre}dataset.fewshot_split: scoring.num_fewshot={s.num_fewshot} needs a split "
                              f"to take shots from (e.g. dev){', or ' + s.fewshot_hint if s.fewshot_hint else ''}")
        if d.data_files is not None and d.fewshot_split not in d.data_files:
            raise ConfigError(f"{src}: {pre}dataset.fewshot_split: scoring.num_fewshot={s.num_fewshot} takes shots "
                              f"from split {d.fewshot_split!r}, but dataset.data_files has no such split (has: "
                              f"{', '.join(d.data_files)}); add its files"
                              f"{', or use ' + s.fewshot_hint if s.fewshot_hint else ''}")
    for key in ("batch_size", "token_budget", "threads"):
        if getattr(e, key) is not None and getattr(e, key) < 1:
            bad(f"engine.{key}", "an integer >= 1", getattr(e, key))
    if e.lookahead is not None and e.lookahead < 0:
        bad("engine.lookahead", "an integer >= 0 (0: off)", e.lookahead)
    g = cfg.gates
    for key in ("min", "min_per_subject", "max_drop"):  # accuracies are fractions: `min: 30` is a mistake
        if getattr(g, key) is not None and not 0 <= getattr(g, key) <= 1:
            bad(f"gates.{key}", "a fraction between 0 and 1 (accuracy 0.30, not 30)", getattr(g, key))
    if g.paired_alpha is not None and not 0 < g.paired_alpha < 1:
        bad("gates.paired_alpha", "a significance level between 0 and 1 (e.g. 0.05)", g.paired_alpha)
    if g.max_drop_stderr is not None and g.max_drop_stderr < 0:
        bad("gates.max_drop_stderr", "a number of standard errors >= 0", g.max_drop_stderr)


def _check_backend(m: ModelConfig, s: Options, pre: str, src: str) -> None:
    """A local model needs `path`; a served one `name` and `base_url` (and `path`, its tokenizer, for rank_ll).
    Serving keys without `backend: openai` are a mistake (most likely the backend line is missing)."""
    def bad(key, why):
        raise ConfigError(f"{src}: {pre}model.{key}: {why}")

    if m.backend not in ("local", "openai"):
        bad("backend", f"expected local or openai, got {got(m.backend)}")
    if m.backend == "local":
        if m.path is None and m.checkpoints is None:
            bad("path", "missing required key (or model.checkpoints: a sweep over checkpoint folders)")
        if m.revisions is not None and m.path is None:
            bad("path", "the hub id whose model.revisions are the checkpoints")
        for key in ("name", *SERVING_KEYS):
            if getattr(m, key) is not None:
                bad(key, "only for a served model (add `backend: openai` to the model block)")
        return
    for key in SWEEP_KEYS:
        if getattr(m, key) is not None:
            bad(key, "a sweep loads each checkpoint here (backend local); serve each under its own name instead")
    for key, example in (("name", "the served model's name, as /v1/models lists it"),
                         ("base_url", "the server's URL, e.g. http://localhost:8000/v1")):
        if not getattr(m, key):
            bad(key, f"missing required key for backend openai ({example})")
    urls = [m.base_url] if isinstance(m.base_url, str) else m.base_url
    for u in urls:
        parts = urlsplit(u)
        try:
            ok = parts.scheme in ("http", "https") and parts.hostname and (parts.port or True)
        except ValueError:  # a port that is not a number
            ok = False
        if not ok:
            bad("base_url", f"expected an http:// or https:// URL, got {got(u)}")
        if parts.username or parts.password or parts.query:  # a key in the URL would land in run.json
            bad("base_url", "expected a URL without credentials or a query string (put the key in the environment "
                            "variable named by model.api_key_env)")
    if m.api_key_env is not None:
        if not m.api_key_env.isidentifier():
            bad("api_key_env", "expected the NAME of an environment variable that holds the key (never the key "
                               "itself)")
        if not os.environ.get(m.api_key_env):
            bad("api_key_env", f"the environment variable {m.api_key_env} is not set (or empty)")
    if m.add_bos_token is not None and s.strategy == "gen_letter":
        bad("add_bos_token", "the server tokenizes a served model's generation prompts as it does by default; "
                             "model.add_bos_token applies to rank_ll only")
    for key, least in (("concurrency", 1), ("max_retries", 0)):
        if getattr(m, key) is not None and getattr(m, key) < least:
            bad(key, f"expected an integer >= {least}, got {got(getattr(m, key))}")
    if m.timeout is not None and m.timeout <= 0:
        bad("timeout", f"expected a number of seconds > 0, got {got(m.timeout)}")
    if s.strategy == "rank_ll" and m.path is None:
        bad("path", "rank_ll through a server sends token ids from the model's own tokenizer: set model.path to "
                    "the served model's hub id or local folder (or use scoring.strategy: gen_letter)")


def load_task(path: str | Path) -> TaskConfig:
    data = read_yaml(path)
    if "suite" in data or "tasks" in data:
        raise ConfigError(f"{path}: top level: this is a suite (it has `suite`/`tasks`); use NANOEVAL_SUITE")
    return _task(data, "", str(path), {})


def load_suite(path: str | Path) -> SuiteConfig:
    return suite_from_data(read_yaml(path), str(path))


def suite_from_data(data: dict, src: str) -> SuiteConfig:
    """A suite mapping (a suite file's content; `src` names it in messages), checked as load_suite does."""
    if "suite" not in data and "tasks" not in data and "task" in data:
        raise ConfigError(f"{src}: top level: this is a task config (it has `task`, no `suite`/`tasks`); "
                          "use NANOEVAL_CONFIG")
    known = ["engine", "model", "report", "report_dir", "sample", "seed", "suite", "tasks"]
    problems = Problems()  # the suite's keys and every task entry: all mistakes at once
    problems.lines += [unknown_key(src, key, known) for key in data if key not in known]
    name = data.get("suite")
    if not isinstance(name, str) or not name or "/" in name:
        problems.lines.append(f"{src}: suite: expected the suite's name (a string without '/'), got {got(name)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.lines.append(f"{src}: tasks: expected a non-empty list of task entries, got {got(tasks)}")
        tasks = []
    if "engine" in data and not isinstance(data["engine"], dict):
        problems.lines.append(f"{src}: engine: expected a mapping, got {got(data['engine'])}")
    report_dir = problems.attempt(lambda: check_type(data.get("report_dir"), str | None, "report_dir", src))
    engine = data.get("engine") if isinstance(data.get("engine"), dict) else {}
    if "report" in data and not isinstance(data["report"], dict):
        problems.lines.append(f"{src}: report: expected a mapping, got {got(data['report'])}")
    report = data.get("report") if isinstance(data.get("report"), dict) else {}
    inherited = {"model": data.get("model"), "engine": engine, "report": report, "suite": name}
    if "seed" in data:
        inherited["seed"] = data["seed"]
    sample = problems.attempt(lambda: check_type(data.get("sample"), int | None, "sample", src))
    if isinstance(sample, int) and sample < 1:
        problems.lines.append(f"{src}: sample: expected an integer >= 1, got {got(sample)}")
    out, seen = [], {}
    for i, entry in enumerate(tasks):
        if sample and isinstance(entry, dict) and isinstance(entry.get("dataset", {}), dict):
            # the suite's `sample` caps every task that does not set its own dataset.sample
            entry = {**entry, "dataset": {"sample": sample, **entry.get("dataset", {})}}
        cfg = problems.attempt(lambda: _task(entry, f"tasks[{i}]", src, inherited))
        if cfg is None:
            continue
        if cfg.name in seen:
            problems.lines.append(f"{src}: tasks[{i}].name: {cfg.name!r} is already used by "
                                  f"tasks[{seen[cfg.name]}] (task names must be unique within a suite)")
        seen[cfg.name] = i
        out.append(cfg)
    problems.raise_any()
    return SuiteConfig(name=name, tasks=out, report_dir=report_dir, source=src)


def task_from_dict(d: dict) -> TaskConfig:
    """Inverse of config.task_to_dict (run.json keeps the config so `nanoeval merge` needs no YAML)."""
    parts = {"model": ModelConfig, "dataset": DatasetConfig, "scoring": BENCHMARKS[d["task"]].options,
             "engine": EngineConfig, "gates": GateConfig, "report": ReportConfig}
    try:
        return TaskConfig(**{k: parts[k](**v) if k in parts else v for k, v in d.items()})
    except TypeError as e:  # a run.json of another NanoEval version (keys this one does not know)
        raise ConfigError(f"config of task {d.get('name')!r}: written by another version of NanoEval ({e})") from None
