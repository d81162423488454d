"""The README's commands, typed as written in a fresh shell after `make eval`: the venv entered the way the README
says, nothing else on PATH. They run in a copy of the project whose `configs/mmlu_smollm2.yaml` and
`suites/suite_smoke.yaml` are tiny (the tiny models and fixtures instead of SmolLM2), so the README cannot drift."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import DATA, ROOT, mmlu_tiny_config

TINY_VLM = ROOT / "tests" / "assets" / "tiny_vlm"


def readme_commands() -> tuple[str, list[str]]:
    """The README's line that enters the venv, and the command lines of its bash blocks (minus `make`)."""
    text = (ROOT / "README.md").read_text()
    enter = re.search(r"`(source \.venv/bin/activate)`", text)
    assert enter, "the README must say how to enter the venv"
    lines = [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    return enter.group(1), [c for c in lines if c and not c.startswith("make ")]


def tiny_project(tmp: Path, tiny_lm: Path) -> Path:
    """The project as a user has it, with tiny stand-ins for the config and suite the README names."""
    proj = tmp / "proj"
    proj.mkdir()
    for name in ("evals", "tests", "conftest.py", "pyproject.toml"):
        (proj / name).symlink_to(ROOT / name)
    (proj / ".venv").symlink_to(Path(sys.prefix))  # the venv `make` made (the one running these tests)
    (proj / "configs").mkdir()
    (proj / "suites").mkdir()
    mmlu = mmlu_tiny_config(tiny_lm, "unused")
    del mmlu["report_dir"]  # the default, artifacts/nanoeval/<task>/
    (proj / "configs" / "mmlu_smollm2.yaml").write_text(yaml.safe_dump(mmlu))
    suite = {"suite": "smoke", "model": {"path": str(tiny_lm)}, "tasks": [
        {"task": "mmlu", "dataset": mmlu["dataset"]},
        {"task": "hellaswag", "dataset": {"data_files": {"validation": str(DATA / "hellaswag" / "validation.jsonl")},
                                          "limit": 2}, "scoring": {"num_shards": 4}},
        {"task": "mmmu_pro", "model": {"path": str(TINY_VLM)}, "scoring": {"max_new_tokens": 3},
         "dataset": {"data_files": {"test": str(DATA / "mmmu_pro" / "standard10.parquet")}, "subjects": ["Math"]}}]}
    (proj / "suites" / "suite_smoke.yaml").write_text(yaml.safe_dump(suite))
    return proj


def test_the_readme_commands_work_as_written(tiny_lm, tmp_path):
    enter, commands = readme_commands()
    assert any(c.startswith("pytest evals/") for c in commands) and any(c.startswith("nanoeval ") for c in commands)
    proj = tiny_project(tmp_path, tiny_lm)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]}  # one torch thread, as for every test run (conftest)
    smoke = proj / "artifacts" / "nanoeval" / "smoke"
    checked_walls = 0

    def shell(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f"{enter} && {command}"], cwd=proj, env=env, capture_output=True,
                              text=True, timeout=600)

    for command in commands:
        program = command.split()[1] if command.startswith("nanoeval ") else "pytest"
        latest = smoke if smoke.exists() else proj / "merged"
        if program == "merge":  # the shard dirs it names: the smoke suite run as 4 shards, from scratch
            shutil.rmtree(smoke)
            for i, shard in enumerate(re.findall(r"(\S+)/ ", command.split("--out")[0])[:4]):
                assert shell(f"NANOEVAL_SHARD={i}/4 pytest evals/ -q").returncode == 0
                shutil.copytree(smoke, proj / shard)
                shutil.rmtree(smoke)
        elif program == "table":  # two runs of the suite to compare
            for f in command.split()[2:4]:
                (proj / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(latest / "suite_summary.json", proj / f)
        elif program == "rescore":  # saved MMMU-Pro generations
            shutil.copy(latest / "mmmu_pro" / "predictions.jsonl", proj / "predictions.jsonl")
        result = shell(command)
        out = result.stdout + result.stderr
        assert result.returncode == 0, f"{command}\n{out[-3000:]}"
        if program == "pytest":
            assert re.search(r"\d+ passed", out) and "nanoeval" in out, f"{command}\n{out[-3000:]}"
            if " -n " not in command and "shard" not in command and "CONFIG" not in command:  # one process, suite
                timing = [json.loads((smoke / t / "summary.json").read_text())["timing"]
                          for t in ("mmlu", "hellaswag", "mmmu_pro")]
                walls = [t["task_wall_seconds"] for t in timing if t["task_wall_seconds"] is not None]
                # tasks run one after another: their walls (model loads excluded) fit in the session's
                assert sum(walls) <= timing[0]["session_wall_seconds"], (command, timing)
                checked_walls += 1
        elif program == "merge":
            assert json.loads((proj / "merged" / "suite_summary.json").read_text())["tasks"], out
        elif program == "table":
            assert "| mmlu" in out or "mmlu |" in out, out
        elif program == "rescore":
            assert "acc" in out, out
    assert (proj / "artifacts" / "report.html").is_file() and checked_walls
    assert not (ROOT / "predictions.jsonl").exists()  # everything happened in the copy
