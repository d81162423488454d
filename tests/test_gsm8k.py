"""GSM8K and the generative form (nanoeval/generative.py): lm-eval 0.4.13's regex filter and exact_match on
hand-worked cases, the requests of both formulations against lm-eval's own prompts for the fixture rows (whatever the
shards or selection), the extraction against lm-eval's own on its own responses, a run on the tiny model, `nanoeval
rescore` (the run's numbers again, another extractor, a regex of one's own) and bad options in one line.

tests/data/gsm8k/lmeval_0.4.13_smollm2.jsonl is lm-eval's output on the fixture (tests/data/gsm8k/LMEVAL.md)."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import ConfigError
from nanoeval.data import sampled_rows
from nanoeval.generative import ExactMatch, Extractor, judge
from nanoeval.lookahead import case_examples
from tests.conftest import DATA, ROOT, read_jsonl
from tests.test_arc import load  # a config dict -> its TaskConfig

GSM8K = BENCHMARKS["gsm8k"]
FIXTURE = DATA / "gsm8k"
REFERENCE = read_jsonl(FIXTURE / "lmeval_0.4.13_smollm2.jsonl")
TEST_ROWS = read_jsonl(FIXTURE / "test.jsonl")


def gsm8k_config(model, report_dir, dataset: dict | None = None, **scoring) -> dict:
    return {"task": "gsm8k", "name": "gsm8k", "model": {"path": str(model)}, "report_dir": str(report_dir),
            "dataset": {"data_files": {"test": str(FIXTURE / "test.jsonl"), "train": str(FIXTURE / "train.jsonl")},
                        **(dataset or {})},
            "scoring": {"num_shards": 2, **scoring}}


class Recorder:
    """An engine that keeps the requests it is handed: canned responses, a log-likelihood of -1 per continuation."""

    def __init__(self):
        self.gen, self.ll, self.max_new_tokens, self.noted = [], [], None, None

    def generate(self, requests, max_new_tokens):
        self.gen += requests
        self.max_new_tokens = max_new_tokens
        return ["#### 1" for _ in requests]

    def loglikelihoods(self, requests):
        self.ll += requests
        return [[-1.0] for _ in requests]

    def generate_scored(self, requests, max_new_tokens, gold):
        return self.generate(requests, max_new_tokens), self.loglikelihoods(gold)

    def token_counts(self, requests):
        return [[1] for _ in requests]


# ------------------------------------------------------------------------------------------------ hand-worked
def test_the_regex_filter_as_lm_eval_applies_it():
    """filters/extraction.py RegexFilter then take_first: findall, the group_select-th match, the first non-empty
    group of a tuple match, stripped; no match (or a response that is not text): the fallback."""
    strict, flexible = Extractor(r"#### (\-?[0-9\.\,]+)"), Extractor(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
    assert strict("So 6 * 4 = 24.\n#### 24") == "24"
    assert strict("#### -7 and later #### 9") == "-7"                  # take_first of the matches: the first
    assert strict("#### 1,234.50") == "1,234.50"
    assert strict("####24") == strict("the answer is 24") == strict(None) == "[invalid]"
    # two groups: findall gives ('', '3'), ('$4.50,', ''), ('', '7'); the last match's non-empty group
    assert flexible("3 apples and $4.50, total 7") == "7"
    assert Extractor(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")("3 apples and $4.50, total 7") == "3"
    assert flexible("It costs $4.50, I think") == "$4.50,"
    assert flexible("The answer is 12.") == "12."
    assert Extractor("(x)?(y)?")("zz") == "[invalid]"                   # a tuple with no non-empty group
    assert Extractor("(x)?(y)?", fallback="none")("zz") == "none"
    assert Extractor(r"answer:(.*)")("answer:   42  ") == "42"          # stripped
    with pytest.raises(ValueError, match="group_select 2"):             # lm-eval: an IndexError
        Extractor(r"\d", group_select=2)("1 2")


def test_exact_match_as_lm_eval_computes_it():
    """api/metrics.py exact_match_hf_evaluate on one pair: regexes_to_ignore in order on both sides, then case,
    punctuation, digits; numpy's strings drop trailing NULs."""
    gsm8k = ExactMatch(ignore_case=True, regexes_to_ignore=(",", "\\$", "(?s).*#### ", "\\.$"))
    gold = "She has 2 * 617 = <<2*617=1234>>1234 coins.\n#### 1234"
    assert gsm8k("1,234", gold) and gsm8k("$1,234.", gold) and gsm8k("1234", "1234")
    assert not gsm8k("1234.0", gold) and not gsm8k("12345", gold) and not gsm8k("[invalid]", gold)
    assert gsm8k("so #### 1,234", gold)                                 # "(?s).*#### " strips the prediction too
    assert ExactMatch(regexes_to_ignore=("b", "ab"))("ab", "a")          # "ab" -> "a" -> "a"
    assert not ExactMatch(regexes_to_ignore=("ab", "b"))("ab", "a")      # "ab" -> "" -> "": the order counts
    assert ExactMatch(ignore_case=True)("ABC", "abc") and not ExactMatch()("ABC", "abc")
    assert ExactMatch(ignore_punctuation=True)("a.b!", "ab")
    assert not ExactMatch(ignore_punctuation=True)("don’t", "dont")      # ’ is not in string.punctuation
    assert ExactMatch(ignore_numbers=True)("a1b2", "ab")
    assert ExactMatch()("12\0", "12")                                    # numpy drops the trailing NUL
    assert not ExactMatch(regexes_to_ignore=("\\.$",))("12.\0", "12")    # ... after re.sub, where $ missed it


