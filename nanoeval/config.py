"""Configs: plain dataclasses and a strict YAML loader.

A *task config* (NANOEVAL_CONFIG) names one benchmark run; a *suite* (NANOEVAL_SUITE) holds one `model` block and
a list of task entries that inherit it. Every schema check happens here, before any file is opened, model loaded
or output written; a problem raises ConfigError with one line: `<file>: <key.path>: expected ..., got ...`, and
independent mistakes in one file (unknown keys, one per section) come together, one line each.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from urllib.parse import urlsplit

import yaml

from nanoeval.benchmark import STRATEGIES, OptionError, Options


class ConfigError(ValueError):
    """A bad config: the message names the file, the key path and what was expected (one line per mistake)."""


class _Problems:
    """Mistakes of one file gathered so they are reported together: `attempt` runs one independent check and keeps
    its ConfigError lines; `raise_any` raises them all as one ConfigError."""

    def __init__(self):
        self.lines: list[str] = []

    def attempt(self, check, fallback=None):
        try:
            return check()
        except ConfigError as e:
            self.lines += [line for line in str(e).splitlines() if line not in self.lines]
            return fallback

    def raise_any(self) -> None:
        if self.lines:
            raise ConfigError("\n".join(self.lines))


def _unknown_key(src: str, key: str, known) -> str:
    """An unknown key's line: the valid names, and the closest one when it looks like a typo."""
    leaf = str(key).rsplit(".", 1)[-1]
    names = [str(k).rsplit(".", 1)[-1] for k in known]
    close = difflib.get_close_matches(leaf, names, 1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{src}: {key}: unknown key (expected one of: {', '.join(names)}){hint}"


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = None                   # hub id or local folder (relative to the project root, or to
                                              # `package`); backend openai: the tokenizer (needed by rank_ll only)
    backend: str = "local"                    # local (loaded here with transformers) | openai (a served model)
    package: str | None = None                # an installed Python package whose folder holds `path`
    gguf_file: str | None = None              # a GGUF file inside `path`; converted once and cached
    revision: str | None = None               # hub revision (branch, tag or commit)
    kind: str = "auto"                        # auto | causal_lm | vision_lm
    dtype: str = "float32"                    # float32 | bfloat16 | float16
    device: str = "auto"                      # auto (cuda if available) | cpu | cuda | cuda:N
    trust_remote_code: bool = False
    chat_template: bool = False               # wrap prompts in the tokenizer's chat template
    add_bos_token: bool | None = None         # None: the tokenizer's default (as lm-eval); true/false: force
    max_length: int | None = None             # context limit; default: the model config's
    # backend openai (nanoeval/engine/served.py): where the model is served, and how to talk to it
    name: str | None = None                   # the served model's name, as the server lists it at /v1/models
    base_url: str | list[str] | None = None   # e.g. http://localhost:8000/v1; a list: replicas, requests spread
    api_key_env: str | None = None            # the NAME of the environment variable that holds the API key
    concurrency: int | None = None            # requests in flight per process (default 8)
    timeout: float | None = None              # seconds per request (default 600)
    max_retries: int | None = None            # retries of a 429, 5xx, timeout or lost connection (default 5)


# how a served model is reached, not what it is: not part of the fingerprint (a run resumes on another port)
SERVING_KEYS = ("base_url", "api_key_env", "concurrency", "timeout", "max_retries")
# what selects examples, not what a record is (a record's shots are seeded by its own id): not part of the
# fingerprint, so a rerun with a larger or other selection keeps every journaled example and scores only the new
# ones; runner.case_records reports only what the current selection selects
SELECTION_KEYS = {"dataset": ("subjects", "limit"), "scoring": ("num_shards", "shard_size")}


@dataclass(frozen=True)
class DatasetConfig:
    path: str                                 # hub id, or `json` / `parquet` for local `data_files`
    name: str | None = None                   # hub config name (`all` for cais/mmlu)
    split: str = "test"
    fewshot_split: str | None = None          # where k-shot examples come from (`dev` for MMLU)
    revision: str | None = None
    data_files: dict[str, list[str]] | None = None  # split -> files (a string or list means {split: files})
    package: str | None = None                # data_files are relative to this installed package's folder
    streaming: bool = True
    columns: dict[str, str | list[str]] = field(default_factory=dict)  # our name -> the dataset's column(s)
    drop_header_rows: bool = False            # drop rows that repeat the column names (CSV export artefact)
    subjects: list[str] | None = None         # subset of subjects (snake_case)
    limit: int | None = None                  # at most this many examples per case
    on_bad_row: str = "error"                 # error | skip (skipped rows are counted in summary.json)


@dataclass(frozen=True)
class EngineConfig:
    """Speed settings: never change a result, so they are not part of the fingerprint."""
    batch_size: int | None = None             # max rows per batch (default: token budget only)
    token_budget: int | None = None           # max padded tokens per batch (default: 1024 on CPU, 32768 on GPU)
    threads: int | None = None                # torch CPU threads
    share_context: bool = True                # a context once for all its continuations (tree attention mask)
    packing: bool = True                      # several sequences per row instead of padding each to the longest
    prefix_cache: bool = True                 # reuse the KV cache of a shared prefix (few-shot shots, header)
    lookahead: int | None = None              # examples of queued cases scored together (0: off; default 256 on
                                              # CPU, 16384 on GPU); a kill loses at most this many scores


@dataclass(frozen=True)
class GateConfig:
    """Regression gates (see nanoeval/gates.py); not part of the fingerprint."""
    min: float | None = None                  # headline metric at least this
    min_per_subject: float | None = None      # every subject at least this
    baseline: str | None = None               # a summary.json or suite_summary.json to compare with
    max_drop: float | None = None             # headline may drop at most this (absolute) below the baseline
    max_drop_stderr: float | None = None      # ... or at most this many combined standard errors
    paired_alpha: float | None = None         # ... or a paired McNemar test against the baseline's predictions


@dataclass(frozen=True)
class ReportConfig:
    """What predictions.jsonl carries beyond the scores."""
    prompts: bool = False                     # each record's `prompt`: the text the model was asked, as it saw it
    #                                           (chat template applied); predictions.jsonl 2x at 0 shots, 4x at 5
    #                                           shots on tests/data/mmlu_tiny (README), so off by default


@dataclass(frozen=True)
class TaskConfig:
    name: str
    task: str
    model: ModelConfig
    dataset: DatasetConfig
    scoring: Options = Options()             # the benchmark's own options type (nanoeval/benchmarks/<task>.py)
    engine: EngineConfig = EngineConfig()
    seed: int = 1234
    report_dir: str | None = None
    gates: GateConfig = GateConfig()
    report: ReportConfig = ReportConfig()
    source: str = ""                          # file it came from (for messages)
    suite: str | None = None

    def config_hash(self) -> str:
        """Hash of the settings that can change a result: model, dataset, scoring, seed (not engine, gates, paths,
        nor what selects examples: SELECTION_KEYS). The run fingerprint adds the model's files, the data files, the
        recipe code and the environment (nanoeval/identity.py)."""
        model = {k: v for k, v in dataclasses.asdict(self.model).items() if k not in SERVING_KEYS}
        dataset, scoring = (
            {k: v for k, v in dataclasses.asdict(part).items() if k not in SELECTION_KEYS[name]}
            for name, part in (("dataset", self.dataset), ("scoring", self.scoring)))
        payload = {"task": self.task, "model": model, "dataset": dataset, "scoring": scoring, "seed": self.seed}
        if self.report != ReportConfig():  # records with prompts differ from records without: only then hashed,
            payload["report"] = dataclasses.asdict(self.report)  # so runs that never set it keep their hash
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    tasks: list[TaskConfig]
    report_dir: str | None = None
    source: str = ""


# ---------------------------------------------------------------------------------------------------- strict loading
def _type_name(tp) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number", type(None): "null"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _got(value) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _check(value, tp, where: str, src: str):
    """Return `value` if it has type `tp` (recursively), else raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check(value, arg, where, src)
            except ConfigError:
                pass
    elif tp is type(None):
        if value is None:
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            return [_check(v, typing.get_args(tp)[0], f"{where}[{i}]", src) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            vt = typing.get_args(tp)[1]
            return {str(k): _check(v, vt, f"{where}.{k}", src) for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        return _make(tp, value, where, src)
    raise ConfigError(f"{src}: {where}: expected {_type_name(tp)}, got {_got(value)}")


def _build(cls, data, where: str, src: str, skip: tuple[str, ...] = (), partial: bool = False) -> dict:
    """Checked keyword arguments for dataclass `cls`: unknown keys and (unless partial) missing ones refused."""
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: {where or 'top level'}: expected a mapping, got {_got(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = [_unknown_key(src, f"{where + '.' if where else ''}{key}", fields) for key in data if key not in fields]
    if unknown:
        raise ConfigError("\n".join(unknown))
    kwargs = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _check(data[name], hints[name], path, src)
        elif not partial and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{src}: {path}: missing required key")
    return kwargs


def _make(cls, data, where, src, skip=()):
    return cls(**_build(cls, data, where, src, skip))


def read_yaml(path: str | Path):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: invalid YAML: {at}{getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"{path}: empty file (expected a mapping of config keys)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _data_files(raw, split: str, where: str, src: str):
    """`data_files` may be a string, a list (both mean {split: files}) or a mapping split -> string or list."""
    if raw is None:
        return None
    if isinstance(raw, (str, list)):
        raw = {split: raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: {where}: expected a file, a list of files or a mapping split -> files, "
                          f"got {_got(raw)}")
    out = {}
    for k, v in raw.items():
        v = [v] if isinstance(v, str) else v
        out[str(k)] = _check(v, list[str], f"{where}.{k}", src)
    return out


def _task(entry: dict, where: str, src: str, inherited: dict) -> TaskConfig:
    """Validate one task mapping (top level of a task config, or one suite entry)."""
    pre = f"{where}." if where else ""
    if not isinstance(entry, dict):
        raise ConfigError(f"{src}: {where}: expected a mapping, got {_got(entry)}")
    known = sorted({f.name for f in dataclasses.fields(TaskConfig)} - {"source", "suite"})
    problems = _Problems()  # each section is checked on its own: all its mistakes are reported at once
    problems.lines += [_unknown_key(src, f"{pre}{key}", known) for key in entry if key not in known]
    from nanoeval.benchmarks import BENCHMARKS

    task = entry.get("task")
    if task not in BENCHMARKS:
        close = difflib.get_close_matches(task, list(BENCHMARKS), 1) if isinstance(task, str) else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.lines.append(f"{src}: {pre}task: expected one of {', '.join(BENCHMARKS)}, got {_got(task)}{hint}")
        task = None

    def task_name() -> str:
        name = _check(entry.get("name", task), str, f"{pre}name", src)
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"{src}: {pre}name: expected a plain name (no '/'), got {name!r}")
        return name

    def model_block() -> ModelConfig:
        model_raw = entry.get("model", inherited.get("model"))
        if model_raw is None:
            raise ConfigError(f"{src}: {pre}model: missing required key")
        return _make(ModelConfig, model_raw, f"{pre}model" if "model" in entry else "model", src)

    name = problems.attempt(task_name) if task or "name" in entry else None
    model = problems.attempt(model_block)
    engine = problems.attempt(lambda: _make(EngineConfig, {**inherited.get("engine", {}),
                                                           **(entry.get("engine") or {})}, f"{pre}engine", src))
    seed = problems.attempt(lambda: _check(entry.get("seed", inherited.get("seed", 1234)), int, f"{pre}seed", src))
    report_dir = problems.attempt(lambda: _check(entry.get("report_dir"), str | None, f"{pre}report_dir", src))
    gates = problems.attempt(lambda: _make(GateConfig, entry.get("gates") or {}, f"{pre}gates", src))
    raw = entry.get("report") or {}  # a suite's `report:` is inherited key by key
    report = problems.attempt(lambda: _make(ReportConfig, {**inherited.get("report", {}), **raw}
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
    problems = _Problems()
    ds_raw = dict(entry.get("dataset") or {})
    if "dataset" in entry and not isinstance(entry["dataset"], dict):
        raise ConfigError(f"{src}: {pre}dataset: expected a mapping, got {_got(entry['dataset'])}")
    files_raw = ds_raw.pop("data_files", None)
    defaults = dict(bench.dataset)
    if files_raw is not None:  # local files: the hub defaults (id, config name) do not apply
        defaults.pop("name", None)
        defaults["path"] = "parquet" if ".parquet" in str(files_raw) else "json"
    ds_kwargs = problems.attempt(lambda: {**defaults, **_build(DatasetConfig, ds_raw, f"{pre}dataset", src,
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
    from nanoeval.benchmarks import BENCHMARKS

    if isinstance(raw, dict):
        for key in raw:
            owners = [b.name for b in BENCHMARKS.values() if key in b.options.keys()]
            if key not in bench.options.keys() and owners:
                raise ConfigError(f"{src}: {where}.{key}: not a setting of {bench.name} "
                                  f"(it applies to {', '.join(owners)})")
    options = _make(bench.options, raw, where, src)
    if options.strategy is None:
        options = dataclasses.replace(options, strategy=bench.strategies[0])
    if options.strategy not in STRATEGIES:
        raise ConfigError(f"{src}: {where}.strategy: expected {' or '.join(STRATEGIES)}, got {_got(options.strategy)}")
    if options.strategy not in bench.strategies:
        raise ConfigError(f"{src}: {where}.strategy: {bench.name} supports only {' or '.join(bench.strategies)}, "
                          f"got {options.strategy!r}")
    try:
        return options.resolve()
    except OptionError as e:
        raise ConfigError(f"{src}: {where}.{e.key}: expected {e}, got {_got(getattr(options, e.key))}") from None


def _check_values(cfg: TaskConfig, pre: str, src: str):
    """Impossible values and benchmark-specific rules."""
    def bad(key, expected, got):
        raise ConfigError(f"{src}: {pre}{key}: expected {expected}, got {_got(got)}")

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
        bad("backend", f"expected local or openai, got {_got(m.backend)}")
    if m.backend == "local":
        if m.path is None:
            bad("path", "missing required key")
        for key in ("name", *SERVING_KEYS):
            if getattr(m, key) is not None:
                bad(key, "only for a served model (add `backend: openai` to the model block)")
        return
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
            bad("base_url", f"expected an http:// or https:// URL, got {_got(u)}")
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
            bad(key, f"expected an integer >= {least}, got {_got(getattr(m, key))}")
    if m.timeout is not None and m.timeout <= 0:
        bad("timeout", f"expected a number of seconds > 0, got {_got(m.timeout)}")
    if s.strategy == "rank_ll" and m.path is None:
        bad("path", "rank_ll through a server sends token ids from the model's own tokenizer: set model.path to "
                    "the served model's hub id or local folder (or use scoring.strategy: gen_letter)")


def load_task(path: str | Path) -> TaskConfig:
    data = read_yaml(path)
    if "suite" in data or "tasks" in data:
        raise ConfigError(f"{path}: top level: this is a suite (it has `suite`/`tasks`); use NANOEVAL_SUITE")
    return _task(data, "", str(path), {})


def load_suite(path: str | Path) -> SuiteConfig:
    data = read_yaml(path)
    src = str(path)
    if "suite" not in data and "tasks" not in data and "task" in data:
        raise ConfigError(f"{path}: top level: this is a task config (it has `task`, no `suite`/`tasks`); "
                          "use NANOEVAL_CONFIG")
    known = ["engine", "model", "report", "report_dir", "seed", "suite", "tasks"]
    problems = _Problems()  # the suite's keys and every task entry: all mistakes at once
    problems.lines += [_unknown_key(src, key, known) for key in data if key not in known]
    name = data.get("suite")
    if not isinstance(name, str) or not name or "/" in name:
        problems.lines.append(f"{src}: suite: expected the suite's name (a string without '/'), got {_got(name)}")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.lines.append(f"{src}: tasks: expected a non-empty list of task entries, got {_got(tasks)}")
        tasks = []
    if "engine" in data and not isinstance(data["engine"], dict):
        problems.lines.append(f"{src}: engine: expected a mapping, got {_got(data['engine'])}")
    report_dir = problems.attempt(lambda: _check(data.get("report_dir"), str | None, "report_dir", src))
    engine = data.get("engine") if isinstance(data.get("engine"), dict) else {}
    if "report" in data and not isinstance(data["report"], dict):
        problems.lines.append(f"{src}: report: expected a mapping, got {_got(data['report'])}")
    report = data.get("report") if isinstance(data.get("report"), dict) else {}
    inherited = {"model": data.get("model"), "engine": engine, "report": report, "suite": name}
    if "seed" in data:
        inherited["seed"] = data["seed"]
    out, seen = [], {}
    for i, entry in enumerate(tasks):
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


def check_report_dirs(tasks: list[TaskConfig], dirs: dict[str, Path], suite: SuiteConfig | None,
                      root: Path) -> None:
    """Two tasks may not share a report dir or nest one in the other (moving one run aside would move the
    other's files); no task's dir may hold the suite's dir (its suite_summary.json and the other tasks)."""
    def key(i: int) -> str:
        where = f"tasks[{i}]." if suite is not None else ""
        t = tasks[i]
        return f"{where}report_dir ({t.report_dir})" if t.report_dir else f"{where}report_dir (default {dirs[t.name]})"

    resolved = [dirs[t.name].resolve() for t in tasks]
    if suite is not None:
        sdir = suite_dir(suite, root).resolve()
        for i, a in enumerate(resolved):
            if sdir.is_relative_to(a):
                raise ConfigError(f"{suite.source}: {key(i)} holds the suite's report_dir ({sdir}) "
                                  "(each task needs a report dir of its own, apart from the suite's files)")
    for i, a in enumerate(resolved):
        for j, b in enumerate(resolved[:i]):
            if a == b or a.is_relative_to(b) or b.is_relative_to(a):
                how = "is the same folder as" if a == b else "is inside" if a.is_relative_to(b) else "holds"
                raise ConfigError(f"{tasks[i].source}: {key(i)} {how} {key(j)} "
                                  "(each task needs a report dir of its own)")


def report_dir(cfg: TaskConfig, root: Path, suite: SuiteConfig | None = None) -> Path:
    """Where a task's journals and artifacts land (relative paths are against the project root)."""
    if cfg.report_dir:
        return _under_root(cfg.report_dir, root, cfg.source, "report_dir")
    if suite is not None:
        return suite_dir(suite, root) / cfg.name
    return root / "artifacts" / "nanoeval" / cfg.name


def suite_dir(suite: SuiteConfig, root: Path) -> Path:
    if suite.report_dir:
        return _under_root(suite.report_dir, root, suite.source, "report_dir")
    return root / "artifacts" / "nanoeval" / suite.name


def _under_root(value: str, root: Path, src: str, key: str) -> Path:
    """A relative report dir may not climb out of the project through `..` (an absolute one is on purpose)."""
    p = Path(value)
    if p.is_absolute():
        return p
    resolved = (root / p).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigError(f"{src}: {key}: {value!r} escapes the project root through '..' "
                          "(give an absolute path to write elsewhere on purpose)")
    return root / p


def model_name(path: str) -> str:
    """The name a model override adds to report dirs: the model folder's (or hub id's) last part, as a safe file
    name (nanoeval/journal.py's file_name keeps `step-1000`, turns any other character into %XX)."""
    from nanoeval.journal import file_name

    return file_name(Path(path.rstrip("/\\")).name or path)


def override_model(tasks: list[TaskConfig], suite: SuiteConfig | None, path: str, root: Path,
                   cwd: Path) -> tuple[list[TaskConfig], SuiteConfig | None]:
    """`--nanoeval-model PATH` / NANOEVAL_MODEL: every task runs PATH (a folder, taken from the working directory
    like any command-line path, else a hub id) instead of its YAML's model, and writes to its report dir with
    `-<model name>` appended, so runs of two checkpoints never share a report dir (nor move each other aside).
    The YAML's `package`, `gguf_file` and `revision` belonged to its own model and are dropped."""
    local = (cwd / path) if not Path(path).is_absolute() else Path(path)
    value = str(local.resolve()) if local.exists() else path
    tag = model_name(path)
    out = []
    for t in tasks:
        if t.model.backend != "local":
            raise ConfigError(f"{t.source}: model: --nanoeval-model / NANOEVAL_MODEL replaces a local model's path; "
                              f"task {t.name!r} uses a served model (backend {t.model.backend})")
        model = dataclasses.replace(t.model, path=value, package=None, gguf_file=None, revision=None)
        rdir = f"{report_dir(t, root)}-{tag}" if t.report_dir or suite is None else None  # else: in the suite's dir
        out.append(dataclasses.replace(t, model=model, report_dir=rdir))
    if suite is not None:
        suite = dataclasses.replace(suite, tasks=out, report_dir=f"{suite_dir(suite, root)}-{tag}")
    return out, suite


def task_to_dict(cfg: TaskConfig) -> dict:
    return dataclasses.asdict(cfg)


def task_from_dict(d: dict) -> TaskConfig:
    """Inverse of task_to_dict (run.json keeps the config so `nanoeval merge` needs no YAML)."""
    from nanoeval.benchmarks import BENCHMARKS

    parts = {"model": ModelConfig, "dataset": DatasetConfig, "scoring": BENCHMARKS[d["task"]].options,
             "engine": EngineConfig, "gates": GateConfig, "report": ReportConfig}
    try:
        return TaskConfig(**{k: parts[k](**v) if k in parts else v for k, v in d.items()})
    except TypeError as e:  # a run.json of another NanoEval version (keys this one does not know)
        raise ConfigError(f"config of task {d.get('name')!r}: written by another version of NanoEval ({e})") from None
