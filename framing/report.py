"""A one-file HTML report on a labelled corpus: ``framing report LABELLED -o report.html [--by COL ...]``.

The input is the output of ``framing label`` (one record per sentence) as JSONL, CSV or
Parquet, with the fields ``doc_id, sent_id, start, end, text, label, confidence, probs, model``
plus any pass-through columns of the labelled input (``source``, ``date``, ``outlet``, ...).
``probs`` is a mapping label → probability; in CSV it may be a JSON string or flattened into
``prob_<label>`` (or ``probs.<label>``) columns.

The file is read once, record by record: counts are aggregated incrementally, the most
confident examples per label are kept in bounded heaps, and only small per-document and
per-group counters are held in memory. The report is one self-contained HTML file (inline CSS,
plots embedded as base64 PNG drawn with matplotlib's Agg canvas, no JavaScript) with:

* a header (file, sentences, documents, model names, date generated);
* the label distribution, mean confidence and share of low-confidence labels per label;
* per-document label shares and the documents with the highest share of allegations/denials;
* label shares per value of each group column (``date`` columns are grouped by month);
* the most confident examples per label.
"""

from __future__ import annotations

import base64
import csv
import email.utils
import heapq
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from framing.labels import LABELS

LOW_CONFIDENCE = 0.6
"""Labels predicted with a confidence below this are counted as low-confidence."""

TOP_GROUP_VALUES = 20
"""Values of a group column shown in its chart and table (the rest are summed into one row)."""

MAX_GROUP_VALUES = 10_000
"""Distinct values tracked per group column; later new values are counted as ``(other values)``."""

TOP_DOCS_TABLE = 10
"""Rows in the tables of documents with the highest share of allegations and of denials."""

MIN_DOC_SENTENCES = 3
"""Documents shorter than this are left out of the share tables when longer ones exist."""

MAX_EXAMPLE_CHARS = 1000
"""Example texts are cut to this many characters."""

CORE_FIELDS = frozenset({"doc_id", "sent_id", "start", "end", "text", "label", "confidence", "probs", "model"})
"""Fields written by ``framing label``; every other column is a pass-through column."""

LABEL_COLORS = {"allegation": "#D55E00", "denial": "#0072B2", "justification": "#009E73", "other": "#9A9A9A"}
"""Colour-blind-safe (Okabe-Ito) colours per label, used in every plot and table."""

_CONF_BINS = 20
_MISSING = "(missing)"
_OTHER_VALUES = "(other values)"
_UNPARSED_DATE = "(unparsed date)"
_GROUP_NAME = re.compile(
    r"(?:^|[_\-\s.])(source|outlet|publisher|country|register|domain|date|year|month)s?(?:$|[_\-\s.])", re.I)
_NOT_GROUP_NAME = re.compile(r"url|link|(?:^|_)ids?(?:$|_)|text|title|path", re.I)
_DATE_NAME = re.compile(r"(?:^|[_\-\s.])dates?(?:$|[_\-\s.])", re.I)
_PROB_COLUMN = re.compile(r"^probs?[_.](.+)$")
_YEAR_MONTH = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})(?:\D|$)")
_YEAR_MONTH_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})\d{2}(?:\D|$)")
_YEAR = re.compile(r"^\s*(\d{4})\s*$")
_DATE_FORMATS = ("%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y", "%B %Y", "%b %Y")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledSentence:
    """One validated record of a labelled file.

    Attributes:
        doc_id: The document the sentence belongs to.
        sent_id: The sentence's index in the document, as written (may be ``None``).
        text: The sentence text (``""`` if the file has none).
        label: One of :data:`framing.labels.LABELS`.
        confidence: The probability of ``label`` in ``[0, 1]``, or ``None`` if unknown.
        probs: Probability per label in :data:`LABELS` order, or ``None`` if the record has none.
        model: The model name, or ``None``.
        extra: The pass-through columns (everything outside :data:`CORE_FIELDS`).
        where: ``file:line`` (or ``file: row N`` for Parquet), for messages.
    """

    doc_id: str
    sent_id: Any
    text: str
    label: str
    confidence: float | None
    probs: tuple[float, ...] | None
    model: str | None
    extra: dict[str, Any]
    where: str


