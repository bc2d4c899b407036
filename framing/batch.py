"""Batch labelling at corpus scale: streaming, deduplicated, resumable.

:func:`label_stream` turns documents into labelled sentence records with bounded memory: it
gathers documents into a window of about ``window`` sentences, labels the window's distinct
sentences once (an LRU cache reuses the labels of exact duplicates across windows; the
classifier sorts them by length so padding is small), and yields records in input order.

:func:`run_label_job` drives a whole job: it reads inputs, commits each window of output as an
atomically renamed part file in ``OUTPUT.partial/`` with a manifest, and joins the parts into
the output at the end. After a crash or Ctrl-C, ``resume=True`` continues after the last
committed part, so no record is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from framing.io import (Document, InputError, expand_inputs, iter_documents, join_parts, output_format,
                        total_bytes, write_part)
from framing.labels import LABELS

RECORD_FIELDS = ("doc_id", "sent_id", "start", "end", "text", "label", "confidence", "probs", "model")


@dataclass
class LabelStats:
    """What a labelling run did; printed as the end-of-run summary."""

    documents: int = 0
    sentences: int = 0
    labelled: int = 0
    """Distinct sentences sent to the model (the rest reused a duplicate's label)."""
    truncated: int = 0
    rejects: int = 0
    empty_documents: int = 0
    labels: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    """Reading, labelling and writing (summed over resumed runs)."""
    load_seconds: float = 0.0
    """Loading the model (this run's; set by the caller)."""

    def summary(self) -> str:
        rate = self.sentences / self.seconds if self.seconds else 0.0
        total = self.seconds + self.load_seconds
        overall = f"; {self.sentences / total:.0f}/s counting the {self.load_seconds:.1f} s model load" \
            if self.load_seconds else ""
        lines = [f"{self.sentences} sentences from {self.documents} documents in {total:.1f} s "
                 f"({rate:.0f} sentences/s labelling{overall}); "
                 f"{self.sentences - self.labelled} exact duplicates reused a label"]
        lines.append("labels: " + ", ".join(
            f"{lab} {self.labels[lab]} ({self.labels[lab] / max(self.sentences, 1):.1%})" for lab in LABELS))
        lines.append(f"truncated to the model's length limit: {self.truncated}; rejected input rows: {self.rejects}; "
                     f"empty documents: {self.empty_documents}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = dict(self.labels)
        return d


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_(self, key):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key, value):
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


def _split(doc: Document, unit: str) -> list[tuple[int, int]]:
    from framing.segment import split_sentences

    if unit == "sentence":
        text = doc.text
        if not text.strip():
            return []
        lo = len(text) - len(text.lstrip())
        return [(lo, len(text.rstrip()))]
    return split_sentences(doc.text)


def label_stream(clf, docs: Iterable[Document], *, unit: str = "document", window: int = 2048,
                 cache_size: int = 100_000, stats: LabelStats | None = None) -> Iterator[tuple[Document, list[dict], bool]]:
    """Label documents; yield ``(document, records, last_of_window)`` in input order.

    The model runs once per window; ``last_of_window`` marks the last document of one. With an
    in-process classifier, no document after it has been read from ``docs`` when it is yielded.
    With a :class:`WorkerPool` (anything with ``submit``), up to ``2 x workers`` windows are read
    ahead so that every worker stays busy; records still come out in input order, and
    :func:`run_label_job` tracks each document's input position itself, so commits stay exact.

    Args:
        clf: A :class:`framing.Classifier` or a :class:`WorkerPool`.
        docs: Documents, e.g. from :func:`framing.io.iter_documents`.
        unit: ``document`` (split into sentences) or ``sentence`` (each text is one sentence).
        window: Sentences gathered before the model runs; bounds memory and the sort window.
        cache_size: Distinct sentences whose labels are remembered for duplicates.
        stats: Updated in place when given.
    """
    if unit not in ("document", "sentence"):
        raise ValueError(f"unit must be 'document' or 'sentence', got {unit!r}")
    stats = stats if stats is not None else LabelStats()
    cache = _LRU(cache_size)

    def windows():
        pending: list[tuple[Document, list[tuple[int, int]]]] = []
        n_pending = 0
        for doc in docs:
            spans = _split(doc, unit)
            pending.append((doc, spans))
            n_pending += len(spans)
            if n_pending >= window:
                yield pending
                pending, n_pending = [], 0
        if pending:
            yield pending

    def todo_of(pending):
        # First-seen order (a set's order would follow per-process string hashing); the order no
        # longer changes any number (one-length batches), but it keeps runs reproducible to the byte.
        texts = dict.fromkeys(doc.text[s:e] for doc, spans in pending for s, e in spans)
        return [t for t in texts if cache.get_(t) is None]

    def emit(pending, todo, probs, truncated):
        stats.truncated += truncated
        stats.labelled += len(todo)
        window_probs = dict(zip(todo, probs))
        for t, p in window_probs.items():
            cache.put(t, p)
        for n, (doc, spans) in enumerate(pending, 1):
            records = []
            for k, (s, e) in enumerate(spans):
                text = doc.text[s:e]
                p = window_probs.get(text)
                if p is None:
                    p = cache.get_(text)
                if p is None:  # evicted before use (cache smaller than a window): label again
                    p = _predict(clf, [text])[0][0]
                    stats.labelled += 1
                i = int(p.argmax())
                rec = {"doc_id": doc.doc_id, "sent_id": k, "start": s, "end": e, "text": text, "label": LABELS[i],
                       "confidence": round(float(p[i]), 4),
                       "probs": {lab: round(float(v), 4) for lab, v in zip(LABELS, p)}, "model": clf.name}
                for key, v in doc.extra.items():
                    rec[key if key not in rec else f"input_{key}"] = v
                records.append(rec)
                stats.labels[LABELS[i]] += 1
            stats.sentences += len(spans)
            stats.documents += 1
            stats.empty_documents += not spans
            yield doc, records, n == len(pending)

    if not hasattr(clf, "submit"):
        for pending in windows():
            todo = todo_of(pending)
            probs, truncated = _predict(clf, todo) if todo else (np.zeros((0, len(LABELS))), 0)
            yield from emit(pending, todo, probs, truncated)
        return

    from collections import deque

    inflight: deque = deque()
    ahead = 2 * clf.workers
    source = windows()
    exhausted = False
    while True:
        while not exhausted and len(inflight) < ahead:
            pending = next(source, None)
            if pending is None:
                exhausted = True
                break
            todo = todo_of(pending)
            inflight.append((pending, todo, clf.submit(todo) if todo else None))
        if not inflight:
            return
        pending, todo, future = inflight.popleft()
        probs, truncated = future.result() if future is not None else (np.zeros((0, len(LABELS))), 0)
        yield from emit(pending, todo, probs, truncated)


def _predict(clf, texts: list[str]):
    """Probabilities and the number of sentences the model truncated."""
    if hasattr(clf, "submit"):
        return clf.submit(texts).result()
    before = getattr(clf.backend, "truncated", 0)
    probs = clf.predict_proba(texts)
    return probs, getattr(clf.backend, "truncated", 0) - before


# ------------------------------------------------------------------------------- worker processes

_WORKER_CLF = None


def _init_worker(model, device, batch_size, max_batch_tokens, quantize, threads, engine="auto", recheck=None):
    import torch

    from framing.model import Classifier

    global _WORKER_CLF
    # Ctrl-C is the main process's to handle: it stops the pool and says how to resume; workers
    # printing their own KeyboardInterrupt tracebacks would bury that line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    _WORKER_CLF = Classifier.load(model, device=device, batch_size=batch_size, max_batch_tokens=max_batch_tokens,
                                  quantize=quantize, engine=engine, recheck=recheck)


