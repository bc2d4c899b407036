"""The ``framing`` command line: thin wrappers over importable functions.

Each command parses its arguments, calls one library function and prints the result.
Errors in the user's input (files, parameters) print one clear line and exit 1.
"""

from __future__ import annotations

import argparse
import os
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

    if args.require_better and not args.baseline:
        raise ValueError("--require-better needs --baseline MODEL")
    cfg = TrainConfig.from_toml(args.config, args.set)
    _, metrics = train(cfg, args.output, argv=["framing"] + sys.argv[1:] if args.argv is None else args.argv,
                       baseline=args.baseline, gate_on=args.gate_on, tolerance=args.tolerance)
    result = metrics.get("baseline_comparison")
    if args.require_better and not result["passed"]:
        pr = result["primary"]
        print(f"framing: gate failed: macro-F1 on {' + '.join(pr['sets'])} is {pr['new']:.4f}, below the baseline's "
              f"{pr['baseline']:.4f} (tolerance {args.tolerance}); the model was written to {args.output} "
              "but should not replace the baseline", file=sys.stderr)
        return 3
    return 0


def _label(args: argparse.Namespace) -> int:
    import time

    from framing.batch import LabelStats, label_stream, plan_label_job, print_table, run_label_job
    from framing.io import check_input, expand_inputs, iter_documents
    from framing.model import Classifier, model_fingerprint

    if not args.output:
        given = [flag for flag, on in (("--format", args.format), ("--resume", args.resume), ("--force", args.force),
                                       ("--rejects", args.rejects), ("--on-error skip", args.on_error == "skip"))
                 if on]
        if given:
            raise ValueError(f"{given[0]} needs -o OUTPUT (without -o, framing label prints a table and writes nothing)")
    if args.engine == "ray":
        from framing.ray_engine import run_ray_job

        if not args.output:
            raise ValueError("--engine ray needs -o OUTPUT")
        stats = run_ray_job(args.model, args.inputs, args.output, address=args.address, fmt=args.format,
                            force=args.force, unit=args.unit, text_column=args.text_column, id_column=args.id_column,
                            pattern=args.glob, input_format=args.input_format, quantize=args.quantize,
                            batch_size=args.batch_size, unsupported=_ray_unsupported(args))
        print(stats.summary(), file=sys.stderr)
        return 0
    if not (isinstance(args.workers, int) and args.workers >= 1):
        raise ValueError(f"--workers must be a positive integer, got {args.workers}")
    if args.workers > 1 and args.device == "cuda":
        raise ValueError("--workers runs CPU processes; on a GPU use one process and larger --batch-tokens")
    device = "cpu" if args.workers > 1 else args.device
    # Everything that can be checked without the model is checked before it loads.
    if args.output:
        plan = plan_label_job(args.inputs, args.output,
                              model_fingerprint(args.model, device=device, quantize=args.quantize,
                                                engine=args.int8_engine, recheck=args.int8_recheck),
                              fmt=args.format, resume=args.resume, force=args.force, on_error=args.on_error,
                              rejects=args.rejects, unit=args.unit, text_column=args.text_column,
                              id_column=args.id_column, pattern=args.glob, input_format=args.input_format,
                              window=args.window)
    else:
        files = expand_inputs(args.inputs, args.glob)
        for f in files:
            check_input(f, text_column=args.text_column, input_format_=args.input_format)
    t0 = time.time()
    if args.workers > 1:
        from framing.batch import WorkerPool

        clf = WorkerPool(args.model, args.workers, device=device, batch_size=args.batch_size,
                         max_batch_tokens=args.batch_tokens, quantize=args.quantize, engine=args.int8_engine,
                         recheck=args.int8_recheck)
    else:
        clf = Classifier.load(args.model, device=device, batch_size=args.batch_size,
                              max_batch_tokens=args.batch_tokens, quantize=args.quantize, engine=args.int8_engine,
                              recheck=args.int8_recheck)
    load_seconds = time.time() - t0
    try:
        if args.output:
            stats = run_label_job(clf, plan, progress=False if args.quiet else None)
            stats.load_seconds = load_seconds
            print(stats.summary() + f"\noutput: {args.output}", file=sys.stderr)
            return 0
        stats = LabelStats(load_seconds=load_seconds)
        docs = iter_documents(files, text_column=args.text_column, id_column=args.id_column,
                              input_format_=args.input_format)
        t0 = time.time()
        print_table(rec for _, recs, _ in label_stream(clf, docs, unit=args.unit, window=args.window, stats=stats)
                    for rec in recs)
        stats.seconds = time.time() - t0
        print(stats.summary(), file=sys.stderr)
        return 0
    finally:
        if args.workers > 1:
            clf.close()


