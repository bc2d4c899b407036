"""Per-row int8 inference with ONNX Runtime: the arithmetic of :mod:`framing.quantize` in an ONNX graph.

``onnxruntime.quantization.quantize_dynamic`` gives every MatMul's input one scale for the whole
batch (``DynamicQuantizeLinear``), so, like torch's dynamic quantisation, a sentence's label would
depend on its batch-mates. :func:`quantize_rows` rewrites an fp32 graph instead: each MatMul with a
constant weight becomes

* a per-row symmetric scale ``s = max|x| / 127`` (one per token of each sentence),
* ``xq = round(x / s)``, stored as ``uint8`` with a constant zero point of 128,
* ``MatMulInteger(xq, Wq)`` against per-output-channel int8 weights, which is exact integer
  arithmetic whatever the batch size or the kernel's blocking,
* ``y = float(acc) * s * w_scale``.

The weights use 7 bits (``|Wq| <= 63``, :data:`WEIGHT_QMAX`): on x86 CPUs without VNNI, ONNX
Runtime's u8×s8 kernels add pairs of products in saturating 16-bit registers (``vpmaddubsw``), and
``2 × 255 × 64`` is the largest pair sum that cannot overflow. So the integer results are the same on
every x86 CPU, VNNI or not.

Everything outside the integer matmuls (layer norms, softmax, GELU, the attention's own matmuls)
stays fp32.

Status: a measured engine of ``bench/label_throughput.py --engines``, not framing's int8 path.
Measured on 2 cores (AVX-512 VNNI), fast model, 2,000 real-length sentences, model only: 345-368
sentences/s against 257-291 for torch per-row int8 (:mod:`framing.quantize`), with 98.5% of labels
equal to fp32 (torch: 98.8%); but a sentence's logits alone and in a batch differ by up to 1e-6
(ONNX Runtime's fp32 attention kernels depend on the batch shape), where torch's are bit-identical.
:func:`export_int8` exports a loaded fp32 classifier (LoRA merged) and rewrites it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

WEIGHT_QMAX = 63
"""Largest int8 weight magnitude (7 bits; see the module docstring)."""
ACT_QMAX = 127
"""Largest int8 activation magnitude (stored as uint8 with zero point 128)."""
OPSET = 17
FORMAT = "framing-onnx-int8-v1"


def quantize_rows(model, min_elements: int = 0):
    """Rewrite an ONNX ``ModelProto`` in place: every ``MatMul`` whose second input is a constant
    2-D float weight becomes per-row int8 (see the module docstring). Returns the number rewritten.

    Inputs consumed by several MatMuls (the query, key and value projections) are quantised once.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    new_nodes, quantised, done = [], {}, 0
    consts = []

    def const(name, array):
        consts.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    inv_q = const("framing_q/act_qmax", np.array(float(ACT_QMAX), dtype=np.float32))
    eps = const("framing_q/eps", np.array(1e-12, dtype=np.float32))
    lo = const("framing_q/lo", np.array(-float(ACT_QMAX), dtype=np.float32))
    hi = const("framing_q/hi", np.array(float(ACT_QMAX), dtype=np.float32))
    off = const("framing_q/offset", np.array(128.0, dtype=np.float32))
    zp = const("framing_q/zero_point", np.array(128, dtype=np.uint8))

    for node in graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or w.data_type != TensorProto.FLOAT or len(w.dims) != 2 or \
                int(np.prod(w.dims)) < min_elements:
            new_nodes.append(node)
            continue
        x = node.input[0]
        if x not in quantised:
            p = f"framing_q/{len(quantised)}"
            new_nodes += [
                helper.make_node("Abs", [x], [p + "/abs"]),
                helper.make_node("ReduceMax", [p + "/abs"], [p + "/max"], axes=[-1], keepdims=1),
                helper.make_node("Div", [p + "/max", inv_q], [p + "/s0"]),
                helper.make_node("Max", [p + "/s0", eps], [p + "/scale"]),
                helper.make_node("Div", [x, p + "/scale"], [p + "/xs"]),
                helper.make_node("Round", [p + "/xs"], [p + "/xr"]),
                helper.make_node("Clip", [p + "/xr", lo, hi], [p + "/xc"]),
                helper.make_node("Add", [p + "/xc", off], [p + "/xo"]),
                helper.make_node("Cast", [p + "/xo"], [p + "/xq"], to=TensorProto.UINT8),
            ]
            quantised[x] = (p + "/xq", p + "/scale")
        xq, scale = quantised[x]
        wf = numpy_helper.to_array(w).astype(np.float32)  # (K, N)
        ws = np.maximum(np.abs(wf).max(axis=0) / WEIGHT_QMAX, 1e-12).astype(np.float32)
        wq = np.clip(np.round(wf / ws), -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)
        q = f"{w.name}/int8"
        consts.append(numpy_helper.from_array(wq, q))
        consts.append(numpy_helper.from_array(ws, q + "/scale"))
        out = node.output[0]
        new_nodes += [
            helper.make_node("MatMulInteger", [xq, q, zp], [out + "/acc"]),
            helper.make_node("Cast", [out + "/acc"], [out + "/accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [out + "/accf", scale], [out + "/rs"]),
            helper.make_node("Mul", [out + "/rs", q + "/scale"], [out]),
        ]
        done += 1
    used = {i for n in new_nodes for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(keep + [c for c in consts if c.name in used])
    return done


class _Logits:
    """``(input_ids, attention_mask) -> logits`` around a framing torch classifier, for the exporter."""

    def __new__(cls, model):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

        return Wrapped(model)


def export_int8(model, out: str | Path, meta: dict | None = None) -> Path:
    """Export a framing torch classifier (fp32, eval mode, CPU) to a per-row int8 ONNX file at ``out``.

    The file is written to a temporary name beside ``out`` and renamed into place, so a crash never
    leaves a partial graph; ``meta`` goes into the graph's metadata (``framing`` key, JSON).
    """
    import onnx
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[0, 100, 200, 300, 400, 2]], dtype=torch.long)
    mask = torch.ones_like(ids)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as d:
        fp32 = Path(d) / "fp32.onnx"
        with torch.inference_mode():
            torch.onnx.export(_Logits(model.eval()), (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                              output_names=["logits"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}})
        proto = onnx.load(str(fp32))
        n = quantize_rows(proto)
        if n == 0:
            raise ValueError("the exported graph has no MatMul with a constant weight to quantise")
        entry = proto.metadata_props.add()
        entry.key, entry.value = "framing", json.dumps({"format": FORMAT, "matmuls": n, **(meta or {})})
        tmp = Path(d) / "int8.onnx"
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    return out


def graph_meta(path: str | Path) -> dict:
    """The ``framing`` metadata of an int8 graph written by :func:`export_int8` ({} if none or unreadable)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    for p in proto.metadata_props:
        if p.key == "framing":
            try:
                return json.loads(p.value)
            except ValueError:
                return {}
    return {}


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session over ``path`` with ``threads`` intra-op threads (default: torch's count)."""
    import onnxruntime as ort

    if threads is None:
        import torch

        threads = torch.get_num_threads()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_logits(sess, batches_ids: list[list[list[int]]]) -> list[np.ndarray]:
    """Logits of unpadded batches (every sentence of a batch has the same length)."""
    out = []
    for b in batches_ids:
        ids = np.asarray(b, dtype=np.int64)
        out.append(sess.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0])
    return out


