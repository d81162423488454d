"""`nanoeval` command line: work on saved outputs without a model.

    nanoeval rescore FILE.jsonl [--task NAME] [--seed N] [--out DIR] [the benchmark's own options]
        Re-score saved generations without a model, with a benchmark's own parser: MMMU-Pro's rows with id,
        response, options, answer, subject (NanoEval's predictions.jsonl or the official MMMU-Pro output files;
        --fallback seeded|count_wrong); a generative benchmark's predictions.jsonl (GSM8K), its answers extracted
        again with the declared extractors (--extractor NAME: another declared one as the headline; --regex PATTERN
        [--group-select N]: lm-eval's regex filter of your own, named `custom`). --task: which benchmark (default:
        the one whose keys the rows have).
    nanoeval merge DIR... --out DIR
        Combine the report dirs of `--nanoeval-shard i/N` runs of one task (or suite dirs holding such task dirs)
        into the artifacts a single run would have written. Refuses missing, overlapping or mismatched shards.
    nanoeval compare A B [--json] [--html FILE]
        Two runs (report dirs, summary.json or suite_summary.json files) compared task by task on the examples both
        scored: the paired difference with its standard error and 95 % interval, McNemar's counts and exact p
        (Holm-adjusted across tasks), the gold answer's bits per byte likewise; how many examples matched.
    nanoeval curves DIR... [--label NAME ...] [--out FILE]
        Redraw a sweep's learning curves from saved runs (each DIR holds a curves.csv: a sweep's suite dir, or its
        task's dir), several runs on one plot, each labelled (default: the folder's name); --out: the PNG to write
        (default: curves.png in the first DIR).
    nanoeval benchmarks
        The benchmarks (`task:` names), the data columns each reads, the `scoring:` options each can use and their
        real defaults.
    nanoeval table A/suite_summary.json B/suite_summary.json ... [--latex] [--label NAME ...]
        A paper-style table: one row per run (checkpoint: the suite and model, or --label), one column per task's
        headline metric ± stderr (n = examples). Single-task summary.json files of one benchmark: one column per
        run (its model and example count, or --label), one row per metric and subject. Runs of one task that scored
        different examples get a warning (counts; ids where predictions.jsonl sits beside each summary).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def _rescorers() -> dict:
    from nanoeval.benchmarks import BENCHMARKS

    return {name: b for name, b in BENCHMARKS.items() if b.rescore is not None}


def rescore(args) -> int:
    from nanoeval import reporting
    from nanoeval.summary import RescoreSummary

    rescorers = _rescorers()
    bench = rescorers[args.task] if args.task else None
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        print(f"nanoeval rescore: {path}: cannot read ({e.strerror})", file=sys.stderr)
        return 2
    records, settings = [], None
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            print(f"nanoeval rescore: {path}: line {n}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                  f"{e.start + 1}); expected JSON lines", file=sys.stderr)
            return 2
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if bench is None and isinstance(row, dict):  # no --task: the benchmark whose rows these are
                bench = _rescorer_for(rescorers, row, f"{path}: line {n}")
            expected = ", ".join(bench.rescore.needs) if bench else "the keys a benchmark's saved rows have"
            if not isinstance(row, dict):
                raise ValueError(f"{path}: line {n}: expected a JSON object (a row with {expected}), "
                                 f"got a {type(row).__name__}")
            if settings is None:
                settings = _rescore_settings(bench, args)
            where = f"{path}: line {n} (id {row.get('id')!r})"
            missing = [k for k in bench.rescore.needs if k not in row]
            if missing:
                raise ValueError(f"{where}: missing key {missing[0]!r} (expected {expected})")
            records.append(bench.rescore.score(row, where, settings, args.seed))
        except json.JSONDecodeError as e:
            print(f"nanoeval rescore: {path}: line {n}: not JSON ({e.msg})", file=sys.stderr)
            return 2
        except ValueError as e:
            print(f"nanoeval rescore: {e}", file=sys.stderr)
            return 2
    if not records:
        print(f"nanoeval rescore: {path}: no rows", file=sys.stderr)
        return 2
    rs = bench.rescore
    metrics = bench.summarize(records, None)
    print(f"{path.name}: {metrics.headline} {100 * metrics.metrics[metrics.headline]:.2f}% over {len(records)} rows"
          f"{rs.report(metrics, settings, args.seed)}")
    for subject, v in metrics.per_subject.items():
        print(f"  {subject:<40} {100 * v['acc']:6.2f}%  n={v['n']}")
    if args.out:
        from nanoeval.journal import ReportDirBusy, lock_report_dir

        out = Path(args.out)
        try:  # held until the command exits: a run writing the same folder is refused
            lock = lock_report_dir(out, "nanoeval rescore")  # noqa: F841
        except (ReportDirBusy, OSError) as e:
            print(f"nanoeval rescore: --out: {e}", file=sys.stderr)
            return 2
        scores = reporting.assemble(metrics, records, task=bench.name, name=path.stem)
        full = RescoreSummary(**vars(scores), source=str(path), recipe=rs.describe(settings, args.seed),
                              model={"id": "(saved responses)"}, cases={"done": [], "missing": [], "complete": True})
        reporting.write_task(out, records, full)
        print(f"artifacts: {out}")
    return 0


def _rescorer_for(rescorers: dict, row: dict, where: str):
    """The benchmark whose saved rows have `row`'s keys (its Rescorer's `needs`): the only one that re-scores, or
    the only one whose keys the row has."""
    fits = [b for b in rescorers.values() if all(k in row for k in b.rescore.needs)]
    if len(rescorers) == 1 or len(fits) == 1:
        return fits[0] if fits else next(iter(rescorers.values()))
    rows = "; ".join(f"{b.name}: {', '.join(b.rescore.needs)}" for b in rescorers.values())
    raise ValueError(f"{where}: which benchmark's rows are these? give --task (rows of {rows})")


def _rescore_settings(bench, args):
    """The CLI options given, for `bench`'s Rescorer (an option of another benchmark's is refused)."""
    given = {k: getattr(args, k) for k in _rescore_options() if getattr(args, k) is not None}
    for k in given:
        if k not in bench.rescore.options:
            owners = [b.name for b in _rescorers().values() if k in b.rescore.options]
            raise ValueError(f"--{k.replace('_', '-')}: not an option of {bench.name} (it applies to "
                             f"{', '.join(owners)})")
    if bench.rescore.settings is not None:
        return bench.rescore.settings(given)
    return bench.options(**given).resolve()


def _rescore_options() -> dict[str, dict]:
    """Every rescorer's CLI options: name -> argparse keywords."""
    return {k: v for b in _rescorers().values() for k, v in b.rescore.options.items()}