def _ray_unsupported(args: argparse.Namespace) -> list[str]:
    """Options the Ray engine does not implement, when set to anything but their default."""
    flags = [("--workers", args.workers != 1), ("--resume", args.resume), ("--on-error skip", args.on_error != "fail"),
             ("--rejects", args.rejects),
             ("--device", args.device != "auto"), ("--window", args.window != 2048),
             ("--batch-tokens", args.batch_tokens is not None), ("--int8-engine", args.int8_engine != "auto")]
    return [flag for flag, on in flags if on]


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

    out = build_report(args.labelled, args.output, by=args.by, top_k=args.top_k, fmt=args.format)
    print(f"report: {out}")
    return 0


def _review(args: argparse.Namespace) -> int:
    from framing.report import iter_labelled
    from framing.review import build_queue, other_model, write_queue

    second = None
    if args.strategy == "disagreement":
        from framing.model import Classifier

        first = next(iter_labelled(args.labelled, args.format), None)
        name = args.second_model or other_model(first.model if first else None)
        clf = Classifier.load(name, device=args.device, quantize=args.quantize)
        second = clf.predict_proba
        print(f"second model: {clf.name} ({name})", file=sys.stderr)
    queue, stats = build_queue(iter_labelled(args.labelled, args.format), n=args.n, strategy=args.strategy,
                               second=second, per_doc=args.per_doc, max_similarity=args.max_similarity,
                               context=args.context)
    write_queue(queue, args.output)
    labels = {}
    for item in queue:
        labels[item["label"]] = labels.get(item["label"], 0) + 1
    extra = f", {stats['disagreements']} disagreements" if "disagreements" in stats else ""
    print(f"{stats['queued']} of {stats['sentences']} sentences queued ({args.strategy}{extra}; "
          f"{len({i['doc_id'] for i in queue})} documents; by label: "
          + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())) + f") -> {args.output}")
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from framing.annotate import open_store, serve

    store = open_store(args.queue, args.output, args.annotator, domain=args.domain, register=args.register)
    server = serve(store, host=args.host, port=args.port)
    host, port = server.server_address[:2]
    st = store.state()
    print(f"annotating {args.queue}: {st['done']} labelled, {st['skipped']} skipped of {st['total']}; "
          f"decisions go to {args.output}", file=sys.stderr)
    print(f"open http://{host}:{port}/ (keys 1-4 label, u undo, s skip; Ctrl-C stops)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(f"http://{host}:{port}/")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _audit(args: argparse.Namespace) -> int:
    import json

    from framing.audit import audit, corpus_records

    records = corpus_records(args.paths or None, splits=args.splits)
    flagged, summary = audit(records, features=args.features, encoder=args.encoder, folds=args.folds,
                             seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    with open(args.output, "w", encoding="utf-8") as f:
        for row in flagged:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{summary['flagged']} of {summary['records']} sentences flagged as likely label errors "
          f"(out-of-fold macro-F1 {summary['oof_macro_f1']:.3f}); all in {args.output}")
    print("given -> suggested: " + ", ".join(f"{k} {v}" for k, v in summary["pairs"].items()))
    for row in flagged[: args.show]:
        text = row["text"] if len(row["text"]) <= 110 else row["text"][:107] + "..."
        print(f"{row['rank']:>4}  {row['score']:.3f}  {row['given']:>13} -> {row['suggested']:<13} {row['where']}\n      {text}")
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default in (None, False, [], argparse.SUPPRESS)
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error instead of a one-line message")
    parser = argparse.ArgumentParser(
        prog="framing", formatter_class=_HelpFormatter,
        description="Label sentences by their role in a contested claim: allegation, denial, justification, other.",
    )
    parser.add_argument("--version", action="version", version=f"framing {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of a one-line message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, **kw):
        return sub.add_parser(name, parents=[common], formatter_class=_HelpFormatter, **kw)

    data = add("data", help="corpus tools").add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = data.add_parser(
        "check", parents=[common], formatter_class=_HelpFormatter,
        help="validate corpus files and print counts",
        description="Validate schema, labels, ids, offsets and splits; find exact and near duplicates; "
        "print counts by label x domain x register. Exits 1 naming file:line for each problem.",
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="JSONL files or folders (default: seeds/corpus)")
    check.add_argument("--splits", default=None, help="split manifest (default: seeds/splits.json for the default corpus; "
                       "otherwise each file is its own split)")
    check.add_argument("--near-threshold", type=float, default=0.9,
                       help="cosine similarity from which two sentences are near duplicates")
    check.set_defaults(func=_data_check)

    tr = add("train", help="train a model from the corpus",
             description="Train a model (fine-tuned transformer or a baseline) and write it, "
             "with its metrics, config, provenance and model card, to DIR.")
    tr.add_argument("--config", default=None,
                    help="TOML config, e.g. training/configs/accurate.toml (default: TrainConfig's defaults)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set epochs=3 (repeatable; default: none)")
    tr.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the model to (required)")
    tr.add_argument("--baseline", default=None, metavar="MODEL",
                    help="after training, compare with this model (name or folder) on test, the held-out splits "
                    "and real_dev, with paired tests; written to DIR/baseline_comparison.md (default: no comparison)")
    tr.add_argument("--require-better", action="store_true",
                    help="exit 3 unless the new model's macro-F1 on the gate sets is at least the baseline's "
                    "(a CI gate; needs --baseline)")
    tr.add_argument("--gate-on", nargs="+", default=None, metavar="SET",
                    help="sets pooled for the gate's primary metric (default: test cross_domain world_heldout)")
    tr.add_argument("--tolerance", type=float, default=0.0,
                    help="how far below the baseline's primary metric the new model may be and still pass (default: 0)")
    tr.set_defaults(func=_train, argv=None)

    lab = add(
        "label", help="label the sentences of documents (txt, csv/tsv, jsonl, parquet, stdin)",
        description="Split documents into sentences and label each one. With -o, the output (JSONL, CSV or "
        "Parquet) is committed in chunks: an interrupted run continues with --resume. Without -o, a table.")
    lab.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders (recursive) or - for stdin")
    lab.add_argument("-o", "--output", default=None, metavar="OUT",
                     help="output file, .jsonl, .csv or .parquet (default: print a table, write nothing)")
    lab.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                     help="output format (default: from the extension of OUT; needs -o)")
    lab.add_argument("--model", default=None,
                     help="a shipped model's name (accurate, fast) or a model folder (default: accurate)")
    lab.add_argument("--text-column", default="text", metavar="COL",
                     help="column (CSV/TSV/Parquet) or key (JSONL) holding the text")
    lab.add_argument("--id-column", default="id", metavar="COL",
                     help="column or key holding the document id (default: id; records without one get "
                          "their file:line)")
    lab.add_argument("--unit", choices=("document", "sentence"), default="document",
                     help="records are documents to split into sentences, or single sentences")
    lab.add_argument("--glob", default="**/*.txt", help="files to take from folders")
    lab.add_argument("--input-format", choices=("txt", "csv", "tsv", "jsonl", "parquet"), default=None,
                     help="input format (default: from each file's extension; jsonl for stdin)")
    lab.add_argument("--resume", action="store_true", help="continue an interrupted run of the same command (needs -o)")
    lab.add_argument("--force", action="store_true", help="overwrite an existing output and discard an interrupted run")
    lab.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                     help="bad input rows: stop with file:line, or skip them into the rejects file")
    lab.add_argument("--rejects", default=None, metavar="FILE", help="rejects file (default: OUT.rejects.jsonl)")
    lab.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="where the model runs; auto takes CUDA when torch sees it (fp16 there)")
    lab.add_argument("--quantize", action="store_true",
                     help="int8 inference on CPU: faster, labels as deterministic as fp32 (default: fp32)")
    lab.add_argument("--int8-engine", choices=("auto", "torch", "ctranslate2"), default="auto",
                     help="with --quantize: the int8 engine; auto takes CTranslate2 for models it runs "
                          "(both shipped models: 1.5x the torch path on accurate, 1.5-2x on fast, where its "
                          "labels agree with fp32 a little less often, 98-99%% against 99.5%%) and torch "
                          "otherwise (default: auto)")
    lab.add_argument("--int8-recheck", type=float, default=None, metavar="MARGIN",
                     help="with --quantize: relabel in fp32 each sentence whose int8 top-two logit margin is "
                          "under MARGIN, where int8 could flip its label (default: the model's int8_recheck, 0 for "
                          "both shipped models; 0.5 rechecks about 4%% of fast's sentences at 0.7x its int8 "
                          "rate); the fp32 weights are loaded too")
    lab.add_argument("--batch-size", type=int, default=64, help="at most this many sentences per forward pass")
    lab.add_argument("--batch-tokens", type=int, default=None,
                     help="at most this many tokens, padding included, per forward pass (default: 1024 on CPU, "
                          "8192 on CUDA); lower it to use less memory")
    lab.add_argument("--window", type=int, default=2048,
                     help="sentences read, deduplicated and labelled together; one output commit each")
    lab.add_argument("--workers", type=int, default=1, metavar="N",
                     help="processes, each with its own copy of the model and a share of the CPU threads, "
                          "labelling whole windows; output and --resume are unchanged")
    lab.add_argument("--quiet", action="store_true", help="no progress bar (default: a bar when stderr is a terminal)")
    lab.add_argument("--engine", choices=("local", "ray"), default="local", help="run locally or on a Ray cluster")
    lab.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    lab.set_defaults(func=_label)

    ev = add("eval", help="evaluate and compare models",
             description="Metrics with bootstrap CIs, calibration, per-domain breakdown, errors and "
             "paired tests, written to DIR as report.json, report.md and PNG plots.")
    ev.add_argument("--model", action="append", default=[], metavar="M",
                    help="a shipped model's name or a model folder (repeatable; default: none, required "
                         "unless --cross-domain)")
    ev.add_argument("--data", action="append", default=[], metavar="D",
                    help="labelled JSONL, a corpus split (train, dev, test, cross-domain, world-heldout) or "
                         "real-dev (repeatable; default: none, required unless --cross-domain)")
    ev.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the report (required)")
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    ev.add_argument("--cross-domain", action="store_true", help="leave-one-domain-out training and evaluation")
    ev.add_argument("--config", default=None, help="training config for --cross-domain (default: none; required there)")
    ev.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of --config, e.g. --set epochs=1 (repeatable; default: none)")
    ev.add_argument("--domains", nargs="+", default=None,
                    help="held-out domains for --cross-domain (default: all)")
    ev.set_defaults(func=_eval)

    rp = add("report", help="an HTML overview of a labelled corpus",
             description="Label distribution overall, per document and per source/date column, with "
             "plots and the most confident examples per label, as one self-contained HTML file.")
    rp.add_argument("labelled", metavar="LABELLED", help="output of framing label (.jsonl, .csv or .parquet)")
    rp.add_argument("-o", "--output", required=True, metavar="HTML", help="HTML file to write (required)")
    rp.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                    help="format of LABELLED (default: from its extension, else its content)")
    rp.add_argument("--by", nargs="+", default=None, metavar="COL",
                    help="columns to break the labels down by (default: source/outlet/country/date-like columns)")
    rp.add_argument("--top-k", type=int, default=5, help="examples per label")
    rp.set_defaults(func=_report)

    ex = add("export", help="write a standalone Hugging Face model directory",
             description="Merge adapter weights and write a directory that "
             "transformers.pipeline('text-classification') loads with no framing code.")
    ex.add_argument("model", metavar="MODEL", help="a shipped model's name or a model folder")
    ex.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write (required)")
    ex.set_defaults(func=_export)

    rv = add("review", help="choose the labelled sentences most worth a human look",
             description="Read the output of framing label and write a queue of the sentences to check first "
             "(for framing annotate): low margin between the top two labels, disagreement with a second model, "
             "or uncertain sentences taken from each label in turn; at most --per-doc per document, no near-copies.")
    rv.add_argument("labelled", metavar="LABELLED", help="output of framing label (.jsonl, .csv or .parquet)")
    rv.add_argument("-o", "--output", required=True, metavar="QUEUE", help="queue file to write, JSONL (required)")
    rv.add_argument("--n", type=int, default=200, help="sentences in the queue")
    rv.add_argument("--strategy", choices=("uncertainty", "disagreement", "diverse"), default="uncertainty",
                    help="how to rank sentences")
    rv.add_argument("--second-model", default=None, metavar="MODEL",
                    help="for disagreement: the model to compare with (default: the other shipped model)")
    rv.add_argument("--per-doc", type=int, default=2, help="at most this many queued sentences per document")
    rv.add_argument("--max-similarity", type=float, default=0.6,
                    help="skip a sentence whose word-trigram Jaccard similarity to a queued one reaches this")
    rv.add_argument("--context", type=int, default=2, help="neighbouring sentences kept on each side")
    rv.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                    help="format of LABELLED (default: from its extension, else its content)")
    rv.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="device of the second model")
    rv.add_argument("--quantize", action="store_true", help="run the second model in int8 on CPU")
    rv.set_defaults(func=_review)

    an = add("annotate", help="label a review queue on a local web page",
             description="Serve a page on 127.0.0.1 showing one queued sentence at a time with its context and the "
             "model's label; keys 1-4 choose a label, u undoes, s skips. Every decision is appended to OUT and "
             "flushed at once; reopening continues where it stopped. OUT is in the corpus schema.")
    an.add_argument("queue", metavar="QUEUE", help="queue written by framing review")
    an.add_argument("-o", "--output", required=True, metavar="OUT", help="annotations file, JSONL (required)")
    an.add_argument("--annotator", default=os.environ.get("USER") or "annotator",
                    help="name written into every decision")
    an.add_argument("--host", default="127.0.0.1", help="address to serve on")
    an.add_argument("--port", type=int, default=8765, help="port to serve on (0: any free port)")
    an.add_argument("--domain", default="annotated", help="domain of sentences whose queue entry has none")
    an.add_argument("--register", default="wire", help="register of sentences whose queue entry has none")
    an.add_argument("--open", action="store_true", help="open the page in the default browser")
    an.set_defaults(func=_annotate)

    au = add("audit", help="find likely label errors in the corpus (confident learning)",
             description="Out-of-fold probabilities (folds by document; logistic regression on frozen encoder "
             "embeddings or tf-idf) and cleanlab's confident learning: the sentences whose given label is "
             "most likely wrong, with a suggested label, a score and file:line.")
    au.add_argument("paths", nargs="*", metavar="CORPUS", help="JSONL files or folders (default: seeds/corpus)")
    au.add_argument("-o", "--output", default="audit.jsonl", metavar="OUT", help="flagged sentences, JSONL")
    au.add_argument("--splits", default=None, help="split manifest (default: as framing data check)")
    au.add_argument("--features", choices=("embedding", "tfidf"), default="embedding",
                    help="features of the out-of-fold model")
    au.add_argument("--encoder", default="all-mpnet-base-v2", help="encoder for --features embedding")
    au.add_argument("--folds", type=int, default=5, help="folds (by document)")
    au.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default: 0)")
    au.add_argument("--show", type=int, default=20, help="flagged sentences to print")
    au.set_defaults(func=_audit)
    return parser


def _user_error_types() -> tuple[type, ...]:
    """Exceptions that mean the user's input, files or environment are at fault, not framing."""
    types: list[type] = [OSError, ValueError, ImportError, UnicodeError]
    try:
        import pyarrow as pa

        types.append(pa.ArrowException)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    return tuple(types)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 0 ok, 1 a user error (one line on stderr), 2 an internal
    error (one line, or the traceback with --debug), 3 ``train --require-better`` failed its gate,
    130 interrupted."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("FRAMING_DEBUG") == "1"
    # The CLI prints its own messages; transformers' load reports ("classifier.weight MISSING" for
    # the head an adapter brings) and weight-loading bars only bury them.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("framing: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `framing label doc.txt | head`
        sys.stderr.close()
        return 0
    except Exception as e:
        if debug:
            raise
        if isinstance(e, _user_error_types()):
            print(f"framing: error: {e}", file=sys.stderr)
            return 1
        print(f"framing: internal error: {type(e).__name__}: {e} (this is a bug; run with --debug for the "
              "traceback and please report it)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