def _worker_predict(texts):
    return _predict(_WORKER_CLF, texts)


class WorkerPool:
    """``--workers N``: N processes, each with its own copy of the model and its share of the CPU
    threads, labelling whole windows. Used in place of a Classifier by :func:`label_stream`.

    The processes are started with ``spawn`` (forking a process that has run torch can deadlock).
    Labels equal a single process's: a sentence's numbers do not depend on which window or
    process labels it (one-length batches, per-row int8 scales).
    """

    def __init__(self, model, workers: int, *, device: str = "cpu", batch_size: int = 64,
                 max_batch_tokens: int | None = None, quantize: bool = False, threads: int | None = None,
                 engine: str = "auto", recheck: float | None = None):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from framing.model import model_fingerprint

        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"--workers must be a positive integer, got {workers!r}")
        if device == "cuda":
            raise ValueError("--workers runs CPU processes; on a GPU use one process (--workers 1) and larger batches")
        import torch

        self.workers = workers
        self.threads = threads or max(1, torch.get_num_threads() // workers)
        self._fingerprint = model_fingerprint(model, device="cpu", quantize=quantize, engine=engine,
                                              recheck=recheck)
        self.name = self._fingerprint["name"]
        self.backend = None
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                         initargs=(str(model) if model is not None else None, "cpu", batch_size,
                                                   max_batch_tokens, quantize, self.threads, engine, recheck))
        # Load the model in every worker now, so that a broken model fails here, not mid-job.
        list(self._pool.map(_worker_predict, [[] for _ in range(workers)]))

    def fingerprint(self) -> dict:
        return dict(self._fingerprint)

    def submit(self, texts: list[str]):
        return self._pool.submit(_worker_predict, texts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------- the job


def print_table(records: Iterable[dict], file=None, width: int = 88) -> int:
    """A readable table for the terminal: label, confidence, sentence (shortened)."""
    file = file or sys.stdout
    n = 0
    print(f"{'doc':<14} {'#':>3}  {'label':<13} {'conf':>5}  text", file=file)
    for r in records:
        text = r["text"].replace("\n", " ")
        text = text if len(text) <= width else text[: width - 1] + "…"
        print(f"{str(r['doc_id'])[:14]:<14} {r['sent_id']:>3}  {r['label']:<13} {r['confidence']:>5.2f}  {text}", file=file)
        n += 1
    return n


def _fingerprint(files: list[str]) -> list:
    return [[f, os.path.getsize(f), int(os.path.getmtime(f))] if f != "-" else ["-", None, None] for f in files]


@dataclass
class LabelJob:
    """A checked labelling job, ready to run: made by :func:`plan_label_job` before any model loads."""

    inputs: list[str]
    files: list[str]
    output: Path
    fmt: str
    staging: Path
    rejects: Path
    job: dict
    """The job's identity (inputs' sizes and times, options, the model's content hash): a resume
    must match it exactly."""
    manifest: dict | None
    """The interrupted run's manifest when resuming, else None."""
    force: bool
    on_error: str
    unit: str
    text_column: str
    id_column: str
    pattern: str
    input_format: str | None
    window: int
    finished: bool = False
    """The run had completed (output in place) but was killed before removing its staging folder."""


def plan_label_job(inputs: list[str], output: str | Path, model: dict, *, fmt: str | None = None,
                   resume: bool = False, force: bool = False, on_error: str = "fail",
                   rejects: str | Path | None = None, unit: str = "document", text_column: str = "text",
                   id_column: str = "id", pattern: str = "**/*.txt", input_format: str | None = None,
                   window: int = 2048, log=None) -> LabelJob:
    """Check a labelling job without touching the output or loading the model.

    Everything a user can get wrong is checked here, so that a mistake costs seconds, not a model
    load: options, input paths and formats, each table's text column, the output and the state of
    an interrupted run. Nothing is written.

    Args:
        model: The model's identity, :meth:`framing.Classifier.fingerprint` (or the same dict
            computed from its folder before loading it).
        Others: as for :func:`run_label_job`.

    Raises:
        ValueError, FileNotFoundError, FileExistsError: naming the parameter or file at fault.
    """
    from framing.io import check_input

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if on_error not in ("fail", "skip"):
        raise ValueError(f"--on-error must be 'fail' or 'skip', got {on_error!r}")
    if unit not in ("document", "sentence"):
        raise ValueError(f"--unit must be 'document' or 'sentence', got {unit!r}")
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"--window must be a positive integer, got {window!r}")
    if resume and force:
        raise ValueError("--resume and --force contradict each other: choose one")
    output = Path(output)
    fmt = output_format(str(output), fmt)
    if output.is_dir():
        raise IsADirectoryError(f"-o {output}: is a folder; name an output file")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"-o {output}: folder {output.parent} does not exist")
    files = expand_inputs(inputs, pattern)
    if "-" in files and resume:
        raise ValueError("--resume cannot re-read stdin; label a file instead")
    for f in files:
        check_input(f, text_column=text_column, input_format_=input_format, strict=on_error == "fail")
    staging = Path(str(output) + ".partial")
    rejects = Path(rejects) if rejects else Path(str(output) + ".rejects.jsonl")
    job = {"inputs": _fingerprint(files), "format": fmt, "unit": unit, "text_column": text_column,
           "id_column": id_column, "model": model, "pattern": pattern, "input_format": input_format}
    if output.exists() and not force:
        saved = _read_manifest(staging) if staging.exists() else None
        if resume and saved is not None and saved.get("complete") and saved["job"] == job:
            # Killed after the output was in place but before the staging folder was removed.
            return LabelJob(list(inputs), files, output, fmt, staging, rejects, job, saved, force, on_error, unit,
                            text_column, id_column, pattern, input_format, window, finished=True)
        raise FileExistsError(f"{output} exists; pass --force to overwrite it")
    manifest = None
    if staging.exists() and not force:
        saved = _read_manifest(staging)
        if saved is None or not saved["parts"]:
            # Killed (or failed) before its first commit: there is nothing to keep.
            log(f"{staging}: an earlier run committed nothing; starting from the beginning")
        elif not resume:
            raise FileExistsError(f"{staging} holds an interrupted run ({saved['consumed']} input records committed); "
                                  "pass --resume to continue it or --force to start over")
        elif saved["job"] != job:
            diff = sorted(k for k in set(job) | set(saved["job"]) if saved["job"].get(k) != job.get(k))
            raise ValueError(f"--resume: {staging} was made by a different job (differs in {diff}); "
                             "use --force to start over")
        else:
            manifest = saved
    elif resume and not staging.exists():
        log(f"--resume: no interrupted run at {staging}; starting from the beginning")
    return LabelJob(list(inputs), files, output, fmt, staging, rejects, job, manifest, force, on_error, unit,
                    text_column, id_column, pattern, input_format, window)


