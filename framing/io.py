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
import re
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


class OutputSchemaError(ValueError):
    """A record that does not fit the Parquet output's schema (fixed by its first part)."""


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


def check_input(f: str, *, text_column: str = "text", input_format_: str | None = None, strict: bool = True) -> str:
    """Check what can be checked about one input before any work starts; returns its format.

    The format must be known; a table (CSV/TSV header, Parquet schema) must have the text column;
    with ``strict`` (``--on-error fail``), so must the first JSONL record. Stdin is not read.
    """
    fmt = input_format(f, input_format_ or ("jsonl" if f == "-" else None))
    if f == "-":
        return fmt
    if fmt in ("csv", "tsv"):
        with open(f, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            try:
                header = next(csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",", strict=True), None)
            except csv.Error as e:
                raise InputError(f"{f}:1", f"malformed header ({e})") from e
        if header is not None and text_column not in header:
            raise InputError(f"{f}:1", f"no text column {text_column!r} in the header {header}; set --text-column")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(f).names
        except (OSError, pa.ArrowException) as e:
            raise InputError(f, f"not a readable Parquet file ({e})") from e
        if text_column not in names:
            raise InputError(f"{f}:1", f"no text column {text_column!r} in the schema {names}; set --text-column")
    elif fmt == "jsonl" and strict:
        with open(f, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                if raw.strip():
                    try:
                        rec = json.loads(raw.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        break  # reported with its line when the file is read
                    if isinstance(rec, dict) and text_column not in rec:
                        raise InputError(f"{f}:{n}", f"no text column {text_column!r} (found {sorted(rec)}); "
                                         "set --text-column")
                    break
    return fmt


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
    """Wraps a text stream for csv: counts the bytes consumed (for progress) and keeps the raw lines
    of the record being read (for messages and the rejects file)."""

    def __init__(self, raw):
        self.raw = raw
        self.nbytes = 0
        self.lines: list[str] = []

    def __iter__(self):
        return self

    def __next__(self):
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.nbytes += len(line.encode("utf-8", "surrogateescape"))
        self.lines.append(line)
        return line

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def _shape(value: str) -> str:
    """The character-class shape of an id (``doc-0012`` -> ``a-9``), to tell ids from prose."""
    return re.sub(r"(.)\1+", r"\1", re.sub(r"[a-z]", "a", re.sub(r"[A-Z]", "A", re.sub(r"[0-9]", "9", value))))


def _looks_like_id(value: str) -> bool:
    return 0 < len(value) <= 64 and not any(c.isspace() for c in value)


def _swallowed_row(lines: list[str], row: dict, header: list[str], key: str, delimiter: str) -> int | None:
    """When a record spans lines, the index of a continuation line that reads as a row of its own.

    A quote opened and never closed (or closed by a stray quote lines later) makes csv read the
    following rows into one field, silently. Legitimate multi-line fields exist, so a continuation
    line is suspect only when it has the header's field count and its key field looks like the
    record's own key (same character shape, e.g. ``b`` and ``c``, or ``doc-12`` and ``doc-13``).
    """
    own = row.get(key) or ""
    if not _looks_like_id(own):
        return None
    pos = header.index(key)
    for k, line in enumerate(lines[1:], 1):
        fields = next(csv.reader([line], delimiter=delimiter), [])
        if len(fields) == len(header) and _looks_like_id(fields[pos]) and fields[pos] != own \
                and _shape(fields[pos]) == _shape(own):
            return k
    return None


def _iter_csv(f, name, delimiter, text_column, id_column, fail) -> Iterator[Document]:
    raw = sys.stdin if f == "-" else open(f, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        counter = _LineCounter(raw)
        # strict: a quote left open at the end of the file, or text after a closing quote, is an
        # error rather than a field that swallows the rows after it.
        reader = csv.DictReader(counter, delimiter=delimiter, strict=True)
        try:
            header = reader.fieldnames
        except csv.Error as e:
            raise InputError(f"{name}:1", f"malformed header ({e})") from e
        if header is None:
            return
        if text_column not in header:
            raise InputError(f"{name}:1", f"no text column {text_column!r} in the header {header}; set --text-column")
        key = id_column if id_column in header else header[0]
        counter.take()
        last = 0
        while True:
            line_before = reader.line_num
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                lines = counter.take()
                span = f"{line_before + 1}" if len(lines) <= 1 else f"{line_before + 1}-{line_before + len(lines)}"
                hint = " (a quote opened here is never closed)" if "end of data" in str(e) else \
                    " (a quote inside a quoted field must be doubled: \"\")"
                last = counter.nbytes
                fail(InputError(f"{name}:{line_before + 1}", f"malformed CSV on line(s) {span}: {e}{hint}",
                                _printable("".join(lines))))
                continue
            where = f"{name}:{line_before + 1}"
            lines = counter.take()
            nbytes, last = counter.nbytes - last, counter.nbytes
            raw_text = _printable("".join(lines))
            if None in row or any(v is None for v in row.values()):
                n = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
                fail(InputError(where, f"row has {n} fields, header has {len(header)}", raw_text))
                continue
            if len(lines) > 1:
                k = _swallowed_row(lines, row, header, key, delimiter)
                if k is not None:
                    fail(InputError(where, f"a quoted field runs from line {line_before + 1} to line "
                                    f"{line_before + len(lines)}, and line {line_before + 1 + k} reads as a row of its "
                                    f"own: an unclosed or stray quote? (quotes inside a quoted field must be doubled)",
                                    raw_text))
                    continue
            bad = [k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)]
            if bad:
                fail(InputError(where, f"not valid UTF-8 in column {bad[0]!r}", raw_text))
                continue
            doc = _from_record(row, where, text_column, id_column, nbytes, fail)
            if doc is not None:
                yield doc
    finally:
        if f != "-":
            raw.close()


def _printable(text: str) -> str:
    """Raw input for a message or the rejects file: undecodable bytes become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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


class PartWriter:
    """Writes part files; for Parquet, the first part fixes the schema of every later one.

    Parquet needs one schema for the joined file. Column types are inferred from the first part
    (a column with no value there is typed as string); a later value that does not fit its
    column is an error naming the column and the record, raised when that part is written, so
    a job never fails at the final join.
    """

    def __init__(self, fmt: str, existing: list[Path] = ()):
        self.fmt = fmt
        self.schema = None
        if fmt == "parquet" and existing:
            import pyarrow.parquet as pq

            self.schema = pq.read_schema(existing[0])

    def write(self, records: list[dict], path: Path) -> None:
        if self.fmt != "parquet":
            write_part(records, path, self.fmt)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.schema is None:
            table = pa.Table.from_pylist(records)
            fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
            self.schema = pa.schema(fields)
            table = table.cast(self.schema)
        else:
            table = _table_in_schema(records, self.schema)
        pq.write_table(table, path)


def _table_in_schema(records: list[dict], schema):
    import pyarrow as pa

    def where(i):
        r = records[i]
        return f"record {r.get('doc_id')!r} sentence {r.get('sent_id')}"

    for i, r in enumerate(records):
        extra = [k for k in r if k not in schema.names]
        if extra:
            raise OutputSchemaError(f"parquet output: {where(i)} has column {extra[0]!r}, which the first part of the output "
                             f"did not have (a Parquet file has one schema); give every input record the same "
                             f"columns, or write .jsonl or .csv")
    columns = []
    for field in schema:
        values = [r.get(field.name) for r in records]
        try:
            columns.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            for i, v in enumerate(values):
                try:
                    pa.array([v], type=field.type)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                    raise OutputSchemaError(
                        f"parquet output: column {field.name!r} is {field.type} (fixed by the first part of the "
                        f"output), but {where(i)} has {v!r} ({type(v).__name__}); make the input column one type, "
                        "or write .jsonl or .csv") from None
            raise
    return pa.Table.from_arrays(columns, schema=schema)


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
