"""Macro-F1 (and per-label F1) of several models on every split, in one table.

    .venv/bin/python eval/before_after.py MODEL [MODEL ...] [--json OUT]

Splits: the corpus dev and test splits, the held-out domains, the held-out real-world disputes and
../shared/data/real_dev.jsonl. Used for the before/after comparison of a corpus change: models
trained on the old corpus and on the new one are scored on the same (new) splits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.evaluation import evaluate  # noqa: E402
from framing.labels import LABELS  # noqa: E402
from framing.paths import real_dev_path  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    datas = ["dev", "test", "cross-domain", "world-heldout"] + (["real-dev"] if real_dev_path().is_file() else [])
    report = evaluate(args.models, datas, None, n_boot=200, plots=False, log=lambda *a: None)
    print("| model | " + " | ".join(datas) + " |")
    print("|---|" + "---|" * len(datas))
    table = {}
    for m in args.models:
        cells = []
        for d in datas:
            r = report["data"][d]["results"][m]
            table.setdefault(m, {})[d] = {"macro_f1": r["macro_f1"], **{l: r["per_label"][l]["f1"] for l in LABELS}}
            per = " / ".join(f"{r['per_label'][lab]['f1']:.2f}" for lab in LABELS)
            cells.append(f"{r['macro_f1']:.3f} ({per})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\ncells: macro-F1 (F1 {' / '.join(LABELS)})")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