def _read_manifest(staging: Path) -> dict | None:
    """The manifest of an interrupted run, or None when it never committed one."""
    path = staging / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:  # the commit is an atomic rename, so this is not ours
        raise ValueError(f"{path}: unreadable ({e}); use --force to start over") from e
    if not isinstance(manifest, dict) or not {"job", "parts", "consumed", "stats"} <= set(manifest):
        raise ValueError(f"{path}: not a framing label manifest; use --force to start over")
    return manifest


def run_label_job(clf, inputs: list[str] | LabelJob, output: str | Path | None = None, *, progress: bool | None = None,
                  log=None, **options) -> LabelStats:
    """Label ``inputs`` into ``output`` with atomic chunk commits; see the module docstring.

    Args:
        clf: The classifier.
        inputs: Files, folders (recursive, filtered by ``pattern``) or ``-`` for stdin; or a
            :class:`LabelJob` from :func:`plan_label_job` (then ``output`` and options are not given).
        output: A ``.jsonl``, ``.csv`` or ``.parquet`` path (or any path with ``fmt``).
        progress: Show a progress bar; default: only when stderr is a terminal.
        **options: ``fmt`` (output format, overriding the extension), ``resume`` (continue an
            interrupted run of the same job), ``force`` (overwrite an existing output and discard an
            interrupted run), ``on_error`` (``fail``: stop at the first bad input row; ``skip``: write
            it to the rejects file), ``rejects`` (default ``OUTPUT.rejects.jsonl``), ``unit``,
            ``text_column``, ``id_column``, ``pattern``, ``input_format``, ``window``.

    Returns:
        The run's :class:`LabelStats` (also written to ``OUTPUT.partial/manifest.json`` while running).

    A run that stops on bad input removes its staging folder (its parts cannot be resumed once
    the input is corrected), so the corrected command starts cleanly; an interrupted run (Ctrl-C,
    a kill, a full disk) keeps it for ``--resume``.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if isinstance(inputs, LabelJob):
        if output is not None or options:
            raise TypeError("run_label_job(clf, job): options belong to plan_label_job")
        job = inputs
    else:
        job = plan_label_job(inputs, output, clf.fingerprint(), log=log, **options)
    return _execute(clf, job, progress, log)


def _execute(clf, plan: LabelJob, progress, log) -> LabelStats:
    from framing.io import InputError, OutputSchemaError

    output, staging, fmt = plan.output, plan.staging, plan.fmt
    if plan.finished:
        log(f"{output}: the run had finished; removing its leftover {staging}")
        shutil.rmtree(staging)
        saved = plan.manifest["stats"]
        return LabelStats(**{**saved, "labels": Counter(saved["labels"])})
    if plan.job["model"] != clf.fingerprint():
        raise ValueError(f"the job was planned for model {plan.job['model']} but the classifier is {clf.fingerprint()}")
    if staging.exists() and plan.manifest is None:
        shutil.rmtree(staging)  # --force, or a run that committed nothing
    manifest = plan.manifest or {"job": plan.job, "parts": [], "consumed": 0, "stats": LabelStats().to_dict()}
    if plan.manifest is not None:
        known = {p["name"] for p in manifest["parts"]} | {p["rejects"] for p in manifest["parts"] if p["rejects"]}
        for f in staging.iterdir():  # parts written after the last manifest update: not committed
            if f.name != "manifest.json" and f.name not in known:
                f.unlink()
        log(f"resuming: {manifest['consumed']} input records already committed in {len(manifest['parts'])} parts")
    staging.mkdir(parents=True, exist_ok=True)
    if plan.force and output.exists():
        output.unlink()
    try:
        return _run(clf, plan, manifest, progress, log)
    except KeyboardInterrupt:
        raise
    except (InputError, OutputSchemaError):
        # Stopped on bad input: the corrected input is a different job, so nothing here can be
        # resumed; clear the way for the corrected command.
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _run(clf, plan: LabelJob, manifest: dict, progress, log) -> LabelStats:
    from framing.io import InputError, PartWriter

    files, output, staging, fmt = plan.files, plan.output, plan.staging, plan.fmt
    saved = manifest["stats"]
    stats = LabelStats(**{**saved, "labels": Counter(saved["labels"])})
    start_seconds = stats.seconds
    t0 = time.time()
    writer = PartWriter(fmt, [staging / p["name"] for p in manifest["parts"] if p["name"]])

    # Events in input order: documents and rejected rows. Their count is the resume position.
    def events():
        errors: list[InputError] = []
        handler = None if plan.on_error == "fail" else errors.append
        root = plan.inputs[0] if len(plan.inputs) == 1 and Path(plan.inputs[0]).is_dir() else None
        for doc in iter_documents(files, text_column=plan.text_column, id_column=plan.id_column,
                                  input_format_=plan.input_format, on_error=handler, root=root):
            while errors:
                yield errors.pop(0)
            yield doc
        while errors:
            yield errors.pop(0)

    skip = manifest["consumed"]
    stream = events()
    skipped_bytes = 0
    for _ in range(skip):
        ev = next(stream, None)
        if ev is None:
            break
        skipped_bytes += getattr(ev, "nbytes", 0)

    bar = None
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_bytes(files), initial=skipped_bytes, unit="B", unit_scale=True, desc="label",
                   file=sys.stderr, dynamic_ncols=True)

    def committed(records: list[dict], rejected: list[InputError], consumed: int):
        k = len(manifest["parts"]) + 1
        name, rej_name = f"part-{k:06d}.{fmt}", (f"rejects-{k:06d}.jsonl" if rejected else None)
        if records:
            tmp = staging / f".{name}.tmp"
            writer.write(records, tmp)
            _fsync(tmp)
            os.replace(tmp, staging / name)
        if rejected:
            tmp = staging / f".{rej_name}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                for err in rejected:
                    f.write(json.dumps({"where": err.where, "reason": err.reason, "raw": err.raw}, ensure_ascii=False) + "\n")
            _fsync(tmp)
            os.replace(tmp, staging / rej_name)
        stats.rejects += len(rejected)
        manifest["parts"].append({"name": name if records else None, "rejects": rej_name, "records": len(records)})
        manifest["consumed"] = consumed
        stats.seconds = start_seconds + time.time() - t0
        manifest["stats"] = stats.to_dict()
        tmp = staging / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest))
        _fsync(tmp)
        os.replace(tmp, staging / "manifest.json")  # the commit point of this chunk

    # Each document remembers its input position and the rejected rows just before it, so that a
    # window's commit is exact even when windows are read ahead (--workers).
    consumed = skip
    marks: dict[int, tuple[int, list[InputError]]] = {}
    pending_rejects: list[InputError] = []

    def docs_only():
        nonlocal consumed
        for ev in stream:
            consumed += 1
            if isinstance(ev, InputError):
                pending_rejects.append(ev)
                continue
            marks[id(ev)] = (consumed, pending_rejects[:])
            pending_rejects.clear()
            yield ev

    chunk: list[dict] = []
    rejected: list[InputError] = []
    try:
        for doc, records, last_of_window in label_stream(clf, docs_only(), unit=plan.unit, window=plan.window,
                                                         stats=stats):
            position, before = marks.pop(id(doc))
            chunk.extend(records)
            rejected.extend(before)
            if bar is not None:
                bar.update(doc.nbytes)
                rate = stats.sentences / max(start_seconds + time.time() - t0, 1e-9)
                bar.set_postfix(sentences=stats.sentences, rate=f"{rate:.0f}/s", refresh=False)
            if last_of_window:
                committed(chunk, rejected, position)
                chunk, rejected = [], []
        rejected.extend(pending_rejects)
        if rejected or not manifest["parts"]:
            committed(chunk, rejected, consumed)  # trailing rejected rows (or an empty input)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        log(f"interrupted: {manifest['consumed']} input records are committed in {staging}; "
            "run the same command with --resume to continue")
        raise
    if bar is not None:
        bar.close()

    # Finish: join into temporary files, mark the manifest complete, then move both into place.
    # A kill at any point leaves either a resumable staging folder or a complete output.
    parts = [staging / p["name"] for p in manifest["parts"] if p["name"]]
    tmp_out = output.with_name(f".{output.name}.tmp")
    if parts:
        join_parts(parts, tmp_out, fmt)
    else:
        write_part([], tmp_out, fmt) if fmt != "parquet" else _empty_parquet(tmp_out)
    _fsync(tmp_out)
    rej_parts = [staging / p["rejects"] for p in manifest["parts"] if p["rejects"]]
    tmp_rej = plan.rejects.with_name(f".{plan.rejects.name}.tmp")
    if rej_parts:
        join_parts(rej_parts, tmp_rej, "jsonl")
        _fsync(tmp_rej)
    stats.seconds = start_seconds + time.time() - t0
    manifest["stats"] = stats.to_dict()
    manifest["complete"] = True
    tmp = staging / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    _fsync(tmp)
    os.replace(tmp, staging / "manifest.json")
    if rej_parts:
        os.replace(tmp_rej, plan.rejects)
        log(f"{stats.rejects} rejected input rows written to {plan.rejects}")
    os.replace(tmp_out, output)
    shutil.rmtree(staging)
    return stats


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _empty_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array([], pa.string()) for k in RECORD_FIELDS}), path)