def test_judge_gives_each_extractor_its_answer_and_the_headline_pred():
    prompts = GSM8K.options.prompts
    p = prompts["standard"]
    r = judge("standard", p.extractors, p.headline, p.match, "3 + 4 = 7, so 8.", "3 + 4 = 7\n#### 8")
    assert r["extracted"] == {"strict-match": "[invalid]", "flexible-extract": "8."}
    assert r["exact_match"] == {"strict-match": False, "flexible-extract": True}
    assert (r["pred"], r["correct"], r["parse_failed"], r["extractor"]) == (None, False, True, "strict-match")
    c = prompts["cot"]
    r = judge("cot", c.extractors, c.headline, c.match, "3 + 5 = 8. The answer is 8.\n\n", "8")
    assert (r["pred"], r["correct"], r["parse_failed"]) == ("8", True, False)


# ------------------------------------------------------------------------------------------------ against lm-eval
VARIANTS = {"standard": ({}, {}), "cot": ({"formulation": "cot"}, {}),
            "standard_fewshot_from_test": ({}, {"fewshot_split": "test"})}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("select", [{"num_shards": 1}, {"num_shards": 3, "limit": 2}, {"num_shards": 2, "sample": 7}],
                         ids=["whole", "3shards-limit2", "2shards-sample7"])
def test_requests_are_lm_evals_own_per_row(tmp_path, variant, select):
    """Each row's prompt (its shots: lm-eval's sampler, seed 1234, row i's the i-th draw; cot: the fixed
    exemplars), stop sequences, gold and gold continuation, as lm-eval 0.4.13 logged them for the same fixture
    rows, whichever shard, limit or sample selects the row."""
    scoring, dataset = VARIANTS[variant]
    dataset = {**dataset, **{k: v for k, v in select.items() if k != "num_shards"}}
    cfg = load(tmp_path, gsm8k_config("m", tmp_path / "r", dataset, **scoring, num_shards=select["num_shards"]))
    theirs = {r["doc_index"]: r for r in REFERENCE if r["variant"] == variant}
    assert len(theirs) == len(TEST_ROWS) == 16
    seen = []
    for case in GSM8K.cases(cfg, ROOT):
        data = GSM8K.load(cfg, case, ROOT)
        engine = Recorder()
        records = GSM8K.score(engine, cfg, case_examples(cfg, data), data.context)  # dataset.limit: the runner's
        assert engine.max_new_tokens == 256 and len(engine.gen) == len(engine.ll) == len(records)
        for record, gen, ll in zip(records, engine.gen, engine.ll):
            ref = theirs[int(record["id"])]
            assert gen.text == ref["prompt"], (variant, record["id"])
            assert list(gen.until) == ref["until"] and gen.chat is None
            assert (ll.context, ll.continuations) == (ref["prompt"], [" " + ref["target"]])
            assert record["gold"] == ref["target"] and record["formulation"] == VARIANTS[variant][0].get(
                "formulation", "standard")
            seen.append(int(record["id"]))
    expected = sorted(sampled_rows(16, 7)) if "sample" in select else list(range(6 if "limit" in select else 16))
    assert sorted(seen) == expected  # 3 shards of at most 2 rows: rows 0-5


