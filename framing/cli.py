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


def _train(args: argparse.Namespace) -> int:
    from framing.training import TrainConfig, train

    cfg = TrainConfig.from_toml(args.config, args.set)
    train(cfg, args.output, argv=["framing"] + sys.argv[1:] if args.argv is None else args.argv)
    return 0


def _label(args: argparse.Namespace) -> int:
    from framing.batch import LabelStats, label_stream, print_table, run_label_job
    from framing.io import expand_inputs, iter_documents
    from framing.model import Classifier

    if args.engine == "ray":
        from framing.ray_engine import run_ray_job

        if not args.output:
            raise ValueError("--engine ray needs -o OUTPUT")
        stats = run_ray_job(args.model, args.inputs, args.output, address=args.address, fmt=args.format,
                            force=args.force, unit=args.unit, text_column=args.text_column, id_column=args.id_column,
                            pattern=args.glob, input_format=args.input_format, quantize=args.quantize,
                            batch_size=args.batch_size)
        print(stats.summary(), file=sys.stderr)
        return 0
    clf = Classifier.load(args.model, device=args.device, batch_size=args.batch_size,
                          max_batch_tokens=args.batch_tokens, quantize=args.quantize)
    if args.output:
        stats = run_label_job(clf, args.inputs, args.output, fmt=args.format, resume=args.resume, force=args.force,
                              on_error=args.on_error, rejects=args.rejects, unit=args.unit,
                              text_column=args.text_column, id_column=args.id_column, pattern=args.glob,
                              input_format=args.input_format, window=args.window,
                              progress=False if args.quiet else None)
        print(stats.summary() + f"\noutput: {args.output}", file=sys.stderr)
        return 0
    stats = LabelStats()
    docs = iter_documents(expand_inputs(args.inputs, args.glob), text_column=args.text_column,
                          id_column=args.id_column, input_format_=args.input_format)
    print_table(rec for _, recs, _ in label_stream(clf, docs, unit=args.unit, window=args.window, stats=stats)
                for rec in recs)
    return 0


def _export(args: argparse.Namespace) -> int:
    from framing.export import export

    out = export(args.model, args.output)
    print(f"exported {args.model} -> {out} (load it with transformers.pipeline('text-classification', model='{out}'))")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from framing.evaluation import cross_domain, evaluate

    if args.cross_domain:
        from framing.training import TrainConfig

        if not args.config:
            raise ValueError("--cross-domain needs --config (the training config to run per held-out domain)")
        report = cross_domain(TrainConfig.from_toml(args.config, args.set), args.output, domains=args.domains)
        print(f"mean held-out macro-F1 {report['mean_macro_f1']:.3f}; report in {args.output}/cross_domain.md")
        return 0
    if not args.model or not args.data:
        raise ValueError("framing eval needs --model and --data (or --cross-domain --config)")
    report = evaluate(args.model, args.data, args.output, n_boot=args.bootstrap)
    for dname, entry in report["data"].items():
        for mname, r in entry["results"].items():
            lo, hi = r["ci"]["macro_f1"]
            print(f"{dname:<14} {mname:<40} macro-F1 {r['macro_f1']:.3f} [{lo:.3f}, {hi:.3f}]  acc {r['accuracy']:.3f}")
    print(f"report: {args.output}/report.md")
    return 0


