"""The small core-benchmark fixtures (tests/data/make_small_core.py) load with `datasets`, have each task's exact
hub schema, and carry no tell: in the scored split the gold's position and its length rank among the choices are
spread exactly evenly, so "always A", "always the longest" and "always the shortest" each score exactly 1/n."""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import datasets
import pytest
from datasets import Features, List, Value

from tests.conftest import DATA

S, I = Value("string"), Value("int64")


@dataclass
class Task:
    folder: str
    scored: str  # the split a run scores
    sizes: dict  # split -> rows
    features: Features  # in the hub's column order (nested order included)
    get: Callable  # row -> (choice texts, gold position)
    put: Callable  # (row, choice texts, gold position) -> row
    check: Callable  # row -> None, asserts the per-row rules
    id_key: str | None = None


def _piqa_check(r):
    assert r["label"] in (0, 1)


def _wino_check(r):
    assert r["answer"] in ("1", "2")
    assert r["sentence"].count("_") == 1 and r["sentence"].index("_") > 0, r["sentence"]


def _csqa_check(r):
    assert re.fullmatch(r"[0-9a-f]{32}", r["id"]), r["id"]
    assert r["choices"]["label"] == list("ABCDE") and len(r["choices"]["text"]) == 5
    assert r["answerKey"] in "ABCDE" and len(r["answerKey"]) == 1


def _obqa_check(r):
    assert re.fullmatch(r"\d+-\d+|\d+", r["id"]), r["id"]
    assert r["choices"]["label"] == list("ABCD") and len(r["choices"]["text"]) == 4
    assert r["answerKey"] in "ABCD" and len(r["answerKey"]) == 1


def _siqa_check(r):
    assert r["label"] in ("1", "2", "3")


def _boolq_check(r):
    assert r["label"] in (0, 1)
    q = r["question"]
    assert q == q.lower() and not q.endswith("?") and q.strip() == q, q
    assert 2 <= r["passage"].count(". ") + 1 <= 6, r["passage"]


def _with(row, **kw):
    return {**row, **kw}


TASKS = {
    "piqa": Task(
        "piqa", "validation", {"validation": 64, "train": 8},
        Features({"goal": S, "sol1": S, "sol2": S, "label": I}),
        lambda r: ([r["sol1"], r["sol2"]], r["label"]),
        lambda r, t, g: _with(r, sol1=t[0], sol2=t[1], label=g), _piqa_check),
    "winogrande": Task(
        "winogrande", "validation", {"validation": 64, "train": 8},
        Features({"sentence": S, "option1": S, "option2": S, "answer": S}),
        lambda r: ([r["option1"], r["option2"]], int(r["answer"]) - 1),
        lambda r, t, g: _with(r, option1=t[0], option2=t[1], answer=str(g + 1)), _wino_check),
    "commonsense_qa": Task(
        "commonsense_qa", "validation", {"validation": 60, "train": 8},
        Features({"id": S, "question": S, "question_concept": S, "choices": {"label": List(S), "text": List(S)},
                  "answerKey": S}),
        lambda r: (r["choices"]["text"], "ABCDE".index(r["answerKey"])),
        lambda r, t, g: _with(r, choices={"label": list("ABCDE"), "text": t}, answerKey="ABCDE"[g]),
        _csqa_check, id_key="id"),
    "openbookqa": Task(
        "openbookqa", "test", {"test": 60, "train": 8},
        Features({"id": S, "question_stem": S, "choices": {"text": List(S), "label": List(S)}, "answerKey": S}),
        lambda r: (r["choices"]["text"], "ABCD".index(r["answerKey"])),
        lambda r, t, g: _with(r, choices={"text": t, "label": list("ABCD")}, answerKey="ABCD"[g]),
        _obqa_check, id_key="id"),
    "social_iqa": Task(
        "social_iqa", "validation", {"validation": 60, "train": 8},
        Features({"context": S, "question": S, "answerA": S, "answerB": S, "answerC": S, "label": S}),
        lambda r: ([r["answerA"], r["answerB"], r["answerC"]], int(r["label"]) - 1),
        lambda r, t, g: _with(r, answerA=t[0], answerB=t[1], answerC=t[2], label=str(g + 1)), _siqa_check),
    # BoolQ's choices are lm-eval's fixed "no"/"yes": position and length rank are both the label.
    "boolq": Task(
        "boolq", "validation", {"validation": 40, "train": 8},
        Features({"question": S, "passage": S, "idx": I, "label": I}),
        lambda r: (["no", "yes"], r["label"]),
        lambda r, t, g: _with(r, label=g), _boolq_check, id_key="idx"),
}


