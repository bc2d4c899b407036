"""Deterministic int8 inference on CPU: per-channel int8 weights, per-row int8 activations.

``torch.ao.quantization.quantize_dynamic`` quantises a Linear layer's input with one scale for
the whole batch, padding included, so a sentence's label depended on its batch-mates (on 118
sentences, two labels flipped between identical runs whose batches differed). Here every row of
the input (one token of one sentence) gets its own scale, and the product is an exact integer
matrix multiply (``torch._int_mm``, int32 accumulation), so a row's output depends on that row and
the weights alone: the same sentence gives the same numbers whatever it is batched with.

The cost of the extra per-row scale is one ``amax`` over the row, small beside the matmul.

Where ``torch._int_mm`` has no fast kernel (on a 2-core AVX2 CPU without VNNI it took 1,015 ms
for a (1024 x 384) @ (384 x 1536) product that fp32 does in 37 ms), the same integer product is
computed with an fp32 matmul of the int8 values, exact by construction (:func:`int8_matmul`): the
result is bit-identical to ``_int_mm``'s, so the labels do not depend on which path a machine
takes, only the speed does (about fp32's there).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

_QMAX = 127.0
# Integers up to 2**24 are exact in fp32; a partial sum of a row's products is bounded by
# sum(|x_q|) * max|w_q| = sum(|x_q|) * 127, so rows under this bound multiply exactly in fp32.
_EXACT_ROW_L1 = 2 ** 24 // 127
MATMUL_ENV = "FRAMING_INT8_MATMUL"


@functools.lru_cache(maxsize=None)
def int8_matmul_mode() -> str:
    """``int`` (``torch._int_mm``) or ``fp32`` (its exact emulation) for this process.

    ``FRAMING_INT8_MATMUL=int|fp32`` chooses; otherwise a probe of a few milliseconds times both
    on a (256 x 384) @ (384 x 384) product and takes ``fp32`` when ``_int_mm`` is over 1.5x
    slower. The choice changes only speed: both give the same bits.
    """
    import os
    import time

    mode = os.environ.get(MATMUL_ENV, "")
    if mode:
        if mode not in ("int", "fp32"):
            raise ValueError(f"environment variable {MATMUL_ENV} must be 'int' or 'fp32', got {mode!r}")
        return mode
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (256, 384), dtype=torch.int8, generator=gen)
    b = torch.randint(-127, 128, (384, 384), dtype=torch.int8, generator=gen)
    af, bf = a.float(), b.float()

    def best(f):
        f()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    return "fp32" if best(lambda: torch._int_mm(a, b)) > 1.5 * best(lambda: af @ bf) else "int"


def int8_matmul(xq: torch.Tensor, wq: torch.Tensor, wf: torch.Tensor | None = None) -> torch.Tensor:
    """The exact product ``xq @ wq`` of int8 (m, k) and (k, n) matrices, as float32 (int32 rounded
    to float32, as ``torch._int_mm(xq, wq).float()`` gives it).

    ``wf``, the weight as float32, selects the fp32 path: rows whose products cannot leave fp32's
    exact-integer range go through one fp32 matmul, the rare others through float64.
    """
    if wf is None:
        return torch._int_mm(xq, wq).float()
    xf = xq.float()
    y = xf @ wf
    wide = (xq.abs().sum(1, dtype=torch.int32) > _EXACT_ROW_L1).nonzero().squeeze(1)
    if wide.numel():
        y[wide] = (xf[wide].double() @ wf.double()).float()
    return y


class Int8Linear(nn.Module):
    """A frozen ``nn.Linear`` with int8 weights (one scale per output channel) and int8 activations
    (one scale per input row), symmetric, computed with an exact int32 matrix multiply."""

    def __init__(self, linear: nn.Linear | None = None, *, weight: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None):
        """From ``linear``, or from its ``weight`` (out x in) and ``bias`` tensors."""
        super().__init__()
        if linear is not None:
            weight, bias = linear.weight, linear.bias
        w = weight.detach().float()
        scale = (w.abs().amax(dim=1) / _QMAX).clamp(min=1e-12)
        self.out_features, self.in_features = w.shape
        # _int_mm takes (m, k) @ (k, n); keep the weight transposed and contiguous once.
        self.register_buffer("weight_q", torch.round(w / scale[:, None]).clamp(-_QMAX, _QMAX)
                             .to(torch.int8).t().contiguous())
        self.register_buffer("weight_scale", scale)
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).float()
        # |x / s| <= 127 by construction, so no clamp is needed after rounding. (abs().amax() is ~15x
        # faster here than linalg.vector_norm(inf) or aminmax, measured on 1020 x 384 rows.)
        s = x2.abs().amax(dim=1, keepdim=True).div_(_QMAX).clamp_(min=1e-12)
        xq = torch.div(x2, s).round_().to(torch.int8)
        # In place where possible: a (tokens x out_features) temporary per step costs as much as
        # the integer matmul itself (3.2x slower before, on a 1024 x 384 x 1536 layer).
        y = int8_matmul(xq, self.weight_q, self._weight_f32()).mul_(s)
        y = torch.addcmul(self.bias, y, self.weight_scale) if self.bias is not None else y.mul_(self.weight_scale)
        return y.reshape(*shape[:-1], self.out_features)

    def _weight_f32(self) -> torch.Tensor | None:
        """The int8 weight as float32 for the fp32 matmul path, None for ``_int_mm``.

        Made at each call rather than kept: keeping it would hold the model's Linear weights in
        fp32 beside the int8 ones (+340 MB on all-mpnet-base-v2), while converting one layer's
        weight costs a few percent of its matmul on a 1,024-token batch.
        """
        return None if int8_matmul_mode() == "int" else self.weight_q.float()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-row"


def quantize_int8(model: nn.Module, skip: tuple[str, ...] = ()) -> nn.Module:
    """Replace every ``nn.Linear`` in ``model`` (in place) with an :class:`Int8Linear`.

    Args:
        model: A model in eval mode on CPU.
        skip: Qualified module names to leave in fp32 (e.g. a small classification head).
    """
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and full not in skip:
                setattr(module, child_name, Int8Linear(child))
    return model


def own_memory(model: nn.Module) -> nn.Module:
    """Copy every parameter and buffer that is not an :class:`Int8Linear`'s into the process's own memory.

    ``transformers`` loads safetensors weights as views of a memory-mapped file. After
    :func:`quantize_int8` the fp32 Linear weights are gone, but the embeddings, layer norms and
    biases still point into the mapping, which keeps every page of the file that loading touched
    resident (and counted in RSS): on all-mpnet-base-v2, ~250 MB of a 438 MB file. Copying the
    remaining tensors releases the mapping; the process then holds only what it uses.
    """
    import gc

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, Int8Linear):
                continue
            for name, p in list(module._parameters.items()):
                if p is not None:
                    module._parameters[name] = nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
            for name, b in list(module._buffers.items()):
                if b is not None:
                    module._buffers[name] = b.clone()
    gc.collect()
    release_free_memory()
    return model


def release_free_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; a no-op elsewhere)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class HeapGuard:
    """Calls :func:`release_free_memory` when RSS has grown by ``slack`` bytes since the last call.

    Batches of every token length leave activation buffers of every size behind, which glibc keeps,
    fragmented, in its heap: on the accurate model in int8, RSS grew by ~340 MB over 500
    sentences. Trimming after every batch keeps RSS flat but costs ~15% of the speed (the pages
    are faulted in again by the next batch); trimming only past a slack bounds the growth at
    about ``slack`` for a few trims per thousand sentences. Reading RSS costs ~20 us.
    """

    def __init__(self, slack: int = 128 << 20):
        import os

        self.slack = slack
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.mark = self.rss()

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):  # not Linux: nothing to watch
            return 0

    def check(self) -> None:
        now = self.rss()
        if now > self.mark + self.slack:
            release_free_memory()
            self.mark = self.rss()
