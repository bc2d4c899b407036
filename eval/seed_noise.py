"""Seed noise of a training recipe: macro-F1 of the same config trained with different seeds.

    .venv/bin/python eval/seed_noise.py models/accurate runs/accurate_seed1 runs/accurate_seed2 \
        --card models/accurate -o eval/seed_noise.json

Reads each run's ``metrics.json`` (same config, data and code; only the seed differs, which
changes the head's initialisation, LoRA's initialisation, dropout and batch order), prints mean
and standard deviation per split, writes them as JSON, and with ``--card`` adds a "Noise" section
to that model's card (``provenance.json`` -> README.md), so a difference between two models can be
judged against it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from framing.card import SET_NAMES, rerender  # noqa: E402

SPLITS = ["dev", "test", "cross_domain", "world_heldout", "real_dev"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="model folders trained from one config with different seeds")
    ap.add_argument("-o", "--output", default=None, help="JSON file to write")
    ap.add_argument("--card", default=None, help="model folder whose card gets the Noise section")
    ap.add_argument("--note", default="", help="a sentence added under the table (e.g. how the runs differ "
                                               "beyond the seed)")
    args = ap.parse_args(argv)

    runs = []
    for r in args.runs:
        d = Path(r)
        summary = json.loads((d / "metrics.json").read_text())["summary"]
        config = json.loads((d / "training_config.json").read_text())["config"]
        runs.append((d, config, summary))
    base = {k: v for k, v in runs[0][1].items() if k != "seed"}
    for d, config, _ in runs[1:]:
        other = {k: v for k, v in config.items() if k != "seed"}
        if other != base:
            diff = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
            raise SystemExit(f"{d}: config differs from {runs[0][0]} in {diff}, not only in the seed")
    seeds = [c["seed"] for _, c, _ in runs]
    table = {}
    for split in SPLITS:
        vals = [s[split]["macro_f1"] for _, _, s in runs if split in s]
        if len(vals) == len(runs):
            table[split] = {"values": vals, "mean": statistics.mean(vals), "sd": statistics.stdev(vals),
                            "min": min(vals), "max": max(vals)}
    # the acceptance bar is per class too: the weakest class's F1 on each split, per seed
    weakest = {}
    for split in SPLITS:
        vals = [min(v for k, v in s[split].items() if k.startswith("f1_")) for _, _, s in runs if split in s]
        if len(vals) == len(runs):
            weakest[split] = {"values": vals, "mean": statistics.mean(vals), "sd": statistics.stdev(vals)}
    out = {"seeds": seeds, "runs": [str(d) for d, _, _ in runs], "macro_f1": table, "weakest_class_f1": weakest}
    lines = [f"Macro-F1 of this recipe over {len(runs)} seeds ({', '.join(map(str, seeds))}; only the seed differs):",
             "", "| data | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | sd |",
             "|---|" + "---|" * (len(seeds) + 2)]
    for split, t in table.items():
        lines.append(f"| {SET_NAMES.get(split, split)} | " + " | ".join(f"{v:.3f}" for v in t["values"])
                     + f" | {t['mean']:.3f} | {t['sd']:.3f} |")
    for split, t in weakest.items():
        lines.append(f"| weakest class F1, {SET_NAMES.get(split, split)} | " + " | ".join(f"{v:.3f}" for v in t["values"])
                     + f" | {t['mean']:.3f} | {t['sd']:.3f} |")
    lines += ["", "A difference between two models smaller than about two standard deviations of the row is within "
              "what retraining with another seed does on its own."]
    if args.note:
        lines += ["", args.note]
    text = "\n".join(lines)
    print(text)
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    if args.card:
        prov_path = Path(args.card) / "provenance.json"
        prov = json.loads(prov_path.read_text())
        prov["noise"] = text
        prov_path.write_text(json.dumps(prov, indent=1) + "\n")
        rerender(args.card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
