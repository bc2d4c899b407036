"""``framing review``: the labelled sentences most worth a human look, as a queue for ``framing annotate``.

Strategies (each scores every sentence, streaming, so a labelled file of millions of sentences is
never held in memory; only a bounded pool of the best candidates is):

* ``uncertainty`` — a small margin between the model's two most probable labels.
* ``disagreement`` — a second model (by default the other shipped model) labels every sentence;
  sentences where the two disagree come first, ordered by how far their probabilities differ
  (total variation distance), then the closest calls.
* ``diverse`` — uncertainty, taken in turn from each predicted label, so that every label gets
  its share of the queue.

Whatever the strategy, the queue is spread out: at most ``per_doc`` sentences of one document,
and no sentence whose wording nearly repeats one already queued (word-shingle Jaccard similarity
≥ ``max_similarity``). Every queued item carries its neighbouring sentences as context, the
model's label and probabilities, its score and a one-line reason.
"""

from __future__ import annotations

import heapq
import json
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from framing.labels import LABELS

STRATEGIES = ("uncertainty", "disagreement", "diverse")


@dataclass
class Candidate:
    """A sentence considered for the queue."""

    score: float
    seq: int
    item: dict
    after_needed: int = 0

    def __lt__(self, other: "Candidate") -> bool:  # heap order: lowest score (then latest) first
        return (self.score, -self.seq) < (other.score, -other.seq)


