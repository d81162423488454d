"""Names from data never become paths or HTML as they are: a subject is a safe journal name inside the report dir (a
run and `nanoeval merge`), a case id is escaped in pytest-html's report; `nanoeval merge` keeps every earlier run;
`nanoeval table --latex` escapes LaTeX's special characters; unfinished cases are found by their key, whatever
characters the task name or the subject holds."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import DATA, ROOT, mmlu_tiny_config, read_jsonl


def with_subjects(tmp_path: Path, subjects: dict[str, str]) -> Path:
    """The tiny MMLU test rows, each subject renamed by `subjects` (old -> new), as a local data file."""
    rows = [{**r, "subject": subjects.get(r["subject"], r["subject"])} for r in read_jsonl(DATA / "mmlu_tiny" /
                                                                                              "test.jsonl")]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def config(model: Path, report_dir: Path, data: Path, **overrides) -> dict:
    """Every subject of `data` is a case (no dataset.subjects): the subjects come from the rows."""
    return mmlu_tiny_config(model, report_dir, dataset={"data_files": {"test": str(data)}}, **overrides)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def merge(*dirs: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nanoeval.cli", "merge", *map(str, dirs), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)


def test_a_subject_that_climbs_out_is_a_journal_inside_the_report_dir(run_evals, tiny_lm, tmp_path):
    data = with_subjects(tmp_path, {"astronomy": "../../escaped"})
    work = tmp_path / "work"
    report = work / "run"
    result = run_evals(config(tiny_lm, report, data))
    assert result.ret == 0, result.stdout.str()
    outside = [p for p in files_under(work) if not p.is_relative_to(report)]
    assert outside == []
    # one file name of the journals folder, readable back to the subject (percent-encoding)
    assert (report / "journals" / "..%2F..%2Fescaped.jsonl").is_file()
    summary = json.loads((report / "summary.json").read_text())
    assert "../../escaped" in summary["cases"]["done"] and summary["cases"]["complete"]
    # `nanoeval merge` copies the journals through the same names
    merged = work / "merged"
    res = merge(report, out=merged)
    assert res.returncode == 0, res.stderr
    assert [p for p in files_under(work) if not (p.is_relative_to(report) or p.is_relative_to(merged))] == []
    assert (merged / "journals" / "..%2F..%2Fescaped.jsonl").read_bytes() == \
        (report / "journals" / "..%2F..%2Fescaped.jsonl").read_bytes()
    assert json.loads((merged / "summary.json").read_text())["metrics"] == summary["metrics"]


def test_merge_refuses_a_run_json_whose_task_name_climbs_out(run_evals, tiny_lm, tmp_path):
    base = mmlu_tiny_config(tiny_lm, tmp_path / "suite" / "mmlu")
    suite = {"suite": "s", "report_dir": str(tmp_path / "suite"), "model": base["model"],
             "tasks": [{"task": "mmlu", "dataset": base["dataset"]}]}
    assert run_evals(suite, suite=True).ret == 0
    run_file = tmp_path / "suite" / "mmlu" / "run.json"
    run_file.write_text(json.dumps({**json.loads(run_file.read_text()), "task": "../../escaped"}))
    res = merge(tmp_path / "suite", out=tmp_path / "a" / "b" / "merged")
    assert res.returncode == 2 and "escaped" in res.stderr and len(res.stderr.splitlines()) == 1, res.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()


def test_a_case_id_with_html_is_escaped_in_the_html_report(run_evals, tiny_lm, tmp_path):
    payload = "<img/src/onerror=document.title='pwned'>"  # snake case leaves it as it is
    data = with_subjects(tmp_path, {"anatomy": payload})
    page = tmp_path / "report.html"
    result = run_evals(config(tiny_lm, tmp_path / "run", data), f"--html={page}", "--self-contained-html")
    assert result.ret == 0, result.stdout.str()
    text = page.read_text(encoding="utf-8")
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', text).group(1)))
    rows = {test_id: [cell for run in runs for cell in run["resultsTableRow"]] for test_id, runs in
            blob["tests"].items()}
    ours = [cells for test_id, cells in rows.items() if payload in test_id]
    assert len(ours) == 1
    # what app.js hands to innerHTML: the id as text, never as markup
    id_cell = next(c for c in ours[0] if 'class="col-testId"' in c)
    assert html.escape(payload) in id_cell and "<img" not in id_cell
    assert not any("<img" in cell for cells in rows.values() for cell in cells)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser:  # and as a browser runs the page: app.js builds the rows, the id stays text, nothing executes
        dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        assert f'col-testId">evals/test_mmlu.py::test_mmlu[mmlu:{html.escape(payload, quote=False)}]<' in dom
        title = re.search(r"<title[^>]*>([^<]*)</title>", dom).group(1)
        assert title.startswith("NanoEval: ") and "pwned" not in title


def test_four_merges_into_one_out_keep_three_previous_runs(run_evals, tiny_lm, tmp_path):
    assert run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "run")).ret == 0
    out = tmp_path / "merged"
    for _ in range(4):
        res = merge(tmp_path / "run", out=out)
        assert res.returncode == 0, res.stderr
    previous = sorted((out / "previous").iterdir())
    assert len(previous) == 3, previous
    for p in previous:  # each a whole earlier merge, none nested in another
        assert (p / "summary.json").is_file() and len(list((p / "journals").glob("*.jsonl"))) == 3
        assert not (p / "previous").exists()
    assert (out / "summary.json").is_file()
    assert not list(tmp_path.glob(".merged*"))  # no temporary or old tree left beside it


def test_table_latex_escapes_every_special_character(run_evals, tiny_lm, tmp_path):
    assert run_evals(mmlu_tiny_config(tiny_lm, tmp_path / "run")).ret == 0
    label = "A&B 50% $1 #2 {x} ~y ^z \\w_v"
    res = subprocess.run([sys.executable, "-m", "nanoeval.cli", "table", "--latex", "--label", label,
                          str(tmp_path / "run" / "summary.json")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    row = res.stdout.splitlines()[4]
    assert row.startswith(r"A\&B 50\% \$1 \#2 \{x\} \textasciitilde{}y \textasciicircum{}z \textbackslash{}w\_v & ")
    assert r"$\pm$" in row  # the table's own LaTeX is left as it is
    assert res.stdout.splitlines()[2] == r"Checkpoint & mmlu (acc\_macro) \\"


def test_unfinished_case_is_reported_for_a_task_named_with_a_colon_and_a_non_ascii_subject(run_evals, tiny_lm,
                                                                                           tmp_path):
    data = with_subjects(tmp_path, {"high_school_geography": "géographie"})
    for workers in ((), ("-n", "2")):
        report = tmp_path / f"run{len(workers)}"
        cfg = config(tiny_lm, report, data, name="mmlu:v2")
        result = run_evals(cfg, "-p", "tests.fault_injection", *workers,
                           env={"NANOEVAL_FAULT_FAIL": "mmlu:v2:géographie"})
        assert result.ret == 1, result.stdout.str()
        result.stdout.fnmatch_lines(["nanoeval ERROR: mmlu:v2: 1 case(s) did not complete (failed, or a crashed "
                                     "worker): géographie; their journals are kept: fix what failed (above) and "
                                     "rerun to continue them"])
        summary = json.loads((report / "summary.json").read_text())
        assert summary["cases"]["not_completed"] == ["géographie"]
        assert sorted(summary["cases"]["done"]) == ["anatomy", "astronomy"]
