"""Label documents and sentences from files: ``framing label INPUT... [-o OUT]``.

Inputs: ``.txt`` files are documents, split into sentences with character offsets;
``.jsonl``/``.csv`` records are documents (``--unit document``) or single sentences
(``--unit sentence``). Each output record::

    {"doc_id", "sent_id", "start", "end", "text", "label", "confidence", "probs", "model"}

where ``doc[start:end] == text`` for documents split into sentences.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator

from framing.labels import LABELS
from framing.model import Classifier

# Tokens ending in "." that do not end a sentence.
_ABBREV = {
    "mr", "mrs", "ms", "dr", "prof", "gen", "col", "lt", "sgt", "capt", "gov", "sen", "rep", "st", "jr", "sr",
    "no", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "corp", "dept", "approx", "fig", "art", "para",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.n", "u.k",
}
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text``; ``text[start:end]`` is the stripped sentence.

    A rule-based splitter for news prose: it breaks after ``.!?`` (and closing quotes) before
    an upper-case letter or digit, skips common abbreviations and initials, and treats blank
    lines as hard breaks.
    """
    spans = []
    for para in re.finditer(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", text, flags=re.S):
        lo = para.start()
        body = para.group()
        cut = 0
        for m in _BOUNDARY.finditer(body):
            word = re.search(r"(\S+)$", body[cut:m.start() + 1])
            token = word.group(1).rstrip(".!?").lower() if word else ""
            if body[m.start()] == "." and (token in _ABBREV or re.fullmatch(r"[a-z]", token)):
                continue
            spans.append((lo + cut, lo + m.end()))
            cut = m.end()
            while cut < len(body) and body[cut].isspace():
                cut += 1
        if cut < len(body):
            spans.append((lo + cut, lo + len(body)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def read_documents(paths: Iterable[str | Path], text_column: str = "text", id_column: str = "id") -> Iterator[tuple[str, str]]:
    """Yield ``(doc_id, text)`` from ``.txt``, ``.jsonl`` and ``.csv`` files.

    Raises:
        ValueError: an unsupported extension, malformed line, or a record without the text
            column; the message names file and line.
    """
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".txt":
            try:
                yield path.stem, path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: not valid UTF-8 at byte {e.start}") from e
        elif suffix == ".jsonl":
            with path.open(encoding="utf-8", errors="strict") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n}: malformed JSON ({e.msg})") from e
                    yield _record(rec, path, n, text_column, id_column)
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                for n, rec in enumerate(reader, 2):  # line 1 is the header
                    yield _record(rec, path, n, text_column, id_column)
        else:
            raise ValueError(f"{path}: unsupported input type {suffix!r}; expected .txt, .jsonl or .csv")


def _record(rec, path, n, text_column, id_column) -> tuple[str, str]:
    if not isinstance(rec, dict) or text_column not in rec:
        have = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
        raise ValueError(f"{path}:{n}: no text column {text_column!r} (found {have}); set --text-column")
    text = rec[text_column]
    if not isinstance(text, str):
        raise ValueError(f"{path}:{n}: column {text_column!r} must hold text, got {type(text).__name__}")
    doc_id = rec.get(id_column)
    return (str(doc_id) if doc_id not in (None, "") else f"{path.stem}:{n}"), text


def label_documents(clf: Classifier, docs: Iterable[tuple[str, str]], unit: str = "document",
                    batch_size: int = 256) -> Iterator[dict]:
    """Label ``(doc_id, text)`` pairs; yield one record per sentence, in input order.

    Args:
        clf: The classifier.
        docs: ``(doc_id, text)`` pairs.
        unit: ``document`` (split each text into sentences) or ``sentence`` (each text is one).
        batch_size: Sentences gathered before each call to the model.
    """
    if unit not in ("document", "sentence"):
        raise ValueError(f"unit must be 'document' or 'sentence', got {unit!r}")
    pending: list[dict] = []
    for doc_id, text in docs:
        if unit == "sentence":
            spans = [(0, len(text))] if text.strip() else []
        else:
            spans = split_sentences(text)
        for k, (s, e) in enumerate(spans):
            pending.append({"doc_id": doc_id, "sent_id": k, "start": s, "end": e, "text": text[s:e]})
        if len(pending) >= batch_size:
            yield from _label_batch(clf, pending)
            pending = []
    if pending:
        yield from _label_batch(clf, pending)


def _label_batch(clf: Classifier, rows: list[dict]) -> Iterator[dict]:
    probs = clf.predict_proba([r["text"] for r in rows])
    for r, p in zip(rows, probs):
        i = int(p.argmax())
        r.update(label=LABELS[i], confidence=round(float(p[i]), 4),
                 probs={lab: round(float(v), 4) for lab, v in zip(LABELS, p)}, model=clf.name)
        yield r


def write_jsonl(records: Iterable[dict], path: str | Path) -> int:
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


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