def labelled_format(path: Path, declared: str | None = None) -> str:
    """``jsonl``, ``csv`` or ``parquet``: ``declared``, else the extension, else the file's first bytes
    (``framing label --format X -o NAME`` may write a file whose name has no extension)."""
    if declared:
        if declared not in ("jsonl", "csv", "parquet"):
            raise ValueError(f"--format must be one of ['jsonl', 'csv', 'parquet'], got {declared!r}")
        return declared
    suffix = path.suffix.lower()
    by_suffix = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
    if suffix in by_suffix:
        return by_suffix[suffix]
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"{":
        return "jsonl"
    if b"label" in head.split(b"\n", 1)[0]:
        return "csv"
    raise ValueError(f"{path}: cannot tell the format (extension {suffix!r}, and the content is not JSONL, CSV "
                     "with a header or Parquet); pass --format jsonl|csv|parquet")


def iter_labelled(path: str | Path, fmt: str | None = None) -> Iterator[LabelledSentence]:
    """Yield the records of a labelled ``.jsonl``, ``.csv`` or ``.parquet`` file one at a time.

    Records are validated as they are read, so nothing beyond the current record (or Parquet
    batch) is held in memory.

    Args:
        path: The labelled file written by ``framing label`` (or a conversion of it).
        fmt: ``jsonl``, ``csv`` or ``parquet``; default: from the extension, else the content.

    Yields:
        One :class:`LabelledSentence` per record, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unsupported file type, malformed line, missing ``label`` column, unknown
            label, or bad confidence/probabilities; the message names the file and line (row
            for Parquet).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = labelled_format(path, fmt)
    raw = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[fmt](path)
    for where, rec in raw:
        yield _validate(rec, where)


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid UTF-8 (byte {e.start} of the line)") from e
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            yield f"{path}:{n}", rec


def _read_csv(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            try:
                header = next(reader, None)
            except csv.Error as e:
                raise ValueError(f"{path}:1: malformed CSV header ({e})") from e
            if header is None:
                return
            header = [h.strip() for h in header]
            if "label" not in header:
                raise ValueError(f"{path}:1: no 'label' column (columns: {header}); "
                                 "is this the output of `framing label`?")
            probs_cols = {m.group(1): h for h in header if (m := _PROB_COLUMN.match(h)) and m.group(1) in LABELS}
            start = reader.line_num + 1
            while True:
                n = start
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    raise ValueError(f"{path}:{n}: malformed CSV ({e})") from e
                start = reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    raise ValueError(f"{path}:{n}: {len(row)} fields, but the header has {len(header)}")
                rec: dict[str, Any] = {h: (v if v != "" else None) for h, v in zip(header, row)}
                if probs_cols:
                    flat = {lab: rec.pop(col) for lab, col in probs_cols.items()}
                    if rec.get("probs") is None and any(v is not None for v in flat.values()):
                        rec["probs"] = flat
                yield f"{path}:{n}", rec
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 (byte {e.start} of a read block)") from e


def _read_parquet(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from e
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError on non-Parquet input
        raise ValueError(f"{path}: not a readable Parquet file ({e})") from e
    columns = pf.schema_arrow.names
    if pf.metadata.num_rows == 0:
        return
    if "label" not in columns:
        raise ValueError(f"{path}: no 'label' column (columns: {columns}); is this the output of `framing label`?")
    n = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            n += 1
            yield f"{path}: row {n}", rec


def _validate(rec: dict, where: str) -> LabelledSentence:
    if "label" not in rec:
        raise ValueError(f"{where}: no 'label' field (found {sorted(rec)}); is this the output of `framing label`?")
    label = rec["label"]
    if not isinstance(label, str) or label.strip() not in LABELS:
        raise ValueError(f"{where}: unknown label {label!r}; expected one of {list(LABELS)}")
    label = label.strip()

    probs = _parse_probs(rec.get("probs"), where)
    confidence = rec.get("confidence")
    if confidence is None and probs is not None:
        confidence = probs[LABELS.index(label)]
    if confidence is not None:
        confidence = _probability(confidence, "confidence", where)

    doc_id = rec.get("doc_id")
    doc_id = "(no doc_id)" if doc_id is None or doc_id == "" else str(doc_id)
    text = rec.get("text")
    text = "" if text is None else str(text)
    model = rec.get("model")
    model = None if model is None or model == "" else str(model)
    extra = {k: v for k, v in rec.items() if k not in CORE_FIELDS}
    return LabelledSentence(doc_id, rec.get("sent_id"), text, label, confidence, probs, model, extra, where)


def _parse_probs(value, where: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: 'probs' is not a JSON mapping label → probability ({e.msg})") from e
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        value = dict(value)  # a Parquet map column reads as a list of (key, value) pairs
    if not isinstance(value, dict):
        raise ValueError(f"{where}: 'probs' must map label → probability, got {type(value).__name__}")
    unknown = [k for k in value if k not in LABELS]
    if unknown:
        raise ValueError(f"{where}: 'probs' names unknown label(s) {unknown}; expected {list(LABELS)}")
    return tuple(0.0 if value.get(lab) is None else _probability(value[lab], f"probs[{lab!r}]", where)
                 for lab in LABELS)


def _probability(value, name: str, where: str) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(p) or not -1e-6 <= p <= 1 + 1e-6:
        raise ValueError(f"{where}: {name} {value!r} is outside [0, 1]")
    return min(max(p, 0.0), 1.0)


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def _is_group_column(name: str) -> bool:
    return bool(_GROUP_NAME.search(name)) and not _NOT_GROUP_NAME.search(name)


def _group_value(value, by_month: bool) -> str | None:
    """The group key of a pass-through value, or ``None`` if it is missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if by_month:
        return _month(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _month(value) -> str | None:
    if isinstance(value, (datetime, date)):
        return f"{value.year:04d}-{value.month:02d}"
    text = str(value).strip()
    if not text:
        return None
    for pattern in (_YEAR_MONTH, _YEAR_MONTH_COMPACT):
        m = pattern.match(text)
        if m and 1 <= int(m.group(2)) <= 12:
            return f"{m.group(1)}-{int(m.group(2)):02d}"
    if m := _YEAR.match(text):
        return m.group(1)
    try:
        d = email.utils.parsedate_to_datetime(text)
        return f"{d.year:04d}-{d.month:02d}"
    except (TypeError, ValueError, IndexError):
        pass
    for fmt in _DATE_FORMATS:
        try:
            d = datetime.strptime(text, fmt)
            return f"{d.year:04d}-{d.month:02d}"
        except ValueError:
            continue
    return _UNPARSED_DATE


def _counts() -> list[int]:
    return [0] * len(LABELS)


@dataclass
class _Group:
    """Label counts per value of one group column."""

    column: str
    by_month: bool
    values: dict[str, list[int]] = field(default_factory=dict)
    overflow: bool = False

    def add(self, value, i: int) -> None:
        key = _group_value(value, self.by_month)
        if key is None:
            return
        counts = self.values.get(key)
        if counts is None:
            if len(self.values) >= MAX_GROUP_VALUES:
                self.overflow = True
                key = _OTHER_VALUES
                counts = self.values.setdefault(key, _counts())
            else:
                counts = self.values[key] = _counts()
        counts[i] += 1


@dataclass
class _Stats:
    """Everything the report shows, aggregated one record at a time."""

    top_k: int
    by: list[str] | None
    n: int = 0
    label_counts: list[int] = field(default_factory=_counts)
    conf_n: list[int] = field(default_factory=_counts)
    conf_sum: list[float] = field(default_factory=lambda: [0.0] * len(LABELS))
    conf_low: list[int] = field(default_factory=_counts)
    conf_hist: list[list[int]] = field(default_factory=lambda: [[0] * _CONF_BINS for _ in LABELS])
    probs_n: int = 0
    probs_sum: list[float] = field(default_factory=lambda: [0.0] * len(LABELS))
    models: dict[str, int] = field(default_factory=dict)
    docs: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    columns_seen: set[str] = field(default_factory=set)
    examples: list[list[tuple]] = field(default_factory=lambda: [[] for _ in LABELS])

    def __post_init__(self) -> None:
        self._decided: dict[str, bool] = {}
        for col in self.by or ():
            self.groups[col] = _Group(col, by_month=bool(_DATE_NAME.search(col)))

    def add(self, s: LabelledSentence) -> None:
        i = LABELS.index(s.label)
        self.n += 1
        self.label_counts[i] += 1
        if s.confidence is not None:
            c = s.confidence
            self.conf_n[i] += 1
            self.conf_sum[i] += c
            self.conf_low[i] += c < LOW_CONFIDENCE
            self.conf_hist[i][min(int(c * _CONF_BINS), _CONF_BINS - 1)] += 1
            if self.top_k > 0:
                # Min-heap of the top_k most confident; on ties the earlier record stays.
                item = (c, -self.n, s.text[:MAX_EXAMPLE_CHARS], s.doc_id, s.sent_id, len(s.text))
                heap = self.examples[i]
                if len(heap) < self.top_k:
                    heapq.heappush(heap, item)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
        if s.probs is not None:
            self.probs_n += 1
            for j, p in enumerate(s.probs):
                self.probs_sum[j] += p
        if s.model is not None:
            self.models[s.model] = self.models.get(s.model, 0) + 1
        doc = self.docs.get(s.doc_id)
        if doc is None:
            doc = self.docs[s.doc_id] = _counts()
        doc[i] += 1
        for col, value in s.extra.items():
            if col not in self._decided:
                self.columns_seen.add(col)
                self._decided[col] = self.by is None and _is_group_column(col)
                if self._decided[col]:
                    self.groups[col] = _Group(col, by_month=bool(_DATE_NAME.search(col)))
            group = self.groups.get(col)
            if group is not None:
                group.add(value, i)


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    # A bare Figure on an Agg canvas: no pyplot, no global backend switch, nothing left open.
    from framing.extras import need

    need("matplotlib", "framing report's plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _tick(name: str, limit: int = 40) -> str:
    name = name.replace("\n", " ")
    name = name if len(name) <= limit else name[: limit - 1] + "…"
    return name.replace("$", r"\$")  # a literal $, not mathtext


def _plot_distribution(counts: list[int]) -> str:
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    total = max(sum(counts), 1)
    bars = ax.bar(LABELS, counts, color=[LABEL_COLORS[lab] for lab in LABELS])
    ax.bar_label(bars, labels=[f"{c:,} ({100 * c / total:.1f}%)" for c in counts], padding=2, fontsize=9)
    ax.set_ylabel("sentences")
    ax.set_ylim(0, max(max(counts), 1) * 1.18)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _plot_confidence(hist: list[list[int]]) -> str:
    import numpy as np

    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, _CONF_BINS + 1)
    for lab, h in zip(LABELS, hist):
        h = np.asarray(h, float)
        if h.sum():
            ax.stairs(h / h.sum(), edges, color=LABEL_COLORS[lab], lw=1.8, label=lab)
    ax.axvline(LOW_CONFIDENCE, color="black", ls="--", lw=1)
    ax.text(LOW_CONFIDENCE, ax.get_ylim()[1] * 0.97, f" low < {LOW_CONFIDENCE}", va="top", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of the label's sentences")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _plot_shares(rows: list[tuple[str, list[int]]]) -> str:
    """Stacked horizontal bars of label shares, one bar per ``(name, counts)`` row, top to bottom."""
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    n = len(rows)
    fig = _figure(8.6, 1.0 + 0.27 * n)
    ax = fig.add_subplot()
    y = np.arange(n)
    counts = np.array([c for _, c in rows], float).reshape(n, len(LABELS))
    totals = counts.sum(axis=1)
    shares = counts / np.maximum(totals, 1)[:, None]
    left = np.zeros(n)
    for j, lab in enumerate(LABELS):
        ax.barh(y, shares[:, j], left=left, height=0.8, color=LABEL_COLORS[lab], label=lab)
        left += shares[:, j]
    ax.set_yticks(y, [f"{_tick(name)}  (n={int(t):,})" for (name, _), t in zip(rows, totals)], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # first row on top
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of sentences")
    ax.legend(ncol=len(LABELS), loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1100px;padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;vertical-align:top;text-align:left}
th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}.note{color:#555;font-size:.88rem}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}
img{max-width:100%;height:auto}nav a{margin-right:1rem}.warn{color:#a33}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f}%" if den else "–"


def _label_cell(label: str) -> str:
    return f'<span class="sw" style="background:{LABEL_COLORS[label]}"></span>{_e(label)}'


def _img(uri: str, alt: str) -> str:
    return f'<p><img src="{uri}" alt="{_e(alt)}"></p>'


def _table(head: list[str], rows: list[list[str]], num: Iterable[int] | None = None) -> str:
    """An HTML table of already-escaped cells; columns in ``num`` (default: all but the first) are numbers."""
    num = set(range(1, len(head)) if num is None else num)

    def cls(j):
        return ' class="num"' if j in num else ""

    out = ["<table><thead><tr>"]
    out += [f"<th{cls(j)}>{h}</th>" for j, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td{cls(j)}>{c}</td>" for j, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _section_header(path: Path, st: _Stats) -> str:
    models = sorted(st.models.items(), key=lambda kv: (-kv[1], kv[0]))
    if not models:
        model_html = "<em>not recorded</em>"
    elif len(models) == 1:
        model_html = f"<code>{_e(models[0][0])}</code>"
    else:
        model_html = "<br>".join(f"<code>{_e(m)}</code> ({c:,} sentences)" for m, c in models)
    sizes = sorted(sum(c) for c in st.docs.values())
    median = sizes[len(sizes) // 2] if len(sizes) % 2 else (sizes[len(sizes) // 2 - 1] + sizes[len(sizes) // 2]) / 2
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    from framing import __version__

    return (
        f"<h1>Framing report</h1><p class=\"note\">{st.n:,} sentences in {len(st.docs):,} documents</p>"
        '<dl class="meta">'
        f"<dt>File</dt><dd><code>{_e(path)}</code></dd>"
        f"<dt>Sentences</dt><dd>{st.n:,}</dd>"
        f"<dt>Documents</dt><dd>{len(st.docs):,} (sentences per document: median {median:g}, max {sizes[-1]:,})</dd>"
        f"<dt>Model</dt><dd>{model_html}</dd>"
        f"<dt>Generated</dt><dd>{_e(generated)} by framing {_e(__version__)}</dd>"
        "</dl>"
    )


def _section_labels(st: _Stats) -> str:
    docs_with = [sum(1 for c in st.docs.values() if c[i]) for i in range(len(LABELS))]
    head = ["label", "sentences", "%", "mean confidence", f"low confidence (&lt; {LOW_CONFIDENCE})",
            "% low confidence", "documents with label"]
    if st.probs_n:
        head.append("mean probability")
    rows = []
    for i, lab in enumerate(LABELS):
        row = [_label_cell(lab), f"{st.label_counts[i]:,}", _pct(st.label_counts[i], st.n),
               f"{st.conf_sum[i] / st.conf_n[i]:.3f}" if st.conf_n[i] else "–",
               f"{st.conf_low[i]:,}" if st.conf_n[i] else "–",
               _pct(st.conf_low[i], st.conf_n[i]), f"{docs_with[i]:,}"]
        if st.probs_n:
            row.append(f"{st.probs_sum[i] / st.probs_n:.3f}")
        rows.append(row)
    n_conf = sum(st.conf_n)
    total = ["<strong>all</strong>", f"{st.n:,}", "100%",
             f"{sum(st.conf_sum) / n_conf:.3f}" if n_conf else "–", f"{sum(st.conf_low):,}" if n_conf else "–",
             _pct(sum(st.conf_low), n_conf), f"{len(st.docs):,}"]
    if st.probs_n:
        total.append("1.000")
    rows.append(total)
    notes = [f"Confidence is the model's probability of the predicted label. Labels with a low mean confidence "
             f"or a large share below {LOW_CONFIDENCE} deserve a manual check before they are counted."]
    if st.probs_n:
        notes.append("<em>Mean probability</em> is the average probability the model gives each label over all "
                     "sentences (a soft count); a large gap to the % column means argmax labels over- or "
                     "under-state a label.")
    if n_conf < st.n:
        notes.append(f'<span class="warn">{st.n - n_conf:,} sentences have no confidence.</span>')
    parts = ['<h2 id="labels">Label distribution</h2>', _img(_plot_distribution(st.label_counts),
                                                              "bar chart of sentences per label"),
             _table(head, rows), "".join(f'<p class="note">{n}</p>' for n in notes)]
    if n_conf:
        parts += ["<h3>Confidence per label</h3>",
                  _img(_plot_confidence(st.conf_hist), "confidence distribution per label")]
    return "".join(parts)


def _section_documents(st: _Stats, max_docs: int) -> str:
    order = {d: k for k, d in enumerate(st.docs)}
    parts = ['<h2 id="documents">Documents</h2>']
    if max_docs > 0:
        biggest = sorted(st.docs.items(), key=lambda kv: (-sum(kv[1]), order[kv[0]]))[:max_docs]
        parts.append(f'<p class="note">Label shares of the {len(biggest):,} documents with most sentences '
                     f"(of {len(st.docs):,}).</p>")
        parts.append(_img(_plot_shares(biggest), "label shares per document"))
    long_docs = {d: c for d, c in st.docs.items() if sum(c) >= MIN_DOC_SENTENCES}
    pool = long_docs or st.docs
    if long_docs and len(long_docs) < len(st.docs):
        parts.append(f'<p class="note">The tables below rank documents with at least {MIN_DOC_SENTENCES} '
                     f"sentences ({len(long_docs):,} of {len(st.docs):,}).</p>")
    head = ["document", "sentences", *LABELS, "share"]
    for lab in ("allegation", "denial"):
        i = LABELS.index(lab)
        ranked = sorted(((d, c) for d, c in pool.items() if c[i]),
                        key=lambda kv: (-kv[1][i] / sum(kv[1]), -kv[1][i], order[kv[0]]))[:TOP_DOCS_TABLE]
        parts.append(f"<h3>Highest share of {_e(lab)}s</h3>")
        if not ranked:
            parts.append(f'<p class="note">No document has any {_e(lab)}.</p>')
            continue
        rows = [[f"<code>{_e(d)}</code>", f"{sum(c):,}", *(f"{v:,}" for v in c), _pct(c[i], sum(c))]
                for d, c in ranked]
        parts.append(_table(head, rows))
    return "".join(parts)


def _section_group(st: _Stats, group: _Group) -> str:
    title = f"By <code>{_e(group.column)}</code>" + (" (month)" if group.by_month else "")
    anchor = "by-" + re.sub(r"[^A-Za-z0-9_-]+", "-", group.column)
    parts = [f'<h2 id="{_e(anchor)}">{title}</h2>']
    values = dict(group.values)
    counted = [sum(c[i] for c in values.values()) for i in range(len(LABELS))]
    missing = [st.label_counts[i] - counted[i] for i in range(len(LABELS))]
    if not values:
        return parts[0] + f'<p class="note">No sentence has a value in <code>{_e(group.column)}</code>.</p>'
    special = {_OTHER_VALUES, _UNPARSED_DATE}
    ranked = sorted(values.items(), key=lambda kv: (kv[0] in special, -sum(kv[1]), kv[0]))
    top, rest = ranked[:TOP_GROUP_VALUES], ranked[TOP_GROUP_VALUES:]
    if group.by_month:
        top.sort(key=lambda kv: (kv[0] in special, kv[0]))
    shown = f"the {len(top)} most frequent of {len(values):,} values" if rest else f"all {len(values):,} values"
    parts.append(f'<p class="note">Label shares per value: {shown}'
                 + (", in date order" if group.by_month else "") + ".</p>")
    parts.append(_img(_plot_shares(top), f"label shares by {group.column}"))
    rows = []
    for value, c in top:
        rows.append([_e(value), f"{sum(c):,}", *(f"{v:,} ({_pct(v, sum(c))})" for v in c)])
    if rest:
        c = [sum(r[1][i] for r in rest) for i in range(len(LABELS))]
        rows.append([f"<em>{len(rest):,} other values</em>", f"{sum(c):,}", *(f"{v:,} ({_pct(v, sum(c))})" for v in c)])
    if sum(missing):
        rows.append([f"<em>{_MISSING}</em>", f"{sum(missing):,}",
                     *(f"{v:,} ({_pct(v, sum(missing))})" for v in missing)])
    parts.append(_table([_e(group.column), "sentences", *map(_e, LABELS)], rows))
    if group.overflow:
        parts.append(f'<p class="note warn">More than {MAX_GROUP_VALUES:,} distinct values: values first seen '
                     f"after that are counted together as {_OTHER_VALUES}.</p>")
    return "".join(parts)


def _section_examples(st: _Stats, top_k: int) -> str:
    parts = ['<h2 id="examples">Most confident examples</h2>',
             f'<p class="note">The {top_k} sentences per label the model is most sure of.</p>']
    for i, lab in enumerate(LABELS):
        items = sorted(st.examples[i], reverse=True)
        parts.append(f"<h3>{_label_cell(lab)}</h3>")
        if not items:
            parts.append('<p class="note">No examples.</p>')
            continue
        rows = [[f"{conf:.3f}", f"<code>{_e(doc)}</code>", _e(sent),
                 _e(text) + ("…" if length > len(text) else "")]
                for conf, _, text, doc, sent, length in items]
        parts.append(_table(["confidence", "document", "sentence", "text"], rows, num=(0, 2)))
    return "".join(parts)


def _render(path: Path, st: _Stats, top_k: int, max_docs: int) -> str:
    groups = list(st.groups.values())
    nav = ['<a href="#labels">Labels</a>', '<a href="#documents">Documents</a>']
    nav += [f'<a href="#by-{_e(re.sub(r"[^A-Za-z0-9_-]+", "-", g.column))}">By {_e(g.column)}</a>' for g in groups]
    if top_k > 0:
        nav.append('<a href="#examples">Examples</a>')
    body = [_section_header(path, st), "<nav>" + "".join(nav) + "</nav>", _section_labels(st),
            _section_documents(st, max_docs)]
    body += [_section_group(st, g) for g in groups]
    if not groups:
        body.append('<p class="note">No group columns (source, outlet, publisher, country, register, domain, date, '
                    "year, month) were found; pass <code>by</code> to group by other columns.</p>")
    if top_k > 0:
        body.append(_section_examples(st, top_k))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Framing report: {_e(path.name)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "\n</body></html>\n")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build_report(path: str | Path, output: str | Path, *, by: Iterable[str] | str | None = None,
                 top_k: int = 5, max_docs: int = 30, fmt: str | None = None) -> Path:
    """Write a self-contained HTML report on a labelled corpus.

    The labelled file is streamed once; memory grows with the number of documents and group
    values, not with the number of sentences.

    Args:
        path: The labelled ``.jsonl``, ``.csv`` or ``.parquet`` file (one record per sentence).
        output: The HTML file to write (parent folders are created). If it is an existing
            folder, ``report.html`` is written inside it.
        by: Pass-through columns to group by. ``None`` picks columns named like source,
            outlet, publisher, country, register, domain, date, year or month; an empty list
            turns grouping off. Columns whose name contains ``date`` are grouped by month.
        top_k: Most confident examples shown per label (0 for none).
        max_docs: Documents (those with most sentences) in the per-document chart.
        fmt: The labelled file's format (default: from its extension, else its content).

    Returns:
        The path of the written HTML file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is empty, of an unsupported type, or has a bad record (malformed
            line, missing ``label``, unknown label, bad confidence); a ``by`` column is absent;
            or ``top_k``/``max_docs`` is negative. Messages name the file and line.
    """
    path = Path(path)
    output = Path(output)
    if output.is_dir():
        output = output / "report.html"
    if isinstance(by, str):
        by = [by]
    by = None if by is None else list(dict.fromkeys(by))
    for name, value in (("top_k", top_k), ("max_docs", max_docs)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if output.exists() and path.exists() and output.resolve() == path.resolve():
        raise ValueError(f"{output}: the report would overwrite the labelled file")
    if by:
        reserved = [c for c in by if c in CORE_FIELDS]
        if reserved:
            raise ValueError(f"cannot group by {reserved}: only pass-through columns can be grouped by")

    stats = _Stats(top_k=top_k, by=by)
    for sentence in iter_labelled(path, fmt):
        stats.add(sentence)
    if stats.n == 0:
        raise ValueError(f"{path}: no labelled sentences (the file is empty or has only a header)")
    absent = [c for c in by or () if c not in stats.columns_seen]
    if absent:
        raise ValueError(f"{path}: no column {absent[0]!r} to group by (pass-through columns: "
                         f"{sorted(stats.columns_seen) or 'none'})")

    text = _render(path, stats, top_k, max_docs)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output
