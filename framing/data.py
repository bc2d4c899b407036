"""The annotated corpus: schema, validation, duplicate detection, splits and loading.

The corpus lives in ``seeds/``:

* ``seeds/corpus/*.jsonl`` — one sentence per line, sentences of a document consecutive::

      {"id": "gulf-d07-s03", "doc_id": "gulf-d07", "text": "...", "label": "denial",
       "domain": "gulf-migrant-labour", "register": "press-conference",
       "origin": "written", "hard": false}

  Seed sentences (``origin: "seed"``) also carry ``start``/``end``, character offsets into
  ``seeds/documents/<doc_id>.txt``.
* ``seeds/splits.json`` — which split each document belongs to. Splits are fixed in the repo
  so that numbers stay comparable; new documents are assigned by ``training/make_splits.py``
  without moving existing ones.

:func:`check_corpus` validates everything and returns every problem with its file and line;
:func:`load_corpus` returns a ``datasets.DatasetDict`` and refuses a corpus with problems.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from framing.labels import LABELS, ORIGINS, REGISTERS

FIELDS: dict[str, type] = {
    "id": str,
    "doc_id": str,
    "text": str,
    "label": str,
    "domain": str,
    "register": str,
    "origin": str,
    "hard": bool,
}
"""Required fields of a corpus record and their JSON types."""

OFFSET_FIELDS: dict[str, type] = {"start": int, "end": int}
"""Optional fields: character offsets of the sentence in ``seeds/documents/<doc_id>.txt``."""

WORLD_FIELDS: dict[str, type] = {"world": str, "dispute": str}
"""Optional fields of documents about real-world disputes: ``world: "real"`` and the dispute's slug."""

ANNOTATION_FIELDS: dict[str, type] = {"annotator": str, "annotated_at": str, "model_label": str}
"""Optional fields of ``origin: "annotated"`` records (``framing annotate``): who labelled the
sentence, when (UTC, ISO 8601), and the model's label at the time."""

WORLDS: tuple[str, ...] = ("real", "invented")

SPLITS: tuple[str, ...] = ("train", "dev", "test", "cross_domain", "world_heldout")
"""Split names. ``cross_domain`` holds whole domains kept out of train and dev; ``world_heldout``
holds whole real-world disputes (``dispute`` field) kept out of train and dev."""

DEFAULT_NEAR_THRESHOLD = 0.9


def seeds_dir() -> Path:
    """The project's ``seeds/`` folder (:func:`framing.paths.seeds_dir`)."""
    from framing.paths import seeds_dir as _seeds_dir

    return _seeds_dir()


def normalize_text(text: str) -> str:
    """Normalise text for duplicate detection: NFKC, case-folded, punctuation and spacing removed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


@dataclass(frozen=True)
class Problem:
    """One problem in a data file, located by path and 1-based line (0: the file as a whole)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


@dataclass
class Record:
    """A validated corpus record and where it came from."""

    data: dict
    path: str
    line: int
    split: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def read_jsonl(path: str | Path) -> tuple[list[Record], list[Problem]]:
    """Read and validate a corpus JSONL file.

    Every line is checked; a bad line is reported and skipped, never silently dropped.

    Returns:
        The valid records and the problems found, each naming ``path:line``.
    """
    path = Path(path)
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        raw = path.read_bytes()
    except OSError as e:
        return [], [Problem(str(path), 0, f"cannot read file: {e.strerror or e}")]
    if not raw.strip():
        return [], [Problem(str(path), 0, "file is empty: expected one JSON object per line")]
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(str(path), n, f"not valid UTF-8 (byte {e.start}): {line[:60]!r}"))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), n, f"malformed JSON ({e.msg} at column {e.colno}): {text[:60]!r}"))
            continue
        found = validate_record(obj)
        problems.extend(Problem(str(path), n, msg) for msg in found)
        if not found:
            records.append(Record(obj, str(path), n))
    return records, problems


