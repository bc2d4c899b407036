"""Classification metrics over :data:`framing.LABELS`, built on scikit-learn.

Training's dev evaluation and the ``eval/`` harness both call :func:`classification_report`,
so a number means the same thing wherever it is printed.
"""

from __future__ import annotations

import numpy as np

from framing.labels import LABELS

PRIMARY_METRIC = "macro_f1"


def _check(y_true, y_pred) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("cannot compute metrics on empty data: y_true has no items")
    unknown = sorted({str(y) for y in list(y_true) + list(y_pred)} - set(LABELS))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; expected labels from {list(LABELS)}")


def classification_report(y_true, y_pred) -> dict:
    """Accuracy, macro-F1 (primary), per-label precision/recall/F1/support and the confusion matrix.

    Labels absent from both ``y_true`` and ``y_pred`` still get a row (F1 0, support 0), and
    macro-F1 averages over all four labels, so a model that always predicts one class gets
    the low score it deserves.

    Returns:
        A JSON-serialisable dict with ``primary_metric`` naming the key of the main figure.
    """
    _check(y_true, y_pred)
    labels = list(LABELS)
    # Imported here, not at module level: labelling needs only softmax, and scikit-learn
    # (with SciPy) adds ~100 MB to every `framing label` process.
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "primary_metric": PRIMARY_METRIC,
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_label": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels, "rows_gold_cols_pred": cm.tolist()},
    }


def flat_metrics(y_true, y_pred) -> dict:
    """One flat dict of figures: ``macro_f1`` (primary), ``accuracy``, ``f1_<label>``, ``precision_<label>``, ``recall_<label>``.

    The single evaluator behind early stopping, ``metrics.json`` and ``framing eval``.
    """
    return flatten_report(classification_report(y_true, y_pred))


def flatten_report(rep: dict) -> dict:
    """The flat form of a :func:`classification_report` result."""
    out = {"macro_f1": rep["macro_f1"], "accuracy": rep["accuracy"], "n": rep["n"]}
    for lab, m in rep["per_label"].items():
        for key in ("f1", "precision", "recall"):
            out[f"{key}_{lab}"] = m[key]
    return out


def format_report(report: dict, title: str = "") -> str:
    """A short readable table of :func:`classification_report` output."""
    lines = [title] if title else []
    lines.append(f"n={report['n']}  accuracy={report['accuracy']:.3f}  macro-F1={report['macro_f1']:.3f}")
    lines.append(f"{'label':<14}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for lab, m in report["per_label"].items():
        lines.append(f"{lab:<14}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9d}")
    return "\n".join(lines)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, numerically stable."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def say(message: str) -> None:
    """The default log of training and evaluation: stdout, flushed per message, so that a background
    run's log (``nohup framing train ... > log &``) shows each line when it happens, not when a
    buffer fills."""
    print(message, flush=True)
