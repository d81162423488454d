"""A served model (issue 27): answers that are not the API's format, and what the fingerprint sees of the model
behind the name. Against tests/openai_server.py: one server for every broken answer (the mode is in its base URL),
and servers restarted with other weights for the identity.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nanoeval.config_files import load_task
from nanoeval.engine import GenRequest, LLRequest
from nanoeval.engine.served import ServedEngine, ServerError, served_identity
from nanoeval.benchmark import TaskError
from tests.conftest import ROOT, build_tiny_lm, mmlu_tiny_config, read_jsonl
from tests.test_served import openai_server, predictions, served, server_log


@pytest.fixture(scope="module")
def server(tiny_lm) -> str:
    """tests/openai_server.py: http://127.0.0.1:PORT (+ /MODE/v1 picks a broken answer, /v1 a good one)."""
    with openai_server(tiny_lm) as (url, _):
        yield url.removesuffix("/v1")


def served_config(model: Path, out: Path, url: str, strategy: str = "rank_ll", chat: bool = False,
                  subjects: list[str] | None = None) -> dict:
    cfg = mmlu_tiny_config(model, out, scoring={"strategy": strategy})
    cfg["model"] = served(cfg["model"], url, "tiny-served", chat_template=chat, concurrency=2)
    if subjects:
        cfg["dataset"]["subjects"] = subjects
    return cfg


# ------------------------------------------------------------------------------------ answers that are not the API's
ANSWERS = [  # the test server's mode (its base URL), the strategy that meets it, chat, endpoint, what is wrong
    ("html", "gen_letter", False, "completions", "the answer is not JSON (Content-Type text/html: '<!DOCTYPE html> "
                                                 "<html><head><title>Sign in</title>"),
    ("text", "gen_letter", False, "completions", "the answer is not JSON (Content-Type text/plain: 'upstream ok')"),
    ("json-list", "gen_letter", False, "completions", "the answer is a list, expected a JSON object"),
    ("choices-string", "gen_letter", False, "completions", "`choices` is a string (' A'), expected a list of objects"),
    ("message-null", "gen_letter", True, "chat/completions", "`choices[0].message` is null, expected an object"),
    ("no-text", "gen_letter", False, "completions", "`choices[0].text` is missing, expected a string"),
    ("positive-logprob", "rank_ll", False, "completions", "is a number <= 0"),
    ("duplicate-index", "rank_ll", False, "completions", "choice indices [0, 0, 0, 0]: expected one choice per "
                                                         "prompt, indices 0..3 each once"),
]


def served_engine(model: Path, tmp_path: Path, url: str, chat: bool) -> ServedEngine:
    """The served engine a run of `served_config` would use, in this process (a config loaded from its YAML)."""
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(served_config(model, tmp_path / "out", url, chat=chat)))
    cfg = load_task(path)
    return ServedEngine(cfg.model, cfg.engine, ROOT)


@pytest.mark.parametrize("mode,strategy,chat,endpoint,problem", ANSWERS, ids=[a[0] for a in ANSWERS])
def test_an_answer_that_is_not_the_apis_format_is_a_task_error_naming_the_url(tiny_lm, tmp_path, server, mode,
                                                                              strategy, chat, endpoint, problem):
    """Each broken 200 answer, through the real client against the test server: one line naming the URL and what
    was wrong, as a TaskError (every request would get one: the task stops once), never an AttributeError, an
    empty response or a wrong score."""
    engine = served_engine(tiny_lm, tmp_path, f"{server}/{mode}/v1", chat)
    with pytest.raises(TaskError) as e:
        if strategy == "rank_ll":
            engine.loglikelihoods([LLRequest("Question: 1 + 1 =\nAnswer:", [" A", " B", " C", " D"])])
        else:
            engine.generate([GenRequest("Question: 1 + 1 =\nAnswer:")], 4)
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"{server}/{mode}/v1/{endpoint}: ") and problem in line, line
    if mode == "positive-logprob":  # the offending value and where it is
        assert "`choices[0].logprobs.token_logprobs[" in line, line


@pytest.mark.parametrize("mode,strategy,chat", [("html", "gen_letter", False), ("duplicate-index", "rank_ll", False)])
def test_a_broken_answer_fails_the_run_in_one_line_and_journals_nothing(run_evals, tiny_lm, tmp_path, server, mode,
                                                                        strategy, chat):
    """End to end (`pytest evals/`): the first case fails with the one line, the task's other cases are skipped,
    nothing is journaled."""
    out = tmp_path / "out"
    result = run_evals(served_config(tiny_lm, out, f"{server}/{mode}/v1", strategy, chat))
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, text
    assert result.parseoutcomes()["failed"] == 1 and "its other cases are skipped" in text, text
    problem = next(a[4] for a in ANSWERS if a[0] == mode)
    assert any(f"{server}/{mode}/v1/completions: " in ln and problem in ln for ln in text.splitlines()), text
    assert "Traceback" not in text and "AttributeError" not in text
    assert not [r for p in (out / "journals").glob("*.jsonl") for r in read_jsonl(p) if "id" in r]


