"""Row shards: the cases of a benchmark without subjects. Row i of the split goes to shard i % n, so the case list
needs no pass over the data (unless `shard_size` asks for one)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from nanoeval.benchmark import CaseData, OptionError, Options
from nanoeval.config import TaskConfig
from nanoeval.data import DataError, get, load_rows, parse_rows, row_addresses

DEFAULT_SHARDS = 8


@dataclass(frozen=True)
class ShardOptions(Options):
    """The `scoring:` options of a sharded benchmark (a benchmark's own options subclass this)."""
    num_shards: int | None = None     # number of cases (default 8)
    shard_size: int | None = None     # or examples per case

    @classmethod
    def shown_defaults(cls) -> dict[str, str]:  # what num_shards() below does with None
        return {**super().shown_defaults(), "num_shards": str(DEFAULT_SHARDS), "shard_size": "None (num_shards decides)"}

    def resolve(self) -> "ShardOptions":
        for key in ("num_shards", "shard_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise OptionError(key, "an integer >= 1")
        return super().resolve()


def num_shards(cfg: TaskConfig, root) -> int:
    s = cfg.scoring
    if s.shard_size:  # needs the row count: one pass over the data at collection
        return max(1, math.ceil(len(load_rows(cfg.dataset, cfg.dataset.split, root)) / s.shard_size))
    return s.num_shards or DEFAULT_SHARDS


def shard_cases(cfg: TaskConfig, root) -> list[str]:
    n = num_shards(cfg, root)
    return [f"shard{i:0{len(str(n - 1))}d}of{n}" for i in range(n)]


def shard_of(case_id: str) -> int:
    """The shard number of a case id ("shard03of08" -> 3)."""
    return int(case_id[5:].split("of")[0])


def check_shards(cfg: TaskConfig, root) -> str | None:
    """More shards than rows leaves shards empty: known from local data before the model loads."""
    if not cfg.dataset.data_files:
        return None
    rows, n = len(load_rows(cfg.dataset, cfg.dataset.split, root)), num_shards(cfg, root)
    if rows >= n:
        return None
    return f"scoring.num_shards: {n} shards but split {cfg.dataset.split!r} has {rows} row(s), so shards " \
           f"{rows}..{n - 1} would be empty (use at most {max(rows, 1)} shards)"


def check_shard_cases(cfg: TaskConfig, root, columns: tuple[str, ...]) -> str | None:
    """Before the model loads: shards that would be empty, a column the first row of local data lacks (every case
    would fail on it)."""
    if (why := check_shards(cfg, root)) or not cfg.dataset.data_files:
        return why
    first, where = load_rows(cfg.dataset, cfg.dataset.split, root)[0], row_addresses(
        cfg.dataset, cfg.dataset.split, root)(0)
    try:
        for column in columns:
            get(first, cfg.dataset, column, where)
    except DataError as e:
        return str(e)
    return None


def shard_sizes(cfg: TaskConfig, root, full_size: int) -> dict[str, int]:
    """Expected examples per shard (progress and its ETA only); `full_size`: the hub split's rows."""
    rows = len(load_rows(cfg.dataset, cfg.dataset.split, root)) if cfg.dataset.data_files else full_size
    n, kept = num_shards(cfg, root), min(rows, cfg.dataset.sample or rows)  # a sample: about kept / n per shard
    return {case: min(len(range(i, kept, n)), cfg.dataset.limit or rows) for i, case in enumerate(shard_cases(cfg, root))}


def shard_rows(cfg: TaskConfig, split: str, root, parse, shard: int | None = None) -> tuple[list, list[dict]]:
    """The rows of one shard of the scored split (dataset.sample applies), or all rows of a split (shard None: a
    few-shot pool, never sampled), each through `parse(cfg, row, where, i)` (i: the row's number in the split), and
    the rows skipped as bad (dataset.on_bad_row: skip)."""
    n = num_shards(cfg, root) if shard is not None else 1
    return parse_rows(cfg.dataset, split, root, lambda row, where, k, i: parse(cfg, row, where, i),
                      keep=lambda i, row, where: shard is None or i % n == shard, sample=shard is not None)


def load_shard(cfg: TaskConfig, case_id: str, root, parse) -> CaseData:
    """A shard's examples; with num_fewshot > 0, every row of the few-shot split as the context (the pool the
    benchmark draws its shots from)."""
    batch, skipped = shard_rows(cfg, cfg.dataset.split, root, parse, shard_of(case_id))
    pool = shard_rows(cfg, cfg.dataset.fewshot_split, root, parse)[0] if cfg.scoring.num_fewshot else []
    return CaseData(batch, skipped, pool)
