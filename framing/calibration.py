"""Calibration: temperature scaling and expected calibration error (ECE)."""

from __future__ import annotations

import numpy as np

from framing.labels import LABEL2ID
from framing.metrics import softmax


def _targets(y) -> np.ndarray:
    return np.array([LABEL2ID[v] if isinstance(v, str) else int(v) for v in y])


def nll(logits: np.ndarray, y, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under ``softmax(logits / temperature)``."""
    p = softmax(logits, temperature)
    t = _targets(y)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], 1e-12, None))))


def fit_temperature(logits: np.ndarray, y, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises dev NLL (Guo et al., 2017). One scalar: accuracy is unchanged."""
    from scipy.optimize import minimize_scalar

    if len(logits) == 0:
        raise ValueError("cannot fit a temperature on empty data")
    # Search log(T) so that the bounded search treats over- and under-confidence alike.
    res = minimize_scalar(lambda lt: nll(logits, y, float(np.exp(lt))), bounds=tuple(np.log(bounds)), method="bounded")
    return float(np.exp(res.x))


def reliability(probs: np.ndarray, y, n_bins: int = 10) -> dict:
    """Expected calibration error over equal-width confidence bins, with the per-bin table.

    Returns:
        ``{"ece": float, "bins": [{"lo", "hi", "count", "confidence", "accuracy"}, ...]}``.
    """
    probs = np.asarray(probs)
    t = _targets(y)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == t
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins, ece = [], 0.0
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        mask = (conf > lo) & (conf <= hi) if k else (conf >= lo) & (conf <= hi)
        n = int(mask.sum())
        acc = float(correct[mask].mean()) if n else 0.0
        c = float(conf[mask].mean()) if n else 0.0
        ece += n / max(len(t), 1) * abs(acc - c)
        bins.append({"lo": float(lo), "hi": float(hi), "count": n, "confidence": c, "accuracy": acc})
    return {"ece": float(ece), "bins": bins}
