"""Throughput, memory and int8 accuracy of `framing label` for both shipped models, against a plain pipeline.

    .venv/bin/python bench/label_throughput.py [--n 6000] [--n-accurate 1500] [--million 1000000]

**Sentences of real length.** Corpus sentences (team-written) are drawn so that their token-length
distribution matches real text: the lengths of `../shared/data/real_dev.jsonl` (131 real news and
official sentences; only their lengths are read) are binned in 4-token bins, and corpus sentences,
with lead-ins ("According to officials, ...") or joined in pairs ("...; ...") to reach the long
bins, are sampled bin by bin until the bench set has the same histogram. Every sentence is
distinct, so no duplicate is labelled for free. The printed mean must be at least 34 tokens.

In one run, for `fast` and `accurate`:

1. `framing label --unit sentence --quantize` end to end (process start, model load, reading,
   labelling, writing JSONL): sentences/s and peak RSS, on the default int8 engine (CTranslate2
   for a model it runs, such as `fast`) and, where that is not torch, with `--int8-engine torch`;
   also with `--workers 2`; for a model that relabels its int8 near-ties in fp32 by default
   (`int8_recheck` in its framing.json: `fast`), also with `--int8-recheck 0`;
2. the same in fp32;
3. a plain pipeline over `framing export` of the same model, in its own process:
   `transformers.pipeline("feature-extraction", batch_size=32)` over a generator with
   `return_tensors=True` (the exported encoder; streaming, no hidden states turned into lists),
   then mean pooling and the exported head in numpy: what a user without framing would write;
4. macro-F1 in fp32 and int8 (each engine, with and without the recheck) on the held-out splits
   (cross-domain, world-heldout) and real_dev;
5. with `--engines`, model-only int8 speed of torch (framing's per-row int8) against ONNX Runtime
   dynamic int8 and CTranslate2 int8, where installed (`pip install onnx onnxruntime ctranslate2`);
6. with CUDA, fp16 figures on the GPU.

`--million N` streams N generated sentences through `framing label - --quantize` from stdin for
each model and prints peak RSS (memory must not grow with the corpus); the generator cycles
through `--unique` distinct sentences, so the run also exercises the duplicate cache.

Prints figures; asserts nothing. Machines are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LEADS = ["Separately, ", "Meanwhile, ", "On Monday, ", "In a statement, ", "Earlier, ", "According to officials, ",
         "In its response, ", "Later that week, "]

# Peak RSS is read from /proc/self/status (VmHWM), not getrusage: on Linux a child's ru_maxrss
# starts from its parent's at fork and survives exec, so a child forked by a bench process that has
# already loaded models would report the parent's peak instead of its own.
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
except SystemExit as e:
    code = e.code
else:
    code = 0
import resource
print("PEAK_RSS_KB", peak_rss_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""

PIPELINE_SCRIPT = PEAK_RSS + """
import json, sys, time
import numpy as np
from safetensors.numpy import load_file
from transformers import pipeline
model_dir, path = sys.argv[1], sys.argv[2]
texts = [json.loads(l)["text"] for l in open(path)]
t0 = time.time()
pipe = pipeline("feature-extraction", model=model_dir, batch_size=32, device=-1)
head = load_file(model_dir + "/head.safetensors")
labels = json.load(open(model_dir + "/head.json"))["labels"]
out = []
# a generator in, tensors out: the pipeline streams and skips converting hidden states to lists
for tokens in pipe((t for t in texts), return_tensors=True, truncation=True, max_length=128):
    logits = tokens[0].numpy().mean(0) @ head["weight"].T + head["bias"]
    out.append(labels[int(logits.argmax())])