def validate_record(obj) -> list[str]:
    """Check one parsed record against the schema; return messages (empty if valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    msgs = []
    missing = [k for k in FIELDS if k not in obj]
    if missing:
        msgs.append(f"missing field(s) {missing}; a record needs {list(FIELDS)}")
    optional = {**OFFSET_FIELDS, **WORLD_FIELDS, **ANNOTATION_FIELDS}
    unknown = sorted(set(obj) - set(FIELDS) - set(optional))
    if unknown:
        msgs.append(f"unknown field(s) {unknown}; allowed: {list(FIELDS) + list(optional)}")
    for key, typ in {**FIELDS, **optional}.items():
        if key in obj and not (isinstance(obj[key], typ) and not (typ is int and isinstance(obj[key], bool))):
            msgs.append(f"field {key!r} must be {typ.__name__}, got {type(obj[key]).__name__} {obj[key]!r}")
    if isinstance(obj.get("text"), str) and not obj["text"].strip():
        msgs.append("field 'text' is empty")
    for key in ("id", "doc_id", "domain"):
        if isinstance(obj.get(key), str) and not obj[key].strip():
            msgs.append(f"field {key!r} is empty")
    if isinstance(obj.get("label"), str) and obj["label"] not in LABELS:
        msgs.append(f"unknown label {obj['label']!r}; expected one of {list(LABELS)}")
    if isinstance(obj.get("register"), str) and obj["register"] not in REGISTERS:
        msgs.append(f"unknown register {obj['register']!r}; expected one of {list(REGISTERS)}")
    if isinstance(obj.get("origin"), str) and obj["origin"] not in ORIGINS:
        msgs.append(f"unknown origin {obj['origin']!r}; expected one of {list(ORIGINS)}")
    if isinstance(obj.get("model_label"), str) and obj["model_label"] not in LABELS:
        msgs.append(f"unknown model_label {obj['model_label']!r}; expected one of {list(LABELS)}")
    if isinstance(obj.get("world"), str) and obj["world"] not in WORLDS:
        msgs.append(f"unknown world {obj['world']!r}; expected one of {list(WORLDS)}")
    if obj.get("world") == "real" and not (isinstance(obj.get("dispute"), str) and obj["dispute"].strip()):
        msgs.append("a record with world 'real' needs a non-empty 'dispute' (the real-world dispute it is about)")
    if ("start" in obj) != ("end" in obj):
        msgs.append("fields 'start' and 'end' go together: give both or neither")
    return msgs


def corpus_files(paths: Iterable[str | Path] | None = None) -> list[Path]:
    """Expand files and folders (``*.jsonl`` inside, recursively, sorted) into a list of files."""
    from framing.io import expand_inputs

    return [Path(f) for f in expand_inputs([str(p) for p in paths or [seeds_dir() / "corpus"]], "**/*.jsonl")]


def read_splits(path: str | Path) -> dict:
    """Read a split manifest: ``{"documents": {doc_id: split}, "cross_domain_domains": [...]}``."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read split manifest: {e}") from e
    docs = manifest.get("documents") if isinstance(manifest, dict) else None
    if not isinstance(docs, dict):
        raise ValueError(f"{path}: expected an object with a 'documents' mapping of doc_id -> split")
    bad = {d: s for d, s in docs.items() if s not in SPLITS}
    if bad:
        d, s = next(iter(bad.items()))
        raise ValueError(f"{path}: document {d!r} has split {s!r}; expected one of {list(SPLITS)}")
    manifest.setdefault("cross_domain_domains", [])
    manifest.setdefault("world_heldout_disputes", [])
    return manifest