def _report(args: argparse.Namespace) -> int:
    from framing.report import build_report

    out = build_report(args.labelled, args.output, by=args.by, top_k=args.top_k)
    print(f"report: {out}")
    return 0


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

    tr = sub.add_parser("train", help="train a model from the corpus",
                        description="Train a model (fine-tuned transformer or a baseline) and write it, "
                        "with its metrics, config, provenance and model card, to DIR.")
    tr.add_argument("--config", default=None, help="TOML config (e.g. training/configs/accurate.toml)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set epochs=3 (repeatable)")
    tr.add_argument("-o", "--output", required=True, metavar="DIR")
    tr.set_defaults(func=_train, argv=None)

    lab = sub.add_parser(
        "label", help="label the sentences of documents (txt, csv/tsv, jsonl, parquet, stdin)",
        description="Split documents into sentences and label each one. With -o, the output (JSONL, CSV or "
        "Parquet) is committed in chunks: an interrupted run continues with --resume. Without -o, a table.")
    lab.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (recursive) or - for stdin")
    lab.add_argument("-o", "--output", default=None, metavar="OUT", help="output file (.jsonl, .csv or .parquet)")
    lab.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                     help="output format (default: from the extension of OUT)")
    lab.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    lab.add_argument("--text-column", default="text")
    lab.add_argument("--id-column", default="id")
    lab.add_argument("--unit", choices=("document", "sentence"), default="document",
                     help="records are documents to split into sentences, or single sentences")
    lab.add_argument("--glob", default="**/*.txt", help="files to take from folders (default: **/*.txt)")
    lab.add_argument("--input-format", choices=("txt", "csv", "tsv", "jsonl", "parquet"), default=None,
                     help="input format when the extension does not say (stdin: jsonl by default)")
    lab.add_argument("--resume", action="store_true", help="continue an interrupted run of the same command")
    lab.add_argument("--force", action="store_true", help="overwrite an existing output")
    lab.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                     help="bad input rows: stop (default) or skip them into the rejects file")
    lab.add_argument("--rejects", default=None, help="rejects file (default: OUT.rejects.jsonl)")
    lab.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    lab.add_argument("--quantize", action="store_true", help="int8 inference on CPU (faster)")
    lab.add_argument("--batch-size", type=int, default=64, help="at most this many sentences per forward pass (default: 64)")
    lab.add_argument("--batch-tokens", type=int, default=None,
                     help="at most this many tokens, padding included, per forward pass (default: 1024 on CPU, "
                          "8192 on CUDA); lower it to use less memory")
    lab.add_argument("--window", type=int, default=2048,
                     help="sentences read, deduplicated and length-sorted together; one output commit each")
    lab.add_argument("--quiet", action="store_true", help="no progress bar")
    lab.add_argument("--engine", choices=("local", "ray"), default="local", help="run locally or on a Ray cluster")
    lab.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    lab.set_defaults(func=_label)

    ev = sub.add_parser("eval", help="evaluate and compare models",
                        description="Metrics with bootstrap CIs, calibration, per-domain breakdown, errors and "
                        "paired tests, written to DIR as report.json, report.md and PNG plots.")
    ev.add_argument("--model", action="append", default=[], metavar="M", help="model directory (repeatable)")
    ev.add_argument("--data", action="append", default=[], metavar="D",
                    help="labelled JSONL, a corpus split (train, dev, test, cross-domain) or real-dev (repeatable)")
    ev.add_argument("-o", "--output", required=True, metavar="DIR")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    ev.add_argument("--cross-domain", action="store_true", help="leave-one-domain-out training and evaluation")
    ev.add_argument("--config", default=None, help="training config for --cross-domain")
    ev.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ev.add_argument("--domains", nargs="+", default=None, help="held-out domains for --cross-domain (default: all)")
    ev.set_defaults(func=_eval)

    rp = sub.add_parser("report", help="an HTML overview of a labelled corpus",
                        description="Label distribution overall, per document and per source/date column, with "
                        "plots and the most confident examples per label, as one self-contained HTML file.")
    rp.add_argument("labelled", metavar="LABELLED", help="output of framing label (.jsonl, .csv or .parquet)")
    rp.add_argument("-o", "--output", required=True, metavar="HTML")
    rp.add_argument("--by", nargs="+", default=None, metavar="COL",
                    help="columns to break the labels down by (default: source/outlet/country/date-like columns)")
    rp.add_argument("--top-k", type=int, default=5, help="examples per label (default: 5)")
    rp.set_defaults(func=_report)

    ex = sub.add_parser("export", help="write a standalone Hugging Face model directory",
                        description="Merge adapter weights and write a directory that "
                        "transformers.pipeline('text-classification') loads with no framing code.")
    ex.add_argument("model", metavar="MODEL")
    ex.add_argument("-o", "--output", required=True, metavar="DIR")
    ex.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The CLI prints its own messages; transformers' load reports ("classifier.weight MISSING" for
    # the head an adapter brings) and weight-loading bars only bury them.
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ModuleNotFoundError, ValueError) as e:
        print(f"framing: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
