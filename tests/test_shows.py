"""What a run shows (issue 28): a resumed run says so, skipped rows are visible, bad data rows are one line, and the
HTML report reads well (title, contrast, labels, chance lines, resumed durations). pytester runs of `pytest evals/`."""
from __future__ import annotations

import html
import json
import re

from nanoeval.reporting import plot_png
from tests.conftest import DATA, mmlu_tiny_config, read_jsonl


def _rows_in_html(page) -> dict[str, list[str]]:
    """pytest-html 4's results table: test id -> its row's cells (from the page's JSON blob)."""
    text = page.read_text(encoding="utf-8")
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="([^"]*)"', text).group(1)))
    return {test_id: [c for run in runs for c in run["resultsTableRow"]] for test_id, runs in blob["tests"].items()}


def _bad_answers(tmp_path, n: int):
    """The MMLU fixture with the first `n` anatomy rows' answers out of range: (file, their 1-based lines)."""
    rows, lines = read_jsonl(DATA / "mmlu_tiny" / "test.jsonl"), []
    for i, r in enumerate(rows):
        if r["subject"] == "anatomy" and len(lines) < n:
            r["answer"] = 7
            lines.append(i + 1)
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f, lines


def test_a_resumed_run_says_how_many_examples_came_from_journals(run_evals, tiny_lm, tmp_path):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    first = run_evals(cfg, f"--html={tmp_path / 'first.html'}")
    assert first.ret == 0
    assert "from journals" not in first.stdout.str()
    page = tmp_path / "again.html"
    again = run_evals(cfg, "-v", f"--html={page}")
    assert again.ret == 0
    again.stdout.fnmatch_lines(["mmlu *complete*resumed 21 of 21 examples from journals"])
    again.stdout.fnmatch_lines(["*mmlu:anatomy: 7 examples, acc *, from journal"])
    text = page.read_text(encoding="utf-8")
    assert "resumed 21 of 21 examples from journals" in html.unescape(text)
    # each resumed case's duration is its journal's scoring time, not the milliseconds of reading it back
    journals = {p.name: read_jsonl(p)[-1]["_complete"]["seconds"] for p in (tmp_path / "r" / "journals").iterdir()}
    rows = _rows_in_html(page)
    for test_id, cells in rows.items():
        if "test_mmlu[" in test_id:
            duration = next(c for c in cells if 'class="col-duration"' in c)
            assert "(from journal)" in duration, duration
    durations = sorted(next(c for c in cells if 'class="col-duration"' in c) for t, cells in rows.items()
                       if "test_mmlu[" in t)
    longest = max(journals.values())
    shown = f"{longest:.2f} s" if longest >= 1 else f"{round(longest * 1000)} ms"
    assert any(f">{shown} (from journal)<" in d for d in durations), (durations, journals)


def test_a_partial_selection_counts_only_journaled_examples_as_resumed(run_evals, tiny_lm, tmp_path):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    assert run_evals(cfg, "-k", "anatomy").ret == 0
    result = run_evals(cfg)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["mmlu *complete*resumed 7 of 21 examples from journals"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["timing"]["examples_resumed"] == 7 and summary["timing"]["examples_scored"] == 14


def test_skipped_rows_show_in_the_table_and_as_a_warning(run_evals, tiny_lm, tmp_path):
    f, lines = _bad_answers(tmp_path, 2)
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    cfg["dataset"]["data_files"]["test"] = str(f)
    cfg["dataset"]["on_bad_row"] = "skip"
    page = tmp_path / "report.html"
    result = run_evals(cfg, f"--html={page}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["mmlu *19*complete*2 rows skipped",
                                 f"nanoeval WARNING: mmlu: 2 bad data rows skipped (dataset.on_bad_row: skip)*"
                                 f"{f}:{lines[0]}: answer 7 out of range*"])
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert "2 rows skipped" in summary["flags"] and any("2 bad data rows skipped" in w for w in summary["warnings"])
    assert "2 rows skipped" in page.read_text(encoding="utf-8")


def _run_with_bad_rows(run_evals, tiny_lm, tmp_path, n: int):
    """A run whose MMLU test file has `n` rows with an answer out of range: (file, their lines, config, result)."""
    f, lines = _bad_answers(tmp_path, n)
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r")
    cfg["dataset"]["data_files"]["test"] = str(f)
    result = run_evals(cfg)
    assert result.ret == 1
    return f, lines, cfg, result


