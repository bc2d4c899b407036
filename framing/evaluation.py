"""Evaluation harness: ``framing eval --model M [--model M2 ...] --data D [--data D2 ...] -o DIR``.

For every model and data set: accuracy, macro-F1 (primary), per-label P/R/F1/support, confusion
matrix, bootstrap 95% confidence intervals, expected calibration error before and after
temperature scaling with a reliability diagram, a per-domain breakdown, and the misclassified
items, most confident first. Models are compared on the same items with a paired bootstrap of
the macro-F1 difference and McNemar's exact test on correctness.

Everything goes to ``report.json`` (every number), ``report.md`` (readable tables) and PNG
plots. The metric code is :func:`framing.metrics.classification_report`, the same function
training uses for dev.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framing.calibration import reliability
from framing.labels import LABELS
from framing.metrics import classification_report, flatten_report, say, softmax

NAMED_SPLITS = {"train": "train", "dev": "dev", "test": "test", "cross-domain": "cross_domain",
                "cross_domain": "cross_domain", "world-heldout": "world_heldout", "world_heldout": "world_heldout"}


@dataclass
class EvalData:
    """Labelled items to evaluate on."""

    name: str
    texts: list[str]
    labels: list[str]
    domains: list[str | None]
    ids: list[str]
    redact: bool = False
    """Keep the texts out of reports (real_dev's sentences belong to their publishers)."""


_CORPUS: dict = {}


def _corpus(load):
    """The corpus, validated once per process and per corpus state (the check takes ~1 minute)."""
    from framing.data import corpus_files, seeds_dir

    files = corpus_files() + [seeds_dir() / "splits.json"]
    key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if key not in _CORPUS:
        _CORPUS.clear()
        _CORPUS[key] = load()
    return _CORPUS[key]


def load_eval_data(spec: str) -> EvalData:
    """A named corpus split (``train``, ``dev``, ``test``, ``cross-domain``), ``real-dev``, or a JSONL path.

    Raises:
        FileNotFoundError, ValueError: the data cannot be found, is empty, or has bad lines
            (unknown label, missing ``label``/``text``), naming file and line.
    """
    from framing.data import load_corpus, read_labelled

    if spec in NAMED_SPLITS:
        ds = _corpus(load_corpus)[NAMED_SPLITS[spec]]
        rows = [dict(zip(ds.column_names, vals)) for vals in zip(*(ds[c] for c in ds.column_names))]
        name = spec
    else:
        from framing.paths import real_dev_path

        path = real_dev_path() if spec in ("real-dev", "real_dev") else Path(spec)
        if spec in ("real-dev", "real_dev") and not path.is_file():
            raise FileNotFoundError(f"real-dev data not found at {path} (expected ../shared beside the checkout, "
                                    "or set FRAMING_REAL_DEV)")
        rows = read_labelled(path)
        name = "real-dev" if spec in ("real-dev", "real_dev") else path.stem
    if not rows:
        raise ValueError(f"data {spec!r} holds no items")
    return EvalData(name, [r["text"] for r in rows], [r["label"] for r in rows],
                    [r.get("domain") for r in rows], [str(r.get("id", i)) for i, r in enumerate(rows)],
                    redact=spec in ("real-dev", "real_dev"))


def bootstrap_ci(y_true, y_pred, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Percentile bootstrap CIs for accuracy and macro-F1, resampling items with replacement."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    n = len(y_true)
    acc, f1 = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        acc.append(float(np.mean(y_true[idx] == y_pred[idx])))
        f1.append(float(f1_score(y_true[idx], y_pred[idx], labels=list(LABELS), average="macro", zero_division=0)))
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    point_acc = float(np.mean(y_true == y_pred))
    point_f1 = float(f1_score(y_true, y_pred, labels=list(LABELS), average="macro", zero_division=0))
    # The percentile interval of a skewed statistic can miss its point estimate; widen to include it.
    a_lo, a_hi = np.percentile(acc, q)
    f_lo, f_hi = np.percentile(f1, q)
    return {"n_boot": n_boot, "level": 1 - alpha,
            "accuracy": [float(min(a_lo, point_acc)), float(max(a_hi, point_acc))],
            "macro_f1": [float(min(f_lo, point_f1)), float(max(f_hi, point_f1))]}


def paired_comparison(y_true, pred_a, pred_b, n_boot: int = 1000, seed: int = 0) -> dict:
    """Is model A's macro-F1 really different from B's on the same items?

    Paired bootstrap: resample items once per round and score both models on the same sample;
    the 95% interval of the difference, and a two-sided p-value (twice the share of rounds on
    the other side of zero). McNemar's exact test on per-item correctness is given too.
    """
    from scipy.stats import binomtest
    from sklearn.metrics import f1_score

    y, a, b = map(np.asarray, (y_true, pred_a, pred_b))
    f = lambda yy, pp: f1_score(yy, pp, labels=list(LABELS), average="macro", zero_division=0)  # noqa: E731
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        diffs.append(f(y[idx], a[idx]) - f(y[idx], b[idx]))
    diffs = np.asarray(diffs)
    point = float(f(y, a) - f(y, b))
    p_boot = float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
    only_a = int(np.sum((a == y) & (b != y)))
    only_b = int(np.sum((a != y) & (b == y)))
    p_mcnemar = float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"macro_f1_diff": point, "ci95": [float(min(lo, point)), float(max(hi, point))], "p_bootstrap": p_boot,
            "mcnemar": {"only_a_correct": only_a, "only_b_correct": only_b, "p": p_mcnemar},
            "significant": bool(lo > 0 or hi < 0)}


def evaluate_model(clf, data: EvalData, n_boot: int = 1000, seed: int = 0, max_errors: int = 200) -> dict:
    """Every number for one model on one data set (see the module docstring)."""
    logits = clf.logits(data.texts)
    probs = softmax(logits, clf.temperature)
    preds = [LABELS[i] for i in probs.argmax(1)]
    rep = classification_report(data.labels, preds)
    rep["summary"] = flatten_report(rep)  # the same flat figures as training's metrics.json and early stopping
    rep["ci"] = bootstrap_ci(data.labels, preds, n_boot, seed)
    raw = reliability(softmax(logits), data.labels)
    cal = reliability(probs, data.labels)
    rep["calibration"] = {"temperature": clf.temperature, "ece_before": raw["ece"], "ece_after": cal["ece"],
                          "bins_before": raw["bins"], "bins_after": cal["bins"]}
    predicted = sorted(set(preds))
    rep["predicted_labels"] = predicted
    rep["degenerate"] = len(predicted) == 1
    if any(d for d in data.domains):
        by = {}
        for dom in sorted({d for d in data.domains if d}):
            idx = [i for i, d in enumerate(data.domains) if d == dom]
            r = classification_report([data.labels[i] for i in idx], [preds[i] for i in idx])
            by[dom] = {"n": r["n"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"],
                       "f1": {l: r["per_label"][l]["f1"] for l in LABELS}}
        rep["per_domain"] = by
    conf = probs.max(1)
    wrong = [i for i in range(len(preds)) if preds[i] != data.labels[i]]
    wrong.sort(key=lambda i: -conf[i])
    rep["errors"] = [{"id": data.ids[i], "text": None if data.redact else data.texts[i], "gold": data.labels[i], "pred": preds[i],
                      "confidence": round(float(conf[i]), 4), "domain": data.domains[i]} for i in wrong[:max_errors]]
    rep["n_errors"] = len(wrong)
    rep["_preds"] = preds
    return rep


def evaluate(models: list, datas: list[str], output_dir: str | Path | None = None, n_boot: int = 1000,
             seed: int = 0, plots: bool = True, log=say) -> dict:
    """Evaluate each model on each data set; compare models pairwise; write the report.

    Args:
        models: Model directories (or loaded :class:`~framing.Classifier` objects).
        datas: Data specs for :func:`load_eval_data`.
        output_dir: Where ``report.json``, ``report.md`` and plots go (None: nothing is written).
    """
    from framing.model import Classifier

    if not models:
        raise ValueError("evaluate needs at least one model")
    if not datas:
        raise ValueError("evaluate needs at least one data set")
    sets = [load_eval_data(d) for d in datas]
    loaded = []
    for m in models:
        clf = m if isinstance(m, Classifier) else Classifier.load(m)
        loaded.append((str(m) if not isinstance(m, Classifier) else m.name, clf))
    report = {"models": {name: clf.name for name, clf in loaded}, "data": {}, "n_boot": n_boot, "seed": seed}
    for data in sets:
        entry = {"n": len(data.texts), "results": {}, "comparisons": []}
        for name, clf in loaded:
            log(f"evaluating {name} on {data.name} ({len(data.texts)} items)")
            entry["results"][name] = evaluate_model(clf, data, n_boot, seed)
        names = [n for n, _ in loaded]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                a, b = entry["results"][names[i]], entry["results"][names[j]]
                cmp = paired_comparison(data.labels, a["_preds"], b["_preds"], n_boot, seed)
                entry["comparisons"].append({"a": names[i], "b": names[j], **cmp})
        for r in entry["results"].values():
            r.pop("_preds")
        report["data"][data.name] = entry
    if output_dir is not None:
        write_report(report, Path(output_dir), plots=plots)
    return report


# ------------------------------------------------------------------------------------ output


def _short(name: str) -> str:
    return Path(name).name or name


def write_report(report: dict, out: Path, plots: bool = True) -> dict:
    """Write ``report.json``, the PNG plots and ``report.md`` to ``out``; return the plot paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    images = _plots(report, out) if plots else {}
    (out / "report.md").write_text(render_markdown(report, images))
    return images


def render_markdown(report: dict, images: dict | None = None) -> str:
    images = images or {}
    lines = ["# Evaluation report", ""]
    lines.append("Models: " + ", ".join(f"`{_short(k)}` ({v})" for k, v in report["models"].items()))
    lines.append(f"Bootstrap: {report['n_boot']} resamples, seed {report['seed']}; intervals are 95%.")
    for dname, entry in report["data"].items():
        lines += ["", f"## {dname} (n={entry['n']})", "",
                  "| model | accuracy [95% CI] | macro-F1 [95% CI] | " + " | ".join(f"F1 {l}" for l in LABELS)
                  + " | ECE before → after T |", "|---|---|---|" + "---|" * len(LABELS) + "---|"]
        for mname, r in entry["results"].items():
            ci = r["ci"]
            f1s = " | ".join(f"{r['per_label'][l]['f1']:.3f}" for l in LABELS)
            flag = " ⚠ predicts only " + r["predicted_labels"][0] if r["degenerate"] else ""
            cal = r["calibration"]
            lines.append(f"| `{_short(mname)}`{flag} | {r['accuracy']:.3f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}] | "
                         f"**{r['macro_f1']:.3f}** [{ci['macro_f1'][0]:.3f}, {ci['macro_f1'][1]:.3f}] | {f1s} | "
                         f"{cal['ece_before']:.3f} → {cal['ece_after']:.3f} (T={cal['temperature']:.2f}) |")
        if entry["comparisons"]:
            lines += ["", "Paired comparisons (same items): macro-F1 difference A − B, paired bootstrap and McNemar.", "",
                      "| A | B | Δ macro-F1 [95% CI] | p (bootstrap) | p (McNemar) | real difference? |",
                      "|---|---|---|---|---|---|"]
            for c in entry["comparisons"]:
                lines.append(f"| `{_short(c['a'])}` | `{_short(c['b'])}` | {c['macro_f1_diff']:+.3f} "
                             f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | {c['p_bootstrap']:.3f} | "
                             f"{c['mcnemar']['p']:.3f} | {'yes' if c['significant'] else 'no'} |")
        for mname, r in entry["results"].items():
            lines += ["", f"### `{_short(mname)}` on {dname}", "",
                      "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
            for l in LABELS:
                m = r["per_label"][l]
                lines.append(f"| {l} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
            cm = r["confusion_matrix"]["rows_gold_cols_pred"]
            lines += ["", "Confusion matrix (rows gold, columns predicted):", "",
                      "| gold \\ pred | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS)]
            lines += [f"| {l} | " + " | ".join(str(v) for v in row) + " |" for l, row in zip(LABELS, cm)]
            for key in ("confusion", "reliability"):
                if (dname, mname, key) in images:
                    lines += ["", f"![{key}]({images[(dname, mname, key)]})"]
            if r.get("per_domain"):
                lines += ["", "Per domain:", "", "| domain | n | accuracy | macro-F1 |", "|---|---|---|---|"]
                lines += [f"| {d} | {v['n']} | {v['accuracy']:.3f} | {v['macro_f1']:.3f} |" for d, v in r["per_domain"].items()]
            if r["errors"]:
                lines += ["", f"Most confident mistakes ({r['n_errors']} errors in all; top 10):", "",
                          "| id | gold | predicted | confidence | text |", "|---|---|---|---|---|"]
                for e in r["errors"][:10]:
                    text = ("(text withheld: see the id in the source file)" if e["text"] is None
                            else e["text"].replace("|", "\\|").replace("\n", " "))
                    lines.append(f"| {e['id']} | {e['gold']} | {e['pred']} | {e['confidence']:.2f} | "
                                 f"{text[:110] + ('…' if len(text) > 110 else '')} |")
    return "\n".join(lines) + "\n"


def _plots(report: dict, out: Path) -> dict:
    from framing.extras import need

    matplotlib = need("matplotlib", "framing eval's plots")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {}
    for dname, entry in report["data"].items():
        for mname, r in entry["results"].items():
            stem = f"{dname}__{_short(mname)}".replace("/", "_")
            cm = np.array(r["confusion_matrix"]["rows_gold_cols_pred"])
            fig, ax = plt.subplots(figsize=(4.6, 4))
            ax.imshow(cm, cmap="Blues")
            ax.set_xticks(range(4), LABELS, rotation=30, ha="right")
            ax.set_yticks(range(4), LABELS)
            ax.set_xlabel("predicted")
            ax.set_ylabel("gold")
            for (i, j), v in np.ndenumerate(cm):
                ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
            ax.set_title(f"{_short(mname)} on {dname}", fontsize=9)
            fig.tight_layout()
            fig.savefig(out / f"{stem}__confusion.png", dpi=90)
            plt.close(fig)
            images[(dname, mname, "confusion")] = f"{stem}__confusion.png"

            fig, ax = plt.subplots(figsize=(4.2, 4))
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
            cal = r["calibration"]
            for key, label in (("bins_before", "before (T=1)"), ("bins_after", f"after (T={cal['temperature']:.2f})")):
                bins = [b for b in cal[key] if b["count"]]
                ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", label=label)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.legend(fontsize=8)
            ax.set_title(f"reliability: {_short(mname)} on {dname}\nECE {cal['ece_before']:.3f} → {cal['ece_after']:.3f}",
                         fontsize=9)
            fig.tight_layout()
            fig.savefig(out / f"{stem}__reliability.png", dpi=90)
            plt.close(fig)
            images[(dname, mname, "reliability")] = f"{stem}__reliability.png"
    return images


# ------------------------------------------------------------------------------ cross-domain


def cross_domain(cfg, output_dir: str | Path, domains: list[str] | None = None, log=say) -> dict:
    """Leave-one-domain-out: for each domain, train ``cfg`` on the other domains and test on it.

    Training uses the train and cross_domain splits of the other domains, dev their dev split;
    the held-out domain is tested on all of its documents. The seed document is never trained on.

    Returns:
        ``{"config": ..., "domains": {domain: metrics}, "mean_macro_f1": float}``; also written
        as ``cross_domain.json`` and ``cross_domain.md`` in ``output_dir``.
    """
    import dataclasses

    from framing.extras import need

    need("datasets", "cross-domain training")
    from datasets import DatasetDict, concatenate_datasets

    from framing.data import load_corpus
    from framing.training import train

    corpus = load_corpus()
    everything = concatenate_datasets([corpus[s] for s in corpus])
    all_domains = sorted(set(everything["domain"]))
    domains = domains or all_domains
    unknown = sorted(set(domains) - set(all_domains))
    if unknown:
        raise ValueError(f"unknown domain(s) {unknown}; the corpus has {all_domains}")
    cfg = dataclasses.replace(cfg, real_dev="")
    out = Path(output_dir)
    results = {}
    for dom in domains:
        pick = lambda splits: everything.filter(  # noqa: E731
            lambda r: r["domain"] != dom and r["split"] in splits and r["origin"] != "seed")
        dd = DatasetDict({"train": pick({"train", "cross_domain", "test"}), "dev": pick({"dev"}),
                          "test": everything.filter(lambda r: r["domain"] == dom)})
        log(f"[cross-domain] held out {dom}: train {dd['train'].num_rows}, dev {dd['dev'].num_rows}, "
            f"test {dd['test'].num_rows}")
        _, metrics = train(cfg, out / dom, corpus=dd, log=lambda *a: None, argv=["framing", "eval", "--cross-domain"])
        results[dom] = metrics["test"]
        log(f"[cross-domain] {dom}: macro-F1 {metrics['test']['macro_f1']:.3f}")
    report = {"config": cfg.to_dict(), "domains": results,
              "mean_macro_f1": float(np.mean([r["macro_f1"] for r in results.values()]))}
    out.mkdir(parents=True, exist_ok=True)
    (out / "cross_domain.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Leave-one-domain-out: `{cfg.name}` ({cfg.model})", "",
             "| held-out domain | n | accuracy | macro-F1 | " + " | ".join(f"F1 {l}" for l in LABELS) + " |",
             "|---|---|---|---|" + "---|" * len(LABELS)]
    for dom, r in results.items():
        lines.append(f"| {dom} | {r['n']} | {r['accuracy']:.3f} | **{r['macro_f1']:.3f}** | "
                     + " | ".join(f"{r['per_label'][l]['f1']:.3f}" for l in LABELS) + " |")
    lines.append(f"| **mean** | | | **{report['mean_macro_f1']:.3f}** |" + " |" * len(LABELS))
    (out / "cross_domain.md").write_text("\n".join(lines) + "\n")
    return report
