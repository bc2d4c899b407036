"""Streaming readers and writers for batch labelling.

Readers yield :class:`Document` objects one at a time from ``.txt`` files and folders of them,
CSV/TSV, JSONL, Parquet and stdin; nothing holds the corpus in memory. Every record knows its
file and line, so a bad row is reported (or rejected) precisely and never lost silently.

Writers append records to JSONL, CSV or Parquet part files; :mod:`framing.batch` commits
them atomically and joins them at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

INPUT_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")
OUTPUT_FORMATS = ("jsonl", "csv", "parquet")


class InputError(ValueError):
    """A malformed input row; the message starts with ``file:line:``."""

    def __init__(self, where: str, message: str, raw: str | None = None):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message
        self.raw = raw


@dataclass
class Document:
    """One input document (or one sentence with ``--unit sentence``)."""

    doc_id: str
    text: str
    where: str
    """``file:line`` (or ``file`` for a .txt document), for messages."""
    extra: dict = field(default_factory=dict)
    """Other input columns, passed through to every output record."""
    nbytes: int = 0
    """Bytes of input this document consumed (for progress and ETA)."""


def _format(path: str, declared: str | None, known: tuple[str, ...], flag: str) -> str:
    """The format named by ``declared`` (the CLI flag) or, failing that, by the file extension."""
    if declared:
        if declared not in known:
            raise ValueError(f"{flag} must be one of {list(known)}, got {declared!r}")
        return declared
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in known:
        return suffix
    raise ValueError(f"{path}: cannot tell the format from the extension {Path(path).suffix!r}; "
                     f"expected one of {['.' + f for f in known]} or set {flag}")


def input_format(path: str, declared: str | None = None) -> str:
    return _format(path, declared, INPUT_FORMATS, "--input-format")


def expand_inputs(paths: list[str], pattern: str = "**/*.txt") -> list[str]:
    """Files in order: folders expand recursively with ``pattern`` (sorted); ``-`` is stdin."""
    out = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.glob(pattern) if f.is_file())
            if not found:
                raise FileNotFoundError(f"{p}: folder has no files matching {pattern!r}")
            out.extend(found)
        elif path.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def total_bytes(files: list[str]) -> int | None:
    """Total input size, or None when a stream (stdin) makes it unknown."""
    if "-" in files:
        return None
    return sum(os.path.getsize(f) for f in files)


def iter_documents(files: list[str], *, text_column: str = "text", id_column: str = "id",
                   input_format_: str | None = None, on_error: Callable[[InputError], None] | None = None,
                   root: str | None = None) -> Iterator[Document]:
    """Yield documents from ``files`` in order.

    Args:
        files: From :func:`expand_inputs`.
        text_column, id_column: Columns of tabular/JSON records.
        input_format_: Force a format (needed for stdin, which defaults to JSONL).
        on_error: Called with each :class:`InputError`; when None, the error is raised.
        root: Folder that ``.txt`` document ids are made relative to.
    """
    def fail(err: InputError):
        if on_error is None:
            raise err
        on_error(err)

    for f in files:
        fmt = input_format(f, input_format_ or ("jsonl" if f == "-" else None))
        name = "<stdin>" if f == "-" else f
        if fmt == "txt":
            raw = sys.stdin.buffer.read() if f == "-" else Path(f).read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                line = raw[: e.start].count(b"\n") + 1
                fail(InputError(f"{name}:{line}", f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})"))
                continue
            doc_id = "stdin" if f == "-" else _txt_id(f, root)
            yield Document(doc_id, text, name, {}, len(raw))
        elif fmt == "jsonl":
            stream = sys.stdin.buffer if f == "-" else open(f, "rb")
            try:
                for n, raw in enumerate(stream, 1):
                    if not raw.strip():
                        continue
                    where = f"{name}:{n}"
                    try:
                        rec = json.loads(raw.decode("utf-8"))
                    except UnicodeDecodeError as e:
                        fail(InputError(where, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})",
                                        raw.decode("utf-8", "replace")))
                        continue
                    except json.JSONDecodeError as e:
                        fail(InputError(where, f"malformed JSON ({e.msg} at column {e.colno})", raw.decode("utf-8", "replace")))
                        continue
                    doc = _from_record(rec, where, text_column, id_column, len(raw), fail)
                    if doc is not None:
                        yield doc
            finally:
                if f != "-":
                    stream.close()
        elif fmt in ("csv", "tsv"):
            yield from _iter_csv(f, name, "\t" if fmt == "tsv" else ",", text_column, id_column, fail)
        elif fmt == "parquet":
            yield from _iter_parquet(f, text_column, id_column, fail)


def _txt_id(path: str, root: str | None) -> str:
    p = Path(path)
    if root:
        try:
            return str(p.relative_to(root).with_suffix(""))
        except ValueError:
            pass
    return p.stem


def _from_record(rec, where, text_column, id_column, nbytes, fail) -> Document | None:
    if not isinstance(rec, dict):
        fail(InputError(where, f"expected a JSON object, got {type(rec).__name__}", json.dumps(rec)))
        return None
    if text_column not in rec:
        fail(InputError(where, f"no text column {text_column!r} (found {sorted(rec)}); set --text-column",
                        json.dumps(rec, ensure_ascii=False)))
        return None
    text = rec[text_column]
    if text is None:
        text = ""
    if not isinstance(text, str):
        fail(InputError(where, f"column {text_column!r} must hold text, got {type(text).__name__}",
                        json.dumps(rec, ensure_ascii=False, default=str)))
        return None
    doc_id = rec.get(id_column)
    doc_id = str(doc_id) if doc_id not in (None, "") else where
    extra = {k: v for k, v in rec.items() if k not in (text_column, id_column)}
    return Document(doc_id, text, where, extra, nbytes)


class _LineCounter(io.TextIOBase):
    """Wraps a text stream, counting the bytes csv has consumed (for progress)."""

    def __init__(self, raw):
        self.raw = raw
        self.nbytes = 0

    def __iter__(self):
        return self

    def __next__(self):
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.nbytes += len(line.encode("utf-8", "surrogateescape"))
        return line


def _iter_csv(f, name, delimiter, text_column, id_column, fail) -> Iterator[Document]:
    raw = sys.stdin if f == "-" else open(f, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        counter = _LineCounter(raw)
        reader = csv.DictReader(counter, delimiter=delimiter)
        try:
            header = reader.fieldnames
        except csv.Error as e:
            raise InputError(f"{name}:1", f"malformed header ({e})") from e
        if header is None:
            return
        if text_column not in header:
            raise InputError(f"{name}:1", f"no text column {text_column!r} in the header {header}; set --text-column")
        last = 0
        while True:
            line_before = reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                fail(InputError(f"{name}:{reader.line_num}", f"malformed CSV ({e})"))
                continue
            where = f"{name}:{line_before + 1}"
            nbytes, last = counter.nbytes - last, counter.nbytes
            if None in row or any(v is None for v in row.values()):
                fail(InputError(where, f"row has {len(row) + len(row.get(None, [])) - (None in row)} fields, "
                                f"header has {len(header)}", delimiter.join(str(v) for v in row.values())))
                continue
            bad = [k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)]
            if bad:
                fail(InputError(where, f"not valid UTF-8 in column {bad[0]!r}",
                                delimiter.join(v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                                               for v in row.values())))
                continue
            doc = _from_record(row, where, text_column, id_column, nbytes, fail)
            if doc is not None:
                yield doc
    finally:
        if f != "-":
            raw.close()


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _iter_parquet(f, text_column, id_column, fail) -> Iterator[Document]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(f)
    names = pf.schema_arrow.names
    if text_column not in names:
        raise InputError(f"{f}:1", f"no text column {text_column!r} in the schema {names}; set --text-column")
    n = 0
    per_row = max(1, pf.metadata.serialized_size) if pf.metadata.num_rows == 0 else \
        os.path.getsize(f) / pf.metadata.num_rows
    for batch in pf.iter_batches(batch_size=1024):
        for rec in batch.to_pylist():
            n += 1
            doc = _from_record(rec, f"{f}:{n}", text_column, id_column, int(per_row), fail)
            if doc is not None:
                yield doc


# --------------------------------------------------------------------------------- writers


def output_format(path: str, declared: str | None = None) -> str:
    return _format(path, declared, OUTPUT_FORMATS, "--format")


def flat(record: dict) -> dict:
    """A record for CSV: ``probs`` become ``prob_<label>`` columns."""
    out = {k: v for k, v in record.items() if k != "probs"}
    for lab, p in record.get("probs", {}).items():
        out[f"prob_{lab}"] = p
    return out


def write_part(records: list[dict], path: Path, fmt: str) -> None:
    """Write one chunk of records to ``path`` (a complete file in the given format)."""
    if fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        rows = [flat(r) for r in records]
        cols = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), path)
    else:  # pragma: no cover - validated earlier
        raise ValueError(fmt)


def join_parts(parts: list[Path], output: Path, fmt: str) -> None:
    """Concatenate part files into ``output`` one part at a time (constant memory)."""
    if fmt == "jsonl":
        with open(output, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while chunk := f.read(1 << 20):
                        out.write(chunk)
    elif fmt == "csv":
        cols: list[str] = []
        for p in parts:
            with open(p, encoding="utf-8", newline="") as f:
                for c in next(csv.reader(f), []):
                    if c not in cols:
                        cols.append(c)
        with open(output, "w", encoding="utf-8", newline="") as out:
            w = csv.DictWriter(out, fieldnames=cols)
            w.writeheader()
            for p in parts:
                with open(p, encoding="utf-8", newline="") as f:
                    w.writerows(csv.DictReader(f))
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schemas = [pq.read_schema(p) for p in parts]
        schema = pa.unify_schemas(schemas) if schemas else pa.schema([])
        with pq.ParquetWriter(output, schema) as writer:
            for p in parts:
                table = pq.read_table(p)
                for name in schema.names:
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
                writer.write_table(table.select(schema.names).cast(schema))