def test_a_bad_data_row_is_one_line_and_tb_still_shows_the_trace(run_evals, tiny_lm, tmp_path):
    f, lines, cfg, result = _run_with_bad_rows(run_evals, tiny_lm, tmp_path, 1)
    out = result.stdout.str()
    out_lines = out.splitlines()
    start = next(i for i, x in enumerate(out_lines) if "= FAILURES =" in x)
    end = next(i for i, x in enumerate(out_lines) if "= nanoeval =" in x)
    failures = out_lines[start + 1: end]
    assert len(failures) == 2, failures  # the case's name, its one line
    assert failures[1] == f"{f}:{lines[0]}: answer 7 out of range (expected 0..3 or a letter A..D) (fix the rows, " \
                          "or set dataset.on_bad_row: skip)"
    assert "Traceback" not in out and "def answer_index" not in out
    traced = run_evals(cfg, "--tb=short")
    assert traced.ret == 1 and "answer_index" in traced.stdout.str()


def test_several_bad_rows_say_how_many_and_name_the_first_few(run_evals, tiny_lm, tmp_path):
    f, lines, _, result = _run_with_bad_rows(run_evals, tiny_lm, tmp_path, 5)
    line = next(x for x in result.stdout.lines if x.startswith("5 bad rows: "))
    assert [f"{f}:{n}:" in line for n in lines] == [True] * 3 + [False] * 2
    assert "... and 2 more" in line and line.endswith("(fix the rows, or set dataset.on_bad_row: skip)")


def test_html_title_contrast_and_a_single_subject_plot(run_evals, tiny_lm, tmp_path):
    cfg = mmlu_tiny_config(tiny_lm, tmp_path / "r", dataset__subjects=["anatomy"])
    cfg["name"] = "mmlu_anatomy"
    page = tmp_path / "report.html"
    assert run_evals(cfg, f"--html={page}").ret == 0
    text = page.read_text(encoding="utf-8")
    assert re.search(r"<title[^>]*>([^<]*)</title>", text).group(1) == "NanoEval: mmlu_anatomy (config.yaml)"
    assert "table.nanoeval td, table.nanoeval th {padding: 3px 12px; color: #222" in text
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert list(summary["per_subject"]) == ["anatomy"]
    # a subject's row in the results table: its accuracy, not a macro mean over one subject
    cells = next(cells for test_id, cells in _rows_in_html(page).items() if "test_mmlu[" in test_id)
    assert f"<td>acc {summary['per_subject']['anatomy']['acc']:.4f}</td>" in cells, cells


def _plot_labels(summary) -> list[str]:
    """The y tick labels plot_png draws (matplotlib's own axes, read back before saving)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = []
    original = plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        ax = fig.axes[0]
        seen.append(([t.get_text() for t in ax.get_yticklabels()], [str(line.get_label()) for line in ax.lines]))
        return original(fig, *args, **kwargs)

    plt.Figure.savefig = keep
    try:
        plot_png(summary)
    finally:
        plt.Figure.savefig = original
    return seen[0]


def test_plot_labels_a_single_subject_by_name_and_draws_mmmu_pro_chance(tmp_path):
    from nanoeval.benchmarks.mmmu_pro import summarize
    from nanoeval.reporting import assemble

    records = [{"id": str(i), "subject": "Math", "options": ["a", "b", "c", "d"] if i % 2 else list("abcdefghij"),
                "correct": i % 3 == 0, "parse_failed": False, "gold_out_of_range": False, "nested_options": False}
               for i in range(6)]
    m = summarize(records)
    assert abs(m.chance - (0.25 + 0.1) / 2) < 1e-9
    scores = assemble(m, records, task="mmmu_pro", name="mmmu_pro")
    labels, lines = _plot_labels(scores)
    assert labels == ["Math (n=6)"]
    assert any(name.startswith("chance = ") for name in lines), lines


def test_the_metrics_plot_of_a_task_without_subjects_draws_accuracies_only(tmp_path):
    """PIQA has no subjects: one bar per metric, but bits per byte is not an accuracy (lower is better, above 1
    for a weak model), so it is in summary.json and metrics.csv, not on the accuracy axis."""
    from nanoeval.benchmarks import BENCHMARKS
    from nanoeval.reporting import assemble
    from nanoeval.scoring import choice_record

    records = [choice_record(str(i), None, 1, [-3.0 - i, -9.5], [2, 3], ["one", "three"], " three")
               for i in range(4)]
    m = BENCHMARKS["piqa"].summarize(records, None)
    assert m.metrics["bpb"] > 1 and m.per_subject == {}
    labels, lines = _plot_labels(assemble(m, records, task="piqa", name="piqa"))
    assert labels == ["acc", "acc_norm", "acc_per_token"]
    assert any(name.startswith("acc_norm = ") for name in lines) and any(n.startswith("chance = ") for n in lines)
