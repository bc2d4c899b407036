"""Assign corpus documents to splits and write ``seeds/splits.json``.

Splits are fixed in the repo so that every number stays comparable across models. This script
only assigns documents that the manifest does not know yet; existing assignments never move
(use ``--rebuild`` to start over, which changes every reported number).

Rules:
* whole documents go to one split (grouped by ``doc_id``);
* documents of the held-out real-world disputes go to ``world_heldout`` (never seen in train or dev);
* documents of the held-out domains go to ``cross_domain`` (never seen in train or dev);
* seed documents (``origin: seed``) go to ``test``;
* the rest: train/dev/test ≈ 80/10/10, stratified by label (``StratifiedGroupKFold``).

Usage::

    python training/make_splits.py [--held-out pollution detained-journalists] [--held-out-disputes ...] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from sklearn.model_selection import StratifiedGroupKFold

from framing.data import check_corpus, read_splits, seeds_dir

DEFAULT_HELD_OUT = ["pollution", "detained-journalists"]
N_FOLDS = 10  # one fold test, one fold dev, eight folds train


def assign(records, held_out, seed, held_disputes=()):
    """Return ``{doc_id: split}`` for the given records (all new documents)."""
    out, rest = {}, []
    for r in records:
        d = r.data
        if d.get("dispute") in held_disputes:
            out[d["doc_id"]] = "world_heldout"
        elif d["domain"] in held_out:
            out[d["doc_id"]] = "cross_domain"
        elif d["origin"] == "seed":
            out[d["doc_id"]] = "test"
        else:
            rest.append(d)
    groups = [d["doc_id"] for d in rest]
    if len(set(groups)) >= N_FOLDS:
        folds = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
        for k, (_, idx) in enumerate(folds.split(rest, [d["label"] for d in rest], groups)):
            split = "test" if k == 0 else "dev" if k == 1 else "train"
            for i in idx:
                out[groups[i]] = split
    else:
        # Too few new documents to stratify: a stable hash keeps the 80/10/10 proportions.
        for g in set(groups):
            h = int(hashlib.sha256(f"{seed}:{g}".encode()).hexdigest(), 16) % N_FOLDS
            out[g] = "test" if h == 0 else "dev" if h == 1 else "train"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(seeds_dir() / "corpus"))
    parser.add_argument("--splits", default=str(seeds_dir() / "splits.json"))
    parser.add_argument("--held-out", nargs="+", default=None, help="domains kept out of train/dev")
    parser.add_argument("--held-out-disputes", nargs="+", default=None,
                        help="real-world disputes kept out of train/dev (split world_heldout); only new documents move")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rebuild", action="store_true", help="reassign every document")
    args = parser.parse_args(argv)

    path = Path(args.splits)
    manifest = {"documents": {}, "cross_domain_domains": DEFAULT_HELD_OUT, "seed": args.seed}
    if path.exists() and not args.rebuild:
        manifest = read_splits(path)
    if args.held_out:
        manifest["cross_domain_domains"] = sorted(args.held_out)
    if args.held_out_disputes:
        manifest["world_heldout_disputes"] = sorted(args.held_out_disputes)

    # Validate the records without a manifest (each file its own split); splits come next.
    report = check_corpus([args.corpus], splits=None, documents_dir=Path(args.corpus).parent / "documents")
    bad = [p for p in report.problems if "duplicate" not in p.message]
    if bad:
        print("\n".join(map(str, bad)), file=sys.stderr)
        print("fix these problems first", file=sys.stderr)
        return 1
    known = manifest["documents"]
    new = [r for r in report.records if r.data["doc_id"] not in known]
    known.update(assign(new, set(manifest["cross_domain_domains"]), manifest.get("seed", args.seed),
                        set(manifest.get("world_heldout_disputes", []))))
    present = {r.data["doc_id"] for r in report.records}
    manifest["documents"] = dict(sorted((d, s) for d, s in known.items() if d in present))
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    counts = {}
    for s in manifest["documents"].values():
        counts[s] = counts.get(s, 0) + 1
    print(f"wrote {path}: {len({r.data['doc_id'] for r in new})} new document(s); documents per split {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
