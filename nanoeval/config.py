"""Configs: the plain dataclasses a run is described by, the typed checks every YAML key goes through, the config
hash, report dirs and the model override.

Reading a task or suite file (which needs the benchmark it names) is config_files.py, above the registry: this
module sits below the benchmarks and never imports one. A problem raises ConfigError with one line:
`<file>: <key.path>: expected ..., got ...`.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nanoeval.benchmark import Options
from nanoeval.journal import file_name


class ConfigError(ValueError):
    """A bad config: the message names the file, the key path and what was expected (one line per mistake)."""


class Problems:
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


def unknown_key(src: str, key: str, known) -> str:
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
    # a sweep: the same tasks on each checkpoint of a run (expand_checkpoints), each its own task, report dir and
    # fingerprint, so a new checkpoint is the only thing a rerun scores
    checkpoints: str | list[str | dict[str, str | int]] | None = None  # a glob of folders (runs/x/step-*) or a
    #                                           list of folders / {path, step}; the step: the name's last number
    revisions: list[str] | None = None        # hub revisions as checkpoints (Pythia's step1000, ...)


# how a served model is reached, not what it is: not part of the fingerprint (a run resumes on another port)
SERVING_KEYS = ("base_url", "api_key_env", "concurrency", "timeout", "max_retries")
# which checkpoints a sweep covers: each checkpoint's task has its own path or revision (hashed), these are None
SWEEP_KEYS = ("checkpoints", "revisions")
# what selects examples, not what a record is (a record's shots are seeded by its own id; a good row's record is the
# same whether bad rows stop the run or are skipped): not part of the fingerprint, so a rerun with a larger or other
# selection keeps every journaled example and scores only the new ones; runner.case_records reports only what the
# current selection selects
SELECTION_KEYS = {"dataset": ("subjects", "limit", "sample", "on_bad_row"), "scoring": ("num_shards", "shard_size")}


@dataclass(frozen=True)
class DatasetConfig:
    path: str                                 # hub id, or `json` / `parquet` for local `data_files`
    name: str | None = None                   # hub config name (`all` for cais/mmlu)
    split: str = "test"
    fewshot_split: str | None = None          # where k-shot examples come from (`dev` for MMLU)
    revision: str | None = None
    data_files: dict[str, list[str]] | None = None  # split -> files (a string or list means {split: files})
    package: str | dict[str, str] | None = None  # data_files are relative to this installed package's folder (a
                                              # mapping: split -> package; other splits' files to the root)
    streaming: bool = True
    columns: dict[str, str | list[str]] = field(default_factory=dict)  # our name -> the dataset's column(s)
    drop_header_rows: bool = False            # drop rows that repeat the column names (CSV export artefact)
    subjects: list[str] | None = None         # subset of subjects (snake_case)
    limit: int | None = None                  # at most this many examples per case
    sample: int | None = None                 # at most this many rows of the split: a fixed seeded sample (data.py)
    on_bad_row: str = "error"                 # error | skip (skipped rows are counted in summary.json)


@dataclass(frozen=True)
class EngineConfig:
    """Speed settings: never change a result, so they are not part of the fingerprint."""
    batch_size: int | None = None             # max rows per batch (default: token budget only; generation: the
                                              # rows decoding together, default as 2 GiB of KV cache holds on a
                                              # CPU, half the free memory on a GPU, counted as rows join)
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
    step: int | None = None                   # a sweep's checkpoint: its training step (expand_checkpoints)
    sweep: str | None = None                  # ... and the task name it expands (the curves' task)

    def config_hash(self) -> str:
        """Hash of the settings that can change a result: model, dataset, scoring, seed (not engine, gates, paths,
        nor what selects examples: SELECTION_KEYS). The run fingerprint adds the model's files, the data files, the
        recipe code and the environment (nanoeval/identity.py)."""
        return hashlib.sha256(json.dumps(hashed_settings(task_to_dict(self)), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    tasks: list[TaskConfig]
    report_dir: str | None = None
    source: str = ""


# ---------------------------------------------------------------------------------------------------- strict loading
def type_name(tp) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number", type(None): "null"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def got(value) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def check_type(value, tp, where: str, src: str):
    """Return `value` if it has type `tp` (recursively), else raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return check_type(value, arg, where, src)
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
            return [check_type(v, typing.get_args(tp)[0], f"{where}[{i}]", src) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            vt = typing.get_args(tp)[1]
            return {str(k): check_type(v, vt, f"{where}.{k}", src) for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        return checked(tp, value, where, src)
    raise ConfigError(f"{src}: {where}: expected {type_name(tp)}, got {got(value)}")


def checked_fields(cls, data, where: str, src: str, skip: tuple[str, ...] = (), partial: bool = False) -> dict:
    """Checked keyword arguments for dataclass `cls`: unknown keys and (unless partial) missing ones refused."""
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: {where or 'top level'}: expected a mapping, got {got(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = [unknown_key(src, f"{where + '.' if where else ''}{key}", fields) for key in data if key not in fields]
    if unknown:
        raise ConfigError("\n".join(unknown))
    kwargs = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = check_type(data[name], hints[name], path, src)
        elif not partial and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{src}: {path}: missing required key")
    return kwargs


def checked(cls, data, where, src, skip=()):
    return cls(**checked_fields(cls, data, where, src, skip))


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
        model = dataclasses.replace(t.model, path=value, package=None, gguf_file=None, revision=None,
                                    checkpoints=None, revisions=None)
        rdir = f"{report_dir(t, root)}-{tag}" if t.report_dir or suite is None else None  # else: in the suite's dir
        out.append(dataclasses.replace(t, model=model, report_dir=rdir))
    if suite is not None:
        suite = dataclasses.replace(suite, tasks=out, report_dir=f"{suite_dir(suite, root)}-{tag}")
    return out, suite


def step_of(label: str) -> int | None:
    """A checkpoint's step from its folder or revision name: its last number (`step-2000`, `checkpoint-500`,
    `step1000`), None without one."""
    found = re.findall(r"\d+", label)
    return int(found[-1]) if found else None


def expand_checkpoints(tasks: list[TaskConfig], suite: SuiteConfig | None,
                       root: Path) -> tuple[list[TaskConfig], SuiteConfig | None]:
    """A task whose model names `checkpoints` (or `revisions`) becomes one task per checkpoint, in step order:
    named `<task>@step-<N>`, its model that checkpoint's folder (or revision), its report dir `step-<N>` under the
    task's own, `step` and `sweep` set. A glob is taken from the project root (or is absolute) and must match a
    folder; every checkpoint needs a step (its name's last number, or `step:` in a {path, step} entry), and no
    two the same."""
    out = []
    for t in tasks:
        m = t.model
        if m.checkpoints is None and m.revisions is None:
            out.append(t)
            continue
        where = f"{t.source}: model"
        if m.backend != "local":
            raise ConfigError(f"{where}.checkpoints: a sweep loads each checkpoint here (backend local)")
        if m.checkpoints is not None and m.revisions is not None:
            raise ConfigError(f"{where}.checkpoints: either checkpoints (folders) or revisions (hub), not both")
        found: list[tuple[int | None, str, dict]] = []  # (step, what it is called, model fields)
        if m.revisions is not None:
            found = [(step_of(r), r, {"revision": r}) for r in m.revisions]
        elif isinstance(m.checkpoints, str):
            base = Path(m.checkpoints) if Path(m.checkpoints).is_absolute() else root / m.checkpoints
            folders = sorted(p for p in Path(base.anchor).glob(str(base.relative_to(base.anchor))) if p.is_dir())
            if not folders:
                raise ConfigError(f"{where}.checkpoints: {m.checkpoints!r} matches no folder (taken from {root})")
            found = [(step_of(p.name), p.name, {"path": str(p)}) for p in folders]
        else:
            for i, c in enumerate(m.checkpoints):
                path, step = (c, None) if isinstance(c, str) else (c.get("path"), c.get("step"))
                if not isinstance(path, str) or (step is not None and not isinstance(step, int)):
                    raise ConfigError(f"{where}.checkpoints[{i}]: expected a folder or {{path: FOLDER, step: N}}, "
                                      f"got {got(c)}")
                local = Path(path) if Path(path).is_absolute() else root / path
                found.append((step if step is not None else step_of(Path(path).name), Path(path).name,
                              {"path": str(local)}))
        for step, name, _ in found:
            if step is None:
                raise ConfigError(f"{where}.checkpoints: {name!r}: no step in its name (give it: {{path: ..., "
                                  "step: N}})")
        steps = [s for s, _, _ in found]
        if (dup := next((s for s in steps if steps.count(s) > 1), None)) is not None:
            raise ConfigError(f"{where}.checkpoints: step {dup} twice ({', '.join(n for s, n, _ in found if s == dup)})")
        base_dir = report_dir(t, root, suite)
        for step, _, fields in sorted(found, key=lambda x: x[0]):
            label = f"step-{step}"
            model = dataclasses.replace(m, checkpoints=None, revisions=None, **fields)
            out.append(dataclasses.replace(t, name=f"{t.name}@{label}", model=model, step=step, sweep=t.name,
                                           report_dir=str(base_dir / label)))
    if suite is not None:
        suite = dataclasses.replace(suite, tasks=out)
    return out, suite


def task_to_dict(cfg: TaskConfig) -> dict:
    return dataclasses.asdict(cfg)


def hashed_settings(d: dict) -> dict:
    """The settings of a task (task_to_dict) that its config hash covers; run.json keeps them, so a changed hash
    can name the keys that changed."""
    model = {k: v for k, v in d["model"].items() if k not in SERVING_KEYS + SWEEP_KEYS}
    dataset, scoring = ({k: v for k, v in d[name].items() if k not in SELECTION_KEYS[name]}
                        for name in ("dataset", "scoring"))
    payload = {"task": d["task"], "model": model, "dataset": dataset, "scoring": scoring, "seed": d["seed"]}
    if d["report"] != dataclasses.asdict(ReportConfig()):  # records with prompts differ from records without: only
        payload["report"] = d["report"]                     # then hashed, so runs that never set it keep their hash
    return payload
