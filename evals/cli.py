"""`nanoeval` command line: work on saved outputs without a model.

    nanoeval rescore FILE.jsonl [--fallback seeded|count_wrong] [--seed N] [--out DIR]
        Re-score saved MMMU-Pro generations (rows with id, response, options, answer, subject) with the official
        parser: NanoEval's own predictions.jsonl or the official MMMU-Pro output files.
    nanoeval merge DIR... --out DIR
        Combine the report dirs of `--nanoeval-shard i/N` runs of one task (or suite dirs holding such task dirs)
        into the artifacts a single run would have written. Refuses missing, overlapping or mismatched shards.
    nanoeval table A/suite_summary.json B/suite_summary.json ... [--latex]
        A paper-style table: one row per run (checkpoint), one column per task's headline metric ± stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def rescore(args) -> int:
    from evals import reporting
    from evals.test_mmmu_pro import parse_options, score_response, summarize

    path = Path(args.file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        print(f"nanoeval rescore: {path}: cannot read ({e.strerror})", file=sys.stderr)
        return 2
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            where = f"{path}: line {n} (id {row.get('id')!r})"
            missing = [k for k in ("id", "response", "options", "answer") if k not in row]
            if missing:
                raise ValueError(f"{where}: missing key {missing[0]!r} (expected id, response, options, answer)")
            records.append(score_response(str(row["id"]), str(row.get("subject", "all")),
                                          parse_options(row["options"], where), str(row["answer"]),
                                          row["response"], args.fallback, args.seed))
        except json.JSONDecodeError as e:
            print(f"nanoeval rescore: {path}: line {n}: not JSON ({e.msg})", file=sys.stderr)
            return 2
        except ValueError as e:
            print(f"nanoeval rescore: {e}", file=sys.stderr)
            return 2
    if not records:
        print(f"nanoeval rescore: {path}: no rows", file=sys.stderr)
        return 2
    summary = summarize(records)
    print(f"{path.name}: accuracy {100 * summary['metrics']['acc']:.2f}% over {len(records)} rows; "
          f"fallback rows: {summary['counts']['fallback_rows']} ({args.fallback}"
          f"{f', seed {args.seed}' if args.fallback == 'seeded' else ''})")
    for subject, v in summary["per_subject"].items():
        print(f"  {subject:<40} {100 * v['acc']:6.2f}%  n={v['n']}")
    if args.out:
        out = Path(args.out)
        full = reporting.assemble(summary, records, task="mmmu_pro", name=path.stem, source=str(path),
                                  recipe={"parser": "official mmmu-pro/evaluate.py order",
                                          "fallback": args.fallback, "seed": args.seed},
                                  model={"id": "(saved responses)"}, cases={"done": [], "missing": [],
                                                                             "complete": True})
        reporting.write_task(out, records, full)
        print(f"artifacts: {out}")
    return 0


def _task_dirs(path: Path) -> dict[str, Path]:
    """Task report dirs under `path`: itself if it holds run.json, else its sub-folders that do."""
    if (path / "run.json").exists():
        return {json.loads((path / "run.json").read_text())["task"]: path}
    return {json.loads((p / "run.json").read_text())["task"]: p for p in sorted(path.iterdir())
            if (p / "run.json").exists()}


def merge(args) -> int:
    import shutil

    from evals.config import task_from_dict
    from evals.journal import JOURNALS, journal_path, prepare_report_dir, read_journal
    from evals.plugin import build_task_artifacts

    root = Path.cwd()
    inputs = [Path(d) for d in args.dirs]
    for d in inputs:
        if not d.is_dir():
            return _fail(f"nanoeval merge: {d}: not a folder")
    per_dir = {d: _task_dirs(d) for d in inputs}
    tasks = sorted({t for dirs in per_dir.values() for t in dirs})
    if not tasks:
        return _fail(f"nanoeval merge: no run.json under {', '.join(map(str, inputs))} (expected report dirs)")
    out = Path(args.out)
    suite_mode = not (inputs[0] / "run.json").exists()  # suite dirs in, a suite dir out
    summaries = {}
    for task in tasks:
        runs = {d: json.loads((dirs[task] / "run.json").read_text()) for d, dirs in per_dir.items() if task in dirs}
        prints = {r["fingerprint"] for r in runs.values()}
        if len(prints) > 1:
            detail = "; ".join(f"{d}: {r['fingerprint']}" for d, r in runs.items())
            return _fail(f"nanoeval merge: {task}: shards come from different configs (fingerprints {detail})")
        first = next(iter(runs.values()))
        owner: dict[str, Path] = {}
        for d in runs:
            for case in first["cases"]:
                if read_journal(journal_path(per_dir[d][task], case)).complete is not None:
                    if case in owner:
                        return _fail(f"nanoeval merge: {task}: case {case!r} is complete in two shards: "
                                     f"{owner[case]} and {d}")
                    owner[case] = d
        missing = [c for c in first["cases"] if c not in owner]
        if missing:
            return _fail(f"nanoeval merge: {task}: {len(missing)} case(s) complete in no shard (a shard is missing?): "
                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        cfg = task_from_dict(first["config"])
        tdir = out / task if suite_mode else out
        prepare_report_dir(tdir, first["fingerprint"], task, fresh=False,
                           info={k: v for k, v in first.items() if k not in ("fingerprint", "task")})
        (tdir / JOURNALS).mkdir(parents=True, exist_ok=True)
        for case, d in owner.items():
            shutil.copyfile(journal_path(per_dir[d][task], case), journal_path(tdir, case))
        summary = summaries[task] = build_task_artifacts(cfg, tdir, root)
        print(f"{task}: merged {len(owner)} cases from {len(runs)} shard(s) -> {tdir} "
              f"({summary['headline']} {summary['metrics'][summary['headline']]:.4f})")
    if suite_mode:
        from evals.reporting import write_suite

        write_suite(out / "suite_summary.json", summaries[tasks[0]].get("suite") or out.name, summaries)
    return 0


def table(args) -> int:
    runs = []
    for f in args.files:
        try:
            data = json.loads(Path(f).read_text())
        except (OSError, json.JSONDecodeError) as e:
            return _fail(f"nanoeval table: {f}: cannot read ({e})")
        tasks = data.get("tasks") or {data.get("name", Path(f).parent.name): data}
        label = data.get("suite") or Path(f).parent.name
        models = {t.get("model", {}).get("id") for t in tasks.values()} - {None}
        runs.append((f"{label} ({', '.join(sorted(models))})" if models else label, tasks))
    columns = list(dict.fromkeys(t for _, tasks in runs for t in tasks))
    heads = {c: next(tasks[c]["headline"] for _, tasks in runs if c in tasks) for c in columns}

    def cell(tasks, c, pm):
        if c not in tasks:
            return "-"
        s = tasks[c]
        v, se = s["metrics"][s["headline"]], s["stderr"].get(s["headline"])
        return f"{100 * v:.1f}" + (f" {pm} {100 * se:.1f}" if se is not None else "")

    if args.latex:
        esc = lambda text: text.replace("_", "\\_")  # noqa: E731
        print("\\begin{tabular}{l" + "c" * len(columns) + "}")
        print("\\toprule")
        print(" & ".join(["Checkpoint"] + [f"{esc(c)} ({esc(heads[c])})" for c in columns]) + " \\\\")
        print("\\midrule")
        for label, tasks in runs:
            print(" & ".join([esc(label)] + [cell(tasks, c, "$\\pm$") for c in columns]) + " \\\\")
        print("\\bottomrule\n\\end{tabular}")
    else:
        print("| Checkpoint | " + " | ".join(f"{c} ({heads[c]})" for c in columns) + " |")
        print("|---|" + "---|" * len(columns))
        for label, tasks in runs:
            print(f"| {label} | " + " | ".join(cell(tasks, c, "±") for c in columns) + " |")
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nanoeval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rescore", help="re-score saved MMMU-Pro generations without a model")
    r.add_argument("file")
    r.add_argument("--fallback", choices=["seeded", "count_wrong"], default="seeded")
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--out", help="write NanoEval's artifacts to this folder")
    m = sub.add_parser("merge", help="combine the report dirs of sharded runs")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--out", required=True)
    t = sub.add_parser("table", help="a paper-style table from summary.json / suite_summary.json files")
    t.add_argument("files", nargs="+")
    t.add_argument("--latex", action="store_true")
    args = ap.parse_args(argv)
    return {"rescore": rescore, "merge": merge, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