def load(path, cache_dir):
    return datasets.load_dataset("json", data_files={"x": str(path)}, cache_dir=str(cache_dir))["x"]


def length_rank(texts, gold):
    """How many choices sort before the gold by (character length, position): 0 = shortest."""
    def key(i):
        return len(texts[i]), i
    return sum(key(i) < key(gold) for i in range(len(texts)))


def tells(task, ds):
    """What a no-skill strategy could exploit in a scored split: uneven gold positions or gold length ranks, or a
    "pick the longest"/"pick the shortest" score away from chance. Empty when there is none."""
    pairs = [task.get(r) for r in ds]
    n = len(pairs[0][0])
    found = []
    if len(ds) % n:
        return [f"{len(ds)} rows cannot split evenly over {n} choices"]
    even = {i: len(ds) // n for i in range(n)}
    pos = Counter(g for _, g in pairs)
    if {i: pos[i] for i in range(n)} != even:
        found.append(f"gold positions {dict(sorted(pos.items()))}")
    rank = Counter(length_rank(t, g) for t, g in pairs)
    if {i: rank[i] for i in range(n)} != even:
        found.append(f"gold length ranks {dict(sorted(rank.items()))}")
    for name, pick in [("longest", max), ("shortest", min)]:
        hits = sum(pick(range(len(t)), key=lambda i: (len(t[i]), i)) == g for t, g in pairs)
        if hits * n != len(ds):
            found.append(f"'always the {name}' scores {hits}/{len(ds)}")
    return found


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hf_cache")


@pytest.mark.parametrize("name", TASKS)
def test_schema_and_rows(name, cache):
    task = TASKS[name]
    for split, size in task.sizes.items():
        path = DATA / task.folder / f"{split}.jsonl"
        ds = load(path, cache)
        assert len(ds) == size, (path, len(ds))
        assert ds.column_names == list(task.features), (path, ds.column_names)
        assert ds.features == task.features, (path, ds.features)
        if "choices" in task.features:
            assert list(ds.features["choices"]) == list(task.features["choices"]), "nested key order"
        for line in path.read_text(encoding="utf-8").splitlines():  # key order as written, beyond what arrow keeps
            assert list(json.loads(line)) == list(task.features)
        for r in ds:
            task.check(r)
            texts, gold = task.get(r)
            assert 0 <= gold < len(texts) and all(t.strip() for t in texts), r
            assert len(set(texts)) == len(texts), f"duplicate choices: {r}"
        if task.id_key:
            ids = ds[task.id_key]
            assert len(set(ids)) == len(ids), f"{path}: duplicate {task.id_key}"
            if task.id_key == "idx":
                assert sorted(ids) == list(range(size)), "idx is 0-based and unique within the split"


@pytest.mark.parametrize("name", TASKS)
def test_scored_split_has_no_tell(name, cache):
    task = TASKS[name]
    path = DATA / task.folder / f"{task.scored}.jsonl"
    found = tells(task, load(path, cache))
    assert not found, f"{path.relative_to(DATA)}: {found}"


@pytest.mark.parametrize("name", TASKS)
def test_a_skewed_row_is_caught(name, cache, tmp_path):
    """The check is not vacuous: moving one gold to another position, or making one gold the longest choice, is
    reported (written to a file and loaded back the same way)."""
    task = TASKS[name]
    rows = [json.loads(line) for line in (DATA / task.folder / f"{task.scored}.jsonl").read_text("utf-8").splitlines()]
    texts, gold = task.get(rows[0])
    n = len(texts)
    moved = list(texts)
    new = (gold + 1) % n
    moved[gold], moved[new] = moved[new], moved[gold]
    skews = [("position", 0, task.put(rows[0], moved, new))]
    if name != "boolq":  # BoolQ's choice texts are fixed
        i = next(i for i, r in enumerate(rows) if length_rank(*task.get(r)) < n - 1)
        t, g = task.get(rows[i])
        longer = list(t)
        longer[g] = t[g] + " " + "x" * max(map(len, t))
        skews.append(("length", i, task.put(rows[i], longer, g)))
    for what, i, row in skews:
        path = tmp_path / f"{what}.jsonl"
        skewed = rows[:i] + [row] + rows[i + 1:]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in skewed), encoding="utf-8")
        found = tells(task, load(path, cache))
        assert any(f.startswith(f"gold {what}") for f in found), f"a {what} skew went unnoticed: {found}"
