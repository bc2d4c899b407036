"""The ``framing`` command line: thin wrappers over importable functions.

Each command parses its arguments, calls one library function and prints the result.
Errors in the user's input (files, parameters) print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import sys

from framing import __version__


def _data_check(args: argparse.Namespace) -> int:
    from framing.data import check_corpus

    report = check_corpus(args.paths, splits=args.splits, near_threshold=args.near_threshold)
    print(report.format_counts())
    print()
    for p in report.problems:
        print(p, file=sys.stderr)
    if report.ok:
        print("data check: 0 problems")
        return 0
    print(f"data check: {len(report.problems)} problem(s)", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framing",
        description="Label sentences by their role in a contested claim: allegation, denial, justification, other.",
    )
    parser.add_argument("--version", action="version", version=f"framing {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="corpus tools").add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = data.add_parser(
        "check",
        help="validate corpus files and print counts",
        description="Validate schema, labels, ids, offsets and splits; find exact and near duplicates; "
        "print counts by label x domain x register. Exits 1 naming file:line for each problem.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="JSONL files or folders (default: seeds/corpus)")
    check.add_argument("--splits", default=None, help="split manifest (default: seeds/splits.json for the default corpus; "
                       "otherwise each file is its own split)")
    check.add_argument("--near-threshold", type=float, default=0.9,
                       help="cosine similarity from which two sentences are near duplicates (default: 0.9)")
    check.set_defaults(func=_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"framing: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