def margin(probs: tuple[float, ...]) -> tuple[float, int, int]:
    """``(p1 - p2, index of top label, index of runner-up)``."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    return probs[order[0]] - probs[order[1]], order[0], order[1]


def _shingles(text: str, k: int = 3) -> set:
    words = re.findall(r"\w+", text.casefold())
    if len(words) < k:
        return {" ".join(words)}
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _probs_dict(probs) -> dict:
    return {lab: round(float(p), 4) for lab, p in zip(LABELS, probs)}


def other_model(name: str | None) -> str:
    """The shipped model to compare with: ``accurate`` for a fast-labelled file, else ``fast``."""
    return "accurate" if name and "fast" in name else "fast"


def _windows(records: Iterable, size: int) -> Iterator[list]:
    buf = []
    for r in records:
        buf.append(r)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def build_queue(records: Iterable, n: int = 200, strategy: str = "uncertainty", *,
                second: Callable[[list[str]], "object"] | None = None, per_doc: int = 2,
                max_similarity: float = 0.6, context: int = 2, pool: int | None = None,
                window: int = 1024) -> tuple[list[dict], dict]:
    """Choose the ``n`` sentences of ``records`` most worth reviewing.

    Args:
        records: :class:`framing.report.LabelledSentence` objects in file order (sentences of a
            document consecutive).
        n: Queue length.
        strategy: One of :data:`STRATEGIES`.
        second: For ``disagreement``: a function from texts to an ``(len, 4)`` array of the
            second model's probabilities (e.g. ``Classifier.predict_proba``).
        per_doc: At most this many queued sentences from one document.
        max_similarity: Skip a sentence whose word-trigram Jaccard similarity to a queued one is
            at least this.
        context: Sentences of context on each side.
        pool: Candidates kept while streaming (default ``max(20 * n, 2000)``).
        window: Sentences per call of ``second``.

    Returns:
        The queue (dicts, best first) and statistics (sentences seen, skipped, pool size).

    Raises:
        ValueError: a bad parameter, or a record without probabilities (naming ``file:line``).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    for name, value, low in (("n", n, 1), ("per_doc", per_doc, 1), ("context", context, 0)):
        if not (isinstance(value, int) and value >= low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0 < max_similarity <= 1:
        raise ValueError(f"max_similarity must be in (0, 1], got {max_similarity!r}")
    if strategy == "disagreement" and second is None:
        raise ValueError("strategy 'disagreement' needs a second model")
    pool = pool or max(20 * n, 2000)
    heap: list[Candidate] = []
    pending: list[Candidate] = []  # candidates still collecting sentences after them
    before: deque = deque(maxlen=context)
    doc = object()
    seen = empty = disagreements = 0
    seq = 0

    def stream():
        if strategy != "disagreement":
            for r in records:
                yield r, None
            return
        for win in _windows(records, window):
            texts = [r.text for r in win if r.text.strip()]
            probs = iter(second(texts)) if texts else iter(())
            for r in win:
                yield r, (next(probs) if r.text.strip() else None)

    for rec, p2 in stream():
        if rec.doc_id != doc:
            doc = rec.doc_id
            before.clear()
            for c in pending:
                c.after_needed = 0
            pending = []
        for c in pending:
            c.item["context_after"].append(rec.text)
            c.after_needed -= 1
        pending = [c for c in pending if c.after_needed > 0]
        if not rec.text.strip():
            empty += 1
            before.append(rec.text)
            continue
        if rec.probs is None:
            raise ValueError(f"{rec.where}: no 'probs' for this sentence; review needs the probabilities "
                             "that `framing label` writes")
        seen += 1
        m, top, runner = margin(rec.probs)
        item = {"doc_id": rec.doc_id, "sent_id": rec.sent_id, "text": rec.text, "label": rec.label,
                "probs": _probs_dict(rec.probs), "model": rec.model, "context_before": list(before),
                "context_after": [], "where": rec.where}
        for key in ("domain", "register"):
            if isinstance(rec.extra.get(key), str):
                item[key] = rec.extra[key]
        if strategy == "disagreement":
            p2 = [float(x) for x in p2]
            tv = 0.5 * sum(abs(a - b) for a, b in zip(rec.probs, p2))
            lab2 = LABELS[max(range(len(LABELS)), key=lambda i: p2[i])]
            item["second_label"], item["second_probs"] = lab2, _probs_dict(p2)
            if lab2 != rec.label:
                disagreements += 1
                score = 1.0 + tv
                item["reason"] = f"{rec.model or 'model'} says {rec.label}, the second model {lab2} (distance {tv:.2f})"
            else:
                score = 1.0 - m
                item["reason"] = f"both say {rec.label}; margin {m:.2f} over {LABELS[runner]}"
        else:
            score = 1.0 - m
            item["reason"] = f"margin {m:.2f} between {LABELS[top]} and {LABELS[runner]}"
        item["score"] = round(score, 4)
        before.append(rec.text)
        seq += 1
        cand = Candidate(score, seq, item, context)
        if len(heap) < pool:
            heapq.heappush(heap, cand)
        elif heap[0] < cand:
            heapq.heapreplace(heap, cand)
        else:
            continue
        if context:
            pending.append(cand)

    ranked = sorted(heap, key=lambda c: (-c.score, c.seq))
    queue = _spread([c.item for c in ranked], n, per_doc, max_similarity, by_label=strategy == "diverse")
    for i, item in enumerate(queue):
        item["queue_id"] = i
        item["strategy"] = strategy
    stats = {"sentences": seen, "empty": empty, "pool": len(heap), "queued": len(queue)}
    if strategy == "disagreement":
        stats["disagreements"] = disagreements
    return queue, stats


def _spread(items: list[dict], n: int, per_doc: int, max_similarity: float, by_label: bool) -> list[dict]:
    """Take items best first under the per-document cap and the near-copy rule; with ``by_label``,
    take the best remaining item of each predicted label in turn."""
    per: dict[str, int] = {}
    chosen: list[dict] = []
    shingles: list[set] = []

    def admissible(item) -> set | None:
        if per.get(item["doc_id"], 0) >= per_doc:
            return None
        sh = _shingles(item["text"])
        if any(jaccard(sh, s) >= max_similarity for s in shingles):
            return None
        return sh

    if by_label:
        queues = {lab: deque(i for i in items if i["label"] == lab) for lab in LABELS}
        while len(chosen) < n and any(queues.values()):
            for lab in LABELS:
                q = queues[lab]
                while q:
                    item = q.popleft()
                    sh = admissible(item)
                    if sh is not None:
                        chosen.append(item)
                        shingles.append(sh)
                        per[item["doc_id"]] = per.get(item["doc_id"], 0) + 1
                        break
                if len(chosen) >= n:
                    break
        return chosen
    for item in items:
        if len(chosen) >= n:
            break
        sh = admissible(item)
        if sh is None:
            continue
        chosen.append(item)
        shingles.append(sh)
        per[item["doc_id"]] = per.get(item["doc_id"], 0) + 1
    return chosen


def write_queue(queue: list[dict], path: str | Path) -> Path:
    """Write the queue as JSONL (atomically: a temporary file renamed into place)."""
    import os

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for item in queue:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def read_queue(path: str | Path) -> list[dict]:
    """Read a review queue, checking each line (``file:line`` in every error)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (make one with `framing review LABELLED -o {path.name}`)")
    items, ids = [], set()
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}:{n}: malformed queue line ({e})") from e
            missing = [k for k in ("doc_id", "text", "label") if not isinstance(item, dict) or k not in item]
            if missing:
                raise ValueError(f"{path}:{n}: a queue item needs 'doc_id', 'text' and 'label'; missing {missing}")
            if item["label"] not in LABELS:
                raise ValueError(f"{path}:{n}: unknown label {item['label']!r}; expected one of {list(LABELS)}")
            key = item_key(item)
            if key in ids:
                raise ValueError(f"{path}:{n}: sentence {key!r} appears twice in the queue")
            ids.add(key)
            items.append(item)
    if not items:
        raise ValueError(f"{path}: the queue is empty")
    return items


def item_key(item: dict) -> str:
    """A queue item's id: ``<doc_id>-s<sent_id>`` (the corpus id its annotation gets)."""
    sent = item.get("sent_id")
    return f"{item['doc_id']}-s{sent}" if sent is not None else f"{item['doc_id']}-q{item.get('queue_id', 0)}"
