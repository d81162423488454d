"""Config loading: every shipped YAML validates; bad configs give one line naming file, key path and expectation."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nanoeval.benchmarks import BENCHMARKS
from nanoeval.config import ConfigError, report_dir
from nanoeval.config_files import load_suite, load_task
from tests.conftest import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_task_configs_validate(path):
    cfg = load_task(path)
    assert cfg.name and cfg.config_hash()


@pytest.mark.parametrize("path", sorted((ROOT / "suites").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_suites_validate(path):
    suite = load_suite(path)
    assert suite.tasks and len({t.name for t in suite.tasks}) == len(suite.tasks)


GOOD = {"task": "mmlu", "model": {"path": "some/model"}}
SERVED = {"path": "some/model", "backend": "openai", "name": "served-model", "base_url": "http://localhost:8000/v1"}
SECRET = "sk-live-abcdef0123456789"


def write(tmp_path: Path, data, name="c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


BAD = [  # (config, expected message after "<file>: ")
    ("task: mmlu\nmodel: {path: [unclosed\n", "invalid YAML: line"),
    ("", "empty file (expected a mapping of config keys)"),
    ("- task: mmlu\n", "top level: expected a mapping of config keys, got list"),
    ({**GOOD, "modle": 1}, "modle: unknown key (expected one of:"),
    ({**GOOD, "model": {"path": "m", "dtyp": "float32"}}, "model.dtyp: unknown key"),
    ({**GOOD, "dataset": {"colums": {}}}, "dataset.colums: unknown key"),
    ({**GOOD, "scoring": {"num_fewshot": "five"}}, "scoring.num_fewshot: expected an integer, got str 'five'"),
    ({**GOOD, "scoring": {"num_fewshot": -1}}, "scoring.num_fewshot: expected an integer >= 0, got int -1"),
    ({**GOOD, "scoring": {"strategy": "vibes"}}, "scoring.strategy: expected rank_ll or gen_letter"),
    ({**GOOD, "scoring": {"fallback": "seeded"}}, "scoring.fallback: not a setting of mmlu"),
    ({**GOOD, "model": {"path": "m", "trust_remote_code": "yes"}},
     "model.trust_remote_code: expected true or false, got str 'yes'"),
    ({"task": "mmlu"}, "model: missing required key"),
    ({"task": "squad", "model": {"path": "m"}}, f"task: expected one of {', '.join(BENCHMARKS)}, got str 'squad'"),
    ({"task": "mmmu_pro", "model": {"path": "m"}, "scoring": {"strategy": "rank_ll"}},
     "scoring.strategy: mmmu_pro supports only gen_letter, got 'rank_ll'"),
    ({**GOOD, "engine": {"batch_size": 0}}, "engine.batch_size: expected an integer >= 1, got int 0"),
    ({**GOOD, "dataset": {"data_files": 3}}, "dataset.data_files: expected a file, a list of files or a mapping"),
    # a served model (backend: openai)
    ({**GOOD, "model": {"path": "m", "backend": "vllm"}}, "model.backend: expected local or openai, got str 'vllm'"),
    ({**GOOD, "model": {"backend": "openai", "base_url": "http://h/v1"}},
     "model.name: missing required key for backend"),
    ({**GOOD, "model": {"backend": "openai", "name": "m"}}, "model.base_url: missing required key for backend"),
    ({**GOOD, "model": {**SERVED, "base_url": "localhost:8000"}}, "model.base_url: expected an http:// or https://"),
    ({**GOOD, "model": {**SERVED, "base_url": ["http://a/v1", 8001]}}, "model.base_url: expected a string or a list"),
    ({**GOOD, "model": {**SERVED, "api_key_env": SECRET}}, "model.api_key_env: expected the NAME of an environment"),
    ({**GOOD, "model": {**SERVED, "api_key_env": "NANOEVAL_SURELY_UNSET"}},
     "model.api_key_env: the environment variable NANOEVAL_SURELY_UNSET is not set"),
    ({**GOOD, "model": {**SERVED, "base_url": "http://h:80a0/v1"}}, "model.base_url: expected an http:// or https://"),
    ({**GOOD, "model": {**SERVED, "base_url": f"https://user:{SECRET}@h/v1"}},
     "model.base_url: expected a URL without credentials or a query string"),
    ({**GOOD, "model": {**SERVED, "concurrency": 0}}, "model.concurrency: expected an integer >= 1, got int 0"),
    ({**GOOD, "model": {**SERVED, "timeout": 0}}, "model.timeout: expected a number of seconds > 0"),
    ({**GOOD, "model": {"path": "m", "base_url": "http://h/v1"}},
     "model.base_url: only for a served model (add `backend: openai` to the model block)"),
    ({"task": "hellaswag", "model": {k: v for k, v in SERVED.items() if k != "path"}},
     "model.path: rank_ll through a server sends token ids from the model's own tokenizer"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_task_config_names_file_and_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        load_task(path)
    text = str(e.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text and SECRET not in text
    assert isinstance(e.value, ValueError)


def test_bad_suite_entries(tmp_path):
    base = {"suite": "s", "model": {"path": "m"}}
    cases = [
        ({**base, "tasks": []}, "tasks: expected a non-empty list"),
        ({**base, "tasks": [{"task": "mmlu"}, {"task": "mmlu"}]}, "tasks[1].name: 'mmlu' is already used by tasks[0]"),
        ({**base, "tasks": [{"task": "mmlu", "scoring": {"num_fewshot": -2}}]}, "tasks[0].scoring.num_fewshot"),
        ({**base, "tasks": [{"task": "nope"}]}, "tasks[0].task: expected one of"),
        ({**base, "tasks": [{"task": "mmlu"}], "extra": 1}, "extra: unknown key"),
    ]
    for data, message in cases:
        with pytest.raises(ConfigError, match=None) as e:
            load_suite(write(tmp_path, data))
        assert message in str(e.value), str(e.value)


def test_suite_inheritance_and_report_dirs(tmp_path):
    path = write(tmp_path, {"suite": "mine", "model": {"path": "base/model"}, "seed": 7, "tasks": [
        {"task": "mmlu"},
        {"task": "mmlu", "name": "mmlu_other", "model": {"path": "other/model"}, "scoring": {"num_fewshot": 5}}]})
    suite = load_suite(path)
    a, b = suite.tasks
    assert a.model.path == "base/model" and b.model.path == "other/model" and a.seed == b.seed == 7
    assert b.scoring.num_fewshot == 5 and a.scoring.num_fewshot == 0
    assert report_dir(a, tmp_path, suite) == tmp_path / "artifacts" / "nanoeval" / "mine" / "mmlu"
    assert report_dir(load_task(write(tmp_path, GOOD, "t.yaml")), tmp_path) == tmp_path / "artifacts/nanoeval/mmlu"


def test_fingerprint_of_a_served_model_ignores_where_and_how_it_is_reached(tmp_path):
    """A run killed and restarted against the same served model on a new port (or with more concurrency) resumes;
    another served model, or the same name run locally, does not."""
    def h(**model):
        return load_task(write(tmp_path, {**GOOD, "model": {**SERVED, **model}})).config_hash()

    base = h()
    assert base == h(base_url="http://other:9000/v1") == h(base_url=["http://a/v1", "http://b/v1"]) == \
        h(concurrency=64, timeout=5, max_retries=0) == h(api_key_env="HOME")
    assert base != h(name="another-model")
    assert base != load_task(write(tmp_path, GOOD)).config_hash()


def test_fingerprint_ignores_speed_settings_but_not_recipe(tmp_path):
    base = load_task(write(tmp_path, GOOD)).config_hash()
    fast = load_task(write(tmp_path, {**GOOD, "engine": {"batch_size": 3, "threads": 1}})).config_hash()
    shots = load_task(write(tmp_path, {**GOOD, "scoring": {"num_fewshot": 5}})).config_hash()
    assert base == fast != shots


def test_report_dir_cannot_escape_root_unless_absolute(tmp_path):
    cfg = load_task(write(tmp_path, {**GOOD, "report_dir": "../../elsewhere"}))
    with pytest.raises(ConfigError, match="escapes the project root"):
        report_dir(cfg, tmp_path / "proj")
    cfg = load_task(write(tmp_path, {**GOOD, "report_dir": str(tmp_path / "abs")}))
    assert report_dir(cfg, tmp_path / "proj") == tmp_path / "abs"