def _task_dirs(path: Path) -> dict[str, Path]:
    """Task report dirs under `path`: itself if it holds run.json, else its sub-folders that do."""
    if (path / "run.json").exists():
        return {_run_json(path)["task"]: path}
    return {_run_json(p)["task"]: p for p in sorted(path.iterdir()) if (p / "run.json").exists()}


def _run_json(d: Path) -> dict:
    try:
        info = json.loads((d / "run.json").read_text(encoding="utf-8"))
        assert isinstance(info, dict) and "fingerprint" in info and "cases" in info and "recipe" in info
        return info
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AssertionError):
        raise MergeError(f"{d / 'run.json'}: not a run.json written by this version of NanoEval") from None


class MergeError(ValueError):
    pass


def merge(args) -> int:
    """Check the shards, then build the merged dir next to --out and move it into place only when all is done."""
    import tempfile

    from nanoeval.journal import ReportDirBusy

    out = Path(args.out)
    try:  # held until the command exits: a run (or merge) writing --out now is refused, nothing touched
        locks = _lock_report_dirs(out)  # noqa: F841
    except (ReportDirBusy, OSError) as e:
        return _fail(f"nanoeval merge: --out: {e}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.merging-", dir=out.parent))
    try:
        lines = _merge_into(args, tmp)
    except MergeError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return _fail(f"nanoeval merge: {e}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():  # the old output goes aside only now, like a fingerprint change in a report dir
        from nanoeval.journal import LOCK_FILE, PREVIOUS, previous_dir

        if not out.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            return _fail(f"nanoeval merge: --out {out}: exists and is a file (expected a folder)")
        old = out.with_name(f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
        out.rename(old)
        tmp.rename(out)
        if (old / PREVIOUS).is_dir():  # the runs it had moved aside stay, as they were
            (old / PREVIOUS).rename(out / PREVIOUS)
        previous = [p for p in old.iterdir() if p.name not in (PREVIOUS, LOCK_FILE)]
        if previous:
            dest = previous_dir(out)
            for p in previous:
                shutil.move(str(p), dest / p.name)
        (old / LOCK_FILE).unlink(missing_ok=True)
        old.rmdir()  # empty now: nothing earlier is ever deleted
    else:
        tmp.rename(out)
    for line in lines:
        print(line)
    return 0


def _lock_report_dirs(out: Path) -> list:
    """Lock the report dirs --out already holds (itself, or the task dirs of a suite dir: those with a run.json or
    a lock file), so no `pytest evals/` run writes them while the merge replaces them."""
    from nanoeval.journal import LOCK_FILE, PREVIOUS, lock_report_dir

    if not out.is_dir():
        return []
    dirs = [out, *(p for p in sorted(out.iterdir()) if p.is_dir() and p.name != PREVIOUS)]
    return [lock_report_dir(d, "nanoeval merge") for d in dirs if (d / "run.json").exists() or (d / LOCK_FILE).exists()]


def _merge_into(args, out: Path) -> list[str]:
    from nanoeval.config import ConfigError
    from nanoeval.config_files import task_from_dict
    from nanoeval.journal import JOURNALS, inside, journal_path, prepare_report_dir, read_journal
    from nanoeval.reporting import write_suite
    from nanoeval.runner import build_task_artifacts, case_records

    inputs = [Path(d) for d in args.dirs]
    for d in inputs:
        if not d.is_dir():
            raise MergeError(f"{d}: not a folder")
    per_dir = {d: _task_dirs(d) for d in inputs}
    tasks = sorted({t for dirs in per_dir.values() for t in dirs})
    if not tasks:
        raise MergeError(f"no run.json under {', '.join(map(str, inputs))} (expected report dirs)")
    suite_mode = not (inputs[0] / "run.json").exists()  # suite dirs in, a suite dir out
    summaries, lines = {}, []
    for task in tasks:
        runs = {d: _run_json(dirs[task]) for d, dirs in per_dir.items() if task in dirs}
        envs = {json.dumps(r.get("environment"), sort_keys=True) for r in runs.values()}
        if len(envs) > 1:
            detail = "; ".join(f"{d}: " + ", ".join(f"{k} {v}" for k, v in (r.get("environment") or {}).items())
                               for d, r in runs.items())
            raise MergeError(f"{task}: shards ran with different versions or devices ({detail})")
        prints = {r["fingerprint"] for r in runs.values()}
        if len(prints) > 1:
            from nanoeval.journal import PART_NAMES

            parts = [r.get("fingerprint_parts") or {} for r in runs.values()]
            differ = [PART_NAMES.get(k, k) for k in parts[0] if len({json.dumps(p.get(k)) for p in parts}) > 1]
            detail = "; ".join(f"{d}: {r['fingerprint']}" for d, r in runs.items())
            raise MergeError(f"{task}: shards come from different runs ({', '.join(differ) or 'fingerprint'} "
                             f"differ; fingerprints {detail})")
        selections = {json.dumps([r["cases"], r["config"]["dataset"].get("limit"),
                                  r["config"]["dataset"].get("sample")]) for r in runs.values()}
        if len(selections) > 1:  # the fingerprint leaves selection out: shards of one run select alike
            detail = "; ".join(f"{d}: {len(r['cases'])} cases, limit {r['config']['dataset'].get('limit')}, "
                               f"sample {r['config']['dataset'].get('sample')}" for d, r in runs.items())
            raise MergeError(f"{task}: shards select different examples (dataset.subjects, dataset.limit, "
                             f"dataset.sample or num_shards differ: {detail}); rerun them with one config")
        first = next(iter(runs.values()))
        try:
            cfg = task_from_dict(first["config"])
        except ConfigError as e:
            raise MergeError(f"{per_dir[next(iter(runs))][task] / 'run.json'}: {e}; rerun its shards with this "
                             "version") from None
        owner: dict[str, Path] = {}
        for d in runs:
            for case in first["cases"]:  # complete for the selection merged (shards may have run other limits)
                if case_records(read_journal(journal_path(per_dir[d][task], case)), cfg) is not None:
                    if case in owner:
                        raise MergeError(f"{task}: case {case!r} is complete in two shards: {owner[case]} and {d}")
                    owner[case] = d
        missing = [c for c in first["cases"] if c not in owner]
        if missing:
            raise MergeError(f"{task}: {len(missing)} case(s) complete in no shard (a shard is missing?): "
                             f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        try:  # a task name is a folder of a suite dir: one that climbs out (an edited run.json) is refused
            tdir = inside(out, task) if suite_mode else out
        except ValueError as e:
            raise MergeError(f"{per_dir[next(iter(runs))][task] / 'run.json'}: task: {e}") from None
        final = Path(args.out).resolve() / task if suite_mode else Path(args.out).resolve()  # what summary.json says
        prepare_report_dir(tdir, {k: v for k, v in first.items() if k != "task"}, task, fresh=False)
        (tdir / JOURNALS).mkdir(parents=True, exist_ok=True)
        for case, d in owner.items():
            shutil.copyfile(journal_path(per_dir[d][task], case), journal_path(tdir, case))
        walls = {}
        for d in runs:
            try:
                walls[str(d)] = json.loads((per_dir[d][task] / "summary.json").read_text())["timing"].get(
                    "session_wall_seconds")
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                walls[str(d)] = None
        summary = summaries[task] = build_task_artifacts(cfg, tdir, first, extra_timing={
            "shard_session_wall_seconds": walls}, recorded_dir=final)
        lines.append(f"{task}: merged {len(owner)} cases from {len(runs)} shard(s) -> {final} "
                     f"({summary.headline} {summary.metrics[summary.headline]:.4f})")
    if suite_mode:
        write_suite(out / "suite_summary.json", summaries[tasks[0]].suite or Path(args.out).name, summaries)
    return lines


# LaTeX's special characters in labels and task names, as text (one pass: an escape is never escaped again)
LATEX = str.maketrans({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                       "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"})


def table(args) -> int:
    runs = []
    if args.label and len(args.label) != len(args.files):
        return _fail(f"nanoeval table: {len(args.label)} --label for {len(args.files)} files (one per file, in order)")
    for i, f in enumerate(args.files):
        try:
            data = json.loads(Path(f).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            return _fail(f"nanoeval table: {f}: cannot read ({e})")
        single = "tasks" not in data
        tasks = data.get("tasks") or {data.get("name", Path(f).parent.name): data}
        label = data.get("suite") or Path(f).parent.name
        models = {t.get("model", {}).get("id") for t in tasks.values()} - {None}
        runs.append([args.label[i] if args.label else
                     f"{label} ({', '.join(sorted(models))})" if models else label, tasks, f, single])
    benches = {next(iter(r[1].values())).get("task") for r in runs}
    if len(runs) > 1 and all(r[3] for r in runs) and len(benches) == 1 and None not in benches:
        return _one_benchmark(args, runs)  # one column per run, not a diagonal of differently named tasks
    labels = [r[0] for r in runs]
    for r in runs:  # two runs of one suite with one model: tell them apart by where they were written
        if labels.count(r[0]) > 1:
            r[0] = f"{r[0]} [{Path(r[2]).parent}]"
    columns = list(dict.fromkeys(t for _, tasks, _, _ in runs for t in tasks))
    for c in columns:  # a column compares like with like: say where its runs saw different examples
        _warn_examples(c, [(r[0], r[1][c], _task_dir(r, c)) for r in runs if c in r[1]])
    aggs = _shared_aggregates(runs, columns) if not any(r[3] for r in runs) else None  # suite files only
    runs = [(label, tasks) for label, tasks, _, _ in runs]
    heads = {c: next(tasks[c]["headline"] for _, tasks in runs if c in tasks) for c in columns}

    def cell(tasks, c, pm):
        if c not in tasks:
            return "-"
        s = tasks[c]
        n, text = (s.get("counts") or {}).get("examples"), _cell(s, s["headline"], pm)
        return text + (f" (n={n})" if n is not None and text != "-" else "")

    extra, more = [], [[] for _ in runs]  # the aggregate's two columns, headed by how many tasks they average
    if aggs is not None:
        k = len(aggs[0].tasks)
        extra = [f"macro avg ({k} shared task{'s' if k != 1 else ''})",
                 f"centered ({k} shared task{'s' if k != 1 else ''})"]
        partial = lambda a: " (partial)" if a.partial else ""  # noqa: E731
        more = [["-", "-"] if a.macro_average is None else
                [f"{100 * a.macro_average:.1f}{partial(a)}", f"{100 * a.centered_mean:.1f}{partial(a)}"]
                for a in aggs]
    if args.latex:
        esc = lambda text: text.translate(LATEX)  # noqa: E731
        print("\\begin{tabular}{l" + "c" * (len(columns) + len(extra)) + "}")
        print("\\toprule")
        print(" & ".join(["Checkpoint"] + [f"{esc(c)} ({esc(heads[c])})" for c in columns] + [esc(e) for e in extra])
              + " \\\\")
        print("\\midrule")
        for (label, tasks), m in zip(runs, more):
            print(" & ".join([esc(label)] + [cell(tasks, c, "$\\pm$") for c in columns] + m) + " \\\\")
        print("\\bottomrule\n\\end{tabular}")
    else:
        print("| Checkpoint | " + " | ".join([f"{c} ({heads[c]})" for c in columns] + extra) + " |")
        print("|---|" + "---|" * (len(columns) + len(extra)))
        for (label, tasks), m in zip(runs, more):
            print(f"| {label} | " + " | ".join([cell(tasks, c, "±") for c in columns] + m) + " |")
    return 0


def _shared_aggregates(runs: list, columns: list[str]) -> list:
    """Each run's suite aggregate (summary.aggregate) over one set of tasks: those every run has, with a value and
    a chance level in every run. Says on stderr which tasks it covers and why each other one is left out."""
    from nanoeval.summary import aggregate

    left = {c: "not in every run" for c in columns if not all(c in r[1] for r in runs)}
    shared = [c for c in columns if c not in left]
    first = [aggregate({c: r[1][c] for c in shared}) for r in runs]
    for c in shared:  # left out of one run's aggregate (no chance level, no value): out of every run's
        why = [f"{a.left_out[c]} in {r[0]}" for r, a in zip(runs, first) if c in a.left_out]
        if why:
            left[c] = "; ".join(why)
    common = [c for c in shared if c not in left]
    aggs = [aggregate({c: r[1][c] for c in common}, left) for r in runs]
    a = aggs[0]
    partial = [f"{r[0]}: {', '.join(f'{t} {why}' for t, why in x.incomplete.items())}"
               for r, x in zip(runs, aggs) if x.partial]
    print(f"nanoeval table: the suite aggregate (macro avg, centered) averages {len(a.tasks)} of {a.of} tasks, "
          f"those every run has with a value and a chance level ({', '.join(a.tasks) or 'none'})"
          + (f"; left out: {', '.join(f'{t} ({why})' for t, why in a.left_out.items())}" if a.left_out else "")
          + (f"; partial: {'; '.join(partial)}" if partial else ""), file=sys.stderr)
    return aggs


def _cell(s: dict, metric: str, pm: str) -> str:
    """`metric` of summary `s` in percent, ± its stderr, or its 95 % interval where the stderr says nothing
    (0 %, 100 %, one example); "-" where the run has no value."""
    v = (s.get("metrics") or {}).get(metric)
    if v is None:
        return "-"
    se, ci = (s.get("stderr") or {}).get(metric), (s.get("ci95") or {}).get(metric)
    spread = f" {pm} {100 * se:.1f}" if se else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    return f"{100 * v:.1f}{spread}"


def _task_dir(run: list, task: str) -> Path:
    """The report dir of `task` in a run read from `run[2]` (a summary.json beside it, or a suite's summary)."""
    return Path(run[2]).parent if run[3] else Path(run[2]).parent / task


def _warn_examples(what: str, entries: list[tuple[str, dict, Path]]) -> None:
    """Warn (stderr) when the runs of one column scored different examples: their counts, and where every run's
    predictions.jsonl sits beside its summary, how many ids all runs share."""
    if len(entries) < 2:
        return
    counts = [(label, (s.get("counts") or {}).get("examples")) for label, s, _ in entries]
    ids = []
    for _, _, d in entries:
        try:
            ids.append({json.loads(line)["id"] for line in (d / "predictions.jsonl").read_text().splitlines()
                        if line.strip()})
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            ids = None
            break
    if ids is not None and all(x == ids[0] for x in ids[1:]):
        return  # the same examples, whatever else differs
    if ids is None and len({n for _, n in counts}) == 1:
        return  # the same count and no ids to compare: nothing to say
    detail = ", ".join(f"{label}: {n} examples" for label, n in counts)
    if ids is not None:
        common = set.intersection(*ids)
        detail += f"; {len(common)} examples in all runs, {len(set.union(*ids)) - len(common)} in only some"
    print(f"nanoeval table: warning: {what}: the runs scored different examples ({detail}); their numbers are "
          "not directly comparable", file=sys.stderr)


def _one_benchmark(args, runs: list) -> int:
    """Single-task summaries of one benchmark: one row per metric (then per subject), one column per run, labelled
    by its model and example count."""
    summaries = [next(iter(tasks.values())) for _, tasks, _, _ in runs]
    names = []
    for i, ((label, tasks, f, _), s) in enumerate(zip(runs, summaries)):
        model = str((s.get("model") or {}).get("id") or "?")
        model = Path(model).name if Path(model).is_absolute() else model  # a local folder: its name
        n = (s.get("counts") or {}).get("examples")
        names.append(f"{args.label[i] if args.label else model} (n={n})")
    names = [f"{name} [{Path(run[2]).parent}]" if names.count(name) > 1 else name  # two runs of one model:
             for name, run in zip(names, runs)]                                    # where they were written
    _warn_examples(summaries[0].get("task", ""), [(nm, s, _task_dir(r, "")) for nm, s, r in zip(names, summaries, runs)])
    head = summaries[0]["headline"]
    metrics = [head] + [m for m in dict.fromkeys(k for s in summaries for k in s.get("metrics") or {})
                        if m != head and any((s.get("metrics") or {}).get(m) is not None for s in summaries)]
    subjects = list(dict.fromkeys(k for s in summaries for k in s.get("per_subject") or {}))
    rows = [(m, [_cell(s, m, "{pm}") for s in summaries]) for m in metrics]
    if len(subjects) > 1:  # one subject's row would repeat the headline
        metric = summaries[0].get("subject_metric", "acc")  # the headline's per-subject value (schema 4 on)
        for subject in subjects:
            per = [(s.get("per_subject") or {}).get(subject) for s in summaries]
            rows.append((subject, [_cell({"metrics": {"acc": p.get(metric)}, "stderr": {"acc": p.get(
                "stderr" if metric == "acc" else f"{metric}_stderr")}}, "acc", "{pm}") if p else "-" for p in per]))
    title = f"{summaries[0]['task']} ({head})"
    if args.latex:
        esc = lambda text: text.translate(LATEX)  # noqa: E731
        print("\\begin{tabular}{l" + "c" * len(names) + "}")
        print("\\toprule")
        print(" & ".join([esc(title)] + [esc(n) for n in names]) + " \\\\")
        print("\\midrule")
        for key, cells in rows:
            print(" & ".join([esc(key)] + [c.format(pm="$\\pm$") for c in cells]) + " \\\\")
        print("\\bottomrule\n\\end{tabular}")
    else:
        print(f"| {title} | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for key, cells in rows:
            print(f"| {key} | " + " | ".join(c.format(pm="±") for c in cells) + " |")
    return 0


def benchmarks(args) -> int:
    """Every benchmark of the registry: its `task:` name, what it is, the data columns it reads, and the `scoring:`
    options it can use with their real defaults (a default decided by another option or later says so)."""
    from nanoeval.benchmark import STRATEGIES
    from nanoeval.benchmarks import BENCHMARKS

    for name, b in BENCHMARKS.items():
        defaults, shown = b.options(strategy=b.strategies[0]).resolve(), b.options.shown_defaults()
        generates = [s for s in b.strategies if s != STRATEGIES[0]]  # rank_ll reads no generation option
        options = []
        for k in b.options.keys():
            if k in b.options.generation_only and not generates:
                continue
            value = shown.get(k, repr(getattr(defaults, k)))
            if k in b.options.generation_only and len(b.strategies) > 1:
                value += f" ({', '.join(generates)} only)"
            options.append(f"{k}={value}")
        print(f"{name}: {b.doc}")
        print(f"  strategies: {', '.join(b.strategies)}; dataset: {b.dataset.get('path')}")
        if b.columns:
            print(f"  columns: {', '.join(b.columns)} (other names: map them with dataset.columns)")
        print("  scoring: " + ", ".join(options))
    return 0


def compare(args) -> int:
    from nanoeval.compare import CompareError, compare_runs, html_table, markdown

    try:
        c = compare_runs(Path(args.a), Path(args.b))
    except (CompareError, ValueError) as e:
        return _fail(f"nanoeval compare: {e}")
    if args.html:
        Path(args.html).write_text(html_table(c), encoding="utf-8")
    print(json.dumps(c.to_dict(), indent=1) if args.json else markdown(c))
    return 0 if c.tasks else 2


def curves(args) -> int:
    from nanoeval import curves as learning

    dirs = [Path(d) for d in args.dirs]
    labels = args.label or [d.resolve().name for d in dirs]
    if len(labels) != len(dirs):
        return _fail(f"nanoeval curves: {len(labels)} --label for {len(dirs)} runs (one per run, in order)")
    runs = {}
    for label, d in zip(labels, dirs):
        try:
            runs[label] = learning.read(d)
        except (OSError, UnicodeDecodeError, KeyError, ValueError) as e:
            return _fail(f"nanoeval curves: {d}: no readable curves.csv ({e.__class__.__name__}: {e})")
    out = Path(args.out) if args.out else (dirs[0] if dirs[0].is_dir() else dirs[0].parent) / "curves.png"
    out.write_bytes(learning.plot(runs))
    print(f"curves: {out}")
    return 0


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nanoeval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    rescorers = _rescorers()
    r = sub.add_parser("rescore", help=f"re-score saved generations without a model ({', '.join(rescorers)})")
    r.add_argument("file")
    r.add_argument("--task", choices=list(rescorers), help="the benchmark whose parser re-scores the file (default: "
                   "the one whose keys the rows have)")
    for name, kw in _rescore_options().items():
        owners = ", ".join(b.name for b in rescorers.values() if name in b.rescore.options)
        r.add_argument(f"--{name.replace('_', '-')}", dest=name, **{
            **kw, "default": None, "help": f"{kw.get('help', '')} ({owners}; default: {kw.get('default')})".lstrip()})
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--out", help="write NanoEval's artifacts to this folder")
    m = sub.add_parser("merge", help="combine the report dirs of sharded runs")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--out", required=True)
    t = sub.add_parser("table", help="a paper-style table from summary.json / suite_summary.json files")
    t.add_argument("files", nargs="+")
    t.add_argument("--latex", action="store_true")
    t.add_argument("--label", action="append", help="a row label for each file, in order (repeat the option)")
    c = sub.add_parser("compare", help="two runs compared example by example (paired statistics)")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true", help="the comparison as JSON instead of a Markdown table")
    c.add_argument("--html", help="also write the table as an HTML file")
    v = sub.add_parser("curves", help="redraw learning curves from saved sweeps (several runs on one plot)")
    v.add_argument("dirs", nargs="+")
    v.add_argument("--label", action="append", help="a label for each run, in order (repeat the option)")
    v.add_argument("--out", help="the PNG to write (default: curves.png in the first run's folder)")
    sub.add_parser("benchmarks", help="list the benchmarks, their scoring options and defaults")
    args = ap.parse_args(argv)
    return {"rescore": rescore, "merge": merge, "table": table, "compare": compare, "curves": curves,
            "benchmarks": benchmarks}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
