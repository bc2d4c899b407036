"""The cluster engine: ``framing label --engine ray [--address ADDR]``.

The same job as the local engine, on Ray Data: documents are read as a Ray dataset (JSONL or
Parquet through Ray's readers, ``.txt`` files as binary files), split into sentences with
``flat_map``, and labelled by ``map_batches`` with a callable predictor class, one model per
worker. Records are the local engine's records, field by field, in input order
(``preserve_order``). The output is streamed to one JSONL/CSV/Parquet file by the driver, or, when
OUTPUT has no extension, written as a folder of Parquet files by the workers themselves. Options
the engine does not implement (``--resume``, ``--on-error skip``, ``--device``, ``--window``,
``--batch-tokens``) are errors, not ignored. One difference from the local engine: a record
without an id gets an empty ``doc_id`` (Ray's readers do not know line numbers), where the local
engine gives its ``file:line``.

Requires ``pip install 'framing[ray]'``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from framing.batch import LabelStats, _split
from framing.io import Document, PartWriter, _txt_id, check_input, expand_inputs, join_parts, output_format
from framing.io import input_format as _input_format
from framing.labels import LABELS


class SentencePredictor:
    """Loaded once per Ray worker; labels a batch of sentences (a dict of numpy columns)."""

    def __init__(self, model: str | None, quantize: bool, batch_size: int):
        from framing.model import Classifier

        self.clf = Classifier.load(model, device="auto", batch_size=batch_size, quantize=quantize)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        before = getattr(self.clf.backend, "truncated", 0)
        probs = self.clf.predict_proba(texts) if texts else np.zeros((0, len(LABELS)))
        idx = probs.argmax(1) if len(texts) else np.zeros(0, int)
        batch["label"] = np.array([LABELS[i] for i in idx], dtype=object)
        batch["confidence"] = np.round(probs[np.arange(len(texts)), idx], 4) if len(texts) else np.zeros(0)
        batch["probs"] = np.array([json.dumps({l: round(float(v), 4) for l, v in zip(LABELS, p)}) for p in probs],
                                  dtype=object)
        batch["model"] = np.array([self.clf.name] * len(texts), dtype=object)
        batch["_truncated"] = np.array([getattr(self.clf.backend, "truncated", 0) - before] + [0] * (len(texts) - 1),
                                       dtype=np.int64)[: len(texts)]
        return batch


def _read(files, text_column, id_column, fmt_in, root=None):
    import ray

    if fmt_in == "txt":
        ds = ray.data.read_binary_files(files, include_paths=True)
        ids = {str(Path(f).resolve()): _txt_id(f, root) for f in files}  # Ray may report absolute paths
        return ds.map(lambda r: {"doc_id": ids.get(str(Path(r["path"]).resolve()), Path(r["path"]).stem),
                                 "text": r["bytes"].decode("utf-8"), "_extra": "{}"})
    if fmt_in == "jsonl":
        ds = ray.data.read_json(files, lines=True)
    elif fmt_in == "parquet":
        ds = ray.data.read_parquet(files)
    elif fmt_in in ("csv", "tsv"):
        import pyarrow.csv as pacsv

        ds = ray.data.read_csv(files, parse_options=pacsv.ParseOptions(delimiter="\t" if fmt_in == "tsv" else ","))
    else:  # pragma: no cover
        raise ValueError(fmt_in)
    cols = ds.columns()
    if text_column not in cols:
        raise ValueError(f"{files[0]}: no text column {text_column!r} (found {cols}); set --text-column")

    def norm(r):
        extra = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()
                 if k not in (text_column, id_column)}
        doc_id = r.get(id_column)
        return {"doc_id": str(doc_id) if doc_id not in (None, "") else "", "text": r[text_column] or "",
                "_extra": json.dumps(extra, default=str)}

    return ds.map(norm)


def run_ray_job(model, inputs: list[str], output: str | Path, *, address: str | None = None, fmt: str | None = None,
                force: bool = False, unit: str = "document", text_column: str = "text", id_column: str = "id",
                pattern: str = "**/*.txt", input_format: str | None = None, quantize: bool = False,
                batch_size: int = 64, num_cpus: int | None = None, concurrency: int | None = None,
                unsupported: list[str] = ()) -> LabelStats:
    """Label ``inputs`` on Ray; returns the run's :class:`~framing.batch.LabelStats`.

    Args:
        model: Model directory (None: the shipped model); every worker loads it.
        address: A running Ray cluster (``ray://host:10001`` or ``auto``); None starts a local one.
        num_cpus: CPUs of the local Ray started when ``address`` is None.
        concurrency: Predictor workers (default and maximum: one per available CPU but one).
        unsupported: Options the caller was given that this engine does not implement (the CLI
            passes ``--resume``, ``--on-error skip``, ``--device`` ...); any is an error.
        Other arguments: as for :func:`framing.batch.run_label_job`.
    """
    if unsupported:
        raise ValueError(f"--engine ray does not support {', '.join(unsupported)}; run with --engine local "
                         "(the default) for these")
    from framing.extras import need

    ray = need("ray", "--engine ray")
    need("ray.data", "--engine ray")

    output = Path(output)
    to_folder = output.suffix == "" and fmt is None
    if output.exists() and not force:
        raise FileExistsError(f"{output} exists; pass --force to overwrite it")
    files = expand_inputs(inputs, pattern)
    if "-" in files:
        raise ValueError("--engine ray reads files, not stdin")
    formats = {_input_format(f, input_format) for f in files}
    if len(formats) != 1:
        raise ValueError(f"--engine ray needs inputs of one format, got {sorted(formats)}")
    fmt_in = formats.pop()
    for f in files:
        check_input(f, text_column=text_column, input_format_=input_format)
    root = inputs[0] if len(inputs) == 1 and Path(inputs[0]).is_dir() else None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)
    t0 = time.time()
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        docs = _read(files, text_column, id_column, fmt_in, root)

        def split(r):
            doc = Document(r["doc_id"], r["text"], "", json.loads(r["_extra"]))
            spans = _split(doc, unit)
            if not spans:
                return [{"doc_id": r["doc_id"], "sent_id": -1, "start": 0, "end": 0, "text": "", "_extra": r["_extra"]}]
            return [{"doc_id": r["doc_id"], "sent_id": k, "start": s, "end": e, "text": r["text"][s:e],
                     "_extra": r["_extra"]} for k, (s, e) in enumerate(spans)]

        sents = docs.flat_map(split)
        # Each predictor actor holds a CPU for its lifetime; leave one for the read/split tasks,
        # or the pipeline waits forever for a CPU to read with.
        free = max(1, int(ray.available_resources().get("CPU", 1)) - 1)
        workers = min(concurrency, free) if concurrency else free
        labelled = sents.map_batches(SentencePredictor, fn_constructor_args=(model, quantize, batch_size),
                                     batch_size=batch_size * 8, batch_format="numpy",
                                     compute=ray.data.ActorPoolStrategy(size=workers))
        stats = LabelStats()
        if to_folder:
            # The workers write the records themselves, in the local engine's layout; the driver
            # only reads back what it needs for the summary.
            counter = _counter_class().remote()
            # A task, not an actor pool: the predictors already hold every CPU but the one reading needs.
            records = labelled.map_batches(_finalize, fn_kwargs={"counter": counter}, batch_format="pandas")
            records.write_parquet(str(output))
            for r in ray.data.read_parquet(str(output)).select_columns(["sent_id", "label"]).iter_rows():
                stats.documents += int(r["sent_id"]) == 0
                stats.sentences += 1
                stats.labelled += 1
                stats.labels[r["label"]] += 1
            extra = ray.get(counter.get.remote())
            stats.documents += extra["empty"]
            stats.empty_documents = extra["empty"]
            stats.truncated = extra["truncated"]
        else:
            ofmt = output_format(str(output), fmt)
            staging = Path(str(output) + ".ray-parts")
            staging.mkdir(parents=True, exist_ok=True)
            writer = PartWriter(ofmt)
            parts, buf = [], []
            for batch in labelled.iter_batches(batch_size=4096, batch_format="pandas"):
                for r in batch.to_dict("records"):
                    rec = _count(stats, r)
                    if rec is not None:
                        buf.append(rec)
                if len(buf) >= 4096:
                    parts.append(staging / f"part-{len(parts):06d}.{ofmt}")
                    writer.write(buf, parts[-1])
                    buf = []
            if buf or not parts:
                parts.append(staging / f"part-{len(parts):06d}.{ofmt}")
                writer.write(buf, parts[-1])
            tmp = output.with_name(f".{output.name}.tmp")
            join_parts(parts, tmp, ofmt)
            tmp.replace(output)
            for p in parts:
                p.unlink()
            staging.rmdir()
    finally:
        if started:
            ray.shutdown()
    stats.seconds = time.time() - t0
    return stats


def _count(stats: LabelStats, r: dict) -> dict | None:
    """Update the run's stats from one output row; return the record in the local engine's layout."""
    if int(r["sent_id"]) == 0 or int(r["sent_id"]) == -1:
        stats.documents += 1
    stats.truncated += int(r.get("_truncated", 0) or 0)
    if int(r["sent_id"]) == -1:
        stats.empty_documents += 1
        return None
    stats.sentences += 1
    stats.labelled += 1
    stats.labels[r["label"]] += 1
    return _record(r)


def _record(r: dict) -> dict:
    """One labelled row in the local engine's record layout (field order, types, pass-through columns)."""
    rec = {"doc_id": r["doc_id"], "sent_id": int(r["sent_id"]), "start": int(r["start"]), "end": int(r["end"]),
           "text": r["text"], "label": r["label"], "confidence": float(r["confidence"]),
           "probs": json.loads(r["probs"]) if isinstance(r["probs"], str) else r["probs"], "model": r["model"]}
    for k, v in json.loads(r["_extra"]).items():
        rec[k if k not in rec else f"input_{k}"] = v
    return rec


def _counter_class():
    import ray

    @ray.remote(num_cpus=0)
    class Counter:
        def __init__(self):
            self.counts = {"empty": 0, "truncated": 0}

        def add(self, key: str, n: int) -> None:
            self.counts[key] += n

        def get(self) -> dict:
            return dict(self.counts)

    return Counter


def _finalize(batch, counter):
    """Labelled rows -> records of the local engine's layout (empty-document rows and internal
    columns dropped and counted), for output written by the workers."""
    import pandas as pd

    rows = batch.to_dict("records")
    empty = sum(int(r["sent_id"]) == -1 for r in rows)
    truncated = sum(int(r.get("_truncated", 0) or 0) for r in rows)
    if empty:
        counter.add.remote("empty", empty)
    if truncated:
        counter.add.remote("truncated", truncated)
    records = [_record(r) for r in rows if int(r["sent_id"]) != -1]
    columns = list(dict.fromkeys(k for r in records for k in r)) or ["doc_id", "sent_id", "start", "end", "text",
                                                                    "label", "confidence", "probs", "model"]
    return pd.DataFrame({c: [r.get(c) for r in records] for c in columns})
