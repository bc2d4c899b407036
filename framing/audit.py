"""``framing audit [CORPUS]``: likely label errors in the corpus, by confident learning.

1. Every sentence gets **out-of-fold** probabilities: the corpus is cut into folds by document
   (``StratifiedGroupKFold`` on ``doc_id``, so no sentence is scored by a model that saw its own
   document), and a logistic regression trained on the other folds scores each fold. Features are
   frozen, mean-pooled encoder embeddings (default: all-mpnet-base-v2, computed once and cached)
   or tf-idf n-grams (``--features tfidf``: seconds, weaker).
2. **Confident learning** (cleanlab's ``find_label_issues``) flags the sentences whose given label
   disagrees with what the out-of-fold model is confident of, given the per-class noise it
   estimates; each gets cleanlab's label-quality score (low = likely wrong).

The output lists flagged sentences, most likely errors first: given label, suggested label,
score, and ``file:line`` of the record, so a reviewer can open it and fix it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from framing.labels import LABEL2ID, LABELS

FEATURES = ("embedding", "tfidf")


def _tfidf(texts: list[str]) -> "object":
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=3, sublinear_tf=True,
                            max_features=200_000).fit_transform(texts)
    return hstack([words, chars]).tocsr()


def embeddings(texts: list[str], encoder: str, quantize: bool = True, cache: bool = True, log=None) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``texts`` by a registered encoder, cached as ``.npy``
    under ``$FRAMING_CACHE/audit/`` (keyed by encoder, precision and the texts)."""
    from framing.encoder import cache_dir
    from framing.model import EmbeddingBackend

    key = hashlib.sha256(json.dumps([encoder, quantize, texts]).encode("utf-8")).hexdigest()[:20]
    path = cache_dir() / "audit" / f"{encoder}-{key}.npy"
    if cache and path.is_file():
        arr = np.load(path, allow_pickle=False)
        if arr.shape[0] == len(texts):
            return arr
    backend = EmbeddingBackend(encoder, np.zeros((len(LABELS), 1)), np.zeros(len(LABELS)))
    if quantize:
        from framing.quantize import quantize_int8

        backend.embed(texts[:1])  # loads the encoder
        quantize_int8(backend._encoder[0])
    if log:
        log(f"embedding {len(texts)} sentences with {encoder}{' (int8)' if quantize else ''} ...")
    arr = backend.embed(texts)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, arr, allow_pickle=False)
        tmp.replace(path)
    return arr


def out_of_fold(features, labels: np.ndarray, groups: list[str], folds: int = 5, seed: int = 0,
                C: float = 4.0) -> np.ndarray:
    """Out-of-fold class probabilities (rows of :data:`LABELS` order) with folds by ``groups``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold

    if len(set(groups)) < folds:
        raise ValueError(f"folds={folds} needs at least {folds} documents; the corpus has {len(set(groups))}")
    probs = np.zeros((len(labels), len(LABELS)), dtype=np.float64)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(labels)), labels, groups):
        clf = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        clf.fit(features[train], labels[train])
        p = np.zeros((len(test), len(LABELS)))
        p[:, clf.classes_] = clf.predict_proba(features[test])
        probs[test] = p
    return probs


def audit(records: list[dict], features: str = "embedding", encoder: str = "all-mpnet-base-v2",
          folds: int = 5, seed: int = 0, log=None) -> tuple[list[dict], dict]:
    """Find likely label errors among corpus ``records`` (dicts with ``id``, ``doc_id``, ``text``,
    ``label`` and optionally ``where``).

    Returns:
        The flagged records, most likely errors first, and a summary (counts, the out-of-fold
        model's macro-F1 as a sanity check, and given → suggested pairs).
    """
    from framing.extras import need

    need("cleanlab", "finding likely label errors (framing audit)")
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from framing.metrics import classification_report

    if features not in FEATURES:
        raise ValueError(f"features must be one of {list(FEATURES)}, got {features!r}")
    if not records:
        raise ValueError("no records to audit")
    texts = [r["text"] for r in records]
    labels = np.array([LABEL2ID[r["label"]] for r in records])
    X = _tfidf(texts) if features == "tfidf" else embeddings(texts, encoder, log=log)
    if log:
        log(f"out-of-fold probabilities: {folds} folds by document, logistic regression on {features} features")
    probs = out_of_fold(X, labels, [r["doc_id"] for r in records], folds=folds, seed=seed)
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    flagged = []
    for rank, i in enumerate(ranked, 1):
        r = records[i]
        sug = int(np.argmax(probs[i]))
        flagged.append({"rank": rank, "id": r["id"], "doc_id": r["doc_id"], "where": r.get("where"),
                        "text": r["text"], "given": r["label"], "suggested": LABELS[sug],
                        "score": round(float(quality[i]), 4), "p_given": round(float(probs[i, labels[i]]), 4),
                        "p_suggested": round(float(probs[i, sug]), 4)})
    rep = classification_report([LABELS[x] for x in labels], [LABELS[x] for x in probs.argmax(1)])
    pairs: dict[str, int] = {}
    for f in flagged:
        k = f"{f['given']} -> {f['suggested']}"
        pairs[k] = pairs.get(k, 0) + 1
    summary = {"records": len(records), "flagged": len(flagged), "features": features,
               "encoder": encoder if features == "embedding" else None, "folds": folds, "seed": seed,
               "oof_macro_f1": round(float(rep["macro_f1"]), 4),
               "pairs": dict(sorted(pairs.items(), key=lambda kv: -kv[1]))}
    return flagged, summary


def corpus_records(paths=None, splits=None) -> list[dict]:
    """The corpus's valid records as dicts with ``where`` (``file:line``); refuses a corpus with problems."""
    from framing.data import check_corpus, seeds_dir

    paths = [Path(p) for p in paths] if paths else [seeds_dir() / "corpus"]
    report = check_corpus(paths, splits=splits)
    if not report.ok:
        shown = "\n  ".join(map(str, report.problems[:10]))
        raise ValueError(f"{len(report.problems)} problem(s) in the corpus; run `framing data check`:\n  {shown}")
    return [{**rec.data, "where": rec.where} for rec in report.records]
