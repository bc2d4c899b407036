"""Corpus shape and shortcut report: lengths, real-world share, tokens that predict a label.

    .venv/bin/python eval/corpus_report.py [--before GLOB_EXCLUDE] [-o eval/CORPUS.md]

"before" is the corpus without ``seeds/corpus/world/`` (the real-world documents); "after" is the
whole corpus. For each it reports:

* sentence length in wordpiece tokens (all-MiniLM-L6-v2's tokenizer, special tokens excluded) and
  in words, beside the same figures for ``../shared/data/real_dev.jsonl`` (numbers only: its
  sentences never leave ``../shared``);
* the share of written sentences naming at least one of 35 common real states and organisations;
* label shortcuts: for every token seen in at least 30 sentences, ``P(label | token)`` and the
  pointwise mutual information ``log P(label | token) / P(label)``; the top tokens per label by PMI,
  and every token whose sentences carry one label 75% of the time or more (a shortcut);
* the largest weights of a binary bag-of-words logistic regression, per label.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.data import check_corpus  # noqa: E402
from framing.labels import LABELS  # noqa: E402

REAL_DEV = ROOT.parent / "shared" / "data" / "real_dev.jsonl"
NAMES = ["China", "Russia", "Myanmar", "Israel", "Qatar", "Saudi", "United Nations", "Amnesty", "Human Rights Watch",
         "Ukraine", "Iran", "India", "Pakistan", "Turkey", "Egypt", "Syria", "Yemen", "Ethiopia", "Nigeria", "Sudan",
         "Brazil", "Mexico", "Venezuela", "United States", "Washington", "Beijing", "Moscow", "European Union", "EU",
         "UN", "ILO", "WHO", "FIFA", "Australia", "Japan"]
_NAME_RE = re.compile(r"\b(" + "|".join(re.escape(n) for n in NAMES) + r")\b")
_TOKEN_RE = re.compile(r"[a-z][a-z'-]+")
STOP = set("the a an of to in and or for on at by with from as is are was were be been that this it its their "
           "his her they we our has have had not no but which who would will said says".split())


def _stats(xs):
    if not xs:
        return {}
    q = statistics.quantiles(xs, n=10)
    return {"n": len(xs), "mean": round(statistics.fmean(xs), 1), "median": statistics.median(xs),
            "p10": round(q[0], 1), "p90": round(q[-1], 1)}


def _tokens(text):
    return set(_TOKEN_RE.findall(text.lower()))


def associations(rows, min_count=30, top=12, threshold=0.75):
    prior = Counter(r["label"] for r in rows)
    n = len(rows)
    by_tok = defaultdict(Counter)
    for r in rows:
        for t in _tokens(r["text"]):
            by_tok[t][r["label"]] += 1
    table = {}
    for t, c in by_tok.items():
        total = sum(c.values())
        if total < min_count or t in STOP:
            continue
        table[t] = {lab: (c[lab] / total, math.log(max(c[lab], 0.5) / total / (prior[lab] / n))) for lab in LABELS}
        table[t]["_n"] = total
    top_pmi = {lab: sorted(((t, v[lab][1], v[lab][0], v["_n"]) for t, v in table.items()), key=lambda x: -x[1])[:top]
               for lab in LABELS}
    shortcuts = sorted(((t, lab, v[lab][0], v["_n"]) for t, v in table.items() for lab in LABELS
                        if v[lab][0] >= threshold), key=lambda x: (-x[2], -x[3]))
    return top_pmi, shortcuts


def linear_weights(rows, top=10):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = CountVectorizer(binary=True, min_df=10, token_pattern=r"(?u)\b[A-Za-z][A-Za-z'-]+\b", lowercase=True)
    X = vec.fit_transform([r["text"] for r in rows])
    lr = LogisticRegression(C=0.5, max_iter=3000).fit(X, [r["label"] for r in rows])
    vocab = vec.get_feature_names_out()
    return {lab: [(vocab[j], round(float(lr.coef_[i][j]), 2)) for j in lr.coef_[i].argsort()[::-1][:top]]
            for i, lab in enumerate(lr.classes_)}


def describe(rows, tokenizer):
    written = [r for r in rows if r["origin"] == "written"]
    lengths_tok = [len(x) for x in tokenizer([r["text"] for r in rows], add_special_tokens=False)["input_ids"]]
    return {
        "sentences": len(rows),
        "real_world_sentences": sum(r.get("world") == "real" for r in rows),
        "naming_real_actors": round(sum(bool(_NAME_RE.search(r["text"])) for r in written) / max(len(written), 1), 3),
        "tokens": _stats(lengths_tok),
        "words": _stats([len(r["text"].split()) for r in rows]),
        "labels": dict(Counter(r["label"] for r in rows)),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(ROOT / "eval" / "CORPUS.md"))
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    from framing.encoder import encoder_path

    tok = AutoTokenizer.from_pretrained(encoder_path())
    report = check_corpus([ROOT / "seeds" / "corpus"], splits=ROOT / "seeds" / "splits.json")
    after = [r.data for r in report.records]
    before = [r.data for r in report.records if "/world/" not in r.path.replace("\\", "/")]
    out = {"before": describe(before, tok), "after": describe(after, tok)}
    if REAL_DEV.is_file():
        real = [json.loads(l) for l in REAL_DEV.open() if l.strip()]
        out["real_dev"] = {"tokens": _stats([len(x) for x in tok([r["text"] for r in real], add_special_tokens=False)["input_ids"]]),
                           "words": _stats([len(r["text"].split()) for r in real])}
    lines = ["# Corpus shape and label shortcuts", "",
             "Regenerate: `.venv/bin/python eval/corpus_report.py`. *Before*: the corpus without `seeds/corpus/world/`; "
             "*after*: the whole corpus. Tokens are all-MiniLM-L6-v2 wordpieces without special tokens.", "",
             "| | sentences | real-world | naming a real actor | tokens mean | median | p10 | p90 | words mean |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("before", "after", "real_dev"):
        if name not in out:
            continue
        d = out[name]
        t, w = d["tokens"], d["words"]
        lines.append(f"| {name} | {d.get('sentences', t['n'])} | {d.get('real_world_sentences', '')} | "
                     f"{format(d['naming_real_actors'], '.0%') if 'naming_real_actors' in d else ''} | {t['mean']} | "
                     f"{t['median']} | {t['p10']} | {t['p90']} | {w['mean']} |")
    for name, rows in (("before", before), ("after", after)):
        top_pmi, shortcuts = associations(rows)
        lines += ["", f"## Tokens most associated with each label ({name}; PMI, tokens in >= 30 sentences)", "",
                  "| label | tokens (PMI, P(label given token), sentences) |", "|---|---|"]
        for lab in LABELS:
            lines.append(f"| {lab} | " + ", ".join(f"{t} ({p:.2f}, {q:.0%}, {n})" for t, p, q, n in top_pmi[lab]) + " |")
        lines += ["", f"Tokens whose sentences carry one label >= 75% of the time ({name}): {len(shortcuts)}", ""]
        lines += [", ".join(f"`{t}` -> {lab} ({q:.0%} of {n})" for t, lab, q, n in shortcuts[:60]) or "none"]
        weights = linear_weights(rows)
        lines += ["", f"Largest bag-of-words logistic-regression weights ({name}):", ""]
        lines += [f"- {lab}: " + ", ".join(f"{t} {w:+.2f}" for t, w in weights[lab]) for lab in LABELS]
        out[f"shortcuts_{name}"] = [{"token": t, "label": lab, "p": round(q, 3), "n": n} for t, lab, q, n in shortcuts]
    Path(args.output).write_text("\n".join(lines) + "\n")
    Path(args.output).with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
