"""Throughput and memory of `framing label` against a plain transformers pipeline.

    .venv/bin/python bench/label_throughput.py [--n 20000] [--model models/default] [--million 1000000]

In one run, on the same N realistic sentences (corpus sentences, each used with a few different
lead-ins so that all N are distinct: no duplicate is labelled for free):

1. `framing label --unit sentence --quantize` end to end (process start, model load, reading,
   labelling, writing JSONL) — sentences/s and peak RSS;
2. the same without `--quantize` (fp32);
3. `transformers.pipeline("text-classification", batch_size=32)` over `framing export` of the same
   model, in its own process — sentences/s and peak RSS;
4. model-only int8 speed of torch dynamic quantisation vs ONNX Runtime dynamic quantisation
   (if onnxruntime and onnx are installed), which decided what `--quantize` uses;
5. macro-F1 on ../shared/data/real_dev.jsonl with and without `--quantize`.

`--million N` also streams N generated sentences through `framing label - --quantize` from
stdin and prints peak RSS (to show memory does not grow with the corpus). The generator repeats
a pool of distinct sentences (`--unique`), so the run also exercises the duplicate cache.

Prints figures; asserts nothing. Machines are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEADS = ["", "Separately, ", "Meanwhile, ", "On Monday, ", "In a statement, ", "Earlier, ", "According to officials, "]

# Peak RSS is read from /proc/self/status (VmHWM), not getrusage: on Linux a child's ru_maxrss
# starts from its parent's at fork and survives exec, so a child forked by a bench process that has
# already loaded models would report the parent's peak (1.1 GB here) instead of its own.
PEAK_RSS = """
def peak_rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

RSS_WRAPPER = PEAK_RSS + """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    print("PEAK_RSS_KB", peak_rss_kb(), file=sys.stderr)
"""

PIPELINE_SCRIPT = PEAK_RSS + """
import json, sys, time
from transformers import pipeline
model_dir, path = sys.argv[1], sys.argv[2]
texts = [json.loads(l)["text"] for l in open(path)]
t0 = time.time()
pipe = pipeline("text-classification", model=model_dir, batch_size=32, device=-1)
out = [r["label"] for r in pipe(texts, truncation=True)]
dt = time.time() - t0
print(json.dumps({"seconds": dt, "n": len(out), "peak_rss_kb": peak_rss_kb()}))
"""


def corpus_sentences() -> list[str]:
    texts = []
    for f in sorted((ROOT / "seeds" / "corpus").rglob("*.jsonl")):
        texts += [json.loads(l)["text"] for l in open(f, encoding="utf-8") if l.strip()]
    return texts