@dataclass
class CheckReport:
    """What :func:`check_corpus` found: the valid records and every problem."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict:
        """Counts by label, label x domain, label x register, split x label, origin and hard share."""
        rows = [r.data for r in self.records]
        by = lambda *keys: Counter(tuple(row[k] for k in keys) for row in rows)  # noqa: E731
        return {
            "sentences": len(rows),
            "documents": len({row["doc_id"] for row in rows}),
            "label": Counter(row["label"] for row in rows),
            "label_domain": by("domain", "label"),
            "label_register": by("register", "label"),
            "label_domain_register": by("domain", "register", "label"),
            "split_label": Counter((r.split or "-", r.data["label"]) for r in self.records),
            "origin": Counter(row["origin"] for row in rows),
            "hard": sum(row["hard"] for row in rows),
            "world": Counter(row.get("world", "invented") for row in rows),
            "dispute_label": Counter((row["dispute"], row["label"]) for row in rows if row.get("world") == "real"),
            "real_documents": len({row["doc_id"] for row in rows if row.get("world") == "real"}),
            "words": _length_stats([len(row["text"].split()) for row in rows]),
            "words_real": _length_stats([len(row["text"].split()) for row in rows if row.get("world") == "real"]),
        }

    def format_counts(self) -> str:
        """Readable tables of :meth:`counts`."""
        c = self.counts()
        n = max(c["sentences"], 1)
        out = [f"{c['sentences']} sentences in {c['documents']} documents; "
               f"hard cases {c['hard']} ({c['hard'] / n:.0%}); "
               + ", ".join(f"{k} {v}" for k, v in sorted(c["origin"].items()))]
        written = c["sentences"] - c["origin"].get("seed", 0)
        real = c["world"].get("real", 0)
        out.append(f"real-world disputes: {real} sentences ({real / max(written, 1):.0%} of written sentences) in "
                   f"{c['real_documents']} documents about {len({k[0] for k in c['dispute_label']})} disputes")
        for name, key in (("all", "words"), ("real-world", "words_real")):
            w = c[key]
            if w:
                out.append(f"words per sentence ({name}): mean {w['mean']:.1f}, median {w['median']:.0f}, "
                           f"p10 {w['p10']:.0f}, p90 {w['p90']:.0f}, max {w['max']}")
        out.append(_table("domain", c["label_domain"]))
        out.append(_table("register", c["label_register"]))
        if c["dispute_label"]:
            out.append(_table("dispute", c["dispute_label"]))
        out.append(_table("split", c["split_label"]))
        return "\n\n".join(out)


def _length_stats(lengths: list[int]) -> dict:
    if not lengths:
        return {}
    import statistics

    q = statistics.quantiles(lengths, n=10) if len(lengths) > 1 else [lengths[0]] * 9
    return {"mean": statistics.fmean(lengths), "median": statistics.median(lengths), "p10": q[0], "p90": q[-1],
            "max": max(lengths)}


def _table(row_name: str, counter: Counter) -> str:
    rows = sorted({k[0] for k in counter})
    width = max([len(row_name), 5] + [len(r) for r in rows])
    head = f"{row_name:<{width}}  " + "  ".join(f"{lab:>13}" for lab in LABELS) + f"  {'total':>6}"
    lines = [head, "-" * len(head)]
    for r in rows + ["total"]:
        vals = [sum(v for k, v in counter.items() if (r == "total" or k[0] == r) and k[-1] == lab) for lab in LABELS]
        lines.append(f"{r:<{width}}  " + "  ".join(f"{v:>13}" for v in vals) + f"  {sum(vals):>6}")
    return "\n".join(lines)


def check_corpus(
    paths: Iterable[str | Path] | None = None,
    *,
    splits: str | Path | None = None,
    documents_dir: str | Path | None = None,
    near_threshold: float = DEFAULT_NEAR_THRESHOLD,
) -> CheckReport:
    """Validate corpus files: schema, labels, ids, offsets, splits, exact and near duplicates.

    Args:
        paths: Files or folders of JSONL. Default: ``seeds/corpus``.
        splits: Split manifest. Default: ``seeds/splits.json`` when ``paths`` is the default
            corpus; otherwise each file is its own split (``train.jsonl`` -> ``train``).
        documents_dir: Where the source documents of ``start``/``end`` offsets live.
            Default: ``seeds/documents``.
        near_threshold: Cosine similarity (character 3-5-grams, TF-IDF) from which two
            different sentences count as near duplicates. Must be in (0, 1].

    Returns:
        A :class:`CheckReport`; ``report.ok`` is True when no problem was found.
    """
    if not 0 < near_threshold <= 1:
        raise ValueError(f"near_threshold must be in (0, 1], got {near_threshold!r}")
    default = not paths
    files = corpus_files(paths)
    if splits is None and default and (seeds_dir() / "splits.json").exists():
        splits = seeds_dir() / "splits.json"
    documents_dir = Path(documents_dir) if documents_dir else seeds_dir() / "documents"

    report = CheckReport()
    for f in files:
        recs, probs = read_jsonl(f)
        report.records.extend(recs)
        report.problems.extend(probs)

    _check_ids(report)
    _check_documents(report, documents_dir)
    _assign_splits(report, splits)
    _check_duplicates(report, near_threshold)
    report.problems.sort(key=lambda p: (p.path, p.line))
    return report


def _check_ids(report: CheckReport) -> None:
    first: dict[str, Record] = {}
    for r in report.records:
        rid = r.data["id"]
        if rid in first:
            report.problems.append(Problem(r.path, r.line, f"duplicate id {rid!r} (first at {first[rid].where})"))
        else:
            first[rid] = r


def _check_documents(report: CheckReport, documents_dir: Path) -> None:
    by_doc: dict[str, list[Record]] = defaultdict(list)
    for r in report.records:
        by_doc[r.data["doc_id"]].append(r)
    for doc_id, recs in by_doc.items():
        for key in ("domain", "register"):
            values = {r.data[key] for r in recs}
            if len(values) > 1:
                r = recs[0]
                report.problems.append(Problem(r.path, r.line, f"document {doc_id!r} mixes {key}s {sorted(values)}"))
        with_offsets = [r for r in recs if "start" in r.data]
        if not with_offsets:
            continue
        doc_path = documents_dir / f"{doc_id}.txt"
        try:
            doc = doc_path.read_text(encoding="utf-8")
        except OSError:
            r = with_offsets[0]
            report.problems.append(Problem(r.path, r.line, f"offsets given but source document {doc_path} is missing"))
            continue
        for r in with_offsets:
            s, e = r.data["start"], r.data["end"]
            if not 0 <= s < e <= len(doc) or doc[s:e] != r.data["text"]:
                report.problems.append(Problem(
                    r.path, r.line, f"offsets [{s}:{e}] do not match the text in {doc_path}: {doc[s:e][:50]!r}"))


def _assign_splits(report: CheckReport, splits: str | Path | None) -> None:
    if splits is None:
        for r in report.records:
            r.split = Path(r.path).stem
        return
    manifest = read_splits(splits)
    docs, held_out = manifest["documents"], set(manifest["cross_domain_domains"])
    held_disputes = set(manifest["world_heldout_disputes"])
    seen = set()
    for r in report.records:
        doc_id, domain = r.data["doc_id"], r.data["domain"]
        r.split = docs.get(doc_id)
        if doc_id in seen:
            continue
        seen.add(doc_id)
        if r.split is None:
            report.problems.append(Problem(
                r.path, r.line, f"document {doc_id!r} has no split in {splits}; run training/make_splits.py"))
        elif r.data.get("dispute", "") in held_disputes and r.split != "world_heldout" or (
                r.split == "world_heldout" and r.data.get("dispute", "") not in held_disputes):
            report.problems.append(Problem(
                r.path, r.line, f"document {doc_id!r} (dispute {r.data.get('dispute', '')!r}) is in split {r.split!r}, "
                f"but world_heldout holds exactly the disputes {sorted(held_disputes)}"))
        elif r.split != "world_heldout" and (domain in held_out) != (r.split == "cross_domain"):
            report.problems.append(Problem(
                r.path, r.line, f"document {doc_id!r} (domain {domain!r}) is in split {r.split!r}, but "
                f"cross_domain holds exactly the domains {sorted(held_out)}"))
        elif r.data["origin"] == "seed" and r.split != "test":
            report.problems.append(Problem(r.path, r.line, f"seed document {doc_id!r} must be in 'test', not {r.split!r}"))
    for doc_id in sorted(set(docs) - seen):
        report.problems.append(Problem(str(splits), 0, f"document {doc_id!r} is in the manifest but not in the corpus"))


def _check_duplicates(report: CheckReport, threshold: float) -> None:
    recs = report.records
    keys = [normalize_text(r.data["text"]) for r in recs]
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in first:
            j = first[k]
            report.problems.append(Problem(
                recs[i].path, recs[i].line,
                f"exact duplicate (after normalisation) of {recs[j].where} "
                f"[splits {recs[j].split} / {recs[i].split}]"))
        else:
            first[k] = i
    if len(first) < 2:
        return
    # dicts keep insertion order: position i among the distinct texts -> its first record.
    index = list(first.values())
    for i, j, sim in near_duplicates(list(first), threshold):
        a, b = recs[index[i]], recs[index[j]]
        report.problems.append(Problem(
            b.path, b.line,
            f"near duplicate (cosine {sim:.2f}) of {a.where} [splits {a.split} / {b.split}]: {b.data['text'][:50]!r}"))


def near_duplicates(texts: list[str], threshold: float, chunk: int = 2048) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)`` with ``i < j`` whose character 3-5-gram TF-IDF cosine >= threshold.

    Sparse matrix products in chunks keep memory bounded for tens of thousands of sentences.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(texts)
    pairs = []
    for lo in range(0, X.shape[0], chunk):
        sims = (X[lo:lo + chunk] @ X.T).tocoo()
        for i, j, v in zip(sims.row, sims.col, sims.data):
            i += lo
            if i < j and v >= threshold:
                pairs.append((int(i), int(j), float(v)))
    return sorted(pairs)


def load_corpus(
    corpus_dir: str | Path | None = None,
    splits: str | Path | None = None,
):
    """Load the corpus as a ``datasets.DatasetDict`` with splits ``train``, ``dev``, ``test``, ``cross_domain``.

    The corpus is validated first (:func:`check_corpus`); any problem raises ``ValueError``
    listing them, so a model is never trained on data that failed the check.
    """
    from framing.extras import need

    need("datasets", "loading the corpus for training")
    from datasets import Dataset, DatasetDict

    corpus_dir = Path(corpus_dir) if corpus_dir else seeds_dir() / "corpus"
    splits = Path(splits) if splits else corpus_dir.parent / "splits.json"
    report = check_corpus([corpus_dir], splits=splits, documents_dir=corpus_dir.parent / "documents")
    if not report.ok:
        shown = "\n  ".join(map(str, report.problems[:20]))
        more = f"\n  ... and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
        raise ValueError(f"corpus {corpus_dir} has {len(report.problems)} problem(s); "
                         f"run `framing data check`:\n  {shown}{more}")
    split_of = read_splits(splits)["documents"]
    # Every column for every row: optional fields get their defaults (no offsets: -1; world: invented).
    columns = {**{k: None for k in FIELDS}, "start": -1, "end": -1, "world": "invented", "dispute": ""}
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for rec in report.records:
        row = {k: rec.data.get(k, default) if default is not None else rec.data[k] for k, default in columns.items()}
        row["split"] = split_of[rec.data["doc_id"]]
        by_split[row["split"]].append(row)
    empty = {k: [] for k in [*columns, "split"]}
    return DatasetDict({s: Dataset.from_list(rows) if rows else Dataset.from_dict(empty) for s, rows in by_split.items()})


def read_labelled(path: str | Path) -> list[dict]:
    """Read any labelled JSONL for evaluation: each line needs ``text`` and ``label``; ``domain`` optional.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, or a line is malformed, lacks ``text``/``label``, has empty
            text or an unknown label; the message names ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows, problems = [], []
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                problems.append(f"{path}:{n}: malformed line ({e})")
                continue
            if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
                got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
                problems.append(f"{path}:{n}: expected an object with 'text' and 'label', got {got}")
            elif not isinstance(obj["text"], str) or not obj["text"].strip():
                problems.append(f"{path}:{n}: empty or non-string 'text'")
            elif obj["label"] not in LABELS:
                problems.append(f"{path}:{n}: unknown label {obj['label']!r}; expected one of {list(LABELS)}")
            else:
                rows.append(obj)
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in {path}:\n  " + "\n  ".join(problems[:20]))
    if not rows:
        raise ValueError(f"{path}: no labelled items (the file is empty)")
    return rows
