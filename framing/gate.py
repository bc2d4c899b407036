"""The gate before a retrained model replaces a baseline: ``framing train ... --baseline MODEL [--require-better]``.

Both models label the same items: test, the held-out splits (``cross_domain``, ``world_heldout``)
and ``real_dev`` when present. For each set, macro-F1 of each model and a paired comparison
(:func:`framing.evaluation.paired_comparison`: paired bootstrap CI and p-value of the difference,
McNemar's exact test). The **primary metric** is macro-F1 on the gate sets pooled into one (by
default test + the two held-out splits: ``real_dev`` is reported but never gates, because corpus
rounds were written from its errors). The new model passes when its primary metric is at least
the baseline's minus ``tolerance`` (default 0).
"""

from __future__ import annotations

import json
from pathlib import Path

from framing.labels import LABELS

DEFAULT_GATE = ("test", "cross_domain", "world_heldout")


def _macro_f1(gold, pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, labels=list(LABELS), average="macro", zero_division=0))


def compare(new_preds: dict[str, list[str]], base_preds: dict[str, list[str]], gold: dict[str, list[str]],
            gate_on=DEFAULT_GATE, tolerance: float = 0.0, n_boot: int = 1000, names=("new", "baseline")) -> dict:
    """Paired comparison of two models' predictions per set and on the pooled gate sets.

    Args:
        new_preds, base_preds, gold: Labels per set name, aligned item by item.
        gate_on: Set names pooled for the primary metric; names missing from ``gold`` are skipped
            (at least one must be present).
        tolerance: How far below the baseline the new model may be and still pass.
    """
    from framing.evaluation import paired_comparison

    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    sets = {}
    for name, g in gold.items():
        if len(new_preds[name]) != len(g) or len(base_preds[name]) != len(g):
            raise ValueError(f"set {name!r}: {len(g)} gold labels but {len(new_preds[name])} new and "
                             f"{len(base_preds[name])} baseline predictions")
        sets[name] = {"n": len(g), "new": _macro_f1(g, new_preds[name]), "baseline": _macro_f1(g, base_preds[name]),
                      "paired": paired_comparison(g, new_preds[name], base_preds[name], n_boot=n_boot),
                      "gates": name in gate_on}
    used = [s for s in gate_on if s in gold]
    if not used:
        raise ValueError(f"none of the gate sets {list(gate_on)} is available (have {sorted(gold)})")
    g = [y for s in used for y in gold[s]]
    a = [y for s in used for y in new_preds[s]]
    b = [y for s in used for y in base_preds[s]]
    primary = {"sets": used, "n": len(g), "new": _macro_f1(g, a), "baseline": _macro_f1(g, b),
               "paired": paired_comparison(g, a, b, n_boot=n_boot)}
    primary["diff"] = primary["new"] - primary["baseline"]
    passed = primary["new"] >= primary["baseline"] - tolerance
    return {"names": {"new": names[0], "baseline": names[1]}, "metric": "macro_f1", "tolerance": tolerance,
            "primary": primary, "sets": sets, "passed": bool(passed)}


def render(result: dict) -> str:
    """A Markdown table of :func:`compare`'s result, and the verdict."""
    n = result["names"]
    lines = [f"# {n['new']} vs baseline {n['baseline']}", "",
             "| set | n | new | baseline | diff | 95% CI (paired bootstrap) | p | gates |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in result["sets"].items():
        p = s["paired"]
        lines.append(f"| {name} | {s['n']} | {s['new']:.3f} | {s['baseline']:.3f} | {s['new'] - s['baseline']:+.3f} | "
                     f"[{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}] | {p['p_bootstrap']:.3f} | {'yes' if s['gates'] else 'no'} |")
    pr = result["primary"]
    lines += ["", f"Primary metric: macro-F1 on {' + '.join(pr['sets'])} pooled ({pr['n']} items): "
              f"new {pr['new']:.3f}, baseline {pr['baseline']:.3f} ({pr['diff']:+.3f}; 95% CI "
              f"[{pr['paired']['ci95'][0]:+.3f}, {pr['paired']['ci95'][1]:+.3f}], p = {pr['paired']['p_bootstrap']:.3f}).",
              "", ("PASSED" if result["passed"] else "FAILED") +
              f": the new model is {'at least as good as' if result['passed'] else 'worse than'} the baseline "
              f"(tolerance {result['tolerance']})."]
    return "\n".join(lines) + "\n"


def compare_with_baseline(new_clf, baseline_ref, sets: dict[str, tuple[list[str], list[str]]], output_dir=None,
                          new_preds: dict[str, list[str]] | None = None, gate_on=DEFAULT_GATE, tolerance: float = 0.0,
                          n_boot: int = 1000, device: str = "auto") -> dict:
    """Label ``sets`` with the baseline (and the new model, unless ``new_preds`` has them), compare,
    and write ``baseline_comparison.json`` and ``.md`` to ``output_dir``."""
    from framing.model import Classifier

    base = Classifier.load(baseline_ref, device=device)
    gold = {k: list(v[1]) for k, v in sets.items()}
    new_preds = dict(new_preds or {})
    for k, (texts, _) in sets.items():
        if k not in new_preds:
            new_preds[k] = new_clf.predict(list(texts))
    base_preds = {k: base.predict(list(texts)) for k, (texts, _) in sets.items()}
    result = compare(new_preds, base_preds, gold, gate_on=gate_on, tolerance=tolerance, n_boot=n_boot,
                     names=(new_clf.name, f"{base.name} ({baseline_ref})"))
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "baseline_comparison.json").write_text(json.dumps(result, indent=1) + "\n")
        (out / "baseline_comparison.md").write_text(render(result))
    return result