def realistic(n: int, seed: int = 0) -> list[str]:
    """N distinct sentences: corpus sentences, each with a few different lead-ins."""
    base = corpus_sentences()
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        s = rng.choice(base)
        lead = rng.choice(LEADS)
        t = lead + (s[0].lower() + s[1:] if lead and s[:2].isalpha() and not s[:2].isupper() else s)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def run_framing(inp: Path, out: Path, model: str, quantize: bool, extra=()) -> dict:
    cmd = [sys.executable, "-c", RSS_WRAPPER, "framing", "label", str(inp), "-o", str(out), "--model", model,
           "--unit", "sentence", "--device", "cpu", "--force", "--quiet", *extra] + (["--quantize"] if quantize else [])
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t0
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    rss = int(res.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    n = sum(1 for _ in open(out))
    return {"seconds": dt, "n": n, "rate": n / dt, "peak_rss_mb": rss / 1024}


def model_only_int8(model: str, texts: list[str], batch_size: int = 32, repeats: int = 3) -> dict:
    """Model-only sentences/s of torch int8 and ONNX Runtime int8 on the same sorted batches.

    The two engines alternate ``repeats`` times and the median of each is reported, so a noisy
    neighbour slows both rather than one.
    """
    import statistics

    import numpy as np
    import torch

    from framing import Classifier

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    clf = Classifier.load(model, device="cpu", quantize=True, batch_size=batch_size)
    encoded = [clf.backend.encode([texts[i] for i in order[lo:lo + batch_size]])
               for lo in range(0, len(order), batch_size)]

    def run_torch():
        t0 = time.perf_counter()
        with torch.inference_mode():
            for enc in encoded:
                clf.backend.model(**enc)
        return len(texts) / (time.perf_counter() - t0)

    engines = {"torch_int8": run_torch}
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        ort = None
    if ort is not None:
        fp32 = Classifier.load(model, device="cpu")
        enc0 = encoded[0]
        with tempfile.TemporaryDirectory() as d:
            torch.onnx.export(fp32.backend.model, (enc0["input_ids"], enc0["attention_mask"]), f"{d}/m.onnx",
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}},
                              opset_version=17, dynamo=False)
            quantize_dynamic(f"{d}/m.onnx", f"{d}/q.onnx", weight_type=QuantType.QInt8)
            sess = ort.InferenceSession(f"{d}/q.onnx", providers=["CPUExecutionProvider"])
        feeds = [{"input_ids": e["input_ids"].numpy().astype(np.int64),
                  "attention_mask": e["attention_mask"].numpy().astype(np.int64)} for e in encoded]

        def run_ort():
            t0 = time.perf_counter()
            for feed in feeds:
                sess.run(None, feed)
            return len(texts) / (time.perf_counter() - t0)

        engines["onnxruntime_int8"] = run_ort
    rates = {k: [] for k in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            rates[name].append(fn())
    res = {f"{k}_rate": statistics.median(v) for k, v in rates.items()}
    if ort is None:
        res["onnxruntime"] = "not installed (pip install onnxruntime onnx to measure it)"
    return res


def real_dev_f1(model: str) -> dict | None:
    path = ROOT.parent / "shared" / "data" / "real_dev.jsonl"
    if not path.exists():
        return None
    from framing import Classifier
    from framing.metrics import classification_report

    rows = [json.loads(l) for l in open(path)]
    out = {}
    for q in (False, True):
        clf = Classifier.load(model, device="cpu", quantize=q)
        rep = classification_report([r["label"] for r in rows], clf.predict([r["text"] for r in rows]))
        out["int8" if q else "fp32"] = rep["macro_f1"]
    return out


def million(model: str, n: int, unique: int, out_dir: Path) -> dict:
    pool = realistic(unique, seed=1)
    cmd = [sys.executable, "-c", RSS_WRAPPER, "framing", "label", "-", "-o", str(out_dir / "million.jsonl"),
           "--model", model, "--unit", "sentence", "--device", "cpu", "--force", "--quiet", "--quantize"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for i in range(n):
        proc.stdin.write(json.dumps({"id": i, "text": pool[i % unique]}) + "\n")
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait()
    rows = sum(1 for _ in open(out_dir / "million.jsonl"))
    rss = int(err.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return {"n": n, "unique": unique, "rows": rows, "seconds": time.time() - t0, "peak_rss_mb": rss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--model", default=str(ROOT / "models" / "default"))
    ap.add_argument("--million", type=int, default=0, help="also stream this many generated sentences")
    ap.add_argument("--unique", type=int, default=20000, help="distinct sentences in the --million stream")
    ap.add_argument("--skip-fp32", action="store_true")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} CPUs; model {args.model}")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        texts = realistic(args.n)
        inp = d / "sentences.jsonl"
        with open(inp, "w") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"s{i}", "text": t}) + "\n")
        print(f"{len(texts)} distinct sentences, mean {sum(map(len, texts)) / len(texts):.0f} characters")

        q = run_framing(inp, d / "q.jsonl", args.model, quantize=True)
        print(f"framing label --quantize : {q['rate']:7.1f} sentences/s  ({q['seconds']:.1f} s)  peak RSS {q['peak_rss_mb']:.0f} MB")
        if not args.skip_fp32:
            f32 = run_framing(inp, d / "f.jsonl", args.model, quantize=False)
            print(f"framing label (fp32)     : {f32['rate']:7.1f} sentences/s  ({f32['seconds']:.1f} s)  peak RSS {f32['peak_rss_mb']:.0f} MB")

        subprocess.run([sys.executable, "-m", "framing", "export", args.model, "-o", str(d / "hf")], check=True,
                       capture_output=True)
        res = subprocess.run([sys.executable, "-c", PIPELINE_SCRIPT, str(d / "hf"), str(inp)], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(res.stderr[-2000:])
        p = json.loads(res.stdout.strip().splitlines()[-1])
        rate_p = p["n"] / p["seconds"]
        print(f"transformers.pipeline    : {rate_p:7.1f} sentences/s  ({p['seconds']:.1f} s, after import)  "
              f"peak RSS {p['peak_rss_kb'] / 1024:.0f} MB")
        print(f"ratio framing --quantize / pipeline: {q['rate'] / rate_p:.2f}x (framing's time includes process start "
              "and model load; the pipeline's does not include its imports)")

        sample = texts[:4000]
        m = model_only_int8(args.model, sample)
        print("model-only int8 on 4,000 sentences, batch 32, median of 3: " + ", ".join(
            f"{k} {v:.1f}/s" if isinstance(v, float) else f"{k}: {v}" for k, v in m.items()))
        f1 = real_dev_f1(args.model)
        if f1:
            print(f"real_dev macro-F1: fp32 {f1['fp32']:.3f}, int8 {f1['int8']:.3f} (change {f1['int8'] - f1['fp32']:+.3f})")
        if args.million:
            r = million(args.model, args.million, args.unique, d)
            print(f"{r['n']} sentences from a generator via stdin ({r['unique']} distinct): {r['rows']} rows in "
                  f"{r['seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
