"""`nanoeval` command line: work on saved outputs without a model.

    nanoeval rescore FILE.jsonl [--fallback seeded|count_wrong] [--seed N] [--out DIR]
        Re-score saved MMMU-Pro generations (rows with id, response, options, answer, subject) with the official
        parser: NanoEval's own predictions.jsonl or the official MMMU-Pro output files.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nanoeval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("rescore", help="re-score saved MMMU-Pro generations without a model")
    r.add_argument("file")
    r.add_argument("--fallback", choices=["seeded", "count_wrong"], default="seeded")
    r.add_argument("--seed", type=int, default=1234)
    r.add_argument("--out", help="write NanoEval's artifacts to this folder")
    args = ap.parse_args(argv)
    return {"rescore": rescore}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
