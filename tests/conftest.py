"""Shared test fixtures: tiny random-init models built from config once per session, and a runner for
`pytest evals/` in a new process (pytester; started warm by tests/forkrun.py) with a YAML config written on the
fly."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

# One torch (OpenMP) thread per process, set before torch is imported here and inherited by every `pytest evals/`
# subprocess and test server: the tests run several torch processes at once (xdist workers, their runs, servers),
# and OpenMP threads that outnumber the free cores spin-wait on each other: measured 3-5x the CPU time per generation.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import datasets  # noqa: F401 - before pytester snapshots sys.modules: a re-import clashes in pyarrow's registry
import pytest
import yaml
from _pytest.pathlib import make_numbered_dir
from _pytest.pytester import RunResult

from tests.forkrun import Warm

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the fixtures themselves plus the prompt scaffolding."""
    lines = ["The following are multiple choice questions (with answers) about"]
    lines += ["Answer: A Answer: B Answer: C Answer: D"] * 200  # " A".." D" become single tokens
    for f in sorted(f for d in ("arc", "hellaswag", "mmlu_tiny") for f in (DATA / d).rglob("*.jsonl")):
        lines += f.read_text(encoding="utf-8").splitlines()  # a fixed vocabulary: tests read its tokens
    return lines


def build_tiny_lm(out: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer trained on `corpus()`: under a second, fully offline."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>",
                                   bos_token="<|endoftext|>")
    fast.chat_template = ("{% for m in messages %}<|user|>{{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


def mmlu_tiny_config(model: Path, report_dir: Path, **overrides) -> dict:
    cfg = {"task": "mmlu", "model": {"path": str(model)}, "report_dir": str(report_dir),
           "dataset": {"data_files": {"test": str(DATA / "mmlu_tiny" / "test.jsonl"),
                                      "dev": str(DATA / "mmlu_tiny" / "dev.jsonl")},
                       "subjects": ["anatomy", "astronomy", "high_school_geography"]},
           "scoring": {"strategy": "rank_ll"}}
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            cfg.setdefault(section, {})[sub] = value
        else:
            cfg[section] = value
    return cfg


@pytest.fixture
def run_evals(pytester, warm):
    """Run `pytest evals/` in a new process with `config` (a dict, written as YAML) as NANOEVAL_CONFIG/SUITE."""
    def run(config: dict | str | None = None, *args, suite: bool = False, env: dict | None = None):
        if isinstance(config, dict):
            path = pytester.path / ("suite.yaml" if suite else "config.yaml")
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            config = str(path)
        for k in ("NANOEVAL_CONFIG", "NANOEVAL_SUITE"):
            pytester._monkeypatch.delenv(k, raising=False)
        if config:
            pytester._monkeypatch.setenv("NANOEVAL_SUITE" if suite else "NANOEVAL_CONFIG", config)
        pytester._monkeypatch.setenv("PYTHONPATH", str(ROOT))  # `-p tests.fault_injection` imports from the repo
        for k, v in (env or {}).items():
            pytester._monkeypatch.setenv(k, v)
        return run_pytest(pytester, warm, str(ROOT / "evals"), "-o", f"cache_dir={pytester.path / '.cache'}", *args)
    return run


@pytest.fixture(scope="session")
def warm():
    """The resident parent that forks warm `pytest evals/` processes (tests/forkrun.py); None: NANOEVAL_TEST_FORK=0."""
    if os.environ.get("NANOEVAL_TEST_FORK") == "0":
        yield None
        return
    parent = Warm()
    yield parent
    parent.close()


def run_pytest(pytester, warm, *args: str):
    """pytester.runpytest_subprocess(*args), in a warm fork when the run's environment allows (tests/forkrun.py):
    the same arguments (a numbered --basetemp), working directory, environment (the working directory ahead on
    PYTHONPATH, stdin closed) and RunResult."""
    if warm is None:
        return pytester.runpytest_subprocess(*args)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    if not warm.can_run(env):
        return pytester.runpytest_subprocess(*args)
    basetemp = make_numbered_dir(root=pytester.path, prefix="runpytest-", mode=0o700)
    argv = [f"--basetemp={basetemp}", *args]
    print("running (warm fork): pytest", *argv, "\n     in:", os.getcwd())
    out, err = pytester.path / "stdout", pytester.path / "stderr"
    for f in (out, err):
        f.write_text("")
    start = time.perf_counter()
    ret = warm.run(argv, os.getcwd(), env, out, err)
    outlines, errlines = out.read_text(encoding="utf8").splitlines(), err.read_text(encoding="utf8").splitlines()
    print("\n".join(outlines))  # as pytester.run shows a run's output in the test's report
    print("\n".join(errlines), file=sys.stderr)
    with contextlib.suppress(ValueError):
        ret = pytest.ExitCode(ret)
    return RunResult(ret, outlines, errlines, time.perf_counter() - start)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