MODEL_LISTS = [
    ("models-html", "the answer is not JSON (Content-Type text/html: '<!DOCTYPE html>"),
    ("models-list", "the answer is a list, expected a JSON object"),
    ("models-no-data", "`data` is missing, expected a list of models, each with an `id`"),
]


@pytest.mark.parametrize("mode,problem", MODEL_LISTS, ids=[m[0] for m in MODEL_LISTS])
def test_a_models_list_that_is_not_the_apis_format_is_one_line(tiny_lm, tmp_path, server, mode, problem):
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(served_config(tiny_lm, tmp_path / "out", f"{server}/{mode}/v1")))
    with pytest.raises(ServerError) as e:
        served_identity(load_task(path).model)
    assert str(e.value).startswith(f"model.base_url: {server}/{mode}/v1/models: {problem}"), str(e.value)


def test_a_broken_models_list_stops_the_run_before_anything_runs(run_evals, tiny_lm, tmp_path, server):
    out = tmp_path / "out"
    result = run_evals(served_config(tiny_lm, out, f"{server}/models-html/v1"))
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4, text
    assert f"model.base_url: {server}/models-html/v1/models: {MODEL_LISTS[0][1]}" in text, text
    assert "Traceback" not in text and not out.exists()


# --------------------------------------------------------------------------- what the fingerprint sees of the model
@pytest.mark.parametrize("first,second,moved,identity", [
    (["--created", "1700000000"], ["--created", "1700003600"], True, {"created": 1700003600}),
    (["--root", "", "--created", ""], ["--root", "", "--created", ""], False, {"root": None, "created": None}),
], ids=["a-fixed-created-changes", "no-root-no-created"])
def test_weights_swapped_behind_the_same_name(run_evals, tiny_lm, tmp_path, first, second, moved, identity):
    """The weights in the served folder are replaced and the server restarted under the same name. What /v1/models
    then reports decides: a new `root` or a new fixed `created` moves the old run aside (fingerprint changed, model
    part) and every example is scored again; `created` that is the time of the request (vLLM) is left out, and a
    server that reports neither root nor created is known by its name alone: the swap cannot be seen, the run
    resumes from the old journals (README: what the fingerprint of a served model can and cannot see)."""
    weights, out, log = tmp_path / "weights", tmp_path / "out", tmp_path / "second.jsonl"
    build_tiny_lm(weights, seed=0)
    with openai_server(weights, *first) as (url, _):
        result = run_evals(served_config(tiny_lm, out, url, subjects=["anatomy"]))
    assert result.ret == 0, result.stdout.str()
    before = predictions(out)
    build_tiny_lm(weights, seed=1)  # retrained into the same folder
    with openai_server(weights, *second, "--log", str(log)) as (url, _):
        result = run_evals(served_config(tiny_lm, out, url, subjects=["anatomy"]))
    text = result.stdout.str()
    assert result.ret == 0, text
    after = predictions(out)
    assert [r["id"] for r in after] == [r["id"] for r in before]
    if moved:
        result.stdout.fnmatch_lines(["nanoeval: mmlu: fingerprint changed (model files (*): * -> *); previous run "
                                     "moved to *"])
        assert len(server_log(log)) == 1 + len(before)  # the probe, then every question again
        assert all(a["lls"] != b["lls"] for a, b in zip(after, before))  # the new weights' scores
    else:
        assert "fingerprint changed" not in text and not (out / "previous").exists()
        assert len(server_log(log)) == 0 and after == before  # nothing sent: the old journals answer
    run = json.loads((out / "run.json").read_text())  # what was seen of the model
    assert {k: run["model_identity"].get(k, "absent") for k in identity} == identity


@pytest.mark.parametrize("args,identity", [
    (["--root", "/models/v2"], {"root": "/models/v2", "created": None}),
    (["--created", "now"], {"created": None}),
    (["--created", "1700000000", "--root", "tiny-served"], {"created": 1700000000, "root": None}),
], ids=["root", "created-is-the-time-of-the-request", "fixed-created-root-is-the-name"])
def test_what_the_identity_of_a_served_model_holds(tiny_lm, tmp_path, args, identity):
    """What /v1/models says goes into the identity (the fingerprint's model part): `root` where it is not the name
    itself, `created` only where it is a fixed time (vLLM sends the time of the request: left out)."""
    with openai_server(tiny_lm, *args) as (url, _):
        path = tmp_path / "served.yaml"
        path.write_text(yaml.safe_dump(served_config(tiny_lm, tmp_path / "out", url)))
        got = served_identity(load_task(path).model)
    assert {k: got.get(k, "absent") for k in identity} == identity
