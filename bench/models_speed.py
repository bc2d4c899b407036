"""Sentences/s and peak RSS of each shipped model, in one run: the speed side of accurate vs fast.

    .venv/bin/python bench/models_speed.py [--n 2000] [--models accurate fast minilm-lora]

For each model, on the same N distinct corpus-like sentences (see label_throughput.realistic):
`framing label --unit sentence` end to end (process start and model load included) in fp32 and
with `--quantize` (after one untimed int8 run, which converts the model for CTranslate2 once per
machine), plus the model-only rate (load excluded, fp32, batch 64). Prints a table and
the ratio of each model's model-only rate to the first model's. Asserts nothing; compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from label_throughput import realistic, run_framing, tokenizer  # noqa: E402


def model_only(model: str, texts: list[str]) -> float:
    from framing import Classifier

    clf = Classifier.load(model, device="cpu", batch_size=64)
    clf.predict(texts[:64])  # warm-up
    t0 = time.perf_counter()
    clf.predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--models", nargs="+", default=["accurate", "fast"])
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    texts, info = realistic(args.n, tokenizer())
    print(f"machine: {os.cpu_count()} CPUs; {info['n']} distinct sentences, MiniLM tokens mean {info['mean']:.1f} "
          f"(real_dev {info['real_mean']:.1f}), {sum(len(t.split()) for t in texts) / len(texts):.1f} words")
    rows = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        inp = d / "s.jsonl"
        inp.write_text("".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        warm = d / "warm.jsonl"
        warm.write_text("".join(json.dumps({"id": f"w{i}", "text": t}) + "\n" for i, t in enumerate(texts[:8])))
        for m in args.models:
            # the first int8 load of a model converts it for CTranslate2 (cached): not labelling time
            run_framing(warm, d / "w.jsonl", m, quantize=True)
            f32 = run_framing(inp, d / "f.jsonl", m, quantize=False)
            q = run_framing(inp, d / "q.jsonl", m, quantize=True)
            rows[m] = {"fp32": f32, "int8": q, "model_only": model_only(m, texts)}
            print(f"{m:<12} end-to-end fp32 {f32['rate']:7.1f}/s (RSS {f32['peak_rss_mb']:.0f} MB)  "
                  f"int8 {q['rate']:7.1f}/s (RSS {q['peak_rss_mb']:.0f} MB)  model-only fp32 {rows[m]['model_only']:7.1f}/s",
                  flush=True)
    first = args.models[0]
    for m in args.models[1:]:
        print(f"{m} / {first}: model-only fp32 {rows[m]['model_only'] / rows[first]['model_only']:.2f}x, "
              f"end-to-end fp32 {rows[m]['fp32']['rate'] / rows[first]['fp32']['rate']:.2f}x, "
              f"end-to-end int8 {rows[m]['int8']['rate'] / rows[first]['int8']['rate']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
