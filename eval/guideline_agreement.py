"""Agreement between the GUIDELINES.md labels and the independent real_dev labels.

Usage::

    python eval/guideline_agreement.py [--real-dev PATH] [--labels PATH]

``--real-dev`` defaults to ``../shared/data/real_dev.jsonl`` and ``--labels`` to
``seeds/real_dev_guideline_labels.jsonl``. Both are resolved from the repository root
(the folder above ``eval/``). The script prints:

* overall agreement;
* Cohen's kappa;
* per-label precision, recall and F1, with the independent labels as the reference;
* the confusion matrix;
* every id where the two labels differ.

It needs only the standard library and scikit-learn. It reads ids and labels, never
sentence text, so its output can be pasted into the guidelines without copying a
publisher's sentence.
"""
import argparse
import json
import pathlib
import sys

from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

# Same order as the label schema of the classifier (framing/labels.py). It is repeated
# here so that this script stays standalone.
LABELS = ("allegation", "denial", "justification", "other")
REPO = pathlib.Path(__file__).resolve().parent.parent


def read_labels(path):
    """Read ``{"id": ..., "label": ...}`` rows from a JSONL file.

    Args:
        path (pathlib.Path): JSONL file; other fields on a row are ignored.

    Returns:
        dict: id -> (label, line number), in file order.

    Raises:
        SystemExit: if the file is missing, or a line is not a JSON object with a
            string ``id`` and a ``label`` from ``LABELS``, or an id repeats. The message
            names the file and line.
    """
    if not path.is_file():
        raise SystemExit(f"error: {path}: file not found")
    rows = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue  # a trailing blank line is harmless
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"error: {where}: malformed JSON ({e.msg}).") from None
            if not isinstance(row, dict) or not isinstance(row.get("id"), str):
                raise SystemExit(f"error: {where}: expected an object with a string 'id', got {line.strip()[:80]!r}.")
            if row.get("label") not in LABELS:
                raise SystemExit(f"error: {where}: label must be one of {list(LABELS)}, got {row.get('label')!r}.")
            if row["id"] in rows:
                raise SystemExit(f"error: {where}: duplicate id {row['id']!r} (first on line {rows[row['id']][1]}).")
            rows[row["id"]] = (row["label"], n)
    if not rows:
        raise SystemExit(f"error: {path}: no labelled rows.")
    return rows


def align(gold, guide, gold_path, guide_path):
    """Pair the two label sets by id. Both sets must hold exactly the same ids.

    Returns:
        tuple: ids, independent labels and guideline labels, in the gold file's order.
    """
    for i, (_, n) in gold.items():
        if i not in guide:
            raise SystemExit(f"error: {guide_path}: id {i!r} ({gold_path}:{n}) has no guideline label.")
    for i, (_, n) in guide.items():
        if i not in gold:
            raise SystemExit(f"error: {guide_path}:{n}: id {i!r} is not in {gold_path}.")
    ids = list(gold)
    return ids, [gold[i][0] for i in ids], [guide[i][0] for i in ids]


def report(ids, y_gold, y_guide):
    """Build the agreement report as text lines (guideline labels scored against gold)."""
    n = len(ids)
    agree = sum(a == b for a, b in zip(y_gold, y_guide))
    kappa = cohen_kappa_score(y_gold, y_guide, labels=list(LABELS))
    p, r, f, s = precision_recall_fscore_support(y_gold, y_guide, labels=list(LABELS), zero_division=0)
    out = [f"items {n}", f"agreement {agree}/{n} = {agree / n:.3f}", f"cohen_kappa {kappa:.3f}", ""]
    out.append(f"{'label':<14}{'precision':>10}{'recall':>8}{'f1':>7}{'gold_n':>8}{'guide_n':>9}")
    for k, lab in enumerate(LABELS):
        out.append(f"{lab:<14}{p[k]:>10.3f}{r[k]:>8.3f}{f[k]:>7.3f}{s[k]:>8d}{y_guide.count(lab):>9d}")
    out.append(f"{'macro':<14}{p.mean():>10.3f}{r.mean():>8.3f}{f.mean():>7.3f}")
    out += ["", "confusion matrix (rows = independent label, columns = guideline label)"]
    out.append(" " * 14 + "".join(f"{lab[:5]:>7}" for lab in LABELS))
    for lab, row in zip(LABELS, confusion_matrix(y_gold, y_guide, labels=list(LABELS))):
        out.append(f"{lab:<14}" + "".join(f"{v:>7d}" for v in row))
    diff = [(i, a, b) for i, a, b in zip(ids, y_gold, y_guide) if a != b]
    out += ["", f"disagreements {len(diff)} (id  independent -> guideline)"]
    out += [f"{i}  {a} -> {b}" for i, a, b in diff]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-dev", type=pathlib.Path, default=REPO.parent / "shared" / "data" / "real_dev.jsonl",
                        help="independent labels (JSONL with id and label)")
    parser.add_argument("--labels", type=pathlib.Path, default=REPO / "seeds" / "real_dev_guideline_labels.jsonl",
                        help="guideline labels (JSONL with id, label, rule)")
    args = parser.parse_args(argv)
    gold = read_labels(args.real_dev)
    guide = read_labels(args.labels)
    print("\n".join(report(*align(gold, guide, args.real_dev, args.labels))))


if __name__ == "__main__":
    main()