dt = time.time() - t0
print(json.dumps({"seconds": dt, "n": len(out), "peak_rss_kb": peak_rss_kb()}))
"""


def tokenizer():
    from transformers import AutoTokenizer

    from framing.encoder import resolve_encoder

    return AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))


def n_tokens(tok, texts: list[str]) -> list[int]:
    return [len(x) - 2 for x in tok(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]]


def corpus_sentences() -> list[str]:
    texts = []
    for f in sorted((ROOT / "seeds" / "corpus").rglob("*.jsonl")):
        texts += [json.loads(l)["text"] for l in open(f, encoding="utf-8") if l.strip()]
    return texts


def real_lengths(tok) -> list[int] | None:
    from framing.paths import real_dev_path

    path = real_dev_path()
    if not path.is_file():
        return None
    return n_tokens(tok, [json.loads(l)["text"] for l in open(path, encoding="utf-8") if l.strip()])


def _lower_first(s: str) -> str:
    return s[0].lower() + s[1:] if s[:2].isalpha() and not s[:2].isupper() else s


def realistic(n: int, tok, seed: int = 0) -> tuple[list[str], dict]:
    """N distinct corpus-made sentences whose token-length histogram matches real_dev's (4-token bins)."""
    rng = random.Random(seed)
    base = corpus_sentences()
    target = real_lengths(tok)
    if target is None:  # no ../shared: a fixed real-news-like profile (mean ~36 tokens)
        target = [int(rng.gauss(36, 13)) for _ in range(500)]
    target = [max(4, t) for t in target]
    bins = [min(t // 4, 31) for t in target]
    want = {b: bins.count(b) / len(bins) for b in set(bins)}
    # candidates: plain, with a lead-in, and joined pairs for the long tail
    cands = base + [rng.choice(LEADS) + _lower_first(s) for s in base] + \
        [a.rstrip(".") + "; " + _lower_first(b) for a, b in zip(rng.sample(base, len(base)), rng.sample(base, len(base)))]
    by_bin: dict[int, list[str]] = {}
    for t, k in zip(cands, n_tokens(tok, cands)):
        by_bin.setdefault(min(max(4, k) // 4, 31), []).append(t)
    out, seen = [], set()
    for b, share in sorted(want.items()):
        pool = by_bin.get(b) or by_bin[min(by_bin, key=lambda x: abs(x - b))]
        rng.shuffle(pool)
        for t in pool[: max(1, round(share * n))]:
            if t not in seen:
                seen.add(t)
                out.append(t)
    rng.shuffle(out)
    out = out[:n]
    lengths = sorted(n_tokens(tok, out))
    q = lambda p: lengths[int(p * (len(lengths) - 1))]  # noqa: E731
    t_sorted = sorted(target)
    qt = lambda p: t_sorted[int(p * (len(t_sorted) - 1))]  # noqa: E731
    info = {"n": len(out), "mean": statistics.mean(lengths), "p10": q(0.1), "median": q(0.5), "p90": q(0.9),
            "real_mean": statistics.mean(target), "real_p10": qt(0.1), "real_median": qt(0.5), "real_p90": qt(0.9)}
    return out, info


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": f"s{i}", "text": t}) + "\n")
    return path


def run_framing(inp: Path, out: Path, model: str, quantize: bool, extra=(), device="cpu") -> dict:
    cmd = [sys.executable, "-c", RSS_WRAPPER, "framing", "label", str(inp), "-o", str(out), "--model", model,
           "--unit", "sentence", "--device", device, "--force", "--quiet", *extra] + (["--quantize"] if quantize else [])
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t0
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    rss, child = map(int, res.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[:2])
    n = sum(1 for _ in open(out))
    workers = int(extra[list(extra).index("--workers") + 1]) if "--workers" in extra else 0
    # with --workers: the main process plus each worker (each worker's peak <= the largest child's)
    return {"seconds": dt, "n": n, "rate": n / dt, "peak_rss_mb": (rss + workers * child) / 1024}


def run_pipeline(model: str, inp: Path, d: Path) -> dict:
    hf = d / f"export-{model}"
    subprocess.run([sys.executable, "-m", "framing", "export", model, "-o", str(hf)], check=True, capture_output=True)
    res = subprocess.run([sys.executable, "-c", PIPELINE_SCRIPT, str(hf), str(inp)], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    p = json.loads(res.stdout.strip().splitlines()[-1])
    return {"seconds": p["seconds"], "n": p["n"], "rate": p["n"] / p["seconds"], "peak_rss_mb": p["peak_rss_kb"] / 1024}


def int8_accuracy(model: str, engines: list[str], recheck: float = 0.0, alt: float = 0.0) -> dict:
    """Macro-F1 in fp32 and in int8 on each engine (``int8`` = torch, ``int8-ctranslate2``) on the
    held-out splits and real_dev; for a model with an fp32 recheck of near-ties (``recheck``, its
    ``int8_recheck``), each engine with and without it; for one without, with ``alt`` if given."""
    from framing import Classifier
    from framing.evaluation import load_eval_data
    from framing.metrics import classification_report
    from framing.paths import real_dev_path

    datas = ["cross-domain", "world-heldout"] + (["real-dev"] if real_dev_path().is_file() else [])
    out = {}
    runs = [(False, "torch", None)] + [(True, e, r) for e in engines for r in ([None, 0] if recheck else [None, alt] if alt else [None])]
    for q, engine, r in runs:
        clf = Classifier.load(model, device="cpu", quantize=q, engine=engine, recheck=r)
        for spec in datas:
            data = load_eval_data(spec)
            rep = classification_report(data.labels, clf.predict(data.texts))
            out.setdefault(spec, {})[clf.precision] = rep["macro_f1"]
    return out


def model_only_engines(model: str, texts: list[str], repeats: int = 3) -> dict:
    """Model-only sentences/s of int8 engines on the same batches (one token length per batch)."""
    import numpy as np
    import torch

    from framing import Classifier
    from framing.model import length_batches

    clf = Classifier.load(model, device="cpu", quantize=True, engine="torch")
    ids = clf.backend.token_ids(texts)
    batches = [[ids[i] for i in b] for b in length_batches([len(x) for x in ids], 64, 1024)]
    encoded = [clf.backend.tokenizer.pad({"input_ids": b}, return_tensors="pt") for b in batches]

    def run_torch():
        t0 = time.perf_counter()
        with torch.inference_mode():
            for enc in encoded:
                clf.backend.model.encoder(**enc)
        return len(texts) / (time.perf_counter() - t0)

    engines, notes = {"torch per-row int8 (framing)": run_torch}, {}
    fp32 = Classifier.load(model, device="cpu")
    encoder = fp32.backend.model.encoder.eval()
    with tempfile.TemporaryDirectory() as d:
        try:
            import onnxruntime as ort
            from onnxruntime.quantization import QuantType, quantize_dynamic

            enc0 = encoded[len(encoded) // 2]
            class Hidden(torch.nn.Module):  # a plain (ids, mask) -> hidden signature for the tracer
                def __init__(self, m):
                    super().__init__()
                    self.m = m

                def forward(self, input_ids, attention_mask):
                    return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

            torch.onnx.export(Hidden(encoder), (enc0["input_ids"], enc0["attention_mask"]), f"{d}/m.onnx",
                              input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                              dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}},
                              opset_version=17, dynamo=False)
            quantize_dynamic(f"{d}/m.onnx", f"{d}/q.onnx", weight_type=QuantType.QInt8)
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(f"{d}/q.onnx", opts, providers=["CPUExecutionProvider"])
            feeds = [{"input_ids": e["input_ids"].numpy().astype(np.int64),
                      "attention_mask": e["attention_mask"].numpy().astype(np.int64)} for e in encoded]

            def run_ort():
                t0 = time.perf_counter()
                for feed in feeds:
                    sess.run(None, feed)
                return len(texts) / (time.perf_counter() - t0)

            engines["onnxruntime dynamic int8 (per-tensor scales)"] = run_ort

            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import onnx_rows

            onnx_rows.export_int8(fp32.backend.model, f"{d}/rows.onnx")
            rows_sess = onnx_rows.session(f"{d}/rows.onnx")

            def run_ort_rows():
                t0 = time.perf_counter()
                onnx_rows.run_logits(rows_sess, batches)
                return len(texts) / (time.perf_counter() - t0)

            engines["onnxruntime per-row int8 (bench/onnx_rows.py)"] = run_ort_rows
        except Exception as e:  # not installed, or the export failed: say so
            notes["onnxruntime"] = f"{type(e).__name__}: {str(e)[:160]}"
        try:
            import ctranslate2

            # framing's own conversion (cached; MPNet through framing.ct2's converter), run one batch
            # at a time on all threads, as the other engines here are.
            ct_backend = Classifier.load(model, device="cpu", quantize=True, engine="ctranslate2").backend
            ct = ctranslate2.Encoder(str(ct_backend.folder), device="cpu", compute_type="int8",
                                     intra_threads=torch.get_num_threads())
            ct_batches = [np.asarray(b, dtype=np.int32) for b in batches]

            def run_ct2():
                t0 = time.perf_counter()
                for arr in ct_batches:
                    ct_backend.hidden_states(arr, ct)
                return len(texts) / (time.perf_counter() - t0)

            engines["ctranslate2 int8"] = run_ct2
        except Exception as e:
            notes["ctranslate2"] = f"{type(e).__name__}: {str(e)[:160]}"
        rates = {k: [] for k in engines}
        for _ in range(repeats):
            for name, fn in engines.items():
                rates[name].append(fn())
    return {"rates": {k: statistics.median(v) for k, v in rates.items()}, "notes": notes}


def million(model: str, n: int, unique: list[str], out_dir: Path) -> dict:
    out = out_dir / f"million-{model}.jsonl"
    cmd = [sys.executable, "-c", RSS_WRAPPER, "framing", "label", "-", "-o", str(out), "--model", model,
           "--unit", "sentence", "--device", "cpu", "--force", "--quiet", "--quantize"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for i in range(n):
        proc.stdin.write(json.dumps({"id": i, "text": unique[i % len(unique)]}) + "\n")
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait()
    rows = sum(1 for _ in open(out))
    out.unlink()
    rss = int(err.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return {"n": n, "unique": len(unique), "rows": rows, "seconds": time.time() - t0, "peak_rss_mb": rss / 1024}


def line(name: str, r: dict) -> str:
    return f"  {name:<34} {r['rate']:8.1f} sentences/s  ({r['seconds']:6.1f} s)  peak RSS {r['peak_rss_mb']:5.0f} MB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6000, help="sentences for the fast model")
    ap.add_argument("--n-accurate", type=int, default=1500, help="sentences for the accurate model")
    ap.add_argument("--models", nargs="+", default=["fast", "accurate"])
    ap.add_argument("--million", type=int, default=0, help="also stream this many generated sentences per model")
    ap.add_argument("--unique", type=int, default=5000, help="distinct sentences in the --million stream")
    ap.add_argument("--engines", action="store_true", help="also compare int8 engines model-only")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--recheck", type=float, default=0.5,
                    help="for a model without a default fp32 recheck, also run --int8-recheck at this margin (0: not)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--only-pipeline", action="store_true", help="measure only the plain pipeline")
    args = ap.parse_args()

    import torch

    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}, torch capability {torch.backends.cpu.get_cpu_capability()}), "
          f"torch {torch.__version__}, CUDA: {torch.cuda.is_available()}")
    tok = tokenizer()
    results: dict = {"machine": {"cpus": os.cpu_count(), "cuda": torch.cuda.is_available()}, "models": {}}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        texts, info = realistic(max(args.n, args.n_accurate), tok)
        results["sentences"] = info
        print(f"{info['n']} distinct sentences, MiniLM tokens: mean {info['mean']:.1f}, p10 {info['p10']}, median "
              f"{info['median']}, p90 {info['p90']} (real_dev: mean {info['real_mean']:.1f}, p10 {info['real_p10']}, "
              f"median {info['real_median']}, p90 {info['real_p90']})")
        for model in args.models:
            n = args.n if model != "accurate" else args.n_accurate
            inp = write_jsonl(d / f"in-{model}.jsonl", texts[:n])
            if args.only_pipeline:
                p = run_pipeline(model, inp, d)
                print(f"{model} ({n} sentences):\n" + line("plain pipeline (fp32)", p))
                results["models"][model] = {"pipeline": p}
                continue
            from framing.ct2 import installed, supports
            from framing.model import _read_json
            from framing.paths import resolve_model

            engines = ["torch"] + (["ctranslate2"] if installed() and supports(
                _read_json(resolve_model(model) / "framing.json")) else [])
            # "int8" is what --quantize runs by default (--int8-engine auto: CTranslate2 where it runs the model)
            if "ctranslate2" in engines:  # converted once per model and machine, then cached: not part of a run
                t0 = time.time()
                subprocess.run([sys.executable, "-c", f"from framing import Classifier; Classifier.load({model!r}, "
                                "device='cpu', quantize=True)"], check=True, capture_output=True)
                print(f"{model}: CTranslate2 conversion (or cache check) in {time.time() - t0:.1f} s, process start included")
            recheck = float(_read_json(resolve_model(model) / "framing.json").get("int8_recheck", 0.0))
            r = {"int8": run_framing(inp, d / "q.jsonl", model, True)}
            if recheck:  # the model relabels its int8 near-ties in fp32 by default: also without
                r["int8_norecheck"] = run_framing(inp, d / "qn.jsonl", model, True, ["--int8-recheck", "0"])
            elif args.recheck:  # and with, for a model that does not
                r["int8_recheck"] = run_framing(inp, d / "qr.jsonl", model, True, ["--int8-recheck", f"{args.recheck:g}"])
            if "ctranslate2" in engines:
                r["int8_torch"] = run_framing(inp, d / "qt.jsonl", model, True, ["--int8-engine", "torch"])
            r.update({"int8_workers2": run_framing(inp, d / "q2.jsonl", model, True, ["--workers", "2"]),
                 "fp32": run_framing(inp, d / "f.jsonl", model, False),
                 "pipeline": run_pipeline(model, inp, d)})
            if torch.cuda.is_available():
                r["cuda_fp16"] = run_framing(inp, d / "g.jsonl", model, False, device="cuda")
            print(f"{model} ({n} sentences):")
            default = "ctranslate2" if "ctranslate2" in engines else "torch"
            for k, name in [("int8", f"framing label --quantize ({default}"
                                     + (f", fp32 recheck below margin {recheck:g})" if recheck else ")")),
                            ("int8_norecheck", "  ... --int8-recheck 0 (int8 only)"),
                            ("int8_recheck", f"  ... --int8-recheck {args.recheck:g}"),
                            ("int8_torch", "  ... --int8-engine torch"), ("int8_workers2", "  ... --workers 2"),
                            ("fp32", "framing label (fp32)"), ("pipeline", "plain pipeline (fp32)"),
                            ("cuda_fp16", "framing label --device cuda (fp16)")]:
                if k in r:
                    print(line(name, r[k]))
            print(f"  ratio int8 / pipeline {r['int8']['rate'] / r['pipeline']['rate']:.2f}x, fp32 / pipeline "
                  f"{r['fp32']['rate'] / r['pipeline']['rate']:.2f}x, 2 workers / 1 {r['int8_workers2']['rate'] / r['int8']['rate']:.2f}x "
                  "(framing's times include process start and model load; the pipeline's include the model load, "
                  "not its imports)")
            if not args.skip_accuracy:
                acc = int8_accuracy(model, engines, recheck, args.recheck)
                r["accuracy"] = acc
                for prec in [p for p in next(iter(acc.values())) if p != "fp32"]:
                    print(f"  macro-F1 fp32 -> {prec}: " + ", ".join(
                        f"{k} {v['fp32']:.3f} -> {v[prec]:.3f} ({v[prec] - v['fp32']:+.3f})" for k, v in acc.items()))
            if args.engines:
                eng = model_only_engines(model, texts[: min(n, 1500)])
                r["engines"] = eng
                print("  model-only int8, median of 3: " + ", ".join(f"{k} {v:.1f}/s" for k, v in eng["rates"].items()))
                for k, v in eng["notes"].items():
                    print(f"    {k}: not measured ({v})")
            if args.million:
                m = million(model, args.million, texts[: args.unique], d)
                r["million"] = m
                print(f"  {m['n']} sentences via stdin ({m['unique']} distinct): {m['rows']} rows in {m['seconds']:.0f} s, "
                      f"peak RSS {m['peak_rss_mb']:.0f} MB")
            results["models"][model] = r
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