def test_extraction_and_exact_match_are_lm_evals_on_its_own_responses():
    """lm-eval's responses (SmolLM2-135M-Instruct on the fixture), extracted and matched again here: every
    filtered answer and every per-row exact_match is lm-eval's."""
    prompts = GSM8K.options.prompts
    for r in REFERENCE:
        p = prompts[r["formulation"]]
        ours = judge(r["formulation"], p.extractors, p.headline, p.match, r["response"], r["target"])
        assert ours["extracted"] == r["extracted"], (r["variant"], r["doc_index"])
        assert ours["exact_match"] == {k: bool(v) for k, v in r["exact_match"].items()}, (r["variant"], r["doc_index"])
    # what the file exercises (else this test would prove little): answers found and missed, matches and misses
    extracted = [v for r in REFERENCE for v in r["extracted"].values()]
    matches = [v for r in REFERENCE for v in r["exact_match"].values()]
    assert "[invalid]" in extracted and any(v != "[invalid]" for v in extracted)
    assert 0 in matches and any(r["extracted"]["strict-match"] != "[invalid]" for r in REFERENCE)


# ------------------------------------------------------------------------------------------------ runs
def run_rescore(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nanoeval.cli", "rescore", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


def first_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


def test_a_run_writes_responses_extractions_bpb_and_rescore_reproduces_it(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "r"
    cfg = gsm8k_config(tiny_lm, out, num_fewshot=2, max_new_tokens=12)
    result = run_evals(cfg)
    assert result.ret == 0, result.stdout.str()
    summary = json.loads((out / "summary.json").read_text())
    preds = read_jsonl(out / "predictions.jsonl")
    assert sorted(int(r["id"]) for r in preds) == list(range(16))
    assert summary["headline"] == "exact_match,strict-match" and summary["chance"] == 0.0
    assert set(summary["metrics"]) == {"exact_match,strict-match", "exact_match,flexible-extract", "bpb"}
    assert summary["recipe"]["until"] == ["Question:", "</s>", "<|im_end|>"]
    assert summary["recipe"]["max_new_tokens"] == 12
    assert summary["counts"]["generations"] == 16
    golds = {str(i): row["answer"] for i, row in enumerate(TEST_ROWS)}
    for name, pattern, pick in (("strict-match", r"#### (\-?[0-9\.\,]+)", 0),
                                ("flexible-extract", r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)):
        found = []
        for r in preds:  # lm-eval's filter written out again
            m = re.findall(pattern, r["response"])
            value = ([g for g in m[pick] if g] or ["[invalid]"])[0] if m and isinstance(m[pick], tuple) else \
                m[pick] if m else "[invalid]"
            assert r["extracted"][name] == value.strip()
            found.append(r["extracted"][name] == "[invalid]")
        assert summary["counts"][f"invalid,{name}"] == sum(found)
        assert summary["metrics"][f"exact_match,{name}"] == pytest.approx(
            sum(r["exact_match"][name] for r in preds) / 16)
    assert summary["counts"]["fallback_rows"] == summary["counts"]["invalid,strict-match"]
    for r in preds:
        assert r["gold"] == golds[r["id"]]
        assert r["pred"] == (None if r["parse_failed"] else r["extracted"]["strict-match"])
        assert isinstance(r["response"], str) and len(r["lls"]) == len(r["tokens"]) == 1 and r["tokens"][0] >= 1
        assert r["bpb"] == pytest.approx(-r["lls"][0] / (math.log(2) * len((" " + r["gold"]).encode())))
    assert summary["metrics"]["bpb"] == pytest.approx(sum(r["bpb"] for r in preds) / 16)

    # rescore: the run's numbers from its predictions alone (the benchmark found from the rows' keys)
    res = run_rescore(out / "predictions.jsonl", "--out", tmp_path / "again")
    assert first_line(res).startswith(f"predictions.jsonl: exact_match,strict-match "
                                      f"{100 * summary['metrics']['exact_match,strict-match']:.2f}% over 16 rows")
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["metrics"] == summary["metrics"] and again["headline"] == summary["headline"]

    # ... and on responses written by hand: extractors chosen on the command line
    crafted = tmp_path / "crafted.jsonl"
    for i, r in enumerate(preds):
        n = r["gold"].rsplit("#### ", 1)[1]
        r["response"] = [f"So it is #### {n}", f"The result is {n}.", f"#### {n}9", "no idea"][int(r["id"]) % 4]
    crafted.write_text("".join(json.dumps(r) + "\n" for r in preds))
    assert "exact_match,strict-match 25.00% over 16 rows" in first_line(run_rescore(crafted))           # strict: "#### n" only
    assert "exact_match,flexible-extract 50.00% over 16 rows" in first_line(run_rescore(crafted, "--extractor", "flexible-extract"))
    # lazy, a trailing 9 left out: "#### n9" reads n too
    assert "exact_match,custom 75.00% over 16 rows" in first_line(run_rescore(crafted, "--regex", r"(-?[0-9.]+?)9?$"))
    line = first_line(run_rescore(crafted, "--regex", r"(\d)", "--group-select", "0"))  # the first digit alone
    assert "over 16 rows" in line and "exact_match,custom 0.0000" in line
    res = run_rescore(crafted, "--fallback", "seeded")
    assert res.returncode == 2 and res.stderr.strip() == \
        "nanoeval rescore: --fallback: not an option of gsm8k (it applies to mmmu_pro)", res.stderr

    # max_new_tokens decides records: another value moves the run aside
    cfg["scoring"]["max_new_tokens"] = 8
    result = run_evals(cfg)
    assert result.ret == 0
    assert "fingerprint changed (config settings (scoring.max_new_tokens 12 -> 8)" in \
        result.stdout.str() + result.stderr.str()


def test_bad_options_are_one_line_naming_the_key_before_the_model_loads(run_evals, tiny_lm, tmp_path):
    for scoring, line in [
        ({"until": []}, "scoring.until: expected a non-empty list of non-empty strings (the stop sequences), "
                        "got list []"),
        ({"until": ["Question:", ""]}, "scoring.until: expected a non-empty list of non-empty strings (the stop "
                                       "sequences), got list ['Question:', '']"),
        ({"max_new_tokens": 0}, "scoring.max_new_tokens: expected an integer >= 1, got int 0"),
        ({"formulation": "cot", "num_fewshot": 9}, "scoring.num_fewshot: expected at most 8 (the cot formulation's "
                                                   "fixed exemplars), got int 9"),
        ({"formulation": "letters"}, "scoring.formulation: expected standard or cot, got str 'letters'"),
    ]:
        with pytest.raises(ConfigError) as e:
            load(tmp_path, gsm8k_config("m", tmp_path / "r", **scoring))
        assert str(e.value).endswith(line), str(e.value)
    result = run_evals(gsm8k_config(tiny_lm, tmp_path / "r", until=[]))  # one line, nothing run or written
    assert result.ret == 4 and not (tmp_path / "r").exists()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].endswith("config.yaml: scoring.until: expected a non-empty list of "
                                                   "non-empty strings (the stop sequences), got list []"), errors


def test_until_and_max_new_tokens_are_in_the_recipe_and_the_config_hash(tmp_path):
    base = load(tmp_path, gsm8k_config("m", tmp_path / "r"))
    assert (base.scoring.num_fewshot, base.scoring.max_new_tokens, base.scoring.until) == (
        5, 256, ["Question:", "</s>", "<|im_end|>"])
    hashes = {base.config_hash()}
    for scoring in ({"until": ["Question:"]}, {"max_new_tokens": 64}, {"formulation": "cot"}):
        cfg = load(tmp_path, gsm8k_config("m", tmp_path / "r", **scoring))
        hashes.add(cfg.config_hash())
        recipe = GSM8K.recipe(cfg, ROOT)
        assert recipe["until"] == cfg.scoring.until and recipe["max_new_tokens"] == cfg.scoring.max_new_tokens
    assert len(hashes) == 4
    cot = load(tmp_path, gsm8k_config("m", tmp_path / "r", formulation="cot"))
    assert (cot.scoring.num_fewshot, cot.scoring.until) == (8, ["Q:", "</s>", "<|im_end|>"])
    assert not cot.scoring.needs_fewshot_split() and base.scoring.needs_fewshot_split()
    assert load(tmp_path, gsm8k_config("m", tmp_path / "r", num_shards=4)).config_hash() == base.config_hash()


@pytest.mark.slow
def test_real_smollm2_generates_what_lm_eval_generated(run_evals, tmp_path):
    """The shipped config's model on the fixture, both formulations as one suite (rows 0 and 1: up to 256 tokens
    each on a CPU): every prompt, response (greedy, cut at the stop sequences), extracted answer and exact match is
    lm-eval's own (tests/data/gsm8k/LMEVAL.md: all 48 rows of the three variants agreed)."""
    model = yaml.safe_load((ROOT / "configs" / "gsm8k_smollm2.yaml").read_text())["model"]
    tasks = [{**{k: v for k, v in gsm8k_config("m", "r", {**dataset, "limit": 1}, **scoring).items()
                 if k not in ("model", "report_dir")}, "name": variant}
             for variant, (scoring, dataset) in VARIANTS.items() if variant != "standard_fewshot_from_test"]
    out = tmp_path / "real"
    suite = {"suite": "gsm8k", "report_dir": str(out), "model": model, "report": {"prompts": True}, "tasks": tasks,
             "engine": {"token_budget": 16384}}  # both rows in one batch, as lm-eval batched them
    result = run_evals(suite, suite=True)
    assert result.ret == 0, result.stdout.str()
    for variant in ("standard", "cot"):
        theirs = {str(r["doc_index"]): r for r in REFERENCE if r["variant"] == variant}
        ours = read_jsonl(out / variant / "predictions.jsonl")
        assert sorted(r["id"] for r in ours) == ["0", "1"]
        for r in ours:
            ref = theirs[r["id"]]
            assert (r["prompt"], r["response"], r["gold"]) == (ref["prompt"], ref["response"], ref["target"]), r["id"]
            assert r["extracted"] == ref["extracted"] and r["exact_match"] == {
                k: bool(v) for k, v in ref["exact_match"].items()}


def test_the_shipped_config_switches_to_lm_evals_cot_recipe_with_one_key(tmp_path):
    """configs/gsm8k_smollm2.yaml states no value of one formulation that would override the other's: setting
    `formulation: cot` gives gsm8k-cot.yaml's 8 shots and stop strings, `standard` gsm8k.yaml's 5."""
    import yaml

    from nanoeval.config_files import load_task

    raw = yaml.safe_load((ROOT / "configs" / "gsm8k_smollm2.yaml").read_text())
    got = {}
    for formulation in ("standard", "cot"):
        raw["scoring"]["formulation"] = formulation
        (tmp_path / f"{formulation}.yaml").write_text(yaml.safe_dump(raw))
        s = load_task(tmp_path / f"{formulation}.yaml").scoring
        got[formulation] = (s.num_fewshot, tuple(s.until), s.max_new_tokens)
    assert got == {"standard": (5, ("Question:", "</s>", "<|im_end|>"), 256),  # gsm8k.yaml
                   "cot": (8, ("Q:", "</s>", "<|im_end|>"), 256)}               # gsm8k-cot.yaml
