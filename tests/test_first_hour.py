"""The first hour of a new user (issue 12, first part): a model path that does not exist, shots with no split to
take them from, metrics.csv that says what each number is, and a comparison table that tells runs apart."""
from __future__ import annotations

import csv
import io

import pytest
import yaml

from evals.config import ConfigError, load_task
from tests.conftest import ROOT, mmlu_tiny_config


@pytest.mark.parametrize("kind", ["typo", "no_config"])
def test_a_missing_model_is_one_line_before_anything_loads(run_evals, tmp_path, kind):
    if kind == "typo":
        path, message = "models/my-ckpt", ("ERROR: *config.yaml: model.path: 'models/my-ckpt': no such local folder, "
                                           "and no hub model of that name at revision 'main' in the local Hugging "
                                           f"Face cache (offline: HF_HUB_OFFLINE is set) (a relative path is taken "
                                           f"from {ROOT})")
    else:
        (tmp_path / "empty_ckpt").mkdir()
        (tmp_path / "empty_ckpt" / "model.safetensors").write_bytes(b"x")
        path = str(tmp_path / "empty_ckpt")
        message = f"ERROR: *config.yaml: model.path: {path}: the folder holds no config.json*"
    result = run_evals(mmlu_tiny_config(path, tmp_path / "r"))
    assert result.ret == 4
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and len(output.splitlines()) < 5, output
    result.stderr.fnmatch_lines([message])
    assert not (tmp_path / "r").exists()


def test_shots_need_a_split_to_come_from(tmp_path):
    cfg = mmlu_tiny_config("m", tmp_path / "r", scoring={"num_fewshot": 5})
    cfg["dataset"]["data_files"] = {"test": "t.jsonl"}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"dataset.fewshot_split: scoring.num_fewshot=5 takes shots from split 'dev', "
                                          r"but dataset.data_files has no such split \(has: test\)"):
        load_task(p)
    cfg["dataset"]["fewshot_split"] = None
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="dataset.fewshot_split: scoring.num_fewshot=5 needs a split"):
        load_task(p)
    cfg["scoring"]["fewshot_from"] = "test_head"
    p.write_text(yaml.safe_dump(cfg))
    assert load_task(p).scoring.num_fewshot == 5


def test_metrics_csv_gives_each_metric_its_own_stderr_and_leaves_empty_categories_out():
    from evals.reporting import assemble, metrics_csv
    from evals.scoring import mean_stderr
    from evals.test_mmlu import summarize as mmlu_summary
    from evals.test_mmmu_pro import summarize as mmmu_summary

    records = [{"id": f"Art/{i}", "subject": "Art", "correct": i % 2 == 0, "parse_failed": i < 4,
                "nested_options": False, "gold_out_of_range": False} for i in range(10)]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(assemble(mmmu_summary(records), records, task="mmmu_pro",
                                                                name="m")))))
    art = {r["metric"]: r for r in rows if r["row"] == "Art"}
    assert float(art["acc"]["value"]) == 0.5 and float(art["fallback_rate"]["value"]) == 0.4
    assert art["acc"]["stderr"] != art["fallback_rate"]["stderr"]
    assert float(art["fallback_rate"]["stderr"]) == pytest.approx(mean_stderr([1.0] * 4 + [0.0] * 6)[1], abs=1e-6)
    mmlu = [{"id": f"anatomy/{i}", "subject": "anatomy", "correct": i == 0} for i in range(3)]
    rows = list(csv.DictReader(io.StringIO(metrics_csv(assemble(mmlu_summary(mmlu, None), mmlu, task="mmlu",
                                                                name="m")))))
    aggregates = {r["metric"] for r in rows if r["row"] == "all"}
    assert "acc_other" in aggregates and "acc_stem" not in aggregates  # anatomy is "other"; no STEM subject ran
    assert all(r["value"] for r in rows)
