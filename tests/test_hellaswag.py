"""HellaSwag: lm-eval's preprocessing on the edge cases, both normalisations recomputed from records, shards,
and the shared-context path equal to the naive one end to end."""
from __future__ import annotations

import json

import pytest

from nanoeval.benchmarks.hellaswag import context as hellaswag_context, preprocess as hellaswag_preprocess
from tests.conftest import DATA, read_jsonl

VALIDATION = DATA / "hellaswag" / "validation.jsonl"


@pytest.mark.parametrize("raw,expected", [
    ("  Then he mixes it. [title] Add sugar.", "Then he mixes it.. Add sugar."),
    ("walks away [title]", "walks away. "),                       # no final strip: trailing '. ' stays
    ("[header] How to bake [title] Preheat the oven.", " How to bake. Preheat the oven."),
    ("eats the cake [step]", "eats the cake "),                   # tag at the end leaves its space
    ("a  b   c", "a b  c"),                                       # one left-to-right pass
    ("[substeps] stir [sub] well", " stir well"),                 # non-greedy tag removal, then '  ' -> ' '
    ("très bien — café", "très bien — café"),
])
def test_preprocess_edge_cases(raw, expected):
    assert hellaswag_preprocess(raw) == expected


def test_context_capitalizes_ctx_b_and_lowercases_the_rest():
    assert hellaswag_context("Baking", "He cracks eggs.", "then HE Stirs") == "Baking: He cracks eggs. Then he stirs"
    assert hellaswag_context("Baking", "He cracks eggs.", "") == "Baking: He cracks eggs."  # trailing space stripped


def test_fixture_has_the_hard_cases():
    rows = read_jsonl(VALIDATION)
    endings = [e for r in rows for e in r["endings"]]
    assert len(rows) >= 200 and {r["label"] for r in rows} == {"0", "1", "2", "3"}
    assert any(r["ctx_b"] == "" for r in rows) and any(r["ctx_b"][:1].islower() for r in rows)
    assert any(e.endswith(" [title]") for e in endings) and any("[header]" in e for e in endings)
    assert any("  " in e for e in endings) and any(not e.isascii() for e in endings)
    lengths = sorted(len(e) for e in endings)
    assert lengths[-1] > 5 * lengths[0]


def config(model, out, **scoring):
    return {"task": "hellaswag", "model": {"path": str(model)}, "report_dir": str(out),
            "dataset": {"data_files": {"validation": str(VALIDATION), "train": str(DATA / "hellaswag" / "train.jsonl")},
                        "limit": 5},
            "scoring": {"num_shards": 3, **scoring}}


def test_end_to_end_both_normalisations(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "hs"
    result = run_evals(config(tiny_lm, out), "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_hellaswag*shard0of3*PASSED*", "*shard2of3*PASSED*"])
    preds = read_jsonl(out / "predictions.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    rows = {str(r["ind"]): r for r in read_jsonl(VALIDATION)}
    assert len(preds) == 15 and summary["headline"] == "acc_norm"
    for p in preds:
        endings = [hellaswag_preprocess(e) for e in rows[p["id"]]["endings"]]
        norm = [ll / len(e) for ll, e in zip(p["lls"], endings)]
        assert p["pred"] == max(range(4), key=p["lls"].__getitem__)
        assert p["pred_norm"] == max(range(4), key=norm.__getitem__)
        assert p["gold"] == int(rows[p["id"]]["label"]) and p["correct_norm"] == (p["pred_norm"] == p["gold"])
    assert summary["metrics"]["acc"] == pytest.approx(sum(p["correct"] for p in preds) / 15)
    assert summary["metrics"]["acc_norm"] == pytest.approx(sum(p["correct_norm"] for p in preds) / 15)
    assert summary["stderr"]["acc_norm"] > 0
    # shards: row i -> shard i % 3, first 5 of each
    ids = [str(r["ind"]) for r in read_jsonl(VALIDATION)]
    expected = [i for s in range(3) for i in [x for k, x in enumerate(ids) if k % 3 == s][:5]]
    assert [p["id"] for p in preds] == expected


def test_shared_context_equals_naive_and_batch_size_is_irrelevant(run_evals, tiny_lm, tmp_path):
    runs = {}
    for name, engine in [("shared", {"share_context": True}), ("naive", {"share_context": False}),
                         ("bs1", {"batch_size": 1})]:
        cfg = config(tiny_lm, tmp_path / name)
        cfg["engine"] = engine
        assert run_evals(cfg).ret == 0
        runs[name] = read_jsonl(tmp_path / name / "predictions.jsonl")
    for other in ("naive", "bs1"):
        assert [(r["pred"], r["pred_norm"]) for r in runs["shared"]] == \
            [(r["pred"], r["pred_norm"]) for r in runs[other]]
        for a, b in zip(runs["shared"], runs[other]):
            assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)


def test_k_selects_one_shard_and_fewshot_is_seeded(run_evals, tiny_lm, tmp_path):
    result = run_evals(config(tiny_lm, tmp_path / "a", num_fewshot=2), "-k", "shard1of3", "-v")
    result.stdout.fnmatch_lines(["*shard1of3*PASSED*", "*1 passed, * deselected*"])
    assert run_evals(config(tiny_lm, tmp_path / "b", num_fewshot=2), "-k", "shard1of3").ret == 0
    a, b = (read_jsonl(tmp_path / x / "predictions.jsonl") for x in "ab")
    assert a == b
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["recipe"]["num_fewshot"] == 2 and "random.Random" in summary["recipe"]["fewshot_source"]


def test_bad_label_names_the_row_or_is_skipped(run_evals, tiny_lm, tmp_path):
    rows = read_jsonl(VALIDATION)[:6]
    rows[3]["label"] = "4"
    rows[4]["endings"] = rows[4]["endings"][:3]
    rows[5]["label"] = "x"  # named as written, not as the index a letter would be (23)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config(tiny_lm, tmp_path / "r")
    cfg["dataset"]["data_files"] = {"validation": str(bad)}
    cfg["scoring"]["num_shards"] = 1
    result = run_evals(cfg)
    assert result.ret == 1
    assert f"{bad}:4: label: '4' is not one of the labels ['0', '1', '2', '3']" in result.stdout.str()
    assert f"{bad}:6: label: 'x' is not one of the labels" in result.stdout.str()
    cfg["dataset"]["on_bad_row"] = "skip"
    assert run_evals(cfg).ret == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["counts"]["skipped_rows"] == 3 and summary["counts"]["examples"] == 3
    assert f"{bad}:5: choices: expected a list of 4 strings" in summary["skipped_rows"][1]["error"]
